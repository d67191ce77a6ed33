"""Repeater chain A - R - B: models of entanglement swapping, waiting with a cutoff, and the
analysis of a repeater run's records.

Bell-diagonal algebra. A two-qubit state is described by its weights ``lam[k]`` on the four
Bell states ``P_k |B>`` (``P_k`` in I, X, Y, Z acting on the second qubit, ``|B>`` the
target); for states that are not Bell-diagonal, the weights are the diagonal of the state in
that basis (the fidelity after Pauli-frame-corrected swapping depends on nothing else).
An ideal swap with Pauli-frame correction composes the links as a convolution over the
Pauli group modulo phases (Z2 x Z2): ``nu[k] = sum_{i xor j = k} lam[i] mu[j]``, so the
end-to-end fidelity is ``sum_k lam[k] mu[k]``; for Werner links that is the product of the
Werner parameters (analysis.linkbudget.swapped_fidelity).

Waiting. Local dephasing of one qubit that multiplies its coherence by ``c`` moves weight
between I and Z and between X and Y: ``lam_I' = (1 + c)/2 lam_I + (1 - c)/2 lam_Z``.

Cutoff. Two links of success probabilities p1, p2 per attempt period ``tau`` attempt in
lockstep; a heralded link waits for the other at most ``cutoff`` (its memory is then reset
and it tries again). :func:`two_link_cutoff` solves the Markov chain of (which link is held,
its age) exactly: expected time per end-to-end pair and the distribution of waiting times.

Units: seconds, hertz, km as labelled; ``_mu`` datasets in machine units of
``repeater.ref_period_s``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from analysis.errors import AnalysisError
from analysis.linkbudget import (
    LinkParameters,
    chain_estimate,
    direct_transmission_rate,
    link_budget,
    memory_coherence,
)

#: Pauli index of I, X, Y, Z; the product of Paulis i and j is i xor j (modulo phase).
PAULI_INDEX = {"I": 0, "X": 1, "Z": 2, "Y": 3}


# ----------------------------------------------------------------------------- Bell algebra

def _check_weights(lam) -> np.ndarray:
    lam = np.asarray(lam, dtype=float)
    if lam.shape != (4,) or np.any(lam < -1e-12) or abs(lam.sum() - 1) > 1e-6:
        raise ValueError(f"Bell weights must be 4 non-negative numbers summing to 1, "
                         f"got {lam!r}")
    return lam


def werner_weights(fidelity: float) -> np.ndarray:
    """Bell weights (I, X, Z, Y order of :data:`PAULI_INDEX`) of a Werner state."""
    if not 0.0 <= fidelity <= 1.0:
        raise ValueError(f"fidelity must be in [0, 1], got {fidelity!r}")
    rest = (1.0 - fidelity) / 3.0
    return np.array([fidelity, rest, rest, rest])


def swap_weights(lam, mu, circuit: str = "textbook") -> np.ndarray:
    """Bell weights of the end-to-end state after an ideal, Pauli-corrected swap of two links
    with weights ``lam`` and ``mu`` (convolution over Z2 x Z2).

    ``circuit="ms"``: the repeater's measurement (MS gate ``exp(i pi/4 XX)`` then Z readout)
    is the textbook Bell measurement after a phase gate ``S = diag(1, i)`` on the second
    link's repeater qubit, which exchanges that link's X and Y errors; with the Pauli frame
    of :func:`pauli_frame` (best phase per class) the composition is the convolution with
    ``mu``'s X and Y weights exchanged. Both agree for Werner links."""
    lam, mu = _check_weights(lam), _check_weights(mu)
    if circuit == "ms":
        mu = mu[[0, PAULI_INDEX["Y"], PAULI_INDEX["Z"], PAULI_INDEX["X"]]]
    elif circuit != "textbook":
        raise ValueError(f"circuit must be 'textbook' or 'ms', got {circuit!r}")
    out = np.zeros(4)
    for i in range(4):
        for j in range(4):
            out[i ^ j] += lam[i] * mu[j]
    return out


