"""The wavemeter's switch channels and the lasers' actuators, as the device_db entry gives
them (keys ``channels`` and ``actuators``, formatted into the controller's command line).

``channels``: ``SWITCH_CHANNEL=LASER_NODE`` items, e.g. ``1=397_a,2=866_a``; the laser is
one of 397, 866, 854, 729, 393 and the node ``a`` or ``b``.

``actuators``: ``LASER_NODE=KIND:DEVICE:CHANNEL:HZ_PER_UNIT`` items, e.g.
``866_a=dac:dac_a:0:9e7``. KIND ``dac`` (volts; DEVICE a Zotino, CHANNEL its DAC channel) or
``dds`` (DDS Hz; DEVICE an AD9910/AD9912, CHANNEL ignored) in simulation; ``wlm`` (volts on
the wavemeter's own analog output port CHANNEL, DEVICE ignored) on the real instrument.
HZ_PER_UNIT is the lab's estimate of the tuning (sign included) the lock divides by.
"""

from __future__ import annotations

from dataclasses import dataclass

LASERS = ("397", "866", "854", "729", "393")
NODES = ("a", "b")
ACTUATOR_KINDS = ("dac", "dds", "wlm")


class ConfigError(ValueError):
    """A channel or actuator map is malformed; the message names the item."""


def parse_laser(name: str) -> tuple[str, str]:
    """``"397_a"`` -> ``("397", "a")``."""
    laser, sep, node = name.strip().partition("_")
    if not sep or laser not in LASERS or node not in NODES:
        raise ConfigError(f"laser name {name!r} must be LASER_NODE with LASER in {LASERS} "
                          f"and NODE in {NODES}")
    return laser, node


def _items(text: str, what: str) -> list[tuple[str, str]]:
    out = []
    for item in (p.strip() for p in text.split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(f"{what} item {item!r} is not KEY=VALUE")
        out.append((key.strip(), value.strip()))
    return out


def parse_channels(text: str) -> dict[int, str]:
    """``"1=397_a,2=866_a"`` -> ``{1: "397_a", 2: "866_a"}``."""
    out: dict[int, str] = {}
    for key, value in _items(text, "wavemeter channel"):
        try:
            ch = int(key)
        except ValueError:
            raise ConfigError(f"wavemeter channel {key!r} is not an integer") from None
        if not 1 <= ch <= 64:
            raise ConfigError(f"wavemeter channel {ch} is outside 1..64")
        parse_laser(value)
        if ch in out:
            raise ConfigError(f"wavemeter channel {ch} appears twice")
        if value in out.values():
            raise ConfigError(f"laser {value} is on two wavemeter channels")
        out[ch] = value
    if not out:
        raise ConfigError(f"channel map {text!r} names no channel")
    return out


@dataclass(frozen=True)
class ActuatorSpec:
    """One laser's actuator: kind, device (device_db name), channel, tuning estimate."""

    kind: str
    device: str
    channel: int
    hz_per_unit: float


def parse_actuators(text: str) -> dict[str, ActuatorSpec]:
    """``"866_a=dac:dac_a:0:9e7"`` -> ``{"866_a": ActuatorSpec("dac", "dac_a", 0, 9e7)}``."""
    out: dict[str, ActuatorSpec] = {}
    for key, value in _items(text, "actuator"):
        parse_laser(key)
        parts = value.split(":")
        if len(parts) != 4:
            raise ConfigError(f"actuator {key}={value!r} is not KIND:DEVICE:CHANNEL:HZ_PER_UNIT")
        kind, device, channel, k = parts
        if kind not in ACTUATOR_KINDS:
            raise ConfigError(f"actuator {key}: kind {kind!r} is not one of {ACTUATOR_KINDS}")
        try:
            spec = ActuatorSpec(kind, device, int(channel), float(k))
        except ValueError:
            raise ConfigError(f"actuator {key}: channel {channel!r} must be an integer and "
                              f"tuning {k!r} a number") from None
        if spec.hz_per_unit == 0 or spec.hz_per_unit != spec.hz_per_unit:
            raise ConfigError(f"actuator {key}: tuning must be a non-zero number")
        out[key] = spec
    return out
