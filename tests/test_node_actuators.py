"""Laser frequency actuators move what the ion sees (ionlink.node.lasers, network.py).

A 397/729 laser shifted by ``Delta`` (optical Hz) by its actuator moves the ion's effective
resonance to ``f_res - Delta / aom_passes`` in DDS Hz: the 729 pulse response and the 397
fluorescence follow it, a Ramsey sequence sees the phase of the actuated detuning, and the
wavemeter driver's software lock holding a drifting 729 laser holds the ion's resonance.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from drivers.timetagger.simulation import ManualClock
from drivers.wavemeter.config import parse_actuators, parse_channels
from drivers.wavemeter.driver import WavemeterDriver
from drivers.wavemeter.simulation import SimulatedWavemeter, attach_actuators, resolver
from ionlink.node import VirtualNetwork
from ionlink.node.config import load_node_config
from ionlink.node.ion import D
from ionlink.node.lasers import DAC_TUNING_HZ_PER_V, Actuator
from ionlink.node.wiring import example_device_db
from ionlink.sim.world import PHASE_MODE_CONTINUOUS, DDSState

DAC = "zotino0"
DAC_CHANNEL = 5
US = 1_000      # mu


def _ddb() -> dict:
    """The example device_db with a Zotino (``dac_a``) whose channel 5 tunes 729 of node a."""
    def local(module, cls, **arguments):
        return {"type": "local", "module": "artiq.coredevice." + module, "class": cls,
                "arguments": arguments}
    ddb = example_device_db()
    ddb.update({
        "spi_zotino0": local("spi2", "SPIMaster", channel=0x30),
        "ttl_zotino0_ldac": local("ttl", "TTLOut", channel=0x31),
        "ttl_zotino0_clr": local("ttl", "TTLOut", channel=0x32),
        DAC: local("zotino", "Zotino", spi_device="spi_zotino0",
                   ldac_device="ttl_zotino0_ldac", clr_device="ttl_zotino0_clr"),
        "dac_a": DAC,
    })
    return ddb


def _quiet_config(**drift):
    """No heating and no quasi-static detuning noise: a pulse response that is an exact
    function of the DDS frequency (the Rabi frequency stays that of the shot)."""
    return load_node_config().replace(motion={"heating_rate_quanta_per_s": 0.0},
                                      memory={"quasi_static_t2_s": math.inf},
                                      drift=drift)


class Node:
    """Drives node ``a`` of a network event by event (as the core would)."""

    def __init__(self, net: VirtualNetwork):
        self.net = net
        dev = net.wiring.devices
        self.dds = {la: dev[f"dds_{la}_a"] for la in ("397", "866", "854", "729")}
        self.sw = {la: next(k for k, tg in net.wiring.switch.items() if ("a", la) in tg)
                   for la in ("397", "866", "854", "729")}
        self.pmt = dev["pmt_a"]
        self.t = 0
        for la in ("866", "854"):
            self.set_dds(la, 80e6)
        self.t = US

    def set_dds(self, laser: str, f_hz: float, amplitude: float = 1.0,
                phase_turns: float = 0.0) -> None:
        self.net.output(self.t, self.dds[laser], "dds",
                        DDSState(f_hz, phase_turns, amplitude, PHASE_MODE_CONTINUOUS, -1))

    def on(self, lasers, duration_mu: int) -> None:
        for la in lasers:
            self.net.output(self.t, self.sw[la], "level", 1)
        self.t += duration_mu
        for la in lasers:
            self.net.output(self.t, self.sw[la], "level", 0)
        self.t += US

    def dac(self, volts: float) -> None:
        self.net.output(self.t, DAC, "dac_v", (DAC_CHANNEL, volts))
        self.t += US

    def p_d(self) -> float:
        """Population of D of ion a now (exact)."""
        self.net.flush(self.t)
        rho = self.net.joint_density_matrix()
        return float(sum(np.real(rho[D * 4 + b, D * 4 + b]) for b in range(4)))

    def quench(self) -> None:
        self.on(("854", "866"), 30 * US)

    def pulse_response(self, f_dds_hz: float, amplitude: float, duration_mu: int) -> float:
        """P(D) after a 729 pulse at ``f_dds_hz`` on the ion in S; the ion is quenched back."""
        self.set_dds("729", f_dds_hz, amplitude)
        self.t += US
        self.on(("729",), duration_mu)
        p = self.p_d()
        self.quench()
        return p

    def lab_s(self) -> float:
        return self.net.lab_time_s(self.t)

    def counts_397(self, f_dds_hz: float, duration_mu: int) -> int:
        """PMT counts of ion a (in S, 397 + 866 on) over ``duration_mu`` at ``f_dds_hz``."""
        self.set_dds("397", f_dds_hz)
        self.t += US
        t0 = self.t
        self.on(("397", "866"), duration_mu)
        return len(self.net.input_edges(self.pmt, t0, t0 + duration_mu))


def _line_centre(node: Node, lo: float, hi: float, amplitude: float, duration_mu: int,
                 iterations: int = 45) -> float:
    """DDS frequency of the maximum of the pulse response in ``[lo, hi]`` (ternary search:
    the bracket must lie within the main lobe; a line outside it ends at an edge)."""
    for _ in range(iterations):
        a, b = lo + (hi - lo) / 3, hi - (hi - lo) / 3
        if node.pulse_response(a, amplitude, duration_mu) < node.pulse_response(
                b, amplitude, duration_mu):
            lo = a
        else:
            hi = b
    return 0.5 * (lo + hi)


# -- the sign, the integral ---------------------------------------------------------------


def test_actuator_integral_is_exact_for_steps():
    act = Actuator("dac", DAC, 0, 2.0e6, reference=0.1)
    for t, v in ((1_000, 0.6), (3_000, 0.1), (3_000, -0.4), (6_000, 0.35)):
        act.record(t, v)
    # shift (Hz): 0 before 1000, 1e6 on [1000, 3000), -1e6 on [3000, 6000), 5e5 after
    assert act.integral_hz_s(0, 1_000) == 0.0
    assert act.integral_hz_s(500, 2_000) == pytest.approx(1e6 * 1_000e-9, rel=1e-12)
    assert act.integral_hz_s(0, 8_000) == pytest.approx(
        1e6 * 2e-6 - 1e6 * 3e-6 + 5e5 * 2e-6, rel=1e-12)
    assert act.integral_hz_s(4_000, 4_000) == 0.0 and act.integral_hz_s(5, 2) == 0.0
    # additive over a split
    assert act.integral_hz_s(700, 2_999) + act.integral_hz_s(2_999, 6_001) == pytest.approx(
        act.integral_hz_s(700, 6_001), rel=1e-12)


def test_truth_follows_a_dac_step_with_the_sign_of_the_detuning():
    net = VirtualNetwork(_ddb(), seed=1)
    net.attach_laser_actuator("729", "a", DAC, "dac", DAC_CHANNEL)
    net.attach_laser_actuator("397", "b", DAC, "dac", DAC_CHANNEL + 1)
    net.output(1_000, DAC, "dac_v", (DAC_CHANNEL, 0.02))
    net.output(1_000, DAC, "dac_v", (DAC_CHANNEL + 1, -0.01))
    for lab in (0.0, 1e-6):      # before / after the event
        truth = net.truth(lab)
        d729 = DAC_TUNING_HZ_PER_V["729"] * 0.02 if lab else 0.0
        d397 = -DAC_TUNING_HZ_PER_V["397"] * 0.01 if lab else 0.0
        assert truth["a"]["transition_729_dds_hz"] == pytest.approx(
            net.free_transition_729_dds_hz(0, lab) - d729 / 2, abs=1e-6)
        assert truth["a"]["transition_e_dds_hz"] - truth["a"]["transition_729_dds_hz"] == \
            pytest.approx(net.cfg.laser_729.transition_e_offset_dds_hz, abs=1e-6)
        assert truth["b"]["resonance_397_dds_hz"] == pytest.approx(
            net.free_resonance_397_dds_hz(1, lab) - d397, abs=1e-6)
        # the other node's lasers are not touched
        assert truth["b"]["transition_729_dds_hz"] == net.free_transition_729_dds_hz(1, lab)
        # the wavemeter reading and the ion agree: laser + passes * f_eff = the line
        t_mu = int(round(lab * 1e9))
        for laser, node, i, key, passes in (("729", "a", 0, "transition_729_dds_hz", 2),
                                            ("397", "b", 1, "resonance_397_dds_hz", 1)):
            f_opt = net.optical_frequency_hz(laser, node, t_mu)
            line = net.optical.free_running_hz(laser, node, t_mu) + passes * (
                net.free_transition_729_dds_hz(i, lab) if laser == "729"
                else net.free_resonance_397_dds_hz(i, lab))
            assert f_opt + passes * truth[node][key] == pytest.approx(line, abs=1e-3)


# -- the ion -------------------------------------------------------------------------------


def test_729_dac_step_moves_the_pulse_response_by_minus_delta_over_passes():
    net = VirtualNetwork(_ddb(), _quiet_config(), seed=3)
    net.attach_laser_actuator("729", "a", DAC, "dac", DAC_CHANNEL)
    node = Node(net)
    passes = net.cfg.laser_729.aom_passes
    # below a pi pulse whatever the shot's phonon number (a single peak at resonance);
    # main lobe ~ +-8 kHz in DDS Hz
    amp, dur = 0.1, 40 * US
    half = 4e3
    f0 = net.free_transition_729_dds_hz(0, node.lab_s())
    c0 = _line_centre(node, f0 - half, f0 + half, amp, dur)
    volts = 0.02
    delta = DAC_TUNING_HZ_PER_V["729"] * volts          # +1 MHz optical
    node.dac(volts)
    f_free = net.free_transition_729_dds_hz(0, node.lab_s())
    expected = f_free - delta / passes
    c1 = _line_centre(node, expected - half, expected + half, amp, dur)
    # the free resonance drifts by far less than 1 Hz over the test (walk 1 Hz/sqrt(s))
    assert c0 == pytest.approx(f0, abs=1.0)
    assert c1 - c0 == pytest.approx(-delta / passes, abs=1.0)
    assert c1 == pytest.approx(net.transition_729_dds_hz(0, node.lab_s()), abs=1.0)
    # where the free-running laser would be resonant, the ion now sees a detuning of
    # delta (500 kHz in DDS Hz): nothing is excited
    assert node.pulse_response(f_free, amp, dur) < 1e-3
    assert node.pulse_response(c1, amp, dur) > 0.5


def test_397_dac_step_moves_the_fluorescence_line():
    """Counts at ``m +- w`` (``m`` the expected centre, ``w`` the half width at half
    maximum) give the centre offset ``x`` with its Poisson error; the step of ``+Delta``
    must move the centre by ``-Delta / passes`` within 5 standard errors."""
    net = VirtualNetwork(_ddb(), seed=11)
    net.attach_laser_actuator("397", "a", DAC, "dac", DAC_CHANNEL)
    node = Node(net)
    c = net.cfg
    passes = c.laser_397.aom_passes
    gamma = 1.0 / c.ion.p12_lifetime_s
    s = c.laser_397.saturation_at_full_amplitude
    k = (1 + s) * (gamma / (4 * math.pi * passes)) ** 2        # DDS Hz^2
    w = math.sqrt(k)
    dur = 30_000 * US
    bg = net.background_rate_hz() * dur * 1e-9

    def centre_offset(m: float) -> tuple[float, float]:
        n_plus = node.counts_397(m + w, dur)
        n_minus = node.counts_397(m - w, dur)
        # rate(m +- w) ~ 1 / (k + (w -+ x)^2): solve the ratio for x (smaller root)
        rho = (n_plus - bg) / (n_minus - bg)
        a, b, cc = rho - 1, -2 * w * (rho + 1), (rho - 1) * (k + w * w)
        x = cc / -b if a == 0 else (-b - math.sqrt(b * b - 4 * a * cc)) / (2 * a)
        sigma_rho = rho * math.sqrt(1 / n_plus + 1 / n_minus)
        return x, (k + w * w) / (4 * w) * sigma_rho

    f0 = net.free_resonance_397_dds_hz(0, node.lab_s())
    x0, e0 = centre_offset(f0)
    volts = 0.05
    delta = DAC_TUNING_HZ_PER_V["397"] * volts          # +6 MHz optical
    node.dac(volts)
    f_free = net.free_resonance_397_dds_hz(0, node.lab_s())
    x_free, e_free = centre_offset(f_free)
    x1, e1 = centre_offset(f_free - delta / passes)
    assert abs(x0) < 5 * e0
    assert abs(x1) < 5 * e1
    # measured about the free-running resonance, the line sits at -delta / passes
    assert x_free == pytest.approx(-delta / passes, abs=5 * e_free)
    assert abs(x_free) > 10 * e_free


# -- phase continuity (Ramsey) ---------------------------------------------------------------


def _ramsey(actuated: bool, phase_turns: float) -> float:
    """P(D) after pi/2 - wait - pi/2 on resonance, with (``actuated``) a DAC pulse of the
    729 laser during the wait, or the second pulse's DDS phase offset by ``phase_turns``."""
    net = VirtualNetwork(_ddb(), _quiet_config(), seed=21)
    net.attach_laser_actuator("729", "a", DAC, "dac", DAC_CHANNEL)
    node = Node(net)
    f = net.free_transition_729_dds_hz(0, 0.0)
    node.t = 10 * US
    node.set_dds("729", f)
    node.t += US
    node.on(("729",), 3 * US)              # ~pi/2 (pi time 6 us, Debye-Waller ~0.9)
    node.t += 2 * US
    if actuated:
        node.dac(0.01)                     # +500 kHz optical for 1.5 us ...
        node.t += 500
        node.dac(0.0)                      # ... then back (dac() moves on by 1 us)
    else:
        node.t += 2 * US + 500
    node.t += 2 * US
    node.set_dds("729", f, phase_turns=phase_turns)
    node.t += US
    node.on(("729",), 3 * US)
    return node.p_d()