def swap_fidelity(lam, mu, circuit: str = "textbook") -> float:
    """End-to-end fidelity ``sum_k lam_k mu_k`` of an ideal Pauli-corrected swap (see
    :func:`swap_weights` for ``circuit``)."""
    return float(swap_weights(lam, mu, circuit)[0])


def dephase_weights(lam, coherence) -> np.ndarray:
    """Bell weights after local dephasing of one qubit that scales its coherence by
    ``coherence`` (in [0, 1]); both qubits dephasing: apply with the product of the two."""
    lam = _check_weights(lam)
    c = float(coherence)
    if not -1.0 <= c <= 1.0:
        raise ValueError(f"coherence must be in [-1, 1], got {coherence!r}")
    keep, move = (1 + c) / 2, (1 - c) / 2
    i, x, z, y = (PAULI_INDEX[k] for k in "IXZY")
    out = np.empty(4)
    out[i] = keep * lam[i] + move * lam[z]
    out[z] = keep * lam[z] + move * lam[i]
    out[x] = keep * lam[x] + move * lam[y]
    out[y] = keep * lam[y] + move * lam[x]
    return out


def bell_weights(rho, target) -> np.ndarray:
    """Bell weights of a 4x4 two-qubit state ``rho`` relative to the pure ``target`` Bell
    state (Pauli applied to the second qubit; I, X, Z, Y order)."""
    rho = np.asarray(rho, dtype=complex)
    psi = np.asarray(target, dtype=complex)
    if rho.shape != (4, 4) or psi.shape != (4,):
        raise ValueError("bell_weights needs a 4x4 state and a 4-vector target")
    paulis = {"I": np.eye(2), "X": np.array([[0, 1], [1, 0]]),
              "Y": np.array([[0, -1j], [1j, 0]]), "Z": np.diag([1, -1])}
    out = np.zeros(4)
    for name, k in PAULI_INDEX.items():
        v = np.kron(np.eye(2), paulis[name]) @ psi
        out[k] = float(np.real(np.conj(v) @ rho @ v))
    return out


def pauli_frame(z_ra, z_rb, det_ar, det_rb) -> tuple[np.ndarray, np.ndarray]:
    """Pauli correction on B, ``(flip_x, flip_z)``, after the repeater's Bell-state
    measurement (MS gate ``exp(i pi/4 sigma_phi sigma_phi)`` on the two R ions, then both read
    in Z: ``z`` = 0 for S, 1 for D) of single-photon links heralded by detectors ``det_ar``,
    ``det_rb`` (0/1; detector 1 heralds the state with the opposite sign). Equal R outcomes
    leave A and B in an S-S/D-D state, which X on B turns into the S-D/D-S target; Z fixes
    the sign. Derived from the ideal circuit (tests/test_repeater_analysis.py checks it)."""
    z_ra, z_rb = np.asarray(z_ra), np.asarray(z_rb)
    flip_x = (z_ra == z_rb)
    flip_z = (z_ra ^ np.asarray(det_ar) ^ np.asarray(det_rb)).astype(bool)
    return flip_x, flip_z


