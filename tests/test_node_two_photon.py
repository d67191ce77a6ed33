"""Two-photon (time-bin) heralding: success probability, heralded state, fibre-phase
insensitivity."""

import math

import numpy as np

from ionlink.node.ion import LEVELS, D, E, S
from tests.node_driver import Driver, binomial_tolerance, quiet_config

PULSE_MU = 100
SEP_MU = 5000


def two_photon_config(alpha, det_eff=1.0, overlap=1.0, **extra):
    tau = -PULSE_MU * 1e-9 / math.log(1 - alpha)
    sections = dict(photon={"collection_efficiency": 1.0, "conversion_efficiency": 1.0,
                            "filter_transmission": 1.0, "wavepacket_time_s": 1e-7},
                    fibre={"loss_db_per_km": 0.0},
                    laser_393={"generation_time_constant_s": tau},
                    station={"detector_efficiency": det_eff, "dark_count_rate_hz": 0.0,
                             "mode_overlap": overlap},
                    protocol={"scheme": "two_photon", "time_bin_separation_s": SEP_MU * 1e-9})
    for k, v in extra.items():
        sections[k] = {**sections.get(k, {}), **v}
    return quiet_config(**sections)


def attempt(drv):
    """Fire both nodes; returns None (no herald) or +1 (same detector) / -1 (different)."""
    drv.reset()
    for n in "ab":
        drv.net.output(drv.t, drv.sw[f"dds_393_{n}"], "level", 1)
        drv.net.output(drv.t + PULSE_MU, drv.sw[f"dds_393_{n}"], "level", 0)
    t_arr = drv.t + PULSE_MU + int(drv.net.fibre_delay_s(0, 0.0) * 1e9)
    early = drv.station(t_arr - 500, t_arr + SEP_MU // 2)
    late = drv.station(t_arr + SEP_MU // 2, t_arr + SEP_MU * 3 // 2)
    drv.t = t_arr + 2 * SEP_MU
    n_early = [len(c) for c in early]
    n_late = [len(c) for c in late]
    if sum(n_early) != 1 or sum(n_late) != 1:
        return None
    return 1 if n_early.index(1) == n_late.index(1) else -1


def pair(a, b):
    return a * LEVELS + b


def coherence(rho):
    """(population of |DE>, of |ED>, <DE|rho|ED>) of the joint 16x16 density matrix."""
    de, ed = pair(D, E), pair(E, D)
    return rho[de, de].real, rho[ed, ed].real, rho[de, ed]


def test_herald_probability_is_alpha_squared_eta_squared_over_two():
    alpha, eta = 0.9, 0.7
    drv = Driver(two_photon_config(alpha, det_eff=eta, overlap=0.8), seed=31)
    n = 1500
    signs = [attempt(drv) for _ in range(n)]
    heralds = [s for s in signs if s is not None]
    p = alpha * alpha * eta * eta / 2
    assert abs(len(heralds) / n - p) < binomial_tolerance(p, n)
    # Psi+ and Psi- heralds are equally likely
    k = len(heralds)
    assert abs(heralds.count(1) / k - 0.5) < binomial_tolerance(0.5, k)


def heralded_states(cfg, seed, count):
    drv = Driver(cfg, seed=seed)
    out = []
    while len(out) < count:
        sign = attempt(drv)
        if sign is not None:
            drv.net.flush(drv.t)
            out.append((sign, drv.net.joint_density_matrix(), drv))
    return out


def test_heralded_state_fidelity_is_limited_by_mode_overlap():
    m = 0.8
    states = heralded_states(two_photon_config(0.9, overlap=m), seed=32, count=12)
    phases = {1: set(), -1: set()}
    for sign, rho, _ in states:
        p_de, p_ed, c = coherence(rho)
        assert abs(p_de - 0.5) < 1e-5 and abs(p_ed - 0.5) < 1e-5
        # partially distinguishable photons: coherence M/2, fidelity (1 + M)/2 (1e-5: D5/2
        # decay over the tens of us since the emission)
        assert abs(abs(c) - m / 2) < 1e-5
        assert abs(p_de / 2 + p_ed / 2 + abs(c) - (1 + m) / 2) < 1e-5
        phases[sign].add(float(np.angle(c)))
    # each herald sign gives one phase (mod 2 pi: it may sit at +-pi); Psi+ and Psi-
    # differ by pi
    ref = {sign: next(iter(v)) for sign, v in phases.items()}
    assert all(abs(math.remainder(p - ref[sign], 2 * math.pi)) < 1e-6
               for sign, v in phases.items() for p in v)
    diff = ref[1] - ref[-1]
    assert abs(abs(math.remainder(diff, 2 * math.pi)) - math.pi) < 1e-6


def test_two_photon_heralded_state_does_not_depend_on_the_fibre_phase():
    phases = []
    for offset, noise in ((0.0, 0.0), (1.3, 0.5)):
        cfg = two_photon_config(0.9, fibre={"phase_offset_rad": offset,
                                            "phase_noise_rms_rad": noise})
        for sign, rho, _ in heralded_states(cfg, seed=33, count=4):
            if sign == 1:
                phases.append(float(np.angle(coherence(rho)[2])))
    assert len(phases) >= 2
    assert max(phases) - min(phases) < 1e-6


def test_mapping_e_to_s_gives_an_s_d_bell_state():
    cfg = two_photon_config(0.9)
    (sign, _, drv), = heralded_states(cfg, seed=34, count=1)
    net = drv.net
    for n, i in (("a", 0), ("b", 1)):
        drv.dds(f"dds_729_{n}", net.transition_e_dds_hz(i, 0.0))
    for n in "ab":   # pi pulse on the S-E line of both ions
        net.output(drv.t, drv.sw[f"dds_729_{n}"], "level", 1)
        net.output(drv.t + 6000, drv.sw[f"dds_729_{n}"], "level", 0)
    net.flush(drv.t + 7000)
    rho = net.joint_density_matrix()
    ds, sd = pair(D, S), pair(S, D)
    # 1e-4: D5/2 decay over the ~40 us since the emission
    assert abs(rho[ds, ds].real - 0.5) < 1e-4 and abs(rho[sd, sd].real - 0.5) < 1e-4
    assert abs(abs(rho[ds, sd]) - 0.5) < 1e-4
