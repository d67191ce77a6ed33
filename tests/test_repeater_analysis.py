"""The repeater models of analysis.repeater: Bell algebra, Pauli frame, waiting with a
cutoff, comparison with analysis.linkbudget and direct transmission."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from analysis import linkbudget as lb
from analysis import repeater as rep

S2 = 1 / math.sqrt(2)


def _psi(phase: float = 0.0, sign: float = 1.0) -> np.ndarray:
    v = np.array([0, S2, sign * S2 * np.exp(1j * phase), 0], dtype=complex)
    return np.outer(v, v.conj())


def test_werner_links_swap_to_the_werner_product():
    for f1, f2 in ((0.9, 0.8), (0.99, 0.6), (1.0, 0.25)):
        got = rep.swap_fidelity(rep.werner_weights(f1), rep.werner_weights(f2))
        assert got == pytest.approx(lb.swapped_fidelity([f1, f2]), abs=1e-12)


def test_bell_diagonal_swap_is_the_weight_product_and_ideal_swap_agrees():
    rng = np.random.default_rng(3)
    for _ in range(5):
        lam = 0.8 * np.eye(4)[0] + 0.2 * rng.dirichlet(np.ones(4))
        mu = 0.8 * np.eye(4)[0] + 0.2 * rng.dirichlet(np.ones(4))
        # Bell-diagonal states built from the weights around the target |01> + |10>
        x = np.array([[0, 1], [1, 0]])
        y = np.array([[0, -1j], [1j, 0]])
        z = np.diag([1, -1])
        paulis = {0: np.eye(2), 1: x, 2: z, 3: y}
        target = np.array([0, S2, S2, 0], dtype=complex)

        def state(w, paulis=paulis, target=target):
            out = np.zeros((4, 4), dtype=complex)
            for k, p in paulis.items():
                v = np.kron(np.eye(2), p) @ target
                out += w[k] * np.outer(v, v.conj())
            return out

        r1, r2 = state(lam), state(mu)
        assert np.allclose(rep.bell_weights(r1, target), lam)
        # the ideal circuit (MS gate + Z readout + Pauli frame) composes the weights (its
        # phase gate exchanging the second link's X and Y errors); with a dominant target
        # weight the best-phase fidelity of every class is the convolution's
        assert rep.swapped_state_fidelity(r1, r2) == pytest.approx(
            rep.swap_fidelity(lam, mu, circuit="ms"), abs=1e-12)
        assert rep.swap_fidelity(lam, mu, "ms") != pytest.approx(rep.swap_fidelity(lam, mu),
                                                                 abs=1e-6)


def test_pauli_frame_gives_one_state_per_class_for_any_link_phases():
    """With the frame of analysis.repeater.pauli_frame every R outcome and every pair of
    heralding detectors leaves the same end state within a frame class (X-corrected or not),
    for arbitrary link phases; the two classes differ only by a phase."""
    rng = np.random.default_rng(7)
    for _ in range(3):
        th1, th2 = rng.uniform(0, 2 * np.pi, 2)
        by_class: dict[bool, list[np.ndarray]] = {False: [], True: []}
        for d1 in (0, 1):
            for d2 in (0, 1):
                r1 = _psi(th1, 1 - 2 * d1)
                r2 = _psi(th2, 1 - 2 * d2)
                for p, rho, (z1, z2) in rep.ideal_swap(r1, r2):
                    assert p == pytest.approx(0.25)
                    # ideal_swap applies the frame for detectors (0, 0); add the detectors'
                    fx, fz = rep.pauli_frame(z1, z2, d1, d2)
                    _, fz0 = rep.pauli_frame(z1, z2, 0, 0)
                    if fz != fz0:
                        zb = np.kron(np.eye(2), np.diag([1, -1]))
                        rho = zb @ rho @ zb
                    assert rep.best_phase_fidelity(rho) == pytest.approx(1.0)
                    by_class[bool(fx)].append(rho)
        for states in by_class.values():
            for rho in states[1:]:
                assert np.allclose(rho, states[0], atol=1e-12)


def test_frame_corrected_flips_the_right_outcomes():
    basis = np.array([0, 1, 2, 0, 1, 2])
    b = np.zeros(6, dtype=np.int64)
    fx = np.array([1, 1, 1, 0, 0, 0], dtype=bool)
    fz = np.array([0, 0, 0, 1, 1, 1], dtype=bool)
    assert rep.frame_corrected(basis, b, fx, fz).tolist() == [0, 1, 1, 1, 1, 0]


def test_cutoff_model_without_cutoff_matches_the_chain_formula():
    p, tau = 0.05, 1e-4
    m = rep.two_link_cutoff(p, p, tau, np.inf)
    assert m.expected_periods == pytest.approx(lb.expected_attempts_all_links(p, 2),
                                               rel=1e-9)
    coherence = float(np.sum(m.wait_probabilities * np.exp(-m.wait_periods * tau / 0.01)))
    assert coherence == pytest.approx(lb.expected_waiting_coherence(p, tau, 0.01), rel=1e-9)
    assert m.discard_probability == pytest.approx(0.0, abs=1e-9)


def test_cutoff_model_matches_a_monte_carlo_of_the_protocol():
    p1, p2, tau, cutoff = 0.1, 0.06, 1.0, 4.0
    model = rep.two_link_cutoff(p1, p2, tau, cutoff)
    rng = np.random.default_rng(11)
    n = 20000
    steps = np.empty(n)
    waits = np.empty(n)
    for k in range(n):
        held = [None, None]        # age in steps of a held link
        t = 0
        while True:
            t += 1
            for i, p in enumerate((p1, p2)):
                if held[i] is None:
                    if rng.random() < p:
                        held[i] = -1      # becomes 0 at the end of this step
                else:
                    pass
            if held[0] is not None and held[1] is not None:
                waits[k] = abs(held[0] - held[1])
                break
            for i in range(2):
                if held[i] is not None:
                    held[i] += 1
                    if held[i] >= cutoff / tau:
                        held[i] = None
        steps[k] = t
    se = steps.std(ddof=1) / math.sqrt(n)
    assert abs(steps.mean() - model.expected_periods) < 4 * se
    mean_wait = float(model.wait_probabilities @ model.wait_periods)
    assert abs(waits.mean() - mean_wait) < 4 * waits.std(ddof=1) / math.sqrt(n)


def test_shorter_cutoff_trades_rate_for_fidelity():
    p, tau = 0.02, 1e-4
    w = rep.werner_weights(0.95)
    rates, fids = [], []
    for cutoff in (1e-3, 5e-3, np.inf):
        m = rep.two_link_cutoff(p, p, tau, cutoff)
        rates.append(m.rate_hz)
        fids.append(rep.chain_fidelity(w, w, m, tau, lambda t: math.exp(-t / 2e-3)))
    assert rates[0] < rates[1] < rates[2]
    assert fids[0] > fids[1] > fids[2]


def test_repeater_beats_direct_transmission_beyond_the_model_crossover():
    p = lb.LinkParameters(excitation_probability=0.1, preparation_time_s=20e-6)
    x = rep.crossover_km(p)
    assert 1 < x < 1000
    below = rep.compare_at_length(p, 0.5 * x)
    above = rep.compare_at_length(p, 2 * x)
    assert below.repeater_rate_hz < below.direct_rate_hz
    assert above.repeater_rate_hz > above.direct_rate_hz


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="p1"):
        rep.two_link_cutoff(0.0, 0.1, 1.0, 1.0)
    with pytest.raises(ValueError, match="Bell weights"):
        rep.swap_fidelity([0.5, 0.5, 0.5, 0.5], [1, 0, 0, 0])
    with pytest.raises(ValueError, match="versus"):
        rep.crossover_km(lb.LinkParameters(), versus="nothing")


def test_recooling_duty_cycle_scales_every_compared_rate_alike():
    """Half the wall-clock time spent recooling halves the repeater, single-link and direct
    rates alike (no cutoff: the repeater rate is exactly proportional to 1/period), so the
    comparison and its crossover do not depend on it."""
    base = lb.LinkParameters(protocol="two_photon")
    cooled = replace(base, recool_time_s=1e-3, recool_interval_s=1e-3)
    a, b = rep.compare_at_length(base, 40.0), rep.compare_at_length(cooled, 40.0)
    for name in ("repeater_rate_hz", "no_repeater_rate_hz", "direct_rate_hz"):
        assert getattr(b, name) == pytest.approx(0.5 * getattr(a, name), rel=1e-9), name
    assert rep.crossover_km(cooled) == pytest.approx(rep.crossover_km(base), rel=1e-6)