def ideal_swap(rho_ar, rho_rb) -> list[tuple[float, np.ndarray, tuple[int, int]]]:
    """Ideal Bell-state measurement of the repeater on link states ``rho_ar`` (qubits A, RA)
    and ``rho_rb`` (RB, B), 4x4 each: per R outcome ``(z_ra, z_rb)`` its probability and the
    Pauli-corrected (:func:`pauli_frame` with both detectors 0) state of A and B."""
    rho1 = np.asarray(rho_ar, dtype=complex)
    rho2 = np.asarray(rho_rb, dtype=complex)
    if rho1.shape != (4, 4) or rho2.shape != (4, 4):
        raise ValueError("ideal_swap needs two 4x4 link states")
    x = np.array([[0, 1], [1, 0]], dtype=complex)
    z = np.diag([1.0, -1.0]).astype(complex)
    ms = (np.eye(4) + 1j * np.kron(x, x)) / np.sqrt(2)
    full = np.kron(rho1, rho2).reshape((2,) * 8)
    out = []
    for z_ra in (0, 1):
        for z_rb in (0, 1):
            ket = np.zeros(4, dtype=complex)
            ket[2 * z_ra + z_rb] = 1.0
            v = ms.conj().T @ ket          # R state measured as (z_ra, z_rb) after the MS gate
            proj = np.outer(v, v.conj()).reshape(2, 2, 2, 2)
            # A B <- sum over R indices: <v| rho |v>
            ab = np.einsum("rsRS,arsbARSB->abAB", proj.transpose(2, 3, 0, 1), full)
            ab = ab.reshape(4, 4)
            p = float(np.real(np.trace(ab)))
            if p <= 1e-15:
                continue
            ab = ab / p
            fx, fz = pauli_frame(z_ra, z_rb, 0, 0)
            corr = np.eye(2, dtype=complex)
            if fx:
                corr = x @ corr
            if fz:
                corr = z @ corr
            u = np.kron(np.eye(2), corr)
            out.append((p, u @ ab @ u.conj().T, (z_ra, z_rb)))
    return out


def swapped_state_fidelity(rho_ar, rho_rb) -> float:
    """Mean end-to-end fidelity (best phase per R outcome, :func:`best_phase_fidelity`) of
    the ideal swap of two link states (:func:`ideal_swap`)."""
    return float(sum(p * best_phase_fidelity(r) for p, r, _ in ideal_swap(rho_ar, rho_rb)))


def dephase_state(rho, coherence_1: float, coherence_2: float) -> np.ndarray:
    """A two-qubit state after local dephasing that scales the coherence of qubit 1 by
    ``coherence_1`` and of qubit 2 by ``coherence_2``."""
    rho = np.array(rho, dtype=complex)
    if rho.shape != (4, 4):
        raise ValueError("dephase_state needs a 4x4 state")
    bits = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    differ = bits[:, None, :] != bits[None, :, :]
    factor = np.where(differ[..., 0], coherence_1, 1.0) * np.where(differ[..., 1],
                                                                  coherence_2, 1.0)
    return rho * factor


# ----------------------------------------------------------------------------- waiting model

@dataclass(frozen=True)
class CutoffModel:
    """Outputs of :func:`two_link_cutoff` (times in s, rates in 1/s)."""

    expected_periods: float           # attempt periods per end-to-end pair
    rate_hz: float                    # end-to-end pairs per second (swap overhead included)
    wait_periods: np.ndarray          # possible waiting times, in attempt periods
    wait_probabilities: np.ndarray    # their probabilities at a swap
    mean_wait_s: float
    discard_probability: float        # memories discarded per end-to-end pair (mean number)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["wait_periods"] = self.wait_periods.tolist()
        d["wait_probabilities"] = self.wait_probabilities.tolist()
        return d


def _cutoff_steps(cutoff_s: float, period_s: float) -> float:
    """Longest wait in attempt periods (inf without cutoff)."""
    if not cutoff_s >= 0:
        raise ValueError(f"cutoff_s must be >= 0, got {cutoff_s!r}")
    return float(np.floor(cutoff_s / period_s + 1e-9)) if np.isfinite(cutoff_s) else np.inf


def _check_link(p1: float, p2: float, period_s: float) -> None:
    for name, p in (("p1", p1), ("p2", p2)):
        if not 0.0 < p <= 1.0:
            raise ValueError(f"{name} must lie in (0, 1], got {p!r}")
    if not period_s > 0:
        raise ValueError(f"period_s must be > 0, got {period_s!r}")


def _renewal(p1: float, p2: float, m: float) -> tuple[float, float, float, float]:
    """(success probability per cycle, expected periods per cycle, probability of being
    left with link 1 held, with link 2 held) of the cycle that starts with no link held."""
    q1, q2 = 1.0 - p1, 1.0 - p2
    a1, a2 = p1 * q2, p2 * q1
    tail1 = q2 ** m if np.isfinite(m) else 0.0     # held link 1 discarded
    tail2 = q1 ** m if np.isfinite(m) else 0.0
    success = p1 * p2 + a1 * (1.0 - tail1) + a2 * (1.0 - tail2)
    # E[min(G, m)] = (1 - q^m) / p for the other link's geometric number of attempts
    steps = 1.0 + a1 * (1.0 - tail1) / p2 + a2 * (1.0 - tail2) / p1
    return success, steps, a1 * tail1, a2 * tail2