def test_ramsey_sees_the_phase_of_an_actuator_pulse():
    """A shift ``Delta`` held for ``tau`` advances the laser's phase relative to the atom by
    ``Delta tau`` optical turns: the same Ramsey signal as the second pulse's DDS phase
    advanced by ``Delta tau / passes`` turns (a DDS turn is ``passes`` optical turns). The
    second pulses are set in quadrature (base offset 1/8 DDS turn) so that the sign of the
    phase shows in the population."""
    passes = 2
    x = DAC_TUNING_HZ_PER_V["729"] * 0.01 * 1.5e-6 / passes    # 0.375 DDS turns
    base = 0.125
    shifted = _ramsey(True, base)
    assert shifted == pytest.approx(_ramsey(False, base + x), abs=1e-9)
    # the opposite sign, or no phase at all, is far off (the test can fail)
    assert abs(_ramsey(False, base - x) - shifted) > 0.5
    assert abs(_ramsey(False, base) - shifted) > 0.2


def _split_pulse(actuated: bool) -> float:
    """P(D) after a 729 pulse whose second half is detuned by 100 kHz (optical): by an
    actuator step at the middle, or by a DDS frequency step of 100 kHz / passes."""
    net = VirtualNetwork(_ddb(), _quiet_config(), seed=4)
    net.attach_laser_actuator("729", "a", DAC, "dac", DAC_CHANNEL)
    node = Node(net)
    f = net.free_transition_729_dds_hz(0, 0.0)
    node.set_dds("729", f, 0.3)
    node.t += US
    t_on = node.t
    node.net.output(t_on, node.sw["729"], "level", 1)
    node.t = t_on + 7 * US
    if actuated:
        node.net.output(node.t, DAC, "dac_v", (DAC_CHANNEL, 1e5 / DAC_TUNING_HZ_PER_V["729"]))
    else:
        node.set_dds("729", f + 1e5 / 2, 0.3)
    node.t = t_on + 14 * US
    node.net.output(node.t, node.sw["729"], "level", 0)
    node.t += US
    return node.p_d()


