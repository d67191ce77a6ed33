"""Link budget of a two-node ion-photon link and simple repeater-chain models.

Geometry: two nodes `length_km` apart, heralding station in the middle, so each photon
travels length_km / 2 of fibre. A node learns the outcome of an attempt after the photon's
flight to the station plus the classical signal's way back: length_km / v (10 km at
v = 2e8 m/s: 50 us).

Protocols:
- "single_photon" (Cabrillo-type): each node emits with probability alpha, one click heralds;
  success ~ 2 alpha eta; fidelity limited by double excitation (~1 - alpha), fibre phase noise
  and dark counts.
- "two_photon" (Barrett-Kok / Bell-state measurement of two photons): success eta^2 / 2;
  fidelity limited by photon distinguishability ((1 + V) / 2) and dark counts.

Units: SI (s, Hz, m/s) except fibre length (km) and attenuation (dB/km), as labelled.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
from scipy import optimize

PROTOCOLS = ("single_photon", "two_photon")


@dataclass(frozen=True)
class LinkParameters:
    """Physical parameters of one elementary link (defaults: a 40Ca+ cavity node with
    854 -> 1550 nm conversion, of the order reported by Krutyanskiy et al., npj Quantum Inf. 5,
    72 (2019) and PRL 130, 213601 (2023); not the values of any single experiment)."""

    length_km: float = 10.0                 # node-to-node fibre length (km)
    collection_efficiency: float = 0.5      # ion -> fibre (cavity output + coupling)
    conversion_efficiency: float = 0.25     # 854 -> 1550 nm frequency-conversion device
    filter_transmission: float = 0.8        # narrow-band filtering after conversion
    fibre_attenuation_db_per_km: float = 0.2  # at 1550 nm (DESIGN.md; about 3 dB/km at 854 nm)
    detector_efficiency: float = 0.85       # SNSPD system detection efficiency
    dark_count_rate_hz: float = 10.0        # per detector
    detection_window_s: float = 1e-6        # photon acceptance window per attempt
    excitation_probability: float = 0.05    # alpha (single-photon protocol)
    preparation_time_s: float = 50e-6       # cooling, state preparation, excitation per attempt
    fibre_light_speed_m_per_s: float = 2e8  # group velocity in fibre
    memory_t2_s: float = 0.1                # memory coherence time (with dynamical decoupling)
    memory_decay_exponent: float = 1.0      # coherence exp(-(t/T2)^k): 1 exponential, 2 Gaussian
    phase_noise_rad: float = 0.0            # rms optical phase noise (single-photon protocol)
    hom_visibility: float = 0.95            # two-photon interference visibility
    modes_per_attempt: int = 1              # multiplexed modes per attempt
    mode_spacing_s: float = 0.0             # extra time per additional mode
    protocol: str = "single_photon"

    def __post_init__(self) -> None:
        for name in ("collection_efficiency", "conversion_efficiency", "filter_transmission",
                     "detector_efficiency", "excitation_probability", "hom_visibility"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {value!r}")
        for name in ("length_km", "fibre_attenuation_db_per_km", "dark_count_rate_hz",
                     "detection_window_s", "preparation_time_s", "phase_noise_rad",
                     "mode_spacing_s"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
        for name in ("fibre_light_speed_m_per_s", "memory_t2_s", "memory_decay_exponent"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value!r}")
        if int(self.modes_per_attempt) != self.modes_per_attempt or self.modes_per_attempt < 1:
            raise ValueError(f"modes_per_attempt must be a positive integer, got "
                             f"{self.modes_per_attempt!r}")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {self.protocol!r}")


def fibre_transmission(length_km: float, attenuation_db_per_km: float) -> float:
    """10^(-attenuation * length / 10)."""
    return 10.0 ** (-attenuation_db_per_km * length_km / 10.0)


def arm_efficiency(p: LinkParameters) -> float:
    """End-to-end probability that an emitted photon is detected at the station (one arm)."""
    return (p.collection_efficiency * p.conversion_efficiency * p.filter_transmission
            * fibre_transmission(p.length_km / 2.0, p.fibre_attenuation_db_per_km)
            * p.detector_efficiency)


def dark_click_probability(p: LinkParameters) -> float:
    """Probability of a dark count in one detector during one detection window."""
    return -np.expm1(-p.dark_count_rate_hz * p.detection_window_s)


def herald_delay_s(p: LinkParameters) -> float:
    """Photon flight to the mid-point station plus the signal back: length / v (s)."""
    return p.length_km * 1e3 / p.fibre_light_speed_m_per_s


def attempt_period_s(p: LinkParameters) -> float:
    """Time per attempt (s): preparation + mode train + detection window + herald delay."""
    return (p.preparation_time_s + (p.modes_per_attempt - 1) * p.mode_spacing_s
            + p.detection_window_s + herald_delay_s(p))


@dataclass(frozen=True)
class LinkBudget:
    """Outputs of `link_budget` (probabilities per attempt, rates in 1/s, times in s)."""

    arm_efficiency: float
    signal_probability: float
    dark_probability: float
    success_probability_per_mode: float
    success_probability: float
    attempt_period_s: float
    herald_delay_s: float
    herald_rate_hz: float
    mean_generation_time_s: float
    rate_over_decoherence: float
    fidelity: float

    def to_dict(self) -> dict:
        return asdict(self)


def _signal_and_dark(p: LinkParameters, eta: float) -> tuple[float, float, float, float]:
    """(signal probability, dark probability, fidelity of signal heralds, of dark heralds)."""
    pd = dark_click_probability(p)
    if p.protocol == "single_photon":
        alpha = p.excitation_probability
        signal = 2.0 * alpha * eta
        dark = 2.0 * pd * (1.0 - signal)
        coherence = np.exp(-p.phase_noise_rad**2 / 2.0)
        fid_signal = (1.0 - alpha) * (1.0 + coherence) / 2.0
        fid_dark = 0.0                      # no emission: both ions in |g g>, orthogonal
    else:
        signal = eta * eta / 2.0
        dark = 2.0 * eta * pd               # one real photon plus one dark count
        fid_signal = (1.0 + p.hom_visibility) / 2.0
        fid_dark = 0.25                     # uncorrelated: maximally mixed
    return signal, dark, fid_signal, fid_dark


def link_budget(p: LinkParameters) -> LinkBudget:
    """Success probability, herald rate, generation time, figure of merit and fidelity."""
    eta = arm_efficiency(p)
    signal, dark, fid_signal, fid_dark = _signal_and_dark(p, eta)
    per_mode = min(1.0, signal + dark)
    p_success = multiplexed_success(per_mode, p.modes_per_attempt)
    period = attempt_period_s(p)
    rate = p_success / period if p_success > 0 else 0.0
    mean_time = period / p_success if p_success > 0 else np.inf
    fidelity = (signal * fid_signal + dark * fid_dark) / (signal + dark) if per_mode > 0 else 0.0
    return LinkBudget(eta, signal, dark, per_mode, p_success, period, herald_delay_s(p), rate,
                      mean_time, rate * p.memory_t2_s, float(fidelity))


def multiplexed_success(p: float, modes: int) -> float:
    """Probability that at least one of `modes` independent modes succeeds: 1 - (1 - p)^N."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"success probability must lie in [0, 1], got {p!r}")
    if modes < 1:
        raise ValueError(f"modes must be >= 1, got {modes!r}")
    return float(-np.expm1(modes * np.log1p(-p))) if p < 1 else 1.0