def two_link_rate(p1: float, p2: float, period_s: float, cutoff_s: float,
                  swap_time_s: float = 0.0) -> float:
    """End-to-end pairs per second of :func:`two_link_cutoff` (closed form, no waiting-time
    distribution)."""
    _check_link(p1, p2, period_s)
    success, steps, _, _ = _renewal(p1, p2, _cutoff_steps(cutoff_s, period_s))
    return 1.0 / (steps / success * period_s + swap_time_s)


def two_link_cutoff(p1: float, p2: float, period_s: float, cutoff_s: float,
                    swap_time_s: float = 0.0, tail: float = 1e-12) -> CutoffModel:
    """Exact model of two links attempting in lockstep (period ``period_s``) with success
    probabilities ``p1``, ``p2`` per attempt; a heralded link waits at most ``cutoff_s``
    attempt periods' worth (``inf``: no cutoff); the swap and the end measurement take
    ``swap_time_s``. Renewal argument: a cycle starts with no link held; the first success
    (either link) starts the other link's geometric race against the cutoff. The waiting-time
    distribution is truncated where its tail is below ``tail``."""
    _check_link(p1, p2, period_s)
    m = _cutoff_steps(cutoff_s, period_s)
    success, steps, disc1, disc2 = _renewal(p1, p2, m)
    q1, q2 = 1.0 - p1, 1.0 - p2
    q = max(q1, q2)
    n_tail = int(np.ceil(np.log(tail) / np.log(q))) if 0 < q < 1 else 1
    n = int(min(m, n_tail)) if np.isfinite(m) else n_tail
    j = np.arange(1, n + 1)
    probs = np.concatenate([[p1 * p2], p1 * q2 * p2 * q2 ** (j - 1)
                            + p2 * q1 * p1 * q1 ** (j - 1)]) / success
    periods = steps / success
    rate = 1.0 / (periods * period_s + swap_time_s)
    waits = np.arange(n + 1)
    return CutoffModel(periods, rate, waits, probs, float(probs @ waits) * period_s,
                       (disc1 + disc2) / success)


def chain_fidelity(link_weights_1, link_weights_2, model: CutoffModel, period_s: float,
                   pair_coherence) -> float:
    """Mean end-to-end fidelity: the waiting link (either) dephased for its waiting time,
    ``pair_coherence(t_s)`` being the coherence factor of a stored pair after ``t_s``."""
    f = 0.0
    for d, w in zip(model.wait_periods, model.wait_probabilities, strict=True):
        if w == 0:
            continue
        c = float(pair_coherence(d * period_s))
        # which link waited is symmetric in fidelity (dephasing commutes with the swap)
        f += w * swap_fidelity(dephase_weights(link_weights_1, c), link_weights_2)
    return float(f)


@dataclass(frozen=True)
class RepeaterComparison:
    """Repeater chain vs no repeater vs direct transmission at one total length."""

    total_length_km: float
    repeater_rate_hz: float
    repeater_fidelity: float
    no_repeater_rate_hz: float
    no_repeater_fidelity: float
    direct_rate_hz: float

    def to_dict(self) -> dict:
        return asdict(self)


