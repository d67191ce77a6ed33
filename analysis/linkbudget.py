"""Link budget of a two-node ion-photon link and simple repeater-chain models.

Geometry: two nodes `length_km` apart, heralding station in the middle, so each photon
travels length_km / 2 of fibre. A node learns the outcome of an attempt after the photon's
flight to the station plus the classical signal's way back: length_km / v (10 km at
v = 2e8 m/s: 50 us). The return path is `herald_return_fraction` times the photon's path
(1: the signal comes back along the fibre route; 0: the detector sits next to the node, as
with a fibre spool in the lab).

Protocols:
- "single_photon" (Cabrillo-type): each node emits with probability alpha, one click heralds;
  success ~ 2 alpha eta; fidelity limited by double excitation (~1 - alpha), fibre phase noise
  and dark counts.
- "two_photon" (Barrett-Kok / Bell-state measurement of two photons with a 50:50 beam
  splitter, two polarising beam splitters and four detectors, which heralds 2 of the 4 Bell
  states): success eta_A eta_B / 2 = eta^2 / 2; fidelity limited by photon
  distinguishability ((1 + V) / 2) and dark counts.
- "ion_photon": one node emits a photon entangled with the ion and it is detected at the far
  end of `length_km` of fibre (e.g. a spool, or a receiver down the line); success eta over
  the full length; the herald is the detection itself. This is the first half of every
  two-node protocol and what long-distance experiments characterise.

Imperfect sources: `source_fidelity` is the fidelity of each emitted ion-photon state,
modelled as depolarising noise, so the Werner parameters w = (4F - 1) / 3 of all emitters
involved multiply (one for "ion_photon", two for the two-node protocols).

Duty cycle: experiments interrupt the attempt loop for recooling, e.g. "300 us of cooling
every 500 us" (Nadlinger et al. 2022); the herald rate is then multiplied by
recool_interval / (recool_interval + recool_time).

Units: SI (s, Hz, m/s) except fibre length (km) and attenuation (dB/km), as labelled.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
from scipy import optimize

PROTOCOLS = ("single_photon", "two_photon", "ion_photon")


@dataclass(frozen=True)
class LinkParameters:
    """Physical parameters of one elementary link (defaults: a 40Ca+ cavity node with
    854 -> 1550 nm conversion, of the order reported by Krutyanskiy et al., npj Quantum Inf. 5,
    72 (2019) and PRL 130, 213601 (2023); not the values of any single experiment)."""

    length_km: float = 10.0                 # node-node (ion_photon: node-detector) km
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
    source_fidelity: float = 1.0            # fidelity of each emitted ion-photon state
    herald_return_fraction: float = 1.0     # classical return path / photon fibre path
    recool_time_s: float = 0.0              # cooling pause (s) per recool_interval_s
    recool_interval_s: float = float("inf")  # attempting time between cooling pauses (s)

    def __post_init__(self) -> None:
        for name in ("collection_efficiency", "conversion_efficiency", "filter_transmission",
                     "detector_efficiency", "excitation_probability", "hom_visibility",
                     "source_fidelity"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {value!r}")
        for name in ("length_km", "fibre_attenuation_db_per_km", "dark_count_rate_hz",
                     "detection_window_s", "preparation_time_s", "phase_noise_rad",
                     "mode_spacing_s", "herald_return_fraction", "recool_time_s"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
        for name in ("fibre_light_speed_m_per_s", "memory_t2_s", "memory_decay_exponent",
                     "recool_interval_s"):
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


def photon_path_km(p: LinkParameters) -> float:
    """Fibre length (km) one photon travels: length_km / 2 to the mid-point station for the
    two-node protocols, length_km to the detector for "ion_photon"."""
    return p.length_km if p.protocol == "ion_photon" else p.length_km / 2.0


def arm_efficiency(p: LinkParameters) -> float:
    """End-to-end probability that an emitted photon is detected (one arm): collection x
    conversion x filter x fibre over `photon_path_km` x detector."""
    return (p.collection_efficiency * p.conversion_efficiency * p.filter_transmission
            * fibre_transmission(photon_path_km(p), p.fibre_attenuation_db_per_km)
            * p.detector_efficiency)


def dark_click_probability(p: LinkParameters) -> float:
    """Probability of a dark count in one detector during one detection window."""
    return -np.expm1(-p.dark_count_rate_hz * p.detection_window_s)


def herald_delay_s(p: LinkParameters) -> float:
    """Photon flight plus the classical herald back (s):
    photon_path (1 + herald_return_fraction) / v. Two-node default: length / v; "ion_photon"
    over a deployed fibre (fraction 1): 2 length / v; over a spool beside the node
    (fraction 0): length / v."""
    return (photon_path_km(p) * 1e3 * (1.0 + p.herald_return_fraction)
            / p.fibre_light_speed_m_per_s)


def duty_cycle(p: LinkParameters) -> float:
    """Fraction of wall-clock time spent attempting: recool_interval / (recool_interval +
    recool_time); 1 without recooling (recool_time_s = 0 or recool_interval_s = inf)."""
    if p.recool_time_s == 0.0 or np.isinf(p.recool_interval_s):
        return 1.0
    return p.recool_interval_s / (p.recool_interval_s + p.recool_time_s)


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
    duty_cycle: float = 1.0

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
        fid_signal = swapped_fidelity([(1.0 - alpha) * (1.0 + coherence) / 2.0,
                                       p.source_fidelity, p.source_fidelity])
        fid_dark = 0.0                      # no emission: both ions in |g g>, orthogonal
    elif p.protocol == "two_photon":
        signal = eta * eta / 2.0
        dark = 2.0 * eta * pd               # one real photon plus one dark count
        fid_signal = swapped_fidelity([(1.0 + p.hom_visibility) / 2.0,
                                       p.source_fidelity, p.source_fidelity])
        fid_dark = 0.25                     # uncorrelated: maximally mixed
    else:                                   # ion_photon
        signal = eta
        # the photon qubit is measured with two outcomes (two detectors, or one detector
        # behind a polariser set in turn to both projections): two dark-count slots
        dark = 2.0 * pd * (1.0 - signal)
        fid_signal = p.source_fidelity
        fid_dark = 0.25                     # a dark count leaves the ion uncorrelated
    return signal, dark, fid_signal, fid_dark


def noisy_fidelity(signal_probability: float, noise_probability: float,
                   signal_fidelity: float = 1.0, noise_fidelity: float = 0.25) -> float:
    """Fidelity of the heralded state when heralds are a mixture of signal (probability per
    attempt `signal_probability`, state fidelity `signal_fidelity`) and noise clicks
    (`noise_probability`, `noise_fidelity`; 1/4: uncorrelated, maximally mixed):
    (s F_s + n F_n) / (s + n). 0 if neither can happen."""
    for name, value in (("signal_probability", signal_probability),
                        ("noise_probability", noise_probability),
                        ("signal_fidelity", signal_fidelity),
                        ("noise_fidelity", noise_fidelity)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1], got {value!r}")
    total = signal_probability + noise_probability
    if total == 0:
        return 0.0
    return float((signal_probability * signal_fidelity + noise_probability * noise_fidelity)
                 / total)


def link_budget(p: LinkParameters) -> LinkBudget:
    """Success probability, herald rate (including the recooling duty cycle), generation
    time, figure of merit (rate x T2) and fidelity."""
    eta = arm_efficiency(p)
    signal, dark, fid_signal, fid_dark = _signal_and_dark(p, eta)
    per_mode = min(1.0, signal + dark)
    p_success = multiplexed_success(per_mode, p.modes_per_attempt)
    period = attempt_period_s(p)
    duty = duty_cycle(p)
    rate = p_success / period * duty if p_success > 0 else 0.0
    mean_time = 1.0 / rate if rate > 0 else np.inf
    fidelity = noisy_fidelity(signal, dark, fid_signal, fid_dark) if per_mode > 0 else 0.0
    return LinkBudget(eta, signal, dark, per_mode, p_success, period, herald_delay_s(p), rate,
                      mean_time, rate * p.memory_t2_s, float(fidelity), duty)


def multiplexed_success(p: float, modes: int) -> float:
    """Probability that at least one of `modes` independent modes succeeds: 1 - (1 - p)^N."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"success probability must lie in [0, 1], got {p!r}")
    if modes < 1:
        raise ValueError(f"modes must be >= 1, got {modes!r}")
    return float(-np.expm1(modes * np.log1p(-p))) if p < 1 else 1.0


