"""Load and validate the virtual node's truth file (TOML).

:func:`load_node_config` reads ``default_node.toml`` and, when given, a lab file whose keys
override the defaults. Every key is checked for existence, type and range; errors name the key
(``section.key``). The result is a frozen :class:`NodeConfig` of one dataclass per section.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_NODE_FILE = Path(__file__).with_name("default_node.toml")


class NodeConfigError(ValueError):
    """A node file has an unknown key, a missing key or a bad value."""


def _positive(x: float) -> bool:
    return x > 0


def _nonneg(x: float) -> bool:
    return x >= 0


def _fraction(x: float) -> bool:
    return 0 <= x <= 1


def _spec(check, text: str, kind: type = float) -> Any:
    return field(metadata={"check": check, "text": text, "kind": kind})


POS = (_positive, "> 0")
NONNEG = (_nonneg, ">= 0")
FRAC = (_fraction, "in [0, 1]")


def _f(rule) -> Any:
    return _spec(rule[0], rule[1])


def _i(rule) -> Any:
    return _spec(rule[0], rule[1], int)


@dataclass(frozen=True)
class IonConfig:
    d52_lifetime_s: float = _f(POS)
    d32_lifetime_s: float = _f(POS)
    p12_lifetime_s: float = _f(POS)
    p12_branching_to_d32: float = _f(FRAC)
    p32_lifetime_s: float = _f(POS)
    p32_branching_to_d52: float = _f(FRAC)
    p32_branching_to_d32: float = _f(FRAC)


@dataclass(frozen=True)
class Laser397Config:
    aom_passes: int = _i(POS)
    resonance_dds_hz: float = _f(POS)
    saturation_at_full_amplitude: float = _f(NONNEG)


@dataclass(frozen=True)
class Laser866Config:
    repump_rate_at_full_amplitude_hz: float = _f(NONNEG)


@dataclass(frozen=True)
class Laser854Config:
    quench_rate_at_full_amplitude_hz: float = _f(NONNEG)


@dataclass(frozen=True)
class Laser729Config:
    aom_passes: int = _i(POS)
    transition_dds_hz_a: float = _f(POS)
    transition_dds_hz_b: float = _f(POS)
    transition_e_offset_dds_hz: float = _spec(lambda x: math.isfinite(x) and x != 0,
                                              "finite and non-zero")
    pi_time_at_full_amplitude_s: float = _f(POS)


@dataclass(frozen=True)
class Laser393Config:
    generation_time_constant_s: float = _f(POS)


@dataclass(frozen=True)
class ReadoutConfig:
    collection_efficiency: float = _f(FRAC)
    pmt_quantum_efficiency: float = _f(FRAC)
    pmt_dark_count_rate_hz: float = _f(NONNEG)
    stray_light_rate_at_full_397_hz: float = _f(NONNEG)
    cycle_efficiency: float = _f(FRAC)
    pulse_width_mu: int = _i(POS)


@dataclass(frozen=True)
class MotionConfig:
    trap_frequency_hz: float = _f(POS)
    lamb_dicke_729: float = _f(NONNEG)
    heating_rate_quanta_per_s: float = _f(NONNEG)
    doppler_cooling_time_constant_s: float = _f(POS)
    initial_nbar: float = _f(NONNEG)


@dataclass(frozen=True)
class MemoryConfig:
    quasi_static_t2_s: float = _f(POS)
    noise_correlation_time_s: float = _f(POS)
    markovian_t2_s: float = _f(POS)


WAVEPACKET_SHAPES = ("exponential", "gaussian")


@dataclass(frozen=True)
class PhotonConfig:
    collection_efficiency: float = _f(FRAC)
    conversion_efficiency: float = _f(FRAC)
    filter_transmission: float = _f(FRAC)
    wavepacket_shape: str = _spec(lambda s: s in WAVEPACKET_SHAPES,
                                  f"one of {WAVEPACKET_SHAPES}", str)
    wavepacket_time_s: float = _f(POS)


@dataclass(frozen=True)
class FibreConfig:
    length_a_km: float = _f(NONNEG)
    length_b_km: float = _f(NONNEG)
    loss_db_per_km: float = _f(NONNEG)
    refractive_index: float = _spec(lambda x: x >= 1, ">= 1")
    phase_noise_rms_rad: float = _f(NONNEG)
    phase_noise_correlation_time_s: float = _f(POS)
    phase_offset_rad: float = _spec(math.isfinite, "finite")
    delay_ppm_per_kelvin: float = _f(NONNEG)
    temperature_swing_kelvin: float = _f(NONNEG)


@dataclass(frozen=True)
class StationConfig:
    detector_efficiency: float = _f(FRAC)
    dark_count_rate_hz: float = _f(NONNEG)
    dead_time_s: float = _f(NONNEG)
    timing_jitter_s: float = _f(NONNEG)
    pulse_width_mu: int = _i(POS)
    mode_overlap: float = _f(FRAC)


SCHEMES = ("single_photon", "two_photon")


@dataclass(frozen=True)
class ProtocolConfig:
    scheme: str = _spec(lambda s: s in SCHEMES, f"one of {SCHEMES}", str)
    time_bin_separation_s: float = _f(POS)


@dataclass(frozen=True)
class DriftConfig:
    grid_step_s: float = _f(POS)
    transition_729_walk_hz_per_sqrt_s: float = _f(NONNEG)
    transition_729_sine_hz: float = _f(NONNEG)
    transition_729_period_s: float = _f(POS)
    resonance_397_walk_hz_per_sqrt_s: float = _f(NONNEG)
    resonance_397_sine_hz: float = _f(NONNEG)
    resonance_397_period_s: float = _f(POS)
    rabi_scale_walk_per_sqrt_s: float = _f(NONNEG)
    rabi_scale_sine: float = _f(NONNEG)
    rabi_scale_period_s: float = _f(POS)
    fibre_phase_walk_rad_per_sqrt_s: float = _f(NONNEG)
    fibre_phase_sine_rad: float = _f(NONNEG)
    fibre_phase_period_s: float = _f(POS)
    photon_efficiency_walk_per_sqrt_s: float = _f(NONNEG)
    photon_efficiency_sine: float = _f(NONNEG)
    photon_efficiency_period_s: float = _f(POS)


@dataclass(frozen=True)
class NodeConfig:
    """All sections of the node file."""

    ion: IonConfig
    laser_397: Laser397Config
    laser_866: Laser866Config
    laser_854: Laser854Config
    laser_729: Laser729Config
    laser_393: Laser393Config
    readout: ReadoutConfig
    motion: MotionConfig
    memory: MemoryConfig
    photon: PhotonConfig
    fibre: FibreConfig
    station: StationConfig
    protocol: ProtocolConfig
    drift: DriftConfig

    def replace(self, **changes: dict[str, Any]) -> NodeConfig:
        """A copy with some keys changed: ``cfg.replace(fibre={"length_a_km": 1.0})``."""
        raw = self.to_dict()
        for section, values in changes.items():
            if section not in raw:
                raise NodeConfigError(f"unknown section {section!r}")
            raw[section].update(values)
        return config_from_dict(raw)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {f.name: dataclasses.asdict(getattr(self, f.name))
                for f in dataclasses.fields(self)}


def _section_classes() -> dict[str, type]:
    hints = {"ion": IonConfig, "laser_397": Laser397Config, "laser_866": Laser866Config,
             "laser_854": Laser854Config, "laser_729": Laser729Config,
             "laser_393": Laser393Config, "readout": ReadoutConfig, "motion": MotionConfig,
             "memory": MemoryConfig, "photon": PhotonConfig, "fibre": FibreConfig,
             "station": StationConfig, "protocol": ProtocolConfig, "drift": DriftConfig}
    return hints


def _check_value(name: str, f: dataclasses.Field, value: Any) -> Any:
    kind = f.metadata["kind"]
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise NodeConfigError(f"{name} must be a number, got {value!r}")
        value = float(value)
        if math.isnan(value):
            raise NodeConfigError(f"{name} must not be NaN")
    elif kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise NodeConfigError(f"{name} must be an integer, got {value!r}")
    elif not isinstance(value, kind):
        raise NodeConfigError(f"{name} must be a {kind.__name__}, got {value!r}")
    if not f.metadata["check"](value):
        raise NodeConfigError(f"{name} must be {f.metadata['text']}, got {value!r}")
    return value


def config_from_dict(raw: dict[str, dict[str, Any]]) -> NodeConfig:
    """Validate a complete ``{section: {key: value}}`` dict into a :class:`NodeConfig`."""
    classes = _section_classes()
    for section in raw:
        if section not in classes:
            raise NodeConfigError(f"unknown section {section!r}; known: {sorted(classes)}")
    sections = {}
    for section, cls in classes.items():
        values = raw.get(section)
        if not isinstance(values, dict):
            raise NodeConfigError(f"missing section [{section}]")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for key in values:
            if key not in fields:
                raise NodeConfigError(f"unknown key {section}.{key}")
        kwargs = {}
        for key, f in fields.items():
            if key not in values:
                raise NodeConfigError(f"missing key {section}.{key}")
            kwargs[key] = _check_value(f"{section}.{key}", f, values[key])
        sections[section] = cls(**kwargs)
    ion = sections["ion"]
    if ion.p32_branching_to_d52 + ion.p32_branching_to_d32 > 1:
        raise NodeConfigError("ion.p32_branching_to_d52 + ion.p32_branching_to_d32 must be <= 1")
    return NodeConfig(**sections)


def _merge(base: dict, override: dict, where: str = "") -> dict:
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for key, value in override.items():
        if isinstance(value, dict):
            if key not in out:
                raise NodeConfigError(f"unknown section {where}{key!r}")
            out[key].update(value)
        else:
            raise NodeConfigError(f"top-level key {key!r} must be a [section]")
    return out


def read_toml(path: str | Path) -> dict[str, Any]:
    """The TOML file at ``path`` as a dict; a syntax error is a :class:`NodeConfigError`
    naming the file."""
    with open(path, "rb") as f:
        try:
            return tomllib.load(f)
        except tomllib.TOMLDecodeError as exc:
            raise NodeConfigError(f"{path}: {exc}") from exc


def load_node_config(path: str | Path | None = None) -> NodeConfig:
    """Load the default node truth, overridden by the keys of the TOML file ``path`` if given."""
    raw = read_toml(DEFAULT_NODE_FILE)
    if path is not None:
        raw = _merge(raw, read_toml(path))
    return config_from_dict(raw)