def compare_at_length(p: LinkParameters, total_length_km: float, cutoff_s: float = np.inf,
                      swap_time_s: float = 0.0) -> RepeaterComparison:
    """Model rates (1/s) at ``total_length_km``: the two-link repeater (equal links, the
    cutoff and swap time given, :func:`two_link_cutoff`), one elementary link over the full
    length (no repeater, analysis.linkbudget.chain_estimate with one link) and direct
    transmission of one photon over it (analysis.linkbudget.direct_transmission_rate)."""
    link = replace(p, length_km=total_length_km / 2)
    b = link_budget(link)
    period = b.attempt_period_s / b.duty_cycle  # recooling stretches attempts, as in the chain
    model = two_link_cutoff(b.success_probability, b.success_probability, period, cutoff_s,
                            swap_time_s)
    w = werner_weights(b.fidelity)

    def pair_coherence(t):
        return float(memory_coherence(t, p.memory_t2_s, p.memory_decay_exponent))

    fid = chain_fidelity(w, w, model, period, pair_coherence)
    single = chain_estimate(p, total_length_km, 1)
    return RepeaterComparison(total_length_km, model.rate_hz, fid, single.rate_hz,
                              single.fidelity, direct_transmission_rate(p, total_length_km))


def crossover_km(p: LinkParameters, versus: str = "direct", cutoff_s: float = np.inf,
                 bounds_km: tuple[float, float] = (0.1, 2000.0),
                 swap_time_s: float = 0.0) -> float:
    """Total length (km) beyond which the repeater's model rate (cutoff and swap time as
    given) exceeds ``versus`` ("direct": direct transmission; "link": one elementary link
    without repeater); NaN if the curves do not cross within ``bounds_km``."""
    from scipy import optimize

    if versus not in ("direct", "link"):
        raise ValueError(f"versus must be 'direct' or 'link', got {versus!r}")

    def log_ratio(length: float) -> float:
        b = link_budget(replace(p, length_km=length / 2))
        if b.success_probability <= 0:
            return -np.inf
        chain = two_link_rate(b.success_probability, b.success_probability,
                              b.attempt_period_s / b.duty_cycle, cutoff_s, swap_time_s)
        other = (direct_transmission_rate(p, length) if versus == "direct"
                 else chain_estimate(p, length, 1).rate_hz)
        return float(np.log(max(chain, 1e-300)) - np.log(max(other, 1e-300)))

    lo, hi = bounds_km
    f_lo, f_hi = log_ratio(lo), log_ratio(hi)
    if np.sign(f_lo) == np.sign(f_hi):
        return float("nan")
    return float(optimize.brentq(log_ratio, lo, hi, xtol=1e-6))


# ----------------------------------------------------------------------------- records

def best_phase_fidelity(rho) -> float:
    """Fidelity of a 4x4 state to the closest (|01> + e^{i phi}|10>)/sqrt2."""
    rho = np.asarray(rho)
    return float(np.real(rho[1, 1] + rho[2, 2]) / 2 + abs(rho[1, 2]))


def pauli_counts(basis_a, basis_b, a, b) -> np.ndarray:
    """Counts (3, 3, 4) [basis_a, basis_b, 2 a + b] (bases 0 X, 1 Y, 2 Z)."""
    counts = np.zeros((3, 3, 4), dtype=np.int64)
    np.add.at(counts, (np.asarray(basis_a), np.asarray(basis_b),
                       2 * np.asarray(a) + np.asarray(b)), 1)
    return counts


def frame_corrected(basis_b, b, flip_x, flip_z) -> np.ndarray:
    """B's outcomes with the Pauli frame applied: an X correction flips Z and Y outcomes, a Z
    correction flips X and Y outcomes (bases 0 X, 1 Y, 2 Z)."""
    basis_b = np.asarray(basis_b)
    fx = np.asarray(flip_x, dtype=bool) & (basis_b != 0)
    fz = np.asarray(flip_z, dtype=bool) & (basis_b != 2)
    return np.asarray(b) ^ (fx ^ fz).astype(np.asarray(b).dtype)


