"""Which device_db channel drives what in the repeater chain A - R - B.

Roles are the lab's aliases (``device_db_repeater.py``): per ion ``pmt_<ion>`` for ion in
a, ra, rb, b; nodes A and B ``dds_<laser>_a/_b`` (397, 866, 854, 729, 393); the repeater's
global ``dds_397_r``, ``dds_866_r``, its per-ion ``dds_854/729/393_ra/_rb``, the MS beam's
tones ``dds_729_ms_blue_r``/``dds_729_ms_red_r``; the stations' ``det_ar_0/1`` and
``det_rb_0/1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ionlink.node.wiring import WiringError, resolve_role, switch_key

IONS = ("a", "ra", "rb", "b")
LINKS = {"ar": (0, 1), "rb": (2, 3)}
MS_TONES = ("ms_blue", "ms_red")


class ChainWiringError(WiringError):
    """The device_db lacks a role of the chain or describes it wrongly."""


def chain_roles() -> dict[str, tuple[str, tuple[int, ...], str]]:
    """Role -> (kind, ion indices, laser or detector): every alias the chain needs."""
    roles: dict[str, tuple[str, tuple[int, ...], str]] = {}
    for i, name in enumerate(IONS):
        roles[f"pmt_{name}"] = ("pmt", (i,), "")
    for i, name in ((0, "a"), (3, "b")):
        for laser in ("397", "866", "854", "729", "393"):
            roles[f"dds_{laser}_{name}"] = ("dds", (i,), laser)
    for laser in ("397", "866"):
        roles[f"dds_{laser}_r"] = ("dds", (1, 2), laser)
    for i, name in ((1, "ra"), (2, "rb")):
        for laser in ("854", "729", "393"):
            roles[f"dds_{laser}_{name}"] = ("dds", (i,), laser)
    for tone in MS_TONES:
        roles[f"dds_729_{tone}_r"] = ("dds", (1, 2), tone)
    for link in LINKS:
        for d in (0, 1):
            roles[f"det_{link}_{d}"] = ("station", LINKS[link], str(d))
    return roles


def is_chain_device_db(device_db: dict[str, Any]) -> bool:
    """True if ``device_db`` describes the repeater chain (has R's ``pmt_ra`` alias)."""
    return "pmt_ra" in device_db


@dataclass(frozen=True)
class ChainWiring:
    """Role -> device key; DDS and switch device -> [(first ion, laser)]; input device or
    alias -> ("pmt", ion) / ("station", 2 * link index + detector)."""

    devices: dict[str, str]
    dds: dict[str, list[tuple[int, str]]]
    switch: dict[str, list[tuple[int, str]]]
    inputs: dict[str, tuple[str, int]]


def build_chain_wiring(db: dict[str, Any]) -> ChainWiring:
    """The chain's role map from a device_db; raises :class:`ChainWiringError` naming the
    role. A global laser (R's 397/866, the MS tones) is listed under its first ion."""
    devices: dict[str, str] = {}
    dds: dict[str, list[tuple[int, str]]] = {}
    switch: dict[str, list[tuple[int, str]]] = {}
    inputs: dict[str, tuple[str, int]] = {}
    for role, (kind, ions, what) in chain_roles().items():
        if role not in db:
            raise ChainWiringError(f"device_db has no alias for chain role {role!r}")
        key = resolve_role(db, role, role, ChainWiringError)
        devices[role] = key
        if kind == "dds":
            sw_key = switch_key(db, key, role, ChainWiringError)
            # a global laser drives several ions through one _Laser object: register
            # it once (first ion); advancing R always advances both ions
            dds.setdefault(key, []).append((ions[0], what))
            switch.setdefault(sw_key, []).append((ions[0], what))
        elif kind == "pmt":
            inputs[key] = ("pmt", ions[0])
        else:
            inputs[key] = ("station", 2 * list(LINKS).index(
                "ar" if ions == LINKS["ar"] else "rb") + int(what))
    for role, key in devices.items():
        if key in inputs:
            inputs[role] = inputs[key]
    return ChainWiring(devices, dds, switch, inputs)
