"""Which tagger input sees which detector, and how channels are named in time-tag files.

The map is written once, in the controller's device_db entry (key ``channels``, formatted
into its ``command`` as ``--channels {channels}``, the way artiq_ctlmgr formats entries)::

    "channels": "1=det_station_0,2=det_station_1,3=pmt_a,4=pmt_b"

Each item is ``TAGGER_CHANNEL=DEVICE``: a Swabian input number (1..18 rising edge) and the
device_db name (alias or key) of the TTL input wired to the same detector output. The real
controller uses the names as labels; the simulated tagger reads that TTL's detector clicks.

Detector ids in time-tag files (uint8): rising-edge channel ``n`` -> ``n``; falling edge
``-n`` -> ``128 + n``.
"""

from __future__ import annotations

MAX_CHANNEL = 127


class ChannelError(ValueError):
    """A channel number or channel map is invalid; the message names it."""


def parse_channel_map(text: str) -> dict[int, str]:
    """``"1=det_station_0,2=pmt_a"`` -> ``{1: "det_station_0", 2: "pmt_a"}``."""
    out: dict[int, str] = {}
    for item in (p.strip() for p in text.split(",")):
        if not item:
            continue
        number, sep, device = item.partition("=")
        device = device.strip()
        try:
            channel = int(number)
        except ValueError:
            channel = None
        if not sep or channel is None or not device:
            raise ChannelError(f"channel map item {item!r} is not CHANNEL=DEVICE")
        check_physical(channel)
        if channel in out:
            raise ChannelError(f"channel {channel} appears twice in the channel map")
        out[channel] = device
    if not out:
        raise ChannelError(f"channel map {text!r} names no channel")
    return out


def format_channel_map(channels: dict[int, str]) -> str:
    """Inverse of :func:`parse_channel_map`."""
    return ",".join(f"{c}={d}" for c, d in sorted(channels.items()))


def check_physical(channel: int) -> int:
    """Validate a physical channel number (rising ``1..127`` or falling ``-127..-1``)."""
    if isinstance(channel, bool) or not isinstance(channel, int) or channel == 0 \
            or abs(channel) > MAX_CHANNEL:
        raise ChannelError(f"tagger channel must be an integer in 1..{MAX_CHANNEL} (rising) "
                           f"or -{MAX_CHANNEL}..-1 (falling), got {channel!r}")
    return channel


def detector_id(channel: int) -> int:
    """The uint8 detector id of a physical channel in time-tag files."""
    check_physical(channel)
    return channel if channel > 0 else 128 - channel


def channel_of_detector(detector: int) -> int:
    """Inverse of :func:`detector_id`."""
    if not 1 <= detector <= 255 or detector == 128:
        raise ChannelError(f"detector id {detector} is no tagger channel")
    return detector if detector < 128 else 128 - detector
