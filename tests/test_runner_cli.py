"""ionlink run / scan end to end: results layout, rids, persistent datasets, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import pytest

from ionlink.cli import main
from ionlink.runner.run import RunRequest, run_experiment
from ionlink.sim.world import PoissonInputs

ROOT = Path(__file__).resolve().parent.parent

EXPERIMENT = textwrap.dedent('''
    from artiq.experiment import *


    class CountPMT(EnvExperiment):
        """Count the PMT

        Gates the PMT a few times and records the counts.
        """

        def build(self):
            self.setattr_device("core")
            self.setattr_device("pmt_a")
            self.setattr_argument("n", NumberValue(3, precision=0, step=1, type="int"),
                                  tooltip="gates")
            self.setattr_argument("fail", BooleanValue(False))

        @kernel
        def count(self, i):
            self.core.break_realtime()
            end = self.pmt_a.gate_rising(20 * us)
            self.mutate_dataset("counts", i, self.pmt_a.count(end))

        def run(self):
            self.set_dataset("counts", [0] * self.n, broadcast=True)
            self.set_dataset("runs_so_far", self.get_dataset("runs_so_far", 0) + 1,
                             persist=True)
            for i in range(self.n):
                self.count(i)
            if self.fail:
                raise RuntimeError("asked to fail")
''')


@pytest.fixture
def experiment(tmp_path):
    path = tmp_path / "count_pmt.py"
    path.write_text(EXPERIMENT)
    return path


def poisson_world(ddb, seed):
    return PoissonInputs({"ttl0": 2e5}, seed=seed)


def run(experiment, tmp_path, **arguments):
    request = RunRequest(experiment, arguments=arguments, device_db=ROOT / "device_db.py",
                         results_root=tmp_path / "results")
    return run_experiment(request, world_factory=poisson_world)


def test_results_file_layout_and_rids(experiment, tmp_path):
    first = run(experiment, tmp_path, n=4)
    second = run(experiment, tmp_path)
    assert first.error is None and second.rid == first.rid + 1
    path = first.results_file
    assert path.name == f"{first.rid:09d}-CountPMT.h5"
    assert path.parent.parent.parent == tmp_path / "results"
    with h5py.File(path) as f:
        assert set(f) >= {"artiq_version", "rid", "start_time", "run_time", "expid",
                          "datasets", "archive"}
        expid = json.loads(f["expid"][()])
        assert expid["class_name"] == "CountPMT" and expid["arguments"] == {"n": 4}
        counts = f["datasets"]["counts"][()]
        assert len(counts) == 4 and all(c > 0 for c in counts)   # 2e5/s over 20 us
    # persistent dataset survives between runs
    with h5py.File(second.results_file) as f:
        assert f["datasets"]["runs_so_far"][()] == 2


def test_results_kept_when_run_raises(experiment, tmp_path):
    outcome = run(experiment, tmp_path, fail=True)
    assert isinstance(outcome.error, RuntimeError)
    with h5py.File(outcome.results_file) as f:
        assert len(f["datasets"]["counts"][()]) == 3


def test_vcd_trace(experiment, tmp_path):
    vcd = tmp_path / "trace.vcd"
    request = RunRequest(experiment, device_db=ROOT / "device_db.py",
                         results_root=tmp_path / "results", vcd=vcd)
    run_experiment(request, world_factory=poisson_world)
    text = vcd.read_text()
    assert "$timescale 1 ns $end" in text and "ttl0" in text and " sens " in text


@pytest.mark.parametrize("setup, args, message", [
    (None, ["missing.py"], "does not exist"),
    ("syntax", ["bad.py"], "does not import"),
    ("device", ["bad.py"], "not in the device database"),
    ("class", ["bad.py"], "has no simulated twin"),
    (None, ["EXP", "n=[1,"], "n=[1,"),
    (None, ["EXP", "bogus=1"], "bogus"),
])
def test_bad_input_one_line_error(experiment, tmp_path, capsys, monkeypatch, setup, args,
                                  message):
    monkeypatch.chdir(tmp_path)
    ddb = ROOT / "device_db.py"
    bad = tmp_path / "bad.py"
    if setup == "syntax":
        bad.write_text("from artiq.experiment import *\nclass X(EnvExperiment:\n")
    elif setup == "device":
        bad.write_text(EXPERIMENT.replace('"pmt_a"', '"pmt_z"'))
    elif setup == "class":
        ddb = tmp_path / "device_db.py"
        ddb.write_text((ROOT / "device_db.py").read_text()
                       + "\ndevice_db['ttl0']['class'] = 'TTLWarpDrive'\n")
        bad.write_text(EXPERIMENT)
    args = [str(experiment) if a == "EXP" else a for a in args]
    code = main(["run", "--device-db", str(ddb), "-o", str(tmp_path / "r"), *args])
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert message in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_scan_lists_experiments(experiment, capsys):
    assert main(["scan", str(experiment.parent)]) == 0
    out = capsys.readouterr().out
    assert "CountPMT" in out and "Count the PMT" in out and "n:" in out


def test_real_artiq_is_never_shadowed(tmp_path):
    fake = tmp_path / "site" / "artiq"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("REAL = True\n")
    code = "import ionlink, artiq; print(getattr(artiq, 'REAL', False))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(tmp_path / "site"), "PATH": ""},
                         check=True).stdout
    assert out.strip() == "True"


PAUSING = textwrap.dedent('''
    from artiq.experiment import *


    class Background(EnvExperiment):
        """Background run that yields"""

        def build(self):
            self.setattr_device("scheduler")
            self.setattr_argument("urgent_file", StringValue(""))

        def run(self):
            expid = {"file": self.urgent_file, "class_name": "Urgent", "arguments": {},
                     "log_level": 30, "repo_rev": None}
            rid = self.scheduler.submit(priority=5, expid=expid)
            self.set_dataset("submitted_rid", rid)
            self.set_dataset("paused", self.scheduler.check_pause())
            self.scheduler.pause()
            self.set_dataset("after_pause", True)


    class Urgent(EnvExperiment):
        """Urgent run"""

        def build(self):
            self.setattr_device("scheduler")

        def run(self):
            self.set_dataset("my_rid", self.scheduler.rid)
''')


def test_pause_runs_higher_priority_submission(tmp_path):
    path = tmp_path / "pausing.py"
    path.write_text(PAUSING)
    request = RunRequest(path, class_name="Background",
                         arguments={"urgent_file": str(path)},
                         device_db=ROOT / "device_db.py", results_root=tmp_path / "results")
    outcome = run_experiment(request, world_factory=poisson_world)
    assert outcome.error is None
    with h5py.File(outcome.results_file) as f:
        rid = int(f["datasets"]["submitted_rid"][()])
        assert f["datasets"]["paused"][()] and f["datasets"]["after_pause"][()]
    urgent = list((tmp_path / "results").rglob(f"{rid:09d}-Urgent.h5"))
    assert len(urgent) == 1
    with h5py.File(urgent[0]) as f:
        assert int(f["datasets"]["my_rid"][()]) == rid
