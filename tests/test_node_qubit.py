"""Readout counts, Rabi flops, Ramsey fringes and T2 decay against closed-form truth."""

import math

import numpy as np

from tests.node_driver import Driver, binomial_tolerance, quiet_config

READ_MU = 500_000
THRESHOLD = 8


def dispersion_ok(counts, mean):
    """Index-of-dispersion test: (n-1) s^2 / mean ~ chi2(n-1), 5 sigma."""
    n = len(counts)
    stat = (n - 1) * np.var(counts, ddof=1) / mean
    return abs(stat - (n - 1)) < 5 * math.sqrt(2 * (n - 1))


def test_bright_and_dark_counts_are_poisson_with_true_means():
    drv = Driver(quiet_config(), seed=3)
    net = drv.net
    n = 400
    bright, dark = [], []
    for _ in range(n):
        drv.reset(("a",))
        bright.append(drv.readout("a", READ_MU))
        drv.reset(("a",))
        drv.pulse("dds_729_a", 6000)  # pi pulse -> D (no motion, no drift: exact)
        dark.append(drv.readout("a", READ_MU))
    f397 = net.cfg.laser_397.resonance_dds_hz
    mu_bg = net.background_rate_hz() * READ_MU * 1e-9
    mu_bright = net.bright_rate_hz(0, f397) * READ_MU * 1e-9 + mu_bg
    for counts, mu in ((bright, mu_bright), (dark, mu_bg)):
        counts = np.array(counts)
        # D decay during readout (T / 1.168 s ~ 4e-4) is below the 5 sigma tolerance
        assert abs(counts.mean() - mu) < 5 * math.sqrt(mu / n) + 0.01 * mu
        assert dispersion_ok(counts, mu)


def test_397_line_is_lorentzian_in_dds_frequency():
    drv = Driver(quiet_config(), seed=4)
    net = drv.net
    gamma = 1 / net.cfg.ion.p12_lifetime_s
    f0 = net.cfg.laser_397.resonance_dds_hz
    for df in (0.0, 10e6):
        drv.dds("dds_397_a", f0 + df)
        counts = np.array([drv.readout("a", 200_000) for _ in range(100)])
        delta = 2 * math.pi * df
        r = 0.5 * gamma * 1 / (2 + (2 * delta / gamma) ** 2)
        ro = net.cfg.readout
        mu = (r * ro.cycle_efficiency * ro.collection_efficiency * ro.pmt_quantum_efficiency
              + net.background_rate_hz()) * 200e-6
        assert abs(counts.mean() - mu) < 5 * math.sqrt(mu / 100)


def excitation(drv, sequence, shots, gap_mu=0):
    dark = 0
    for _ in range(shots):
        drv.t += gap_mu
        drv.reset(("a",))
        sequence(drv)
        dark += drv.readout("a", READ_MU) < THRESHOLD
    return dark / shots


def test_rabi_flop_matches_true_pi_time_and_detuning():
    drv = Driver(quiet_config(), seed=5)
    net = drv.net
    omega = math.pi / net.pi_time_s(0)
    f0 = net.cfg.laser_729.transition_dds_hz_a
    shots = 300
    for dur_mu, det_hz in ((2000, 0.0), (4500, 0.0), (6000, 30e3)):
        drv.dds("dds_729_a", f0 + det_hz)
        p = excitation(drv, lambda d, m=dur_mu: d.pulse("dds_729_a", m), shots)
        delta = 2 * math.pi * 2 * det_hz  # double pass
        w = math.hypot(omega, delta)
        expected = (omega / w) ** 2 * math.sin(w * dur_mu * 1e-9 / 2) ** 2
        assert abs(p - expected) < binomial_tolerance(expected, shots), (dur_mu, p, expected)


def test_ramsey_fringe_follows_dds_phase():
    drv = Driver(quiet_config(), seed=6)
    f0 = drv.net.cfg.laser_729.transition_dds_hz_a
    shots = 300

    def ramsey(phase_turns):
        def seq(d):
            d.dds("dds_729_a", f0, phase=0.0)
            d.pulse("dds_729_a", 3000)
            d.t += 20_000
            d.dds("dds_729_a", f0, phase=phase_turns)
            d.pulse("dds_729_a", 3000)
        return seq

    for turns in (0.0, 0.0625, 0.125, 0.25):
        p = excitation(drv, ramsey(turns), shots)
        expected = (1 + math.cos(2 * math.pi * 2 * turns)) / 2  # laser phase = 2 x DDS phase
        assert abs(p - expected) < binomial_tolerance(expected, shots), (turns, p)


def ou_phase_variance(t, t2, tau):
    sigma = math.sqrt(2) / t2
    return 2 * sigma**2 * tau**2 * (t / tau - 1 + math.exp(-t / tau))


def test_t2_decay_is_gaussian_and_echo_refocuses_slow_noise():
    t2, tau = 1e-3, 0.05
    cfg = quiet_config(memory={"quasi_static_t2_s": t2, "noise_correlation_time_s": tau,
                               "markovian_t2_s": float("inf")})
    drv = Driver(cfg, seed=7)
    f0 = cfg.laser_729.transition_dds_hz_a
    shots = 300
    gap = int(5 * tau * 1e9)  # independent noise between shots

    def ramsey(wait_s, echo):
        def seq(d):
            d.dds("dds_729_a", f0, phase=0.0)
            d.pulse("dds_729_a", 3000)
            half = int(wait_s * 1e9 / 2)
            d.t += half
            if echo:
                d.pulse("dds_729_a", 6000)
            d.t += half
            d.dds("dds_729_a", f0, phase=0.25 if not echo else 0.0)
            d.pulse("dds_729_a", 3000)
        return seq

    for wait in (0.5e-3, 1e-3, 2e-3):
        p = excitation(drv, ramsey(wait, echo=False), shots, gap)
        contrast = math.exp(-ou_phase_variance(wait, t2, tau) / 2)
        expected = (1 - contrast) / 2
        assert abs(p - expected) < binomial_tolerance(expected, shots), (wait, p, expected)
    # echo at 2 ms: slow noise refocused, excitation stays near 0 (ideal echo ends in S)
    p = excitation(drv, ramsey(2e-3, echo=True), shots, gap)
    assert p < binomial_tolerance(0.05, shots) + 0.05