def test_an_actuator_step_during_a_pulse_acts_from_its_timestamp():
    actuated = _split_pulse(True)
    assert actuated == pytest.approx(_split_pulse(False), abs=1e-9)
    # (the same pulse without any step differs: the test can fail)
    net = VirtualNetwork(_ddb(), _quiet_config(), seed=4)
    node = Node(net)
    node.set_dds("729", net.free_transition_729_dds_hz(0, 0.0), 0.3)
    node.t += US
    node.on(("729",), 14 * US)
    assert abs(node.p_d() - actuated) > 0.05


def test_emission_phase_on_demand_includes_the_actuator():
    """The lazily computed emission phase (``_emission_phase``, from a snapshot) equals
    the eager phase of the 729 laser relative to the atom (``_laser_phase_rad``) with an
    actuator stepping in between (both integrate the actuator's shift)."""
    import random

    net = VirtualNetwork(_ddb(), seed=5)
    net.attach_laser_actuator("729", "a", DAC, "dac", DAC_CHANNEL)
    node = Node(net)
    node.set_dds("729", 80.3e6, 0.0)
    net.flush(node.t + 1)
    rng = random.Random(2)
    t = node.t + 10
    moved = 0
    for _ in range(20):
        t += rng.randrange(1, 3_000_000)
        ion, las = net.ions[0], net.ions[0].lasers["729"]
        snap = (0, t, las.dds, las.acc_turns, las.acc_t_mu, ion.atom_phase_turns,
                ion.atom_phase_e_turns, ion.phase_t_mu)
        t_phase = ion.phase_t_mu
        shift = net.optical.actuator("729", "a").integral_hz_s(t_phase, t)
        lazy = net._emission_phase(D, snap)
        eager = net._laser_phase_rad(0, t, with_offset=False)
        assert abs(math.remainder(lazy - eager, 2 * math.pi)) < 1e-9
        # (the actuator's phase over the interval is not a whole number of turns)
        moved += abs(math.remainder(shift, 1.0)) > 0.01
        net.output(t + rng.randrange(1, 1000), DAC, "dac_v",
                   (DAC_CHANNEL, rng.uniform(-0.05, 0.05)))
        net.flush(t + 1000)
    assert moved >= 15


