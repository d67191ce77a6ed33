"""Find the device_db key of a device being created, from its arguments.

The world behind the simulated channels names devices by their device_db keys, so a
driver needs its own key. ARTIQ's device manager does not pass it, so it is looked up
from the device database by the arguments that identify the device (its RTIO channel, for
a DDS its CPLD and chip select, for an Urukul CPLD its SPI bus). Works with ionlink's and
ARTIQ's device managers.
"""

from __future__ import annotations

from typing import Any

_index_cache: dict[int, tuple[Any, dict]] = {}


def _index(ddb: dict) -> dict:
    cached = _index_cache.get(id(ddb))
    if cached is not None and cached[0] is ddb:
        return cached[1]
    index: dict = {}
    for key, desc in ddb.items():
        if not isinstance(desc, dict) or desc.get("type") != "local":
            continue
        args = desc.get("arguments", {})
        if "channel" in args:
            index.setdefault(("channel", args["channel"]), key)
        if "chip_select" in args and "cpld_device" in args:
            index.setdefault(("dds", args["cpld_device"], args["chip_select"]), key)
        if desc.get("class") == "CPLD" and "spi_device" in args:
            index.setdefault(("cpld", args["spi_device"]), key)
    _index_cache[id(ddb)] = (ddb, index)
    return index


def device_key(dmgr, *, channel: int | None = None, cpld: str | None = None,
               chip_select: int | None = None, spi_device: str | None = None) -> str:
    """The device_db key of the device with that RTIO channel (or CPLD and chip select, or
    the Urukul CPLD on SPI bus ``spi_device``)."""
    name = getattr(dmgr, "creating", None)
    if name:
        return name
    try:
        ddb = dmgr.get_device_db()
    except Exception:
        ddb = {}
    if channel is not None:
        key = ("channel", channel)
        fallback = f"channel_0x{channel:06x}"
    elif spi_device is not None:
        key = ("cpld", spi_device)
        fallback = "urukul_cpld_" + spi_device
    else:
        key = ("dds", cpld, chip_select)
        fallback = f"{cpld}_cs{chip_select}"
    return _index(ddb).get(key, fallback)
