"""Which device_db channel does what: the role map of the virtual network.

Roles are the lab's device_db aliases. For node ``X`` in ``a``, ``b``: ``pmt_X`` (TTL input
seeing the ion's 397 nm fluorescence), ``dds_397_X``, ``dds_866_X``, ``dds_854_X``,
``dds_729_X``, ``dds_393_X`` (AD9910 channels; their ``sw_device`` TTL is the RF switch); the
station detectors ``det_station_0`` and ``det_station_1`` (TTL inputs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ionlink.runner.devices import resolve_alias

NODES = ("a", "b")
LASERS = ("397", "866", "854", "729", "393")


def pmt_role(node: str) -> str:
    return f"pmt_{node}"


def dds_role(laser: str, node: str) -> str:
    return f"dds_{laser}_{node}"


STATION_ROLES = ("det_station_0", "det_station_1")
ALL_ROLES = tuple([pmt_role(n) for n in NODES]
                  + [dds_role(la, n) for n in NODES for la in LASERS] + list(STATION_ROLES))


class WiringError(KeyError):
    """The device_db lacks a role or describes it wrongly."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Wiring:
    """Role -> device key, and device key -> what it drives.

    ``dds``: DDS device key -> (node, laser); ``switch``: TTL key -> list of (node, laser);
    ``pmt``: TTL key -> node; ``station``: TTL key -> detector index (0 or 1).
    """

    devices: dict[str, str]
    dds: dict[str, tuple[str, str]]
    switch: dict[str, list[tuple[str, str]]]
    pmt: dict[str, str]
    station: dict[str, int]


def resolve_role(device_db: dict[str, Any], name: str, role: str,
                 error: type[WiringError] = WiringError) -> str:
    """The device_db key ``name`` stands for (following aliases); ``error`` names the role
    and the alias chain (:func:`ionlink.runner.devices.resolve_alias`)."""
    return resolve_alias(device_db, name, error, what=f"device of role {role!r}")


def switch_key(device_db: dict[str, Any], key: str, role: str,
               error: type[WiringError] = WiringError) -> str:
    """The device_db key of the RF-switch TTL of the AD9910 entry ``key`` playing ``role``
    (its ``sw_device``, aliases followed); ``error`` names the role when ``key`` is no
    AD9910 or has no switch."""
    entry = device_db[key]
    if not isinstance(entry, dict) or entry.get("class") != "AD9910":
        raise error(f"role {role!r} ({key!r}) must be an AD9910 entry")
    sw = entry.get("arguments", {}).get("sw_device")
    if sw is None:
        raise error(f"role {role!r} ({key!r}) has no sw_device (RF switch)")
    return resolve_role(device_db, sw, role, error)


def build_wiring(device_db: dict[str, Any]) -> Wiring:
    """Build the role map from a device_db dict; raises :class:`WiringError` naming the role."""
    devices: dict[str, str] = {}
    for role in ALL_ROLES:
        if role not in device_db:
            raise WiringError(f"device_db has no alias for virtual-node role {role!r}")
        devices[role] = resolve_role(device_db, role, role)
    dds: dict[str, tuple[str, str]] = {}
    switch: dict[str, list[tuple[str, str]]] = {}
    for node in NODES:
        for laser in LASERS:
            role = dds_role(laser, node)
            key = devices[role]
            sw_key = switch_key(device_db, key, role)
            dds[key] = (node, laser)
            switch.setdefault(sw_key, []).append((node, laser))
    pmt = {devices[pmt_role(n)]: n for n in NODES}
    station = {devices[r]: i for i, r in enumerate(STATION_ROLES)}
    return Wiring(devices=devices, dds=dds, switch=switch, pmt=pmt, station=station)


def example_device_db() -> dict[str, Any]:
    """A small device_db with every role (node B on DRTIO destination 1), for tests and benches."""
    db: dict[str, Any] = {
        "core": {"type": "local", "module": "artiq.coredevice.core", "class": "Core",
                 "arguments": {"host": "192.168.1.70", "ref_period": 1e-9}},
    }
    ttl = 0
    for dest, node in enumerate(NODES):
        db[f"ttl{ttl}"] = {"type": "local", "module": "artiq.coredevice.ttl",
                           "class": "TTLInOut", "arguments": {"channel": dest << 16 | ttl}}
        db[pmt_role(node)] = f"ttl{ttl}"
        ttl += 1
        cpld = f"urukul{dest}_cpld"
        db[cpld] = {"type": "local", "module": "artiq.coredevice.urukul", "class": "CPLD",
                    "arguments": {}}
        for ch, laser in enumerate(LASERS):
            sw = f"ttl_urukul{dest}_sw{ch}"
            db[sw] = {"type": "local", "module": "artiq.coredevice.ttl", "class": "TTLOut",
                      "arguments": {"channel": dest << 16 | 8 + ch}}
            key = f"urukul{dest}_ch{ch}"
            db[key] = {"type": "local", "module": "artiq.coredevice.ad9910", "class": "AD9910",
                       "arguments": {"chip_select": 4 + ch % 4, "cpld_device": cpld,
                                     "sw_device": sw}}
            db[dds_role(laser, node)] = key
    for i, role in enumerate(STATION_ROLES):
        db[f"ttl{20 + i}"] = {"type": "local", "module": "artiq.coredevice.ttl",
                              "class": "TTLInOut", "arguments": {"channel": 20 + i}}
        db[role] = f"ttl{20 + i}"
    return db
