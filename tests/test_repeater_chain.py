"""The repeater chain world (ionlink.node.chain): heralded links, the MS-gate swap and the
memories' decoherence, against closed forms and the models of analysis.repeater."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis import repeater as rep
from ionlink.node.chain import ChainNetwork, ChainWiringError
from ionlink.node.chain_config import NodeConfigError, load_chain_config
from ionlink.runner.devices import load_device_db
from tests.repeater_driver import DEVICE_DB, ChainDriver, alpha_pulse_mu, quiet_chain

SHORT = {"length_a_km": 0.5, "length_ra_km": 0.5, "length_rb_km": 0.5, "length_b_km": 0.5}
X_B = np.kron(np.eye(2), np.array([[0, 1], [1, 0]]))
Z_B = np.kron(np.eye(2), np.diag([1, -1]))


def _swap(d: ChainDriver, det_ar: int = 0, det_rb: int = 0):
    """MS gate and readout of R; returns (z_ra, z_rb) and the A-B state with the Pauli
    frame (analysis.repeater.pauli_frame) of the heralding detectors applied."""
    d.ms_gate()
    bright = d.read(("ra", "rb"))
    z = tuple(0 if b else 1 for b in bright)
    rho = d.state((0, 3))
    fx, fz = rep.pauli_frame(z[0], z[1], det_ar, det_rb)
    if fx:
        rho = X_B @ rho @ X_B
    if fz:
        rho = Z_B @ rho @ Z_B
    return z, rho


def test_heralded_link_state_has_the_closed_form_fidelity():
    cfg = quiet_chain(chain=SHORT)
    d = ChainDriver(cfg, seed=2)
    alpha = 0.1
    pm = alpha_pulse_mu(cfg, alpha)
    eta = d.net.photon_efficiency(0)
    for link, ions in (("ar", (0, 1)), ("rb", (2, 3))):
        d.herald(link, pulse_mu=pm)
        a = -math.expm1(-pm * 1e-9 / cfg.node.laser_393.generation_time_constant_s)
        # click weights: one emission (coherent) a(1-a)eta, double emission a^2 eta(1-eta/2)
        expected = (1 - a) / ((1 - a) + a * (1 - eta / 2))
        assert rep.best_phase_fidelity(d.state(ions)) == pytest.approx(expected, abs=1e-9)


def test_herald_probability_matches_the_emitters_efficiencies():
    cfg = quiet_chain(chain=SHORT)
    d = ChainDriver(cfg, seed=4)
    alpha = 0.2
    pm = alpha_pulse_mu(cfg, alpha)
    a = -math.expm1(-pm * 1e-9 / cfg.node.laser_393.generation_time_constant_s)
    eta = d.net.photon_efficiency(2)
    n = 1500
    heralds = sum(d.attempt("rb", pulse_mu=pm) is not None for _ in range(n))
    # perfect mode overlap: two photons bunch, so any photon detected is one click
    p = 1 - (1 - a * eta) ** 2
    assert abs(heralds - n * p) < 4 * math.sqrt(n * p * (1 - p))


def test_swap_with_perfect_gates_is_the_ideal_swap_of_the_two_links():
    """Perfect MS gate, no decoherence: every swapped state is the ideal Bell-state
    measurement of the two heralded link states, whose fidelity is the product of the
    links' (up to the double-excitation terms, computed exactly by analysis.repeater)."""
    cfg = quiet_chain(chain=SHORT)
    d = ChainDriver(cfg, seed=5)
    pm = alpha_pulse_mu(cfg, 0.05)
    for _ in range(4):
        d.herald("ar", pulse_mu=pm)
        r1 = d.state((0, 1))
        d.herald("rb", pulse_mu=pm)
        r2 = d.state((2, 3))
        z, rho = _swap(d)
        ideal = {o: r for _, r, o in rep.ideal_swap(r1, r2)}
        assert rep.best_phase_fidelity(rho) == pytest.approx(
            rep.best_phase_fidelity(ideal[z]), abs=1e-9)
        f1, f2 = rep.best_phase_fidelity(r1), rep.best_phase_fidelity(r2)
        # double excitations (|DD>, weight ~ alpha/2 per link) are the only error here
        assert rep.best_phase_fidelity(rho) == pytest.approx(f1 * f2, abs=(1 - f1) * (1 - f2)
                                                             + 0.5 * (2 - f1 - f2) * 0.1)