def fidelity_from_rounds(basis_a, basis_b, a, b_corrected, frame_class,
                         draws: int = 200, seed: int = 1) -> tuple[float, float]:
    """End-to-end fidelity from Pauli-basis rounds: per Pauli-frame class (rounds whose frame
    needed an X correction have their own end phase) the best-phase fidelity of the
    linear-inversion state, weighted by rounds; standard error from multinomial resampling.
    A class needs every one of the nine settings at least once; classes that lack one are
    left out (their rounds are not counted)."""
    from analysis.tomography import linear_inversion

    cls = np.asarray(frame_class)
    rng = np.random.default_rng(seed)
    parts = []
    for k in np.unique(cls):
        sel = cls == k
        counts = pauli_counts(np.asarray(basis_a)[sel], np.asarray(basis_b)[sel],
                              np.asarray(a)[sel], np.asarray(b_corrected)[sel])
        if np.any(counts.sum(axis=2) == 0):
            continue
        parts.append(counts)
    if not parts:
        raise AnalysisError("no Pauli-frame class has rounds in all nine settings")
    weights = np.array([c.sum() for c in parts], dtype=float)
    weights /= weights.sum()

    def estimate(tables) -> float:
        return float(sum(w * best_phase_fidelity(linear_inversion(c))
                         for w, c in zip(weights, tables, strict=True)))

    value = estimate(parts)
    samples = []
    for _ in range(draws):
        tables = []
        for c in parts:
            tot = c.sum(axis=2)
            freq = c / tot[:, :, None]
            tables.append(np.array([[rng.multinomial(tot[i, j], freq[i, j])
                                     for j in range(3)] for i in range(3)]))
        samples.append(estimate(tables))
    return value, float(np.std(samples, ddof=1))


#: Basis pairs (A, B) of a fidelity measurement: ZZ for the populations, the four
#: equatorial pairs for the coherence of a Psi-type state (0 X, 1 Y, 2 Z).
FIDELITY_SETTINGS = ((2, 2), (0, 0), (0, 1), (1, 0), (1, 1))


def psi_fidelity(e_zz: float, e_xx: float, e_xy: float, e_yx: float, e_yy: float) -> float:
    """Best-phase fidelity to (|01> + e^{i phi}|10>)/sqrt2 from Pauli correlators:
    ``(1 - <ZZ>)/4 + |<XX> + <YY> + i(<XY> - <YX>)|/4`` (exact for states without
    |00>-|11> coherence, as heralded single-photon links and their swaps)."""
    return float((1 - e_zz) / 4 + abs(complex(e_xx + e_yy, e_xy - e_yx)) / 4)


def fidelity_from_correlators(basis_a, basis_b, a, b_corrected, frame_class,
                              draws: int = 200, seed: int = 1) -> tuple[float, float]:
    """End-to-end fidelity (:func:`psi_fidelity` per Pauli-frame class, weighted by rounds)
    from rounds in the :data:`FIDELITY_SETTINGS` (other rounds are ignored), with its
    standard error from resampling the rounds of each class and setting."""
    basis_a, basis_b = np.asarray(basis_a), np.asarray(basis_b)
    same = (np.asarray(a) == np.asarray(b_corrected))
    cls = np.asarray(frame_class)
    rng = np.random.default_rng(seed)
    groups = []
    for k in np.unique(cls):
        per = []
        for sa, sb in FIDELITY_SETTINGS:
            sel = (cls == k) & (basis_a == sa) & (basis_b == sb)
            per.append(np.where(same[sel], 1.0, -1.0))
        if all(len(x) for x in per):
            groups.append(per)
    if not groups:
        raise AnalysisError("no Pauli-frame class has rounds in all five fidelity settings")
    weights = np.array([sum(len(x) for x in g) for g in groups], dtype=float)
    weights /= weights.sum()

    def estimate(gs) -> float:
        return float(sum(w * psi_fidelity(*(float(x.mean()) for x in g))
                         for w, g in zip(weights, gs, strict=True)))

    value = estimate(groups)
    samples = [estimate([[rng.choice(x, len(x)) for x in g] for g in groups])
               for _ in range(draws)]
    return value, float(np.std(samples, ddof=1))


