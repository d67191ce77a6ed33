"""Which tagger input sees which detector, and how channels are named in time-tag files.

The map is written once, in the controller's device_db entry (key ``channels``, formatted
into its ``command`` as ``--channels {channels}``, the way artiq_ctlmgr formats entries)::

    "channels": "1=det_station_0,2=det_station_1,3=pmt_a,4=pmt_b"

Each item is ``TAGGER_CHANNEL=DEVICE``: a Swabian input number (1..18 rising edge) and the
device_db name (alias or key) of the TTL input wired to the same detector output. The real
controller uses the names as labels; the simulated tagger reads that TTL's detector clicks.

Detector ids in time-tag files (uint8, ``/photon_data/detectors``):

==========  =====================================================================
id          meaning
==========  =====================================================================
0, 128      unused
1..99       rising edge of input ``n`` (id ``n``)
129..227    falling edge of input ``n``, channel ``-n`` (id ``128 + n``)
100..127    virtual (coincidence) channels streamed with the inputs: the stream's
            k-th virtual channel (in the order the stream's channel list names
            them, k = 0..27) is written as id ``100 + k``
228..255    reserved (unused)
==========  =====================================================================

Physical inputs are therefore limited to 1..99 per edge (Swabian devices have at most 18),
so no input can clash with a virtual id. A virtual id's meaning is its label in the file's
``/setup/detectors/label``: ``coincidence(1,2)`` is a coincidence of channels 1 and 2 (the
members' channel numbers; a falling-edge member is written negative, ``coincidence(-1,2)``),
stamped with the latest member tag (:func:`coincidence_members` parses it back). Its window
is in the file's ``/description`` (``virtual channels: 100=coincidence(1,2) window 3e-06
s``). The device's own virtual channel numbers (the simulation counts from 100, a real
Swabian tagger assigns its own) never reach the files: ids are assigned per stream, so one
id can mean different coincidences in files of different streams -- read the label.
"""

from __future__ import annotations

import operator
import re

MAX_CHANNEL = 99
FIRST_VIRTUAL_DETECTOR = 100
LAST_VIRTUAL_DETECTOR = 127
MAX_VIRTUAL_PER_STREAM = LAST_VIRTUAL_DETECTOR - FIRST_VIRTUAL_DETECTOR + 1
_LABEL = re.compile(r"coincidence\((-?\d+(?:,-?\d+)+)\)")


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
    """Validate a physical channel number (rising ``1..99`` or falling ``-99..-1``)."""
    if isinstance(channel, bool) or not isinstance(channel, int) or channel == 0 \
            or abs(channel) > MAX_CHANNEL:
        raise ChannelError(f"tagger input channel must be an integer in 1..{MAX_CHANNEL} "
                           f"(rising) or -{MAX_CHANNEL}..-1 (falling), got {channel!r} "
                           f"(detector ids {FIRST_VIRTUAL_DETECTOR}..{LAST_VIRTUAL_DETECTOR} "
                           "are reserved for virtual channels)")
    return channel


def detector_id(channel: int) -> int:
    """The uint8 detector id of a physical channel in time-tag files."""
    check_physical(channel)
    return channel if channel > 0 else 128 - channel


def virtual_detector_id(index: int) -> int:
    """The uint8 detector id of a stream's ``index``-th virtual channel (0-based)."""
    if isinstance(index, bool) or not isinstance(index, int) \
            or not 0 <= index < MAX_VIRTUAL_PER_STREAM:
        raise ChannelError(f"a stream holds at most {MAX_VIRTUAL_PER_STREAM} virtual channels "
                           f"(detector ids {FIRST_VIRTUAL_DETECTOR}..{LAST_VIRTUAL_DETECTOR}); "
                           f"virtual channel index {index!r} is out of range")
    return FIRST_VIRTUAL_DETECTOR + index


def is_virtual_detector(detector: int) -> bool:
    """True for the detector ids of virtual channels (100..127)."""
    return FIRST_VIRTUAL_DETECTOR <= detector <= LAST_VIRTUAL_DETECTOR


def channel_of_detector(detector: int) -> int:
    """Inverse of :func:`detector_id`: the physical channel of a detector id (virtual ids
    raise: their meaning is their label, see :func:`coincidence_members`)."""
    try:
        d = -1 if isinstance(detector, bool) else operator.index(detector)
    except TypeError:
        d = -1
    if is_virtual_detector(d):
        raise ChannelError(f"detector id {d} is a virtual channel of its stream, not an "
                           "input; its /setup/detectors/label names it "
                           "(coincidence_members(label) gives the member channels)")
    if not 1 <= d <= 128 + MAX_CHANNEL or d == 128:
        raise ChannelError(f"detector id {detector!r} is no tagger channel (inputs: "
                           f"1..{MAX_CHANNEL} rising, 129..{128 + MAX_CHANNEL} falling; "
                           f"virtual: {FIRST_VIRTUAL_DETECTOR}..{LAST_VIRTUAL_DETECTOR})")
    return d if d < 128 else 128 - d


def coincidence_label(members: list[int]) -> str:
    """The label of a coincidence virtual channel: ``[1, 2]`` -> ``"coincidence(1,2)"``."""
    return "coincidence(" + ",".join(str(int(m)) for m in members) + ")"


def coincidence_members(label: str) -> list[int]:
    """Inverse of :func:`coincidence_label`: ``"coincidence(1,2)"`` -> ``[1, 2]``."""
    match = _LABEL.fullmatch(label.strip()) if isinstance(label, str) else None
    if match is None:
        raise ChannelError(f"label {label!r} is not a coincidence label like "
                           "'coincidence(1,2)'")
    return [check_physical(int(m)) for m in match.group(1).split(",")]