def test_swap_of_mixed_links_is_the_bell_weight_composition():
    """Partly distinguishable photons (mode overlap 0.8) make the heralded links mixtures
    of the two Psi states (Z errors): the swapped state is still the ideal swap of the two
    links, and its fidelity the composition of their Bell weights, F1 F2 + (1-F1)(1-F2)."""
    cfg = quiet_chain(chain=SHORT, node={"station": {"mode_overlap": 0.8}})
    d = ChainDriver(cfg, seed=8)
    alpha = 0.01
    pm = alpha_pulse_mu(cfg, alpha)
    for _ in range(3):
        d.herald("ar", pulse_mu=pm)
        r1 = d.state((0, 1))
        d.herald("rb", pulse_mu=pm)
        r2 = d.state((2, 3))
        w = []
        for r in (r1, r2):
            # each link's target: |01> + e^{i phi}|10> with rho_01,10 = e^{-i phi} / 2
            t = np.array([0, 1, np.exp(-1j * np.angle(r[1, 2])), 0]) / math.sqrt(2)
            w.append(rep.bell_weights(r, t))
            assert w[-1][0] < 0.95   # genuinely mixed
        z, rho = _swap(d)
        ideal = {o: r for _, r, o in rep.ideal_swap(r1, r2)}
        got = rep.best_phase_fidelity(rho)
        assert got == pytest.approx(rep.best_phase_fidelity(ideal[z]), abs=1e-9)
        f1, f2 = w[0][0], w[1][0]
        # |DD> (weight ~ alpha/2 per link) is outside the Bell-diagonal picture
        assert got == pytest.approx(rep.swap_fidelity(w[0], w[1], "ms"), abs=2 * alpha)
        assert got == pytest.approx(f1 * f2 + (1 - f1) * (1 - f2), abs=2 * alpha)


def test_decoherence_while_waiting_follows_the_model_for_the_measured_times():
    """Markovian memory dephasing: each swapped state is the ideal swap of the two link
    states dephased for their measured storage times (herald to gate) and of the end
    nodes dephased during R's readout."""
    t2 = 2e-3
    cfg = quiet_chain(chain=SHORT, node={"memory": {"markovian_t2_s": t2}})
    d = ChainDriver(cfg, seed=6)
    pm = alpha_pulse_mu(cfg, 0.1)
    fids = []
    for extra_mu in (0, 1_000_000, 3_000_000):
        d.herald("ar", pulse_mu=pm)
        t1, r1 = d.t, d.state((0, 1))
        d.wait(extra_mu)
        d.herald("rb", pulse_mu=pm)
        t2_, r2 = d.t, d.state((2, 3))
        gate = d.t
        z, rho = _swap(d)
        readout = (d.t - gate) * 1e-9 - d.truth["ms"]["gate_time_s"]

        def c(t):
            return math.exp(-t / t2)

        s1 = (gate - t1) * 1e-9
        s2 = (gate - t2_) * 1e-9
        ideal = {o: r for _, r, o in rep.ideal_swap(rep.dephase_state(r1, c(s1), c(s1)),
                                                    rep.dephase_state(r2, c(s2), c(s2)))}
        # the MS gate itself takes gate_time with R's ions dephasing: add it to both
        g = d.truth["ms"]["gate_time_s"]
        model = rep.dephase_state(ideal[z], c(readout + g), c(readout + g))
        assert rep.best_phase_fidelity(rho) == pytest.approx(
            rep.best_phase_fidelity(model), abs=2e-3)
        fids.append(rep.best_phase_fidelity(rho))
    assert fids[0] > fids[1] > fids[2]


