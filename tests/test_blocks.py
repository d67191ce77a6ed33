"""The shared kernel building blocks (ionlink.blocks) on the virtual node."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from ionlink.runner import pyon
from ionlink.runner.datasets import DatasetDB
from ionlink.runner.run import RunRequest, run_experiment

ROOT = Path(__file__).resolve().parent.parent

PROBE = '''
import numpy as np
from artiq.experiment import *
from ionlink.blocks import FluorescenceReadout, Rotation729, StatePreparation


class BlockProbe(EnvExperiment):
    """Block probe"""

    def build(self):
        self.setattr_device("core")
        self.setattr_argument("node", EnumerationValue(["a", "b", "c"], "a"))
        self.setattr_argument("sequence", NumberValue(0, type="int", precision=0, step=1))
        self.setattr_argument("shots", NumberValue(40, type="int", precision=0, step=1))
        self.prep = StatePreparation(self, self.node)
        self.rotation = Rotation729(self, self.node)
        self.readout = FluorescenceReadout(self, self.node)

    def prepare(self):
        super().prepare()
        self.outcomes = np.zeros(self.shots, dtype=np.int32)
        self.counts = np.zeros(self.shots, dtype=np.int32)

    @kernel
    def run(self):
        self.core.reset()
        self.prep.init()
        self.rotation.init()
        self.readout.init()
        self.core.break_realtime()
        for i in range(self.shots):
            self.prep.prepare_state()
            if self.sequence == 1:
                self.rotation.pi_pulse()
            elif self.sequence == 2:
                self.rotation.half_pi(0.0)
                self.rotation.half_pi(0.5)
            elif self.sequence == 3:
                self.rotation.half_pi(0.0)
                self.rotation.rotate(-0.5 * 3.141592653589793, 0.0)
            elif self.sequence == 4:
                self.rotation.set_axis(0.25)
                self.rotation.rotate_on_axis(3.141592653589793)
            self.counts[i] = self.readout.detect()
            self.outcomes[i] = 0 if self.readout.is_bright(self.counts[i]) else 1
            self.core.break_realtime()

    def analyze(self):
        self.set_dataset("probe.outcomes", self.outcomes)
        self.set_dataset("probe.counts", self.counts)
        self.set_dataset("probe.settings", [self.rotation.frequency, self.rotation.pi_time,
                                            float(self.rotation.aom_passes),
                                            self.rotation.dds_turns_per_turn,
                                            float(self.readout.threshold),
                                            self.prep.cooling_time])
'''


def run_probe(tmp_path: Path, datasets: dict | None = None, **arguments):
    tmp_path.mkdir(parents=True, exist_ok=True)
    exp = tmp_path / "probe.py"
    exp.write_text(PROBE)
    root = tmp_path / "results"
    if datasets:
        db = DatasetDB(root / "dataset_db.pyon")
        for key, value in datasets.items():
            db.set(key, value, persist=True)
        db.save()
    outcome = run_experiment(RunRequest(exp, arguments=arguments,
                                        device_db=ROOT / "device_db.py", results_root=root))
    return outcome


def dark_fraction(outcome) -> tuple[int, int]:
    o = outcome.datasets["probe.outcomes"]
    return int(np.sum(o)), o.size


def test_unknown_node_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="node must be one of"):
        outcome = run_probe(tmp_path, node="c")
        if outcome.error is not None:
            raise outcome.error


def test_blocks_read_calibrations_with_first_run_fallbacks(tmp_path):
    outcome = run_probe(tmp_path / "first", shots=1)
    assert outcome.error is None
    frequency, pi_time, passes, turns, threshold, cooling = outcome.datasets["probe.settings"]
    assert (frequency, pi_time, passes, turns) == (80e6, 6e-6, 2.0, 0.5)
    calib = {"calib.frequency_729_b": 80.013e6, "calib.pi_time_729_b": 6.5e-6,
             "calib.aom_passes_729_b": 1, "calib.readout_threshold_b": 7,
             "calib.cooling_time_b": 2e-3}
    outcome = run_probe(tmp_path / "calibrated", calib, node="b", shots=1)
    assert outcome.error is None
    assert outcome.datasets["probe.settings"] == [80.013e6, 6.5e-6, 1.0, 1.0, 7.0, 2e-3]


def test_bad_calibration_value_names_the_dataset(tmp_path):
    outcome = run_probe(tmp_path, {"calib.pi_time_729_a": 0.0}, shots=1)
    assert isinstance(outcome.error, ValueError)
    assert "calib.pi_time_729_a" in str(outcome.error)


# Physics on the virtual node, calibrated to node A's truth (transition 80 MHz, thermal pi
# time ~6.6 us). With n = 40 shots, "mostly dark" means more than 70 % dark; if the true dark
# probability were only 0.9 (it is higher), failing that would have probability < 1e-3
# (binomial tail, checked below), and symmetrically for "mostly bright".
CALIBRATED = {"calib.frequency_729_a": 80e6, "calib.pi_time_729_a": 6.6e-6}
SHOTS = 40
LIMIT = 0.7


def test_binomial_limit_is_conservative():
    assert stats.binom.cdf(math.floor(LIMIT * SHOTS), SHOTS, 0.9) < 1e-3


@pytest.mark.parametrize("sequence, dark", [(0, False), (1, True), (2, False), (3, False),
                                            (4, True)])
def test_rotations_and_readout(tmp_path, sequence, dark):
    """0: nothing (bright); 1: pi pulse (dark); 2: pi/2 then pi/2 about the opposite axis
    (optical phase 1/2 turn: back to S, so the phase is optical, not the DDS's); 3: pi/2
    then a negative pi/2 rotation (back to S); 4: pi about y with set_axis/rotate_on_axis."""
    outcome = run_probe(tmp_path, CALIBRATED, sequence=sequence, shots=SHOTS)
    assert outcome.error is None
    k, n = dark_fraction(outcome)
    if dark:
        assert k > LIMIT * n
    else:
        assert n - k > LIMIT * n


# ---------------------------------------------------------------- parallel readout (A, B)
PARALLEL_PROBE = '''
import numpy as np
from artiq.experiment import *
from ionlink.blocks import StatePreparation
from ionlink.blocks.bell import BellBasisMeasurement


class ParallelReadoutProbe(EnvExperiment):
    """Parallel readout probe"""

    def build(self):
        self.setattr_device("core")
        self.setattr_argument("shots", NumberValue(10, type="int", precision=0, step=1))
        self.prep_a = StatePreparation(self, "a")
        self.prep_b = StatePreparation(self, "b")
        self.bell = BellBasisMeasurement(self)

    def prepare(self):
        super().prepare()
        n = self.shots
        # per shot: read() with A dark, read() with B dark, A's gate alone with B's PMT
        # open (counts of both PMTs), and the sequential readout of before
        self.outcomes = np.zeros((2, n), dtype=np.int32)
        self.alone_counts = np.zeros((2, n), dtype=np.int32)
        self.durations_mu = np.zeros((2, n), dtype=np.int64)

    @kernel
    def prepare_both(self):
        self.prep_a.prepare_state()
        self.prep_b.prepare_state()
        delay(20 * us)

    @kernel
    def run(self):
        self.core.reset()
        self.prep_a.init()
        self.prep_b.init()
        self.bell.init()
        self.core.break_realtime()
        for i in range(self.shots):
            for dark in range(2):
                self.prepare_both()
                if dark == 0:
                    self.bell.rotation_a.pi_pulse()
                else:
                    self.bell.rotation_b.pi_pulse()
                t0 = now_mu()
                self.outcomes[dark, i] = self.bell.read()
                if dark == 0:
                    self.durations_mu[0, i] = now_mu() - t0
                delay(20 * us)
            self.prepare_both()
            with parallel:
                end = self.bell.readout_a.gate()
                self.bell.readout_b.pmt.gate_rising(self.bell.readout_b.detection_time)
            self.alone_counts[0, i] = self.bell.readout_a.count(end)
            self.alone_counts[1, i] = self.bell.readout_b.count(end)
            delay(20 * us)
            self.prepare_both()
            t0 = now_mu()
            self.bell.readout_a.measure()
            delay(20 * us)
            self.bell.readout_b.measure()
            self.durations_mu[1, i] = now_mu() - t0
            self.core.break_realtime()

    def analyze(self):
        self.set_dataset("probe.outcomes", self.outcomes)
        self.set_dataset("probe.alone_counts", self.alone_counts)
        self.set_dataset("probe.durations_mu", self.durations_mu)
'''


def gate_intervals(vcd_path: Path) -> dict[str, list[tuple[int, int]]]:
    """{device: [(open, close) mu]} of the TTL input gates (``sens``) in a VCD trace."""
    from vcd.reader import TokenKind, tokenize

    names: dict[str, str] = {}
    scope: list[str] = []
    level: dict[str, int] = {}
    opened: dict[str, int] = {}
    out: dict[str, list[tuple[int, int]]] = {}
    t = 0
    with open(vcd_path, "rb") as f:
        for token in tokenize(f):
            if token.kind is TokenKind.SCOPE:
                scope.append(token.scope.ident)
            elif token.kind is TokenKind.UPSCOPE:
                scope.pop()
            elif token.kind is TokenKind.VAR and token.var.reference == "sens":
                names[token.var.id_code] = scope[-1]
            elif token.kind is TokenKind.CHANGE_TIME:
                t = token.time_change
            elif token.kind is TokenKind.CHANGE_VECTOR and token.vector_change.id_code in names:
                device = names[token.vector_change.id_code]
                value = token.vector_change.value
                if value and not level.get(device):
                    opened[device] = t
                elif not value and level.get(device):
                    out.setdefault(device, []).append((opened[device], t))
                level[device] = value
    return out


def test_parallel_readout_of_both_nodes(tmp_path):
    """BellBasisMeasurement.read gates both PMTs at once and reads each node's own ion:
    the pi-pulsed node reads dark and the other bright, whichever it is; node A's lasers do
    not reach node B's PMT; the gates overlap in the RTIO trace (the sequential readout's
    do not); a read takes one detection time instead of two. Quiet node calibrated to its
    truth (no dark counts, no stray light): a misread needs a D5/2 decay or pi-pulse error
    (p < 1e-2), so at most 2 in 20 shots fail with probability < 2e-3."""
    from tests import link_rig as L

    cfg = L.quiet_link_config()
    exp = tmp_path / "probe.py"
    exp.write_text(PARALLEL_PROBE)
    db = DatasetDB(tmp_path / "dataset_db.pyon")
    for key, value in L.truth_calibrations(cfg, photons=False).items():
        db.set(key, value, persist=True)
    db.save()
    shots = 20
    vcd = tmp_path / "trace.vcd"
    outcome = run_experiment(
        RunRequest(exp, arguments={"shots": shots}, device_db=ROOT / "device_db.py",
                   results_root=tmp_path, dataset_db=tmp_path / "dataset_db.pyon", vcd=vcd),
        world_factory=lambda ddb, s: L.VirtualNetwork(ddb, cfg, s))
    assert outcome.error is None, outcome.error
    assert not outcome.rtio_errors, outcome.rtio_errors
    assert stats.binom.sf(2, shots, 1e-2) < 2e-3
    outcomes = np.asarray(outcome.datasets["probe.outcomes"])
    # 2 a + b: A dark = 2, B dark = 1
    assert np.sum(outcomes[0] != 2) <= 2, outcomes
    assert np.sum(outcomes[1] != 1) <= 2, outcomes
    alone = np.asarray(outcome.datasets["probe.alone_counts"])
    assert np.all(alone[1] == 0), alone        # B's PMT: no light without B's 397
    assert np.sum(alone[0] <= 0) <= 2, alone   # A bright

    gates = gate_intervals(vcd)
    a, b = gates["ttl0"], gates["sat1_ttl0"]     # pmt_a, pmt_b in device_db.py
    detection = round(1e-3 / 1e-9)             # first-run fallback detection time (mu)
    assert all(close - start == detection for start, close in a + b)
    overlapping = [(s, e) for s, e in a if any(s2 < e and s < e2 for s2, e2 in b)]
    # per shot: two read()s and the alone gate overlap, the sequential readout does not
    assert len(a) == len(b) == 4 * shots
    assert len(overlapping) == 3 * shots
    # read()'s gates open together (the alone gate of B opens before A's DDS update)
    assert sum(any(s2 == s for s2, _ in b) for s, _ in overlapping) == 2 * shots

    parallel, sequential = np.asarray(outcome.datasets["probe.durations_mu"])
    # read(): lead 10 us + DDS update + gate + the CPU's last photon reads (~3 us each)
    assert np.all(parallel < 1.1 * detection), parallel
    assert np.all(sequential > 2 * detection), sequential
    assert np.all(sequential - parallel > 0.9 * detection)


# ---------------------------------------------------------------- settings checked in prepare
LINK_PROBE = '''
from artiq.experiment import *
from ionlink.blocks.link import EntanglementLink


class LinkProbe(EnvExperiment):
    """Link settings probe"""

    def build(self):
        self.setattr_device("core")
        self.setattr_argument("settings", PYONValue({}))
        # a dict while run, None while the repository is examined: build() must not care
        self.link = EntanglementLink(self, **(self.settings or {}))

    def run(self):
        self.set_dataset("probe.timing", [int(self.link.emit_a_mu), int(self.link.return_mu),
                                          len(self.link.click_times_mu)])
'''


@pytest.mark.parametrize("settings, message", [
    (dict(alpha=None), "alpha must be a number > 0 and < 1, got None"),
    (dict(alpha=1.0), "alpha must be a number > 0 and < 1, got 1.0"),
    (dict(link_length=-2.0), "link_length must be a number >= 0 km, got -2.0"),
    (dict(window="3us"), "window must be a number > 0 s, got '3us'"),
    (dict(cooling_interval=2.5), "cooling_interval must be an integer >= 1, got 2.5"),
    (dict(click_capacity=0), "click_capacity must be an integer >= 1, got 0"),
    (dict(decision_time=float("nan")), "decision_time must be a number >= 0 s, got nan"),
])
def test_link_settings_are_checked_in_prepare_with_one_line_naming_them(tmp_path, settings,
                                                                        message):
    from ionlink.runner.examine import examine_file

    exp = tmp_path / "link_probe.py"
    exp.write_text(LINK_PROBE)
    examine_file(exp)       # every argument None: builds
    outcome = run_experiment(RunRequest(exp, arguments={"settings": pyon.encode(settings)},
                                        device_db=ROOT / "device_db.py",
                                        results_root=tmp_path / "results"))
    assert isinstance(outcome.error, ValueError)
    assert str(outcome.error) == message


def test_link_settings_given_in_build_reach_prepare(tmp_path):
    exp = tmp_path / "link_probe.py"
    exp.write_text(LINK_PROBE)
    settings = dict(link_length=0.0, min_turnaround=30e-6, click_capacity=7)
    outcome = run_experiment(RunRequest(exp, arguments={"settings": pyon.encode(settings)},
                                        device_db=ROOT / "device_db.py",
                                        results_root=tmp_path / "results"))
    assert outcome.error is None, outcome.error
    emit_a, return_mu, capacity = outcome.datasets["probe.timing"]
    assert return_mu == 30_000 and capacity == 7 and emit_a > 0


# ----------------------------------------------------------------------------- resumable scans

class _Recorder:
    """Fake experiment for ``run_with_pauses``: logs init/step/close/pause calls."""

    def __init__(self, chunk: int, total: int, pause_error: Exception | None = None):
        self.log: list = []
        self.done = 0
        self.chunk, self.total, self.pause_error = chunk, total, pause_error
        recorder = self

        class Core:
            def close(self):
                recorder.log.append("close")

        class Scheduler:
            def pause(self):
                recorder.log.append("pause")
                if recorder.pause_error is not None:
                    raise recorder.pause_error

        self.core, self.scheduler = Core(), Scheduler()

    def init(self):
        self.log.append("init")

    def step(self, start: int) -> int:
        self.log.append(("step", start))
        return min(start + self.chunk, self.total)


def test_run_with_pauses_resumes_where_the_kernel_stopped():
    from ionlink.blocks.scan import run_with_pauses

    exp = _Recorder(chunk=2, total=5)
    run_with_pauses(exp, exp.step, exp.total)
    assert exp.done == 5
    assert exp.log == ["init", ("step", 0), "close", "pause", "init", ("step", 2), "close",
                       "pause", "init", ("step", 4)]
    once = _Recorder(chunk=10, total=5)
    run_with_pauses(once, once.step, once.total)
    assert once.log == ["init", ("step", 0)] and once.done == 5


def test_run_with_pauses_keeps_progress_when_the_pause_ends_the_run():
    from ionlink.blocks.scan import run_with_pauses

    exp = _Recorder(chunk=3, total=10, pause_error=RuntimeError("terminated"))
    with pytest.raises(RuntimeError, match="terminated"):
        run_with_pauses(exp, exp.step, exp.total)
    assert exp.done == 3 and exp.log[-2:] == ["close", "pause"]


EXCITATION_PROBE = '''
import numpy as np
from artiq.experiment import *
from ionlink.blocks import FluorescenceReadout, Rotation729, StatePreparation
from ionlink.blocks.calibration import CalibrationScan
from ionlink.blocks.scan import ExcitationScan, run_with_pauses


class ExcitationProbe(EnvExperiment):
    """Excitation scan probe: submits an urgent run first, so the scan pauses for it"""

    def build(self):
        self.setattr_device("core")
        self.setattr_device("scheduler")
        self.setattr_argument("mismatch", NumberValue(0, type="int", precision=0, step=1))
        self.setattr_argument("minimum", NumberValue(5, type="int", precision=0, step=1))
        self.prep = StatePreparation(self, "a")
        self.rotation = Rotation729(self, "a")
        self.readout = FluorescenceReadout(self, "a")
        self.scan = CalibrationScan(self, "probe_scan", "a")
        self.points = ExcitationScan(self, self.prep, self.rotation, self.readout, self.scan)

    def prepare(self):
        super().prepare()
        # points 0, 1: no pulse (P(D) = 0); 2, 3: pi pulse on resonance; 4: far detuned
        pi = self.rotation.pi_time
        f = self.rotation.frequency
        self.points.configure([f, f, f, f, f + 20 * MHz],
                              [0.0, 0.0, pi, pi, pi][:5 - self.mismatch], 40)
        self.inits = 0
        self.done = 0

    @kernel
    def init(self):
        self.points.init()
        self.count_init()

    @rpc(flags={"async"})
    def count_init(self):
        self.inits += 1

    def run(self):
        self.scan.start(np.arange(5.0), "none", n_shots=40)
        expid = {"file": __file__, "class_name": "Urgent", "arguments": {},
                 "log_level": 30, "repo_rev": None}
        self.set_dataset("probe.urgent_rid", self.scheduler.submit(priority=5, expid=expid))
        run_with_pauses(self, self.points.run_points, 5)
        self.set_dataset("probe.inits", self.inits)

    def analyze(self):
        points = self.scan.measured_points(self.minimum)
        self.set_dataset("probe.measured", -1 if points is None else len(points[0]))


class Urgent(EnvExperiment):
    """Urgent run"""

    def build(self):
        self.setattr_device("scheduler")

    def run(self):
        self.set_dataset("urgent.rid", self.scheduler.rid)
'''


def run_excitation_probe(tmp_path: Path, **arguments):
    exp = tmp_path / "excitation_probe.py"
    exp.write_text(EXCITATION_PROBE)
    return run_experiment(RunRequest(exp, class_name="ExcitationProbe", arguments=arguments,
                                     device_db=ROOT / "device_db.py",
                                     results_root=tmp_path / "results", seed=3))


def test_excitation_scan_pauses_for_an_urgent_run_and_resumes(tmp_path):
    outcome = run_excitation_probe(tmp_path)
    assert outcome.error is None, outcome.error
    rid = int(outcome.datasets["probe.urgent_rid"])
    assert len(list((tmp_path / "results").rglob(f"{rid:09d}-Urgent.h5"))) == 1
    # paused once at the first point, initialised again after the urgent run
    assert int(outcome.datasets["probe.inits"]) == 2
    y = outcome.datasets["calib.probe_scan_a.y"]
    assert np.all(np.isfinite(y))
    # 40 shots per point: no pulse and far detuned give (almost) no D, pi pulses mostly D
    # (readout and preparation errors of a few per cent; 5 sigma of a binomial at p = 0.1)
    limit = 0.1 + 5 * math.sqrt(0.1 * 0.9 / 40)
    assert y[0] < limit and y[1] < limit and y[4] < limit
    assert y[2] > 1 - limit and y[3] > 1 - limit
    assert int(outcome.datasets["probe.measured"]) == 5


def test_too_few_measured_points_are_rejected(tmp_path, capsys):
    outcome = run_excitation_probe(tmp_path, minimum=6)
    assert outcome.error is None, outcome.error
    assert int(outcome.datasets["probe.measured"]) == -1
    assert "calib.probe_scan_a: calibration not stored: only 5 points measured" in \
        capsys.readouterr().out


def test_excitation_scan_needs_one_duration_per_frequency(tmp_path):
    outcome = run_excitation_probe(tmp_path, mismatch=1)
    assert isinstance(outcome.error, ValueError)
    assert "equally many frequencies and durations" in str(outcome.error)


def test_display_unit_gives_artiq_scale():
    """Datasets stored in SI with a display unit carry ARTIQ's scale for it (set_dataset does
    not derive one, unlike NumberValue), so dashboards show 12.5 us, not 1.25e-05 'us'."""
    from ionlink.blocks.calibration import display_unit

    assert display_unit("us") == {"unit": "us", "scale": 1e-6}
    assert display_unit("MHz") == {"unit": "MHz", "scale": 1e6}
    assert display_unit("") == {}
    with pytest.raises(ValueError, match="furlong"):
        display_unit("furlong")