# -- the wavemeter lock holds the ion's resonance ------------------------------------------


def _locked_run(lock: bool):
    """20 s of a 729 laser of node a whose free-running resonance swings by MHz (sine of
    2 MHz DDS amplitude, 40 s period), read by the simulated wavemeter every 20 ms and,
    with ``lock``, held by its PI lock on the DAC actuator. Returns the network, the
    clock and the effective / free-running resonances (DDS Hz) sampled over the run."""
    ddb = _ddb()
    ddb["wavemeter"] = {"type": "controller", "host": "::1", "port": 3271,
                        "channels": "1=729_a", "actuators": "729_a=dac:dac_a:5:5e7"}
    cfg = _quiet_config(transition_729_sine_hz=2.0e6, transition_729_period_s=40.0)
    net = VirtualNetwork(ddb, cfg, seed=8)
    clock = ManualClock(1_000_000)
    actuators = parse_actuators(ddb["wavemeter"]["actuators"])
    attach_actuators(net, actuators, resolver(ddb))
    backend = SimulatedWavemeter(parse_channels(ddb["wavemeter"]["channels"]), lambda: net,
                                 clock, noise_hz=2e4, seed=2)
    wm = WavemeterDriver(backend, actuators, resolver(ddb))
    target = net.optical_frequency_hz("729", "a", clock.t)
    if lock:
        wm.lock("729_a", target, kp=0.5, ki=20.0, tolerance_hz=2e5)
    eff, free, laser = [], [], []
    for step in range(1000):
        clock.t += 20_000_000
        if lock:
            wm.service()
        if step % 50 == 49:
            lab = net.lab_time_s(clock.t)
            eff.append(net.transition_729_dds_hz(0, lab))
            free.append(net.free_transition_729_dds_hz(0, lab))
            laser.append(net.optical_frequency_hz("729", "a", clock.t) - target)
    wm.close()
    return net, clock, np.array(eff), np.array(free), np.array(laser)


