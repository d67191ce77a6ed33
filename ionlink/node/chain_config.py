"""Truth of the repeater chain A - R - B: :func:`load_chain_config`.

The chain file (``repeater_node.toml``) has the sections ``[chain]`` (fibre lengths, R's
729 transition) and ``[ms_gate]`` (R's two-ion gate), plus optional ``[node.<section>]``
tables overriding keys of the base node file (``default_node.toml``, see
:mod:`ionlink.node.config`) that supplies the shared physics. A lab file overrides any subset
of the defaults; every key is checked and errors name it.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ionlink.node.config import NodeConfig, NodeConfigError, load_node_config, read_toml

if sys.version_info >= (3, 11):
    pass
else:  # pragma: no cover
    pass

DEFAULT_CHAIN_FILE = Path(__file__).with_name("repeater_node.toml")


@dataclass(frozen=True)
class ChainSection:
    """Fibre lengths (km) from each emitter to its station; R's 729 transition (DDS Hz)."""

    length_a_km: float
    length_ra_km: float
    length_rb_km: float
    length_b_km: float
    transition_729_dds_hz_r: float


@dataclass(frozen=True)
class MSGateConfig:
    """R's Molmer-Sorensen gate (see :mod:`ionlink.node.gates`)."""

    mode_frequency_hz: float
    sideband_rabi_at_full_amplitude_hz: float
    mode_nbar: float
    gate_error: float


_RULES = {
    "length_a_km": (lambda x: x >= 0, ">= 0"),
    "length_ra_km": (lambda x: x >= 0, ">= 0"),
    "length_rb_km": (lambda x: x >= 0, ">= 0"),
    "length_b_km": (lambda x: x >= 0, ">= 0"),
    "transition_729_dds_hz_r": (lambda x: x > 0, "> 0"),
    "mode_frequency_hz": (lambda x: x > 0, "> 0"),
    "sideband_rabi_at_full_amplitude_hz": (lambda x: x > 0, "> 0"),
    "mode_nbar": (lambda x: x >= 0, ">= 0"),
    "gate_error": (lambda x: 0 <= x <= 1, "in [0, 1]"),
}


@dataclass(frozen=True)
class ChainConfig:
    """The chain's truth: base node physics, chain geometry and the MS gate."""

    node: NodeConfig
    chain: ChainSection
    ms_gate: MSGateConfig

    def replace(self, node: dict | None = None, **sections: dict[str, Any]) -> ChainConfig:
        """A copy with keys changed: ``cfg.replace(chain={"length_a_km": 1.0},
        node={"memory": {"markovian_t2_s": 0.1}})``."""
        raw = {"chain": vars(self.chain).copy(), "ms_gate": vars(self.ms_gate).copy()}
        for name, values in sections.items():
            if name not in raw:
                raise NodeConfigError(f"unknown chain section {name!r}")
            raw[name].update(values)
        base = self.node.replace(**node) if node else self.node
        return _build(raw, base)


def _section(cls: type, name: str, values: Any) -> Any:
    if not isinstance(values, dict):
        raise NodeConfigError(f"missing section [{name}]")
    known = {f.name for f in fields(cls)}
    for key in values:
        if key not in known:
            raise NodeConfigError(f"unknown key {name}.{key}")
    kwargs = {}
    for key in known:
        if key not in values:
            raise NodeConfigError(f"missing key {name}.{key}")
        v = values[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
            raise NodeConfigError(f"{name}.{key} must be a number, got {v!r}")
        check, text = _RULES[key]
        if not check(v):
            raise NodeConfigError(f"{name}.{key} must be {text}, got {v!r}")
        kwargs[key] = float(v)
    return cls(**kwargs)


def _build(raw: dict, base: NodeConfig) -> ChainConfig:
    for name in raw:
        if name not in ("chain", "ms_gate"):
            raise NodeConfigError(f"unknown chain section {name!r}; known: chain, ms_gate, "
                                  f"node.<section>")
    return ChainConfig(base, _section(ChainSection, "chain", raw.get("chain")),
                       _section(MSGateConfig, "ms_gate", raw.get("ms_gate")))


def is_chain_file(path: str | Path) -> bool:
    """True if the TOML file at ``path`` describes a chain (has a ``[chain]`` or
    ``[ms_gate]`` section)."""
    raw = read_toml(path)
    return "chain" in raw or "ms_gate" in raw


def load_chain_config(path: str | Path | None = None) -> ChainConfig:
    """Load the default chain truth, overridden by the TOML file ``path`` if given."""
    raw = read_toml(DEFAULT_CHAIN_FILE)
    node_over: dict = {}
    if path is not None:
        override = read_toml(path)
        for name, values in override.items():
            if not isinstance(values, dict):
                raise NodeConfigError(f"top-level key {name!r} must be a [section]")
            if name == "node":
                node_over = values
            elif name in raw:
                raw[name] = {**raw[name], **values}
            else:
                raise NodeConfigError(f"unknown chain section {name!r}; known: chain, "
                                      f"ms_gate, node.<section>")
    base = load_node_config()
    if node_over:
        for section, values in node_over.items():
            if not isinstance(values, dict):
                raise NodeConfigError(f"node.{section} must be a table")
        base = base.replace(**node_over)
    return _build(raw, base)