# ----------------------------------------------------------------------------- memories

def memory_coherence(t_s, t2_s: float, exponent: float = 1.0):
    """Coherence factor exp(-(t / T2)^k) after storage time t (s)."""
    return np.exp(-((np.asarray(t_s, dtype=float) / t2_s) ** exponent))


def dephased_fidelity(fidelity: float, coherence) -> float:
    """Bell-state fidelity after pure dephasing that scales the coherences by `coherence`
    (F -> 1/2 + (F - 1/2) c, exact for a Bell-diagonal state under local Z noise on one
    qubit, population part kept)."""
    return 0.5 + (fidelity - 0.5) * np.asarray(coherence)


# ----------------------------------------------------------------------------- chains

def expected_attempts_all_links(p: float, n_links: int) -> float:
    """E[max of n_links iid geometric(p) numbers of attempts]: attempts until every link of a
    chain has succeeded when each link keeps its entanglement (no cutoff) and retries only
    while it has not succeeded. Exact: sum_k C(N,k) (-1)^(k+1) / (1 - (1-p)^k); two links:
    (3 - 2p) / (p (2 - p)) ~ 3 / (2p)."""
    if not 0.0 < p <= 1.0:
        raise ValueError(f"success probability must lie in (0, 1], got {p!r}")
    if int(n_links) != n_links or n_links < 1:
        raise ValueError(f"n_links must be a positive integer, got {n_links!r}")
    from math import comb
    total = 0.0
    for k in range(1, int(n_links) + 1):
        total += comb(int(n_links), k) * (-1) ** (k + 1) / multiplexed_success(p, k)
    return total