def single_photon_link_fidelity(alpha: float, eta: float) -> float:
    """Fidelity of a heralded single-photon link (both emitters alpha, arm efficiency
    ``eta``, perfect mode overlap, no dark counts or phase noise): a click comes from one
    emission with weight alpha (1 - alpha) eta and from a double emission (|DD>) with weight
    alpha^2 eta (1 - eta/2), so F = (1 - alpha) / ((1 - alpha) + alpha (1 - eta/2))."""
    if not 0 < alpha < 1 or not 0 <= eta <= 1:
        raise ValueError(f"need 0 < alpha < 1 and 0 <= eta <= 1, got {alpha!r}, {eta!r}")
    return (1 - alpha) / ((1 - alpha) + alpha * (1 - eta / 2))


def link_state(fidelity: float) -> np.ndarray:
    """The heralded single-photon link state: F |Psi+><Psi+| + (1 - F) |DD><DD| (4x4)."""
    rho = np.zeros((4, 4), dtype=complex)
    rho[1, 1] = rho[2, 2] = rho[1, 2] = rho[2, 1] = fidelity / 2
    rho[3, 3] = 1 - fidelity
    return rho


@dataclass(frozen=True)
class RepeaterRun:
    """Summary of a repeater run against the models (rates in 1/s, times in s, km)."""

    pairs: int
    duration_s: float
    rate_hz: float
    rate_stderr_hz: float
    mean_wait_s: float
    discards: int
    fidelity: float
    fidelity_stderr: float
    model_rate_hz: float
    model_fidelity: float
    total_length_km: float
    no_repeater_rate_hz: float
    direct_rate_hz: float
    crossover_direct_km: float
    crossover_link_km: float

    def to_dict(self) -> dict:
        return asdict(self)


REPEATER_REQUIRED = ("repeater.pairs", "repeater.duration_s", "repeater.wait_s",
                     "repeater.storage_ar_s", "repeater.storage_rb_s", "repeater.discards",
                     "repeater.p_ar", "repeater.p_rb", "repeater.attempt_period_s",
                     "repeater.cutoff_s", "repeater.alpha", "repeater.pair_t2_s",
                     "repeater.swap_time_s", "repeater.length_ar_km", "repeater.length_rb_km",
                     "repeater.window_s", "repeater.fibre_loss_db_per_km")


