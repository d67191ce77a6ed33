"""Single-photon heralding: success probability, clicks, arrival times, CHSH, seeds."""

import math

import numpy as np
from scipy import stats

from tests.node_driver import Driver, binomial_tolerance, quiet_config

PULSE_MU = 100


def lossless(det_eff, dark=0.0, **extra):
    sections = dict(photon={"collection_efficiency": 1.0, "conversion_efficiency": 1.0,
                            "filter_transmission": 1.0},
                    fibre={"loss_db_per_km": 0.0},
                    station={"detector_efficiency": det_eff, "dark_count_rate_hz": dark})
    for k, v in extra.items():
        sections[k] = {**sections.get(k, {}), **v}
    return quiet_config(**sections)


def attempt(drv, pulse_mu=PULSE_MU):
    """One Cabrillo attempt; returns (clicks at det 0, clicks at det 1, emission time)."""
    drv.reset()
    for n in "ab":
        drv.net.output(drv.t, drv.sw[f"dds_393_{n}"], "level", 1)
        drv.net.output(drv.t + pulse_mu, drv.sw[f"dds_393_{n}"], "level", 0)
    t_emit = drv.t + pulse_mu
    delay = int(drv.net.fibre_delay_s(0, 0.0) * 1e9)
    c0, c1 = drv.station(t_emit + delay - 1000, t_emit + delay + 20_000)
    drv.t = t_emit + delay + 20_000
    return c0, c1, t_emit


def gen_time_constant_for(alpha):
    return -PULSE_MU * 1e-9 / math.log(1 - alpha)


def test_herald_probability_matches_single_photon_formula():
    alpha, eta = 0.1, 0.5
    cfg = lossless(eta, laser_393={"generation_time_constant_s": gen_time_constant_for(alpha)})
    drv = Driver(cfg, seed=11)
    n = 3000
    one = sum((len(c0) + len(c1)) == 1 for c0, c1, _ in (attempt(drv) for _ in range(n)))
    # one photon (either node) detected, or both emitted and >= 1 detected (HOM bunching:
    # two detected photons always leave by the same port)
    p = 2 * alpha * (1 - alpha) * eta + alpha**2 * (2 * eta - eta**2)
    assert abs(one / n - p) < binomial_tolerance(p, n)


def test_dark_counts_only_give_configured_rate():
    rate = 2e4
    drv = Driver(lossless(0.8, dark=rate), seed=12)
    window = 100_000
    counts = [sum(len(c) for c in drv.station(t, t + window))
              for t in range(10_000, 10_000 + 400 * window, window)]
    mu = 2 * rate * window * 1e-9  # two detectors
    assert abs(np.mean(counts) - mu) < 5 * math.sqrt(mu / len(counts))


def test_arrival_times_follow_delay_wavepacket_and_jitter():
    tau = 1e-6
    cfg = lossless(1.0, laser_393={"generation_time_constant_s": gen_time_constant_for(0.3)},
                   photon={"wavepacket_time_s": tau}, station={"timing_jitter_s": 1e-9})
    drv = Driver(cfg, seed=13)
    delay = drv.net.fibre_delay_s(0, 0.0)
    offsets = []
    for _ in range(800):
        c0, c1, t_emit = attempt(drv)
        offsets += [(t - t_emit) * 1e-9 - delay for t in np.concatenate([c0, c1])]
    offsets = np.array(offsets)
    # exponential wavepacket (1 us) convolved with 1 ns jitter (and 1 ns rounding): KS vs expon
    assert stats.kstest(offsets, "expon", args=(0, tau)).pvalue > 1e-4
    assert abs(offsets.mean() - tau) < 5 * tau / math.sqrt(len(offsets))


def chsh_correlator(theta_a, theta_b, sign):
    """E for (|DS> + sign|SD>)/sqrt2 after on-resonance pi/2 pulses of laser phase theta
    (coupling exp(-i theta)|D><S| + h.c.), outcomes +1 = S, -1 = D."""
    def u(theta):
        c = 1 / math.sqrt(2)
        return np.array([[c, -1j * c * np.exp(1j * theta)], [-1j * c * np.exp(-1j * theta), c]])
    psi = np.zeros(4, dtype=complex)
    psi[2] = 1  # |D S> (A first)
    psi[1] = sign
    psi /= math.sqrt(2)
    out = np.kron(u(theta_a), u(theta_b)) @ psi
    z = np.array([1, -1, -1, 1])
    return float(np.real(np.vdot(out, z * out)))


def test_chsh_matches_fidelity_of_modelled_heralded_state():
    alpha = 0.3
    cfg = lossless(1.0, laser_393={"generation_time_constant_s": gen_time_constant_for(alpha)})
    drv = Driver(cfg, seed=14)
    rng = np.random.default_rng(0)
    f_a = cfg.laser_729.transition_dds_hz_a
    f_b = cfg.laser_729.transition_dds_hz_b
    turns_a = (0.0, 0.125)           # laser phase 0, pi/2 (double pass)
    turns_b = (0.0625, -0.0625)      # laser phase pi/4, -pi/4
    sums = np.zeros((2, 2))
    nums = np.zeros((2, 2))
    rounds = 0
    while rounds < 2000:
        c0, c1, _ = attempt(drv)
        if len(c0) + len(c1) != 1:
            continue
        sign = 1 if len(c0) else -1
        x, y = rng.integers(2), rng.integers(2)
        drv.dds("dds_729_a", f_a, phase=turns_a[x])
        drv.dds("dds_729_b", f_b, phase=turns_b[y])
        for n in "ab":
            drv.net.output(drv.t, drv.sw[f"dds_729_{n}"], "level", 1)
            drv.net.output(drv.t + 3000, drv.sw[f"dds_729_{n}"], "level", 0)
        drv.t += 3100
        a = 1 if drv.readout("a", 300_000) >= 5 else -1
        b = 1 if drv.readout("b", 300_000) >= 5 else -1
        sums[x, y] += sign * a * b
        nums[x, y] += 1
        rounds += 1
    e = sums / nums
    s_sim = e[0, 0] + e[0, 1] + e[1, 0] - e[1, 1]
    ideal = [[chsh_correlator(2 * np.pi * 2 * turns_a[x], 2 * np.pi * 2 * turns_b[y], 1)
              for y in range(2)] for x in range(2)]
    s_ideal = ideal[0][0] + ideal[0][1] + ideal[1][0] - ideal[1][1]
    assert abs(abs(s_ideal) - 2 * math.sqrt(2)) < 1e-9
    # heralded state: F |psi><psi| + (1 - F) |DD><DD|; |DD> gives E = 0 in equatorial bases
    p_dd = alpha * 0.5 / ((1 - alpha) + alpha * 0.5)
    s_expected = (1 - p_dd) * s_ideal
    sigma = math.sqrt(sum((1 - e[x, y] ** 2) / nums[x, y] for x in range(2) for y in range(2)))
    assert abs(s_sim - s_expected) < 5 * sigma, (s_sim, s_expected, sigma)


def run_attempts(seed, n=200):
    cfg = lossless(0.5, dark=1e4,
                   laser_393={"generation_time_constant_s": gen_time_constant_for(0.2)})
    drv = Driver(cfg, seed=seed)
    return [tuple(np.concatenate([c0, c1]).tolist()) for c0, c1, _ in
            (attempt(drv) for _ in range(n))]


def test_same_seed_reproduces_and_other_seed_differs():
    assert run_attempts(5) == run_attempts(5)
    assert run_attempts(5) != run_attempts(6)