def test_wavemeter_lock_holds_the_ions_729_resonance():
    net, clock, eff, free, laser = _locked_run(True)
    passes = net.cfg.laser_729.aom_passes
    f_start = net.free_transition_729_dds_hz(0, net.lab_time_s(1_000_000))
    swing = np.abs(free - f_start).max()
    assert swing > 1e6                                   # the free-running laser drifts
    # the ion's resonance moves exactly as the laser seen by the wavemeter, opposite and
    # divided by the passes (laser + passes * f_eff = the line) ...
    # (to the rounding of optical frequencies: 0.06 Hz at 411 THz)
    assert np.allclose(eff - f_start, -laser / passes, rtol=0, atol=0.5)
    # ... so the lock (PI lag and 20 kHz read noise) holds it to a few % of the swing
    assert np.abs(eff - f_start).max() < swing / 20
    # and the ion itself: a pulse scan at the end finds the line there, not at the free
    # resonance
    node = Node(net)
    node.t = clock.t + 10 * US
    f_now = net.free_transition_729_dds_hz(0, node.lab_s())
    assert abs(f_now - f_start) > 5e5
    held = net.transition_729_dds_hz(0, node.lab_s())
    assert abs(held - f_start) < swing / 20
    centre = _line_centre(node, held - 5e3, held + 5e3, 0.1, 40 * US, 40)
    # (unlocked during the scan, the line drifts with the free-running laser: up to
    # 3e5 Hz/s here, ~ kHz over the 6 ms scan)
    held_end = net.transition_729_dds_hz(0, node.lab_s())
    assert min(held, held_end) - 1.0 < centre < max(held, held_end) + 1.0
    assert abs(centre - f_now) > 5e5
    # without the lock the ion's resonance is the free-running one
    _, _, eff_free, free_free, _ = _locked_run(False)
    assert np.array_equal(eff_free, free_free)
    assert np.abs(eff_free - f_start).max() > 1e6