def _echo_wait(d: ChainDriver, wait_mu: int, echo: bool) -> list[int]:
    """Wait ``wait_mu`` with the A-R memories; with ``echo`` two pi pulses (CPMG) on A and
    ra centred at 1/4 and 3/4 of the wait. Returns the pulse centres (mu)."""
    if not echo:
        d.wait(wait_mu)
        return []
    pi_mu = round(d.truth["a"]["pi_time_s"] * 1e9)
    centres = []
    start = d.t
    for frac in (0.25, 0.75):
        d.wait(start + round(frac * wait_mu) - pi_mu // 2 - d.t)
        centres.append(d.t + pi_mu // 2)
        d.pulse(["dds_729_a", "dds_729_ra"], pi_mu)
    d.wait(start + wait_mu - d.t)
    return centres


def _ou_phase_variance(t0_mu: int, t1_mu: int, flips_mu: list[int], sigma: float,
                       tau: float, n: int = 300) -> float:
    """Variance of the phase integral of an Ornstein-Uhlenbeck detuning (rms ``sigma``,
    correlation time ``tau``) over [t0, t1] with the sign flipped at each of ``flips_mu``
    (echo pulses), by midpoint quadrature."""
    t = t0_mu + (np.arange(n) + 0.5) * (t1_mu - t0_mu) / n
    sign = np.ones(n)
    for f in flips_mu:
        sign[t > f] *= -1
    dt = (t1_mu - t0_mu) * 1e-9 / n
    kernel = np.exp(-np.abs(t[:, None] - t[None, :]) * 1e-9 / tau)
    return float(sigma ** 2 * dt * dt * sign @ kernel @ sign)


@pytest.mark.parametrize("echo", [False, True])
def test_quasi_static_dephasing_matches_the_gaussian_model_and_echo_refocuses(echo):
    """Slow detuning noise of each memory (node file's Ornstein-Uhlenbeck model): over many
    swaps, the fidelity to the noise-free end state follows exp(-var/2) of the phase each
    memory accumulated in its measured storage interval, var from the noise's correlation
    (T2* Gaussian decay for waits short against the correlation time); a CPMG echo on the
    waiting pair refocuses it. Tolerance: the swaps' scatter around the model."""
    t2s, tau = 1e-3, 2e-3
    sigma = math.sqrt(2) / t2s
    cfg = quiet_chain(chain=SHORT, node={"memory": {"quasi_static_t2_s": t2s,
                                                    "noise_correlation_time_s": tau}})
    d = ChainDriver(cfg, seed=21 + echo)
    pm = alpha_pulse_mu(cfg, 0.05)
    got, model, unechoed = [], [], []
    for _ in range(40):
        d.wait(10_000_000)                     # decorrelate the noise between swaps
        det_ar, _ = d.herald("ar", pulse_mu=pm)
        t1, r1 = d.t, d.state((0, 1))
        flips = _echo_wait(d, 800_000, echo)
        det_rb, _ = d.herald("rb", pulse_mu=pm)
        t2_, r2 = d.t, d.state((2, 3))
        gate = d.t
        z, rho = _swap(d, det_ar, det_rb)
        gate_end = gate + round(d.truth["ms"]["gate_time_s"] * 1e9)
        # the noise-free reference: the ideal swap of the link states as heralded (frame
        # of both detectors 0 there, so bring the links to that frame first)
        zb = np.kron(np.eye(2), np.diag([1, -1]))
        r1 = zb @ r1 @ zb if det_ar else r1
        r2 = zb @ r2 @ zb if det_rb else r2
        ref = {o: r for _, r, o in rep.ideal_swap(r1, r2)}[z]
        unit = ref[1, 2] / abs(ref[1, 2])
        pop = float(np.real(ref[1, 1] + ref[2, 2]) / 2)
        got.append(float(np.real(rho[1, 1] + rho[2, 2]) / 2
                         + np.real(rho[1, 2] * np.conj(unit))))
        var = (_ou_phase_variance(t1, d.t, flips, sigma, tau)            # A
               + _ou_phase_variance(t1, gate_end, flips, sigma, tau)     # ra
               + _ou_phase_variance(t2_, gate_end, [], sigma, tau)       # rb
               + _ou_phase_variance(t2_, d.t, [], sigma, tau))           # B
        model.append(pop + abs(ref[1, 2]) * math.exp(-var / 2))
        bare = var - sum(_ou_phase_variance(t1, t, flips, sigma, tau)
                         - _ou_phase_variance(t1, t, [], sigma, tau) for t in (d.t, gate_end))
        unechoed.append(pop + abs(ref[1, 2]) * math.exp(-bare / 2))
    got, model = np.array(got), np.array(model)
    diff = got - model
    se = diff.std(ddof=1) / math.sqrt(len(diff))
    assert abs(diff.mean()) < 4 * se
    if echo:   # the echo removes most of the waiting pair's dephasing
        assert model.mean() > np.mean(unechoed) + 0.15


def test_ms_gate_error_and_miscalibration_in_the_world():
    cfg = quiet_chain(chain=SHORT, ms_gate={"gate_error": 0.04})
    d = ChainDriver(cfg, seed=1)
    d.reset(("ra", "rb"))
    d.ms_gate()
    rho = d.state((1, 2))
    bell = np.array([1, 0, 0, 1j]) / math.sqrt(2)
    # global phase convention: the best of the two phases of |SS> +- i|DD>
    f = max(np.real(bell.conj() @ rho @ bell),
            np.real(bell @ rho @ bell.conj()))
    assert f == pytest.approx(1 - 0.04 * 3 / 4, abs=1e-6)
    d2 = ChainDriver(quiet_chain(chain=SHORT), seed=1)
    d2.reset(("ra", "rb"))
    d2.ms_gate(duration_s=0.8 * d2.truth["ms"]["gate_time_s"])
    rho2 = d2.state((1, 2))
    f2 = max(np.real(bell.conj() @ rho2 @ bell), np.real(bell @ rho2 @ bell.conj()))
    assert f2 < 0.95


def test_chain_file_and_wiring_errors_name_the_problem(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[chain]\nlength_a_km = -1.0\n")
    with pytest.raises(NodeConfigError, match="chain.length_a_km"):
        load_chain_config(bad)
    bad.write_text("[ms_gate]\nloops = 2\n")
    with pytest.raises(NodeConfigError, match="ms_gate.loops"):
        load_chain_config(bad)
    bad.write_text("[node.memory]\nmarkovian_t2_s = 0.5\n[chain]\nlength_b_km = 2.0\n")
    cfg = load_chain_config(bad)
    assert cfg.node.memory.markovian_t2_s == 0.5 and cfg.chain.length_b_km == 2.0
    db = load_device_db(DEVICE_DB)
    del db["pmt_rb"]
    with pytest.raises(ChainWiringError, match="pmt_rb"):
        ChainNetwork(db)


def test_swapped_phase_is_stable_when_every_laser_is_off_its_atom():
    """The photons' emission phases, the MS spin phase and the end nodes' measurements all
    refer to the lasers: with every 729 laser detuned from its atom (and the MS tones
    symmetric about R's addressing frequency), the end state's phase in the end nodes'
    laser frames depends on storage times only, not on when the swap happens, in both
    Pauli-frame classes."""
    from ionlink.sim.world import PHASE_MODE_CONTINUOUS, DDSState

    cfg = quiet_chain(chain=SHORT)
    d = ChainDriver(cfg, seed=3)
    tr = d.truth
    off = {"a": 0.7, "ra": -0.4, "rb": -0.4, "b": 0.3}    # DDS Hz
    for n, o in off.items():
        d.net.output(d.t, d.dev[f"dds_729_{n}"], "dds", DDSState(
            tr[n]["transition_729_dds_hz"] + o, 0.0, 1.0, PHASE_MODE_CONTINUOUS, -1))
    for tone in ("blue", "red"):
        d.net.output(d.t, d.dev[f"dds_729_ms_{tone}_r"], "dds", DDSState(
            tr["ms"][f"{tone}_dds_hz"] + off["ra"], 0.0, 1.0, PHASE_MODE_CONTINUOUS, -1))
    pm = alpha_pulse_mu(cfg, 0.05)
    phases: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    for _ in range(14):
        d.wait(50_000_000)
        d1, _ = d.herald("ar", pulse_mu=pm)
        d2, _ = d.herald("rb", pulse_mu=pm)
        d.ms_gate()
        z = tuple(0 if b else 1 for b in d.read(("ra", "rb")))
        ab = d.state((0, 3))
        pa = d.net._laser_phase_rad(0, d.t, "729", False)
        pb = d.net._laser_phase_rad(3, d.t, "729", False)
        u = np.kron(np.diag([1, np.exp(1j * pa)]), np.diag([1, np.exp(1j * pb)]))
        ab = u @ ab @ u.conj().T
        fx, fz = rep.pauli_frame(z[0], z[1], d1, d2)
        if fx:
            ab = X_B @ ab @ X_B
        if fz:
            ab = Z_B @ ab @ Z_B
        phases[bool(fx)].append((d.t * 1e-9, float(np.angle(ab[1, 2]))))
    for values in phases.values():
        if len(values) < 3:
            continue
        t = np.array([v[0] for v in values])
        ph = np.unwrap([v[1] for v in values])
        # storage times vary by attempts (tens of us): their phase is << 0.01 rad here,
        # while a drift with absolute time would turn by ~ 2 pi x 0.5 Hz x 0.3 s or more
        assert np.ptp(ph) < 0.05, ph
        assert np.ptp(t) > 0.3


def test_runner_default_world_is_the_chain_behind_the_chain_device_db():
    from pathlib import Path

    from ionlink.node import VirtualNetwork
    from ionlink.node.chain import ChainNetwork
    from ionlink.runner.devices import load_device_db
    from ionlink.runner.run import default_world_factory

    root = Path(__file__).resolve().parent.parent
    assert isinstance(default_world_factory(load_device_db(root / "device_db_repeater.py"), 0),
                      ChainNetwork)
    assert isinstance(default_world_factory(load_device_db(root / "device_db.py"), 0),
                      VirtualNetwork)
