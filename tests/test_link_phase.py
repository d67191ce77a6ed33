"""Link-phase calibration and its use by the Bell test and heralded entanglement.

Node: the quiet truth of tests.link_rig (no drifts, memory dephasing, motion, phase noise or
dark counts; lossless photon path before the fibre) with a fibre phase of FIBRE_PHASE rad,
calibrated to its true qubit values. The detector-0 heralded state is then
F |psi_phi><psi_phi| + (1 - F) |DD><DD| with psi_phi = (|10> + e^{i FIBRE_PHASE} |01>)/sqrt2,
1 - F the fraction of heralds in which both nodes emitted (|DD> gives uncorrelated
equatorial outcomes). In the link frame: S = F 2 sqrt2, <XX> = F, key-round QBER (1 - F) / 2.
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

from analysis.analyze import analyze_results
from analysis.bell import TSIRELSON
from analysis.results import ResultsFile
from tests import link_rig as L

CALIBRATION = "calibrations/link_phase.py"
BELL = "bell/bell_test.py"
HERALDING = "heralding/heralded_entanglement.py"
FIBRE_PHASE = 2.0
ALPHA, WINDOW, LENGTH = 0.2, 3e-6, 2.0
LINK = dict(alpha=ALPHA, window=WINDOW, link_length=LENGTH)


def load_calibration_module():
    spec = importlib.util.spec_from_file_location("link_phase_cal",
                                                  L.ROOT / "repository" / CALIBRATION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def wrap(turns: float) -> float:
    return (turns + 0.5) % 1.0 - 0.5


def modelled_fidelity(cfg) -> float:
    eta = L.network(cfg).truth(0.0)["a"]["photon_efficiency"] * (
        1 - math.exp(-(WINDOW - 100e-9) / cfg.photon.wavepacket_time_s))
    return 1 - L.heralded_dd_fraction(ALPHA, eta)


def test_fit_recovers_phase_and_visibility_within_their_errors():
    fit_link_phase = load_calibration_module().fit_link_phase
    rng = np.random.default_rng(7)
    n, phi, vis = 4000, -0.37, 0.8
    theta = (np.arange(n) % 8) / 8
    same = rng.random(n) < (1 + vis * np.cos(2 * np.pi * (theta - phi))) / 2
    a = rng.integers(0, 2, n)
    r = fit_link_phase(theta, a, np.where(same, a, 1 - a))
    assert abs(wrap(r["phase"] - phi)) < 5 * r["phase_stderr"] < 0.02
    assert abs(r["visibility"] - vis) < 5 * r["visibility_stderr"] < 0.1
    assert -0.5 <= r["phase"] < 0.5 and r["dof"] == 5
    with pytest.raises(ValueError, match="distinct azimuths"):
        fit_link_phase([0.0, 0.5] * 4, [0] * 8, [0] * 8)


def test_calibrated_bell_run_gives_modelled_s_and_small_qber(tmp_path):
    cfg = L.quiet_link_config(fibre={"phase_offset_rad": FIBRE_PHASE})
    fidelity = modelled_fidelity(cfg)
    cal = L.run(tmp_path, CALIBRATION, cfg, dict(rounds=240, **LINK),
                L.truth_calibrations(cfg)).datasets
    phase = L.persistent(tmp_path).get("calib.link_phase")
    assert phase == cal["link_phase.phase"]
    # convention of ionlink.blocks.bell: phi = fibre phase / 2 pi on this node (its lasers
    # are on resonance, so they add nothing)
    assert abs(wrap(phase - FIBRE_PHASE / (2 * math.pi))) < 5 * cal["link_phase.phase_stderr"]
    assert abs(cal["link_phase.visibility"] - fidelity) < 5 * cal["link_phase.visibility_stderr"]
    assert np.isfinite(np.asarray(cal["calib.link_phase_scan.y"])).all()

    rounds = 600
    outcome = L.run(tmp_path, BELL, cfg, dict(rounds=rounds, batch_rounds=300,
                                              test_fraction=0.75, seed=5, **LINK))
    d = outcome.datasets
    assert d["bell.link_phase_turns"] == phase
    s, s_err = d["bell.chsh_running"], d["bell.chsh_stderr_running"]
    assert abs(s - fidelity * TSIRELSON) < 5 * s_err, (s, s_err, fidelity * TSIRELSON)
    assert s > 2.0
    # key rounds (x, y) = (0, 2): a = b in the link frame, QBER (1 - F) / 2, recomputed
    x, y, a, b, test = (np.asarray(d[k]) for k in ("bell.x", "bell.y", "bell.a", "bell.b",
                                                    "bell.is_test"))
    key = (test == 0) & (x == 0) & (y == 2)
    assert key.sum() == (test == 0).sum() > 50
    qber = float(np.mean(a[key] != b[key]))
    expected_qber = (1 - fidelity) / 2
    assert qber == d["bell.qber_running"]
    assert abs(qber - expected_qber) < 5 * L.binomial_sigma(expected_qber, int(key.sum()))
    assert qber < 0.2
    with ResultsFile(outcome.results_file) as results:
        bell = analyze_results(results)["bell"]
    assert abs(bell["chsh"] - s) < 1e-12 and abs(bell["qber"] - qber) < 1e-12

    # heralded entanglement measures X/Y in the same frame: <XX> = +F
    her = L.run(tmp_path, HERALDING, cfg, dict(attempts=1000, measurement="x",
                                               **LINK)).datasets
    n = her["heralding.heralds"]
    assert her["heralding.link_phase_turns"] == phase
    assert abs(her["heralding.parity"] - fidelity) < 5 * math.sqrt((1 - fidelity**2) / n) + 0.01


def test_bell_test_reads_the_stored_phase(tmp_path):
    """Half a turn off in calib.link_phase turns the state into psi-: S = -F 2 sqrt2."""
    cfg = L.quiet_link_config(fibre={"phase_offset_rad": FIBRE_PHASE})
    cal = L.truth_calibrations(cfg)
    cal["calib.link_phase"] = FIBRE_PHASE / (2 * math.pi) - 0.5
    d = L.run(tmp_path, BELL, cfg, dict(rounds=200, batch_rounds=200, test_fraction=1.0,
                                        seed=2, **LINK), cal).datasets
    s, s_err = d["bell.chsh_running"], d["bell.chsh_stderr_running"]
    assert abs(s + modelled_fidelity(cfg) * TSIRELSON) < 5 * s_err, (s, s_err)


def test_poor_calibration_is_not_stored(tmp_path):
    cfg = L.quiet_link_config(fibre={"phase_offset_rad": FIBRE_PHASE})
    cal = L.truth_calibrations(cfg)
    cal["calib.link_phase"] = 0.125
    d = L.run(tmp_path, CALIBRATION, cfg, dict(rounds=16, points=4, max_phase_error=0.001,
                                               **LINK), cal).datasets
    assert d["link_phase.phase_stderr"] > 0.001
    assert L.persistent(tmp_path).get("calib.link_phase") == 0.125


def test_link_batches_loop_pauses_between_batches_and_stops_when_attempts_run_out():
    """LinkBatches.run_rounds (host loop of the bell test and the link-phase calibration)
    on a fake experiment: batches of batch_rounds, a pause when the scheduler asks (core
    closed, nodes re-initialised next batch), and the end when a batch heralds fewer
    rounds than asked (attempts exhausted)."""
    from ionlink.blocks.link import LinkBatches

    class Fake(LinkBatches):
        def __init__(self):
            self.rounds, self.batch_rounds, self.max_attempts = 25, 10, 1000
            self.measured = self.attempts_total = 0
            self.need_init = False
            self.log = []
            self.pause_asks = iter([True, False, False])
            self.core = type("Core", (), {"close": lambda _: self.log.append("close")})()
            self.scheduler = type("Scheduler", (), {
                "check_pause": lambda _: next(self.pause_asks),
                "pause": lambda _: self.log.append("pause")})()

        def start_batch(self, start, n):
            self.log.append(("start", start, n, self.need_init))

        def run_batch(self, n, attempts_left):
            # 7 attempts per herald
            self.batch_done = min(n, attempts_left // 7)
            self.batch_attempts = 7 * self.batch_done
            self.log.append(("batch", n, attempts_left))

        def finish_batch(self, start, done):
            self.log.append(("finish", start, done))

        def publish(self):
            self.log.append(("publish", self.measured, self.attempts_total))

    f = Fake()
    f.run_rounds()
    assert f.log == [("start", 0, 10, False), ("batch", 10, 1000), ("finish", 0, 10),
                     ("publish", 10, 70), "close", "pause",
                     ("start", 10, 10, True), ("batch", 10, 930), ("finish", 10, 10),
                     ("publish", 20, 140),
                     ("start", 20, 5, True), ("batch", 5, 860), ("finish", 20, 5),
                     ("publish", 25, 175)]
    assert f.measured == 25 and f.attempts_total == 175

    g = Fake()
    g.max_attempts = 100  # 14 rounds' worth of attempts: the second batch ends short
    g.pause_asks = iter([False])
    g.run_rounds()
    assert (g.measured, g.attempts_total) == (14, 98)
    assert g.log[-3:] == [("batch", 10, 30), ("finish", 10, 4), ("publish", 14, 98)]