def summarize_run(datasets) -> RepeaterRun:
    """Analyse the ``repeater.*`` datasets of a run (analysis.schemas): measured rate and
    fidelity; the two-link model's rate for the measured success probabilities, period,
    cutoff and swap time; the model fidelity (ideal swap of single-photon links from the
    calibrated arm efficiencies, each pair dephased with the pair T2 for its measured storage
    times); the rate without repeater (one link over the total length) and of direct
    transmission, and both crossover lengths, for the same photon source and fibre."""
    missing = [k for k in REPEATER_REQUIRED if k not in datasets]
    if missing:
        raise AnalysisError(f"repeater run lacks datasets {missing}")

    def get(key):
        return np.asarray(datasets[key])

    pairs = int(get("repeater.pairs"))
    duration = float(get("repeater.duration_s"))
    if duration <= 0:
        raise AnalysisError("repeater.duration_s must be > 0")
    # the attempt slot plus the cooling it carries on average (cooling happens between
    # slots while no memory is held)
    period = float(get("repeater.attempt_period_s")) + float(
        datasets.get("repeater.cooling_per_slot_s", 0.0))
    p_ar, p_rb = float(get("repeater.p_ar")), float(get("repeater.p_rb"))
    cutoff, swap = float(get("repeater.cutoff_s")), float(get("repeater.swap_time_s"))
    model_rate = (two_link_rate(p_ar, p_rb, period, cutoff, swap)
                  if p_ar > 0 and p_rb > 0 else 0.0)
    alpha = float(get("repeater.alpha"))
    eff = {n: float(datasets.get(f"repeater.photon_efficiency_{n}", np.nan))
           for n in ("a", "ra", "rb", "b")}
    t2 = float(get("repeater.pair_t2_s"))
    # each memory's coherence exp(-(t/T2_i)^k) (ions a, ra, rb, b); without the per-ion
    # values, the pair T2 with k = 1
    k = float(datasets.get("repeater.memory_decay_exponent", 1.0))
    t2_ions = (np.asarray(datasets["repeater.memory_t2_s"], dtype=float)
               if "repeater.memory_t2_s" in datasets else None)

    def pair_coherence(t: float, ions: tuple[int, int]) -> float:
        if t2_ions is None:
            return float(np.exp(-t / t2))
        return float(np.prod([memory_coherence(t, t2_ions[i], k) for i in ions]))

    model_fid = float("nan")
    storage_ar, storage_rb = get("repeater.storage_ar_s"), get("repeater.storage_rb_s")
    if all(np.isfinite(v) for v in eff.values()) and pairs:
        l1 = link_state(single_photon_link_fidelity(alpha, (eff["a"] + eff["ra"]) / 2))
        l2 = link_state(single_photon_link_fidelity(alpha, (eff["rb"] + eff["b"]) / 2))
        fids = []
        for s1, s2 in zip(storage_ar, storage_rb, strict=True):
            c1, c2 = pair_coherence(s1, (0, 1)), pair_coherence(s2, (2, 3))
            fids.append(swapped_state_fidelity(dephase_state(l1, c1, 1.0),
                                               dephase_state(l2, c2, 1.0)))
        model_fid = float(np.mean(fids))
    fid = float(datasets.get("repeater.fidelity", np.nan))
    err = float(datasets.get("repeater.fidelity_stderr", np.nan))
    len_ar, len_rb = float(get("repeater.length_ar_km")), float(get("repeater.length_rb_km"))
    total = len_ar + len_rb
    loss = float(get("repeater.fibre_loss_db_per_km"))
    window = float(get("repeater.window_s"))
    none = float("nan")
    no_rep, direct, x_direct, x_link = none, none, none, none
    if np.isfinite(eff["a"]):
        # source efficiency: the calibrated arm efficiency without its fibre (len/2 arm)
        source = eff["a"] / 10 ** (-loss * len_ar / 2 / 10)
        light = 299_792_458.0 / 1.4682
        prep = max(period - window - len_ar * 1e3 / light, 0.0)
        params = LinkParameters(collection_efficiency=min(source, 1.0),
                                conversion_efficiency=1.0, filter_transmission=1.0,
                                detector_efficiency=1.0, fibre_attenuation_db_per_km=loss,
                                dark_count_rate_hz=0.0, detection_window_s=window,
                                excitation_probability=alpha, preparation_time_s=prep,
                                fibre_light_speed_m_per_s=light,
                                memory_t2_s=t2 if np.isfinite(t2) else 1e9)
        no_rep = chain_estimate(params, total, 1).rate_hz
        direct = direct_transmission_rate(params, total)
        x_direct = crossover_km(params, "direct", cutoff, swap_time_s=swap)
        x_link = crossover_km(params, "link", cutoff, swap_time_s=swap)
    wait = get("repeater.wait_s")
    return RepeaterRun(pairs, duration, pairs / duration,
                       float(np.sqrt(max(pairs, 1))) / duration,
                       float(wait.mean()) if wait.size else float("nan"),
                       int(get("repeater.discards")), fid, err, model_rate, model_fid,
                       total, no_rep, direct, x_direct, x_link)


def cutoff_table(runs: list[RepeaterRun], cutoffs_s) -> list[dict]:
    """Rate and fidelity of several runs (e.g. a scan of cutoff or link length) beside
    their models, one row per run with its cutoff (s)."""
    if len(runs) != len(cutoffs_s):
        raise ValueError("need one cutoff per run")
    return [{"cutoff_s": float(c), "rate_hz": r.rate_hz, "rate_stderr_hz": r.rate_stderr_hz,
             "model_rate_hz": r.model_rate_hz, "fidelity": r.fidelity,
             "fidelity_stderr": r.fidelity_stderr, "model_fidelity": r.model_fidelity,
             "total_length_km": r.total_length_km, "direct_rate_hz": r.direct_rate_hz}
            for r, c in zip(runs, cutoffs_s, strict=True)]
