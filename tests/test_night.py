"""The overnight calibration on the simulated node: the lab clock carried across runs, the
overnight experiment's resubmission and pausing, a short simulated night checked against the
virtual node's drifting truth (with a forced fault), and rollback from the command line."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from ionlink.calgraph import STATE_KEY, GraphState, NodeState
from ionlink.cli import main
from ionlink.night import FAULTS, parse_fault, simulate_night
from ionlink.node import VirtualNetwork, load_node_config
from ionlink.runner.datasets import DatasetDB
from ionlink.runner.labclock import LabClock
from ionlink.runner.results import RidCounter
from ionlink.runner.run import RunRequest, run_experiment
from ionlink.runner.scheduler import RunQueue

ROOT = Path(__file__).resolve().parent.parent
DDB = ROOT / "device_db.py"
OVERNIGHT = ROOT / "repository/overnight/overnight_calibration.py"
READOUT = ROOT / "repository/calibrations/readout_histogram.py"
LINES = {"calib.resonance_397_a": 110.0e6, "calib.linewidth_397_a": 30.0e6,
         "calib.frequency_397_cooling_a": 95.0e6, "calib.frequency_397_detection_a": 102.5e6}


def test_lab_clock_carries_across_runs(tmp_path):
    origins = []

    def factory(ddb, seed):
        world = VirtualNetwork(ddb, load_node_config(None), seed, lab_time_origin_s=5.0)
        origins.append(world)
        return world

    request = RunRequest(READOUT, arguments={"shots": 10}, device_db=DDB,
                         results_root=tmp_path)
    first = run_experiment(request, world_factory=factory)
    second = run_experiment(request, world_factory=factory)
    assert first.error is None and second.error is None
    assert first.node_time_s > 0.01
    # the second node starts where the first one stopped (plus the factory's own origin)
    assert origins[1].lab_time_origin_s == pytest.approx(5.0 + first.node_time_s, abs=1e-9)
    stored = json.loads((tmp_path / "lab_clock.json").read_text())
    assert stored["lab_time_s"] == pytest.approx(first.node_time_s + second.node_time_s,
                                                 abs=1e-9)


def test_lab_clock_jumps_forward_only_and_drives_a_virtual_wall_clock(tmp_path):
    from ionlink.runner.labclock import virtual_wall_clock

    clock = LabClock(tmp_path)
    clock.advance_to(3600.0)
    clock.advance_to(10.0)  # the past: no effect
    assert LabClock(tmp_path).lab_time_s == 3600.0
    real = time.time
    with virtual_wall_clock(clock):
        assert time.time() == pytest.approx(clock.epoch_s + 3600.0)
    assert time.time is real
    (tmp_path / "lab_clock.json").write_text("{}")
    with pytest.raises(ValueError, match="lab clock file .* is unreadable"):
        LabClock(tmp_path)


def _seed_db(root: Path, state: dict[str, NodeState]) -> None:
    db = DatasetDB(root / "dataset_db.pyon")
    for key, value in LINES.items():
        db.set(key, value, persist=True)
    db.set(STATE_KEY, GraphState(state).to_json(), persist=True)
    db.save()


def _overnight_request(root: Path, **arguments) -> RunRequest:
    args = {"graph_targets": "lines_a", "graph_shots": "{'lines_a': {'shots': 2}}"}
    args.update(arguments)
    return RunRequest(OVERNIGHT, arguments=args, device_db=DDB, results_root=root,
                      priority=-10)


def test_overnight_trusts_fresh_nodes_and_resubmits_itself(tmp_path):
    now = time.time()
    _seed_db(tmp_path, {"lines_a": NodeState(last_ok=now, last_calibrated=now)})
    queue = RunQueue(RidCounter(tmp_path).get)
    request = _overnight_request(tmp_path, graph_interval=600.0)
    out = run_experiment(request, queue=queue)
    assert out.error is None
    log = json.loads(out.datasets["calgraph.log"])
    assert [(e["node"], e["step"], e["result"]) for e in log] == [
        ("lines_a", "check_state", "pass")]
    (nxt,) = queue.runs.values()
    assert nxt.status == "pending" and nxt.rid == out.rid + 1
    assert nxt.pipeline_name == "main" and nxt.priority == -10
    assert nxt.expid["file"] == str(OVERNIGHT)
    assert nxt.expid["arguments"] == request.arguments
    assert nxt.due_date == pytest.approx(out.datasets["calgraph.next_due"])
    assert 590.0 < nxt.due_date - now < 660.0
    # past graph_until: no resubmission
    queue2 = RunQueue(RidCounter(tmp_path).get)
    out2 = run_experiment(_overnight_request(tmp_path, graph_until=now - 1.0), queue=queue2)
    assert out2.error is None and queue2.runs == {}


def test_overnight_pauses_for_a_higher_priority_user_experiment(tmp_path):
    user = tmp_path / "user_exp.py"
    user.write_text(
        "from artiq.experiment import *\n\n\n"
        "class UserExperiment(EnvExperiment):\n"
        "    def build(self):\n"
        "        self.setattr_device('scheduler')\n\n"
        "    def run(self):\n"
        "        self.set_dataset('user.ran_in_rid', self.scheduler.rid, persist=True)\n")
    old = time.time() - 10 * 3600.0  # lines_a timed out: it will be measured
    _seed_db(tmp_path, {"lines_a": NodeState(last_ok=old, last_calibrated=old)})
    queue = RunQueue(RidCounter(tmp_path).get)
    request = _overnight_request(tmp_path, graph_resubmit=False)
    rid_user = queue.submit("main", {"file": str(user), "class_name": "UserExperiment",
                                     "arguments": {}}, priority=0, due_date=None)
    out = run_experiment(request, queue=queue)
    assert out.error is None
    db = DatasetDB(tmp_path / "dataset_db.pyon")
    assert db.get("user.ran_in_rid") == rid_user
    assert queue.runs == {}
    log = json.loads(out.datasets["calgraph.log"])
    assert ("lines_a", "check_data") in [(e["node"], e["step"]) for e in log]
    # the paused run's node went on after the user's run: lab time is monotonic
    assert LabClock(tmp_path).lab_time_s >= out.node_time_s


def test_fault_names_are_checked():
    assert parse_fault("laser_397_unlocked@3h").at_s == 3 * 3600
    assert parse_fault("detector_dead@90m").at_s == 5400
    with pytest.raises(ValueError, match="unknown fault 'laser_unplugged'"):
        parse_fault("laser_unplugged@1h")
    with pytest.raises(ValueError, match="NAME@TIME"):
        parse_fault("detector_dead")
    with pytest.raises(ValueError, match="not like 3h"):
        parse_fault("detector_dead@soon")
    assert set(FAULTS) >= {"laser_397_unlocked", "detector_dead"}


def test_short_night_tracks_the_drifting_truth_and_reports_a_fault(tmp_path, capsys):
    hours, fault_at = 1.5, 3600.0
    result = simulate_night(hours, tmp_path, interval_s=1800.0, device_db=DDB,
                            targets="lines_a", graph_shots={"lines_a": {"shots": 5}},
                            faults=[parse_fault("laser_397_unlocked@1h")])
    rep = result.report
    assert len(result.outcomes) == 3 and [o.error for o in result.outcomes] == [None] * 3
    start = rep["window"]["start"]
    res = rep["parameters"]["calib.resonance_397_a"]
    tol = res["tolerance"]
    assert tol == 2.0e6
    stored = res["stored"]
    # before the fault: every true value is matched by the stored one within the spec
    checked = 0
    for t, true in res["reference"]:
        if stored[0][0] <= t and t - start < fault_at:  # from the first calibration on
            value = [v for ts, v in stored if ts <= t][-1]
            assert abs(value - true) <= tol, (t - start, value, true)
            checked += 1
    assert checked >= 10
    assert res["healthy_fraction_within_tolerance"] == 1.0
    # the truth did move by more than the check's noise over the night
    ref = [v for t, v in res["reference"] if t - start < fault_at]
    assert max(ref) - min(ref) > 1e4
    # the fault: diagnosed at the 397 line, reported, and the good value kept
    assert [f["node"] for f in rep["faults"]] == ["lines_a"]
    assert rep["faults"][0]["time"] - start >= fault_at
    last_good = [v for ts, v in stored if ts - start < fault_at][-1]
    assert [v for ts, v in stored][-1] == last_good
    after = [(e["node"], e["step"], e["result"]) for e in rep["failures"]
             if e["time"] - start >= fault_at]
    assert ("lines_a", "check_data", "bad_data") in after
    assert ("lines_a", "calibrate", "failed") in after or (
        "lines_a", "reject", "rejected") in after
    page = result.html.read_text()
    assert "data:image/png;base64," in page and "laser_397_unlocked" in page
    assert json.loads(result.json.read_text())["faults"][0]["node"] == "lines_a"

    # rollback from the command line: to the first value of the night, then undo that
    db_path = tmp_path / "dataset_db.pyon"
    history = json.loads(DatasetDB(db_path).get("provenance.calib.resonance_397_a"))
    first = [e for e in history if e["action"] == "calibrated"][0]
    before = DatasetDB(db_path).get("calib.resonance_397_a")
    assert main(["calib", "rollback", "calib.resonance_397_a", "--to", str(first["rid"]),
                 "-o", str(tmp_path)]) == 0
    assert DatasetDB(db_path).get("calib.resonance_397_a") == first["value"]
    assert main(["calib", "rollback", "calib.resonance_397_a", "-o", str(tmp_path)]) == 0
    assert DatasetDB(db_path).get("calib.resonance_397_a") == before
    last = json.loads(DatasetDB(db_path).get("provenance.calib.resonance_397_a"))[-1]
    assert last["action"] == "rollback" and last["value"] == before
    capsys.readouterr()
    assert main(["calib", "rollback", "calib.nothing", "-o", str(tmp_path)]) == 2
    assert "no recorded history" in capsys.readouterr().err
    assert main(["calib", "rollback", "calib.resonance_397_a", "--to", "999",
                 "-o", str(tmp_path)]) == 2
    assert "rid 999 never set" in capsys.readouterr().err


def test_unlocked_397_fails_the_readout_check_and_is_traced_to_the_line(tmp_path):
    """The 397 laser unlocked while the line was still trusted: the readout check must not
    accept histograms of background alone; the graph traces the bad data to the 397 line,
    reports it and keeps the stored threshold."""
    now = time.time()
    _seed_db(tmp_path, {"lines_a": NodeState(last_ok=now, last_calibrated=now),
                        "readout_a": NodeState(last_ok=now - 5 * 3600.0)})
    db = DatasetDB(tmp_path / "dataset_db.pyon")
    db.set("calib.readout_threshold_a", 17, persist=True)
    db.save()
    cfg = load_node_config(None).replace(**FAULTS["laser_397_unlocked"][1])

    def factory(ddb, seed):
        return VirtualNetwork(ddb, cfg, seed)

    request = _overnight_request(tmp_path, graph_targets="readout_a", graph_resubmit=False,
                                 graph_shots="{'lines_a': {'shots': 2}, "
                                             "'readout_a': {'shots': 100}}")
    out = run_experiment(request, world_factory=factory)
    assert out.error is None
    steps = [(e["node"], e["step"], e["result"]) for e in json.loads(out.datasets["calgraph.log"])]
    assert ("readout_a", "check_data", "bad_data") in steps
    assert ("lines_a", "diagnose", "bad_data") in steps
    assert ("readout_a", "calibrate", "ok") not in steps
    assert [f["node"] for f in json.loads(out.datasets["calgraph.faults"])] == ["lines_a"]
    db = DatasetDB(tmp_path / "dataset_db.pyon")
    assert db.get("calib.readout_threshold_a") == 17
    assert db.get("calib.resonance_397_a") == LINES["calib.resonance_397_a"]


def test_link_phase_node_with_both_ions_recalibrates_a_stale_phase(tmp_path):
    """Graph run with ions a,b where only the link phase is stale (its dependencies were
    just checked): the check (200 heralded rounds) finds the stored phase out of spec, the
    calibration (400 rounds) is verified and stored with its standard error, and it
    matches the fibre phase of the node's truth."""
    import math

    from tests import link_rig

    cfg = load_node_config(None)
    calib = link_rig.truth_calibrations(cfg)
    calib = {k: v for k, v in calib.items() if "readout_threshold" not in k}
    world = VirtualNetwork(link_rig.load_device_db(DDB), cfg, 0)
    true_turns = world.truth(0.0)["fibre_phase_rad"] / (2 * math.pi)
    stale = (true_turns + 0.25 + 0.5) % 1.0 - 0.5
    now = time.time()
    fresh = NodeState(last_ok=now, last_calibrated=now - 60.0)
    deps = ["lines", "readout", "freq729", "pitime", "fibre_delay", "wavepacket", "photon_eff"]
    state = {f"{n}_{i}": fresh for n in deps for i in "ab"}
    state["heralding"] = fresh
    state["link_phase"] = NodeState(last_ok=now - 3600.0, last_calibrated=now - 3600.0)
    _seed_db(tmp_path, state)
    db = DatasetDB(tmp_path / "dataset_db.pyon")
    for key, value in {**calib, "calib.link_phase": stale}.items():
        db.set(key, value, persist=True)
    db.save()
    out = run_experiment(_overnight_request(tmp_path, graph_ions="a,b", graph_shots="{}",
                                            graph_targets="link_phase", graph_resubmit=False),
                         world_factory=lambda ddb, seed: VirtualNetwork(ddb, cfg, seed))
    assert out.error is None
    log = json.loads(out.datasets["calgraph.log"])
    steps = [(e["node"], e["step"], e["result"]) for e in log if e["node"] == "link_phase"]
    assert steps == [("link_phase", "check_state", "fail"),
                     ("link_phase", "check_data", "out_of_spec"),
                     ("link_phase", "calibrate", "ok"), ("link_phase", "verify", "in_spec")]
    assert all(e["node"] == "link_phase" or e["step"] == "check_state" for e in log)
    db = DatasetDB(tmp_path / "dataset_db.pyon")
    stored = db.get("calib.link_phase")
    entry = json.loads(db.get("provenance.calib.link_phase"))[-1]
    assert entry["previous"] == pytest.approx(stale) and entry["value"] == stored
    se = entry["error"]
    assert 0 < se < 0.02
    # the fibre phase drifts ~0.03 rad (0.005 turns) rms over the ~10 s of the run
    wrapped = (stored - true_turns + 0.5) % 1.0 - 0.5
    assert abs(wrapped) < 4 * se + 0.01, (stored, true_turns, se)