def multimode_success(probabilities) -> float:
    """Probability that at least one of several independent modes with different success
    probabilities p_i succeeds: 1 - prod(1 - p_i) (e.g. photons from different ions of a
    string in one attempt)."""
    ps = np.asarray(probabilities, dtype=float)
    if ps.ndim != 1 or ps.size == 0:
        raise ValueError(f"probabilities must be a non-empty 1-d sequence, got {probabilities!r}")
    if np.any(~np.isfinite(ps)) or np.any(ps < 0) or np.any(ps > 1):
        raise ValueError(f"probabilities must lie in [0, 1], got {probabilities!r}")
    if np.any(ps == 1.0):
        return 1.0
    return float(-np.expm1(np.sum(np.log1p(-ps))))


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
    links, an approximation for more). A recooling duty cycle stretches the attempt period
    to attempt_period / duty_cycle (averaged over the cycle).
    """
    if n_links < 1:
        raise ValueError(f"n_links must be >= 1, got {n_links!r}")
    if not 0.0 < swap_success <= 1.0:
        raise ValueError(f"swap_success must lie in (0, 1], got {swap_success!r}")
    if p.protocol == "ion_photon":
        raise ValueError("protocol 'ion_photon' has no second node: a chain needs "
                         "'single_photon' or 'two_photon' links")
    link = replace(p, length_km=total_length_km / n_links)
    budget = link_budget(link)
    if budget.success_probability <= 0:
        return ChainEstimate(n_links, link.length_km, np.inf, 0.0, budget.fidelity)
    attempts = expected_attempts_all_links(budget.success_probability, n_links)
    period = budget.attempt_period_s / budget.duty_cycle    # recooling stretches each attempt
    rate = swap_success / (attempts * period)
    fidelities = [budget.fidelity] * n_links
    if n_links > 1:
        c = expected_waiting_coherence(budget.success_probability, period,
                                       p.memory_t2_s, p.memory_decay_exponent)
        fidelities[0] = float(dephased_fidelity(budget.fidelity, c))
    return ChainEstimate(n_links, link.length_km, attempts, float(rate),
                         swapped_fidelity(fidelities))


def direct_transmission_rate(p: LinkParameters, total_length_km: float) -> float:
    """Rate (1/s) of photon-mediated ion-photon entanglement sent directly over the full length
    (no station, no repeater): one photon, detection at the far end, period = preparation +
    window + round trip total_length / v * 2, times the recooling duty cycle."""
    eta = (p.collection_efficiency * p.conversion_efficiency * p.filter_transmission
           * fibre_transmission(total_length_km, p.fibre_attenuation_db_per_km)
           * p.detector_efficiency)
    period = (p.preparation_time_s + p.detection_window_s
              + 2.0 * total_length_km * 1e3 / p.fibre_light_speed_m_per_s)
    return eta / period * duty_cycle(p)


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