def expected_waiting_coherence(p: float, attempt_period: float, t2_s: float,
                               exponent: float = 1.0) -> float:
    """Expected coherence factor of the link that waits for the other one in a two-link chain:
    E[exp(-(|G1 - G2| tau / T2)^k)], G1, G2 iid geometric(p), tau the attempt period (s).
    Uses P(G1 - G2 = d) = p (1 - p)^|d| / (2 - p)."""
    if not 0.0 < p <= 1.0:
        raise ValueError(f"success probability must lie in (0, 1], got {p!r}")
    q = 1.0 - p
    if exponent == 1.0:
        r = q * np.exp(-attempt_period / t2_s)
        return float(p / (2.0 - p) * (1.0 + r) / (1.0 - r))
    d_max = int(min(5e6, np.ceil(60.0 / max(p, 1e-12))))
    d = np.arange(1, d_max + 1)
    weights = q ** d
    coherence = memory_coherence(d * attempt_period, t2_s, exponent)
    return float(p / (2.0 - p) * (1.0 + 2.0 * np.sum(weights * coherence)))


def werner_parameter(fidelity):
    """Werner parameter w = (4F - 1) / 3."""
    return (4.0 * np.asarray(fidelity) - 1.0) / 3.0


def swapped_fidelity(fidelities) -> float:
    """Fidelity after ideal entanglement swapping of Werner links: w = prod w_i, F = (1+3w)/4."""
    w = np.prod(werner_parameter(np.asarray(fidelities, dtype=float)))
    return float((1.0 + 3.0 * w) / 4.0)


@dataclass(frozen=True)
class ChainEstimate:
    """Rate (1/s) and fidelity of an end-to-end pair over a chain of equal elementary links."""

    n_links: int
    link_length_km: float
    expected_attempts: float
    rate_hz: float
    fidelity: float

    def to_dict(self) -> dict:
        return asdict(self)


def chain_estimate(p: LinkParameters, total_length_km: float, n_links: int,
                   swap_success: float = 1.0) -> ChainEstimate:
    """End-to-end rate of a chain of n_links equal links covering total_length_km.

    Links attempt in parallel with the elementary attempt period; a successful link waits
    (no cutoff) until all have succeeded, then swaps deterministically (success probability
    `swap_success`, then everything restarts). The fidelity is the swap of Werner links, the
    link that waits longest being dephased by the two-link waiting average (exact for two
    links, an approximation for more).
    """
    if n_links < 1:
        raise ValueError(f"n_links must be >= 1, got {n_links!r}")
    if not 0.0 < swap_success <= 1.0:
        raise ValueError(f"swap_success must lie in (0, 1], got {swap_success!r}")
    link = replace(p, length_km=total_length_km / n_links)
    budget = link_budget(link)
    if budget.success_probability <= 0:
        return ChainEstimate(n_links, link.length_km, np.inf, 0.0, budget.fidelity)
    attempts = expected_attempts_all_links(budget.success_probability, n_links)
    rate = swap_success / (attempts * budget.attempt_period_s)
    fidelities = [budget.fidelity] * n_links
    if n_links > 1:
        c = expected_waiting_coherence(budget.success_probability, budget.attempt_period_s,
                                       p.memory_t2_s, p.memory_decay_exponent)
        fidelities[0] = float(dephased_fidelity(budget.fidelity, c))
    return ChainEstimate(n_links, link.length_km, attempts, float(rate),
                         swapped_fidelity(fidelities))


def direct_transmission_rate(p: LinkParameters, total_length_km: float) -> float:
    """Rate (1/s) of photon-mediated ion-photon entanglement sent directly over the full length
    (no station, no repeater): one photon, detection at the far end, period = preparation +
    window + round trip total_length / v * 2."""
    eta = (p.collection_efficiency * p.conversion_efficiency * p.filter_transmission
           * fibre_transmission(total_length_km, p.fibre_attenuation_db_per_km)
           * p.detector_efficiency)
    period = (p.preparation_time_s + p.detection_window_s
              + 2.0 * total_length_km * 1e3 / p.fibre_light_speed_m_per_s)
    return eta / period


def crossover_length_km(p: LinkParameters, n_links: int = 2,
                        bounds_km: tuple[float, float] = (1.0, 2000.0)) -> float:
    """Total length (km) beyond which the n_links chain beats direct transmission; NaN if the
    curves do not cross within `bounds_km`."""
    def log_ratio(length: float) -> float:
        chain = chain_estimate(p, length, n_links).rate_hz
        direct = direct_transmission_rate(p, length)
        return np.log(max(chain, 1e-300)) - np.log(max(direct, 1e-300))

    lo, hi = bounds_km
    f_lo, f_hi = log_ratio(lo), log_ratio(hi)
    if np.sign(f_lo) == np.sign(f_hi):
        return float("nan")
    return float(optimize.brentq(log_ratio, lo, hi, xtol=1e-6))
