"""Host-side managers of ``ionlink run``: PYON, arguments, datasets, results, scheduler,
examine. Processors come from ``artiq.language`` (the stand-in here, real ARTIQ where
installed), as the runner sees them."""

import ionlink  # noqa: F401 - installs the artiq stand-in where ARTIQ is absent

# isort: split

import logging
import math
import time
from collections import OrderedDict
from fractions import Fraction

import h5py
import numpy as np
import pytest
from artiq.language.core import TerminationRequested
from artiq.language.environment import BooleanValue, DefaultMissing, NumberValue
from artiq.language.scan import RangeScan, Scannable

from ionlink.runner import pyon
from ionlink.runner.arguments import (
    ArgumentError,
    ProcessArgumentManager,
    TraceArgumentManager,
    parse_arguments,
)
from ionlink.runner.datasets import DatasetDB, DatasetManager
from ionlink.runner.examine import examine_file, examine_repository
from ionlink.runner.results import (
    ResultsWriter,
    RidCounter,
    read_expid,
    results_path,
    write_results,
)
from ionlink.runner.scheduler import RunQueue, SimScheduler

# --- PYON --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [
    None, True, False, 0, -7, 2.5, 1e-300, 1 + 2j, "text \"q\" \\ \n", b"\x00ab",
    "nul \x00 tab \t esc \x1b \u00e9 \U0001F600",
    (), (1,), (1, "a"), [1, [2.0]], {1, 2}, set(), {"a": 1, (1, 2): [None]},
    slice(1, None, 2), Fraction(2, 3), OrderedDict([("x", 1), ("y", 2)]),
])
def test_pyon_round_trip(value):
    text = pyon.encode(value)
    assert pyon.decode(text) == value
    assert type(pyon.decode(text)) is type(value)
    assert pyon.decode(pyon.encode(value, pretty=True)) == value


def test_pyon_special_floats_and_numpy():
    assert pyon.encode(float("inf")) == "inf" and pyon.decode("-inf") == -math.inf
    assert math.isnan(pyon.decode("nan"))
    array = np.arange(12, dtype=np.int32).reshape(3, 4)[:, ::2]
    decoded = pyon.decode(pyon.encode(array))
    assert decoded.dtype == np.int32 and np.array_equal(decoded, array)
    assert pyon.encode(np.float64(1.5)) == 'npscalar("<f8", b"AAAAAAAA+D8=")'
    assert pyon.decode(pyon.encode(np.uint16(9))) == np.uint16(9)
    assert pyon.encode(np.array([1.0])) == 'nparray((1, ), "<f8", b"AAAAAAAA8D8=")'


def test_pyon_reads_json_and_sipyco_text():
    assert pyon.decode('{"ty": "RangeScan", "start": 0, "stop": 1e-6, "npoints": 11, '
                       '"ok": true, "none": null}') == {
        "ty": "RangeScan", "start": 0, "stop": 1e-6, "npoints": 11, "ok": True, "none": None}
    assert pyon.encode({"a": (1, ), "b": None}) == '{"a": (1, ), "b": null}'


@pytest.mark.parametrize("text, message", [
    ("[1,", "malformed PYON"),
    ("", "empty"),
    ('__import__("os").system("true")', "only calls to known constructors"),
    ("open('x')", "unknown constructor 'open'"),
    ("x", "unknown name 'x'"),
    ("1 + 1", "arithmetic is not allowed"),
    ("{[1]: 2}", "unhashable"),
    ('nparray((2,), "<f8", b"!!")', "invalid nparray"),
])
def test_pyon_malformed_input_gives_clear_error(text, message):
    with pytest.raises(pyon.PYONDecodeError, match=message):
        pyon.decode(text)


def test_pyon_has_one_decoder_shared_with_analysis_and_the_sipyco_stand_in():
    from analysis import pyon as analysis_pyon
    from ionlink.sipyco_api import pyon as sipyco_pyon

    assert pyon.decode is analysis_pyon.decode is sipyco_pyon.decode
    assert pyon.PYONDecodeError is analysis_pyon.PYONDecodeError is sipyco_pyon.PYONDecodeError
    assert issubclass(pyon.PYONDecodeError, ValueError)
    assert pyon.encode("a\x00b") == '"a\\u0000b"'  # a raw NUL would not parse


def test_pyon_refuses_unknown_objects():
    with pytest.raises(TypeError, match="not PYON serializable"):
        pyon.encode(object())


def test_pyon_file_round_trip(tmp_path):
    path = tmp_path / "x.pyon"
    pyon.store_file(path, {"a": np.ones(2)})
    assert np.array_equal(pyon.load_file(path)["a"], np.ones(2))
    assert list(tmp_path.iterdir()) == [path]


# --- arguments ---------------------------------------------------------------------------


def test_parse_arguments_like_artiq_run():
    parsed = parse_arguments(['n=100', 'name="ion"', 'x=1e-6',
                              'scan={"ty": "RangeScan", "start": 0, "stop": 1e-6, '
                              '"npoints": 11}', 'eq="a=b"'])
    assert parsed == {"n": 100, "name": "ion", "x": 1e-6, "eq": "a=b",
                      "scan": {"ty": "RangeScan", "start": 0, "stop": 1e-6, "npoints": 11}}


@pytest.mark.parametrize("item, message", [
    ("n", "'n' is not of the form KEY=VALUE"),
    ("=5", "'=5' is not of the form"),
    ("name=ion", "'name=ion': VALUE is not valid PYON"),
])
def test_parse_arguments_errors_name_the_item(item, message):
    with pytest.raises(ArgumentError, match=message):
        parse_arguments(["ok=1", item])


def test_process_argument_manager_values_defaults_and_unknown_keys():
    manager = ProcessArgumentManager({"n": 5, "scan": {"ty": "RangeScan", "start": 0,
                                                       "stop": 1, "npoints": 3},
                                      "typo": 1, "other": 2})
    assert manager.get("n", NumberValue(1, precision=0, step=1), None, None) == 5
    assert isinstance(manager.get("scan", Scannable(), "g", "t"), RangeScan)
    assert manager.get("flag", BooleanValue(True), None, None) is True
    with pytest.raises(DefaultMissing, match="'flag2' was not supplied and has no default"):
        manager.get("flag2", BooleanValue(), None, None)
    with pytest.raises(ArgumentError, match="Supplied argument\\(s\\) not queried in "
                                            "experiment: other, typo"):
        manager.check_unprocessed_arguments()


def test_process_argument_manager_names_rejected_value():
    manager = ProcessArgumentManager({"flag": 1})
    with pytest.raises(ArgumentError, match="argument 'flag' = 1: Invalid BooleanValue"):
        manager.get("flag", BooleanValue(), None, None)


def test_trace_argument_manager_records_descriptions_and_answers_none():
    # ARTIQ's master examines with every argument None, default or not
    manager = TraceArgumentManager()
    assert manager.get("n", NumberValue(3, precision=0, step=1), "G", "tip") is None
    assert manager.get("flag", BooleanValue(), None, None) is None
    assert list(manager.argument_descriptions()) == ["n", "flag"]
    description, group, tooltip = manager.argument_descriptions()["n"]
    assert description["ty"] == "NumberValue" and (group, tooltip) == ("G", "tip")


# --- datasets ----------------------------------------------------------------------------


def test_persist_implies_broadcast_and_db_saves_only_persistent(tmp_path):
    db = DatasetDB(tmp_path / "dataset_db.pyon")
    manager = DatasetManager(db)
    seen = []
    manager.on_broadcast.append(seen.append)
    manager.set("cal.freq", 1.5, {"unit": "MHz"}, broadcast=False, persist=True, archive=True)
    manager.set("live", [1], {}, broadcast=True, persist=False, archive=False)
    manager.set("local", 3, {}, broadcast=False, persist=False, archive=True)
    assert db.get("cal.freq") == 1.5 and db.is_persistent("cal.freq")
    assert db.get("live") == [1] and "local" not in db
    assert [change["key"] for change in seen] == ["cal.freq", "live"]
    db.save()
    reloaded = DatasetDB(tmp_path / "dataset_db.pyon")
    assert reloaded.keys() == ["cal.freq"]
    assert reloaded.get_metadata("cal.freq") == {"unit": "MHz"}


def test_warning_when_dataset_kept_nowhere(caplog):
    manager = DatasetManager(DatasetDB("unused.pyon"))
    with caplog.at_level(logging.WARNING):
        manager.set("lost", 1, {}, broadcast=False, persist=False, archive=False)
    assert "Dataset 'lost' will not be stored" in caplog.text


def test_unbroadcasting_a_dataset_removes_it_from_db(tmp_path):
    db = DatasetDB(tmp_path / "db.pyon")
    manager = DatasetManager(db)
    manager.set("x", 1, {}, broadcast=True, persist=False, archive=True)
    manager.set("x", 2, {}, broadcast=False, persist=False, archive=True)
    assert "x" not in db and manager.get("x") == 2


def test_mutate_and_append_publish_broadcast_changes(tmp_path):
    db = DatasetDB(tmp_path / "db.pyon")
    manager = DatasetManager(db)
    seen = []
    manager.on_broadcast.append(seen.append)
    manager.set("arr", np.zeros((3, 4)), {}, broadcast=True, persist=False, archive=True)
    manager.mutate("arr", 1, np.ones(4))
    manager.mutate("arr", ((0, 1), (2, 4)), 7.0)
    manager.mutate("arr", (2, 3), 5.0)
    expected = np.zeros((3, 4))
    expected[1] = 1
    expected[0:1, 2:4] = 7
    expected[2:3] = 5
    assert np.array_equal(manager.get("arr"), expected)
    assert np.array_equal(db.get("arr"), expected)
    assert db.get("arr") is not manager.local["arr"]
    manager.set("points", [], {}, broadcast=True, persist=False, archive=True)
    manager.append_to("points", 4)
    assert db.get("points") == [4] and manager.get("points") == [4]
    assert [change["action"] for change in seen] == ["set", "mutate", "mutate", "mutate",
                                                     "set", "append"]
    with pytest.raises(KeyError, match="Cannot mutate nonexistent dataset 'nope'"):
        manager.mutate("nope", 0, 1)


def test_get_reads_local_then_db_and_records_archive(tmp_path):
    db = DatasetDB(tmp_path / "db.pyon")
    db.set("stored", [1, 2], persist=True, metadata={"unit": "us"})
    manager = DatasetManager(db)
    value = manager.get("stored", archive=True)
    value.append(3)
    assert db.get("stored") == [1, 2]
    assert manager.archive == {"stored": [1, 2, 3]}
    manager.get("stored", archive=False)
    assert list(manager.archive) == ["stored"]
    manager.set("mine", 5, {}, broadcast=False, persist=False, archive=True)
    assert manager.get("mine", archive=True) == 5 and "mine" not in manager.archive
    assert manager.get_metadata("stored") == {"unit": "us"}
    with pytest.raises(KeyError):
        manager.get("absent")


# --- results -----------------------------------------------------------------------------


def make_run(tmp_path):
    db = DatasetDB(tmp_path / "db.pyon")
    db.set("cal.pi_time", 1e-6, persist=True, metadata={"unit": "us", "precision": 3})
    manager = DatasetManager(db)
    manager.set("counts.bright", np.arange(5), {"unit": "Hz", "scale": 1.0, "precision": 1},
                broadcast=False, persist=False, archive=True)
    manager.get("cal.pi_time", archive=True)
    return manager


EXPID = {"file": "repository/ramsey.py", "class_name": "Ramsey", "arguments": {"n": 3},
         "log_level": 30, "repo_rev": "N/A"}


def test_results_file_has_artiq_master_layout(tmp_path):
    manager = make_run(tmp_path)
    start = 1_700_000_000.25
    path = results_path(tmp_path / "results", start, 42, "Ramsey")
    local = time.localtime(start)
    assert path == (tmp_path / "results" / time.strftime("%Y-%m-%d", local)
                    / time.strftime("%H", local) / "000000042-Ramsey.h5")
    write_results(path, manager, 42, start, start + 1.5, EXPID, "9.0+ionlink")
    with h5py.File(path, "r") as f:
        assert set(f) == {"artiq_version", "rid", "start_time", "run_time", "expid",
                          "datasets", "archive"}
        assert f["artiq_version"][()].decode() == "9.0+ionlink"
        assert f["rid"][()] == 42 and f["start_time"][()] == start
        assert f["run_time"][()] == start + 1.5 and f["run_time"].dtype == np.float64
        assert read_expid(f) == EXPID
        assert list(f["datasets"]) == ["counts.bright"]
        bright = f["datasets"]["counts.bright"]
        assert np.array_equal(bright[()], np.arange(5))
        assert dict(bright.attrs) == {"unit": "Hz", "scale": 1.0, "precision": 1}
        assert f["archive"]["cal.pi_time"][()] == 1e-6
        assert f["archive"]["cal.pi_time"].attrs["unit"] == "us"


def test_results_written_even_when_a_dataset_cannot_be_stored(tmp_path):
    manager = make_run(tmp_path)
    manager.set("bad", {"a": 1}, {}, broadcast=False, persist=False, archive=True)
    path = tmp_path / "r.h5"
    with pytest.raises(TypeError, match="dataset 'bad' of type 'dict'"):
        write_results(path, manager, 1, 0.0, None, EXPID, "v")
    with h5py.File(path, "r") as f:
        assert "counts.bright" in f["datasets"] and "bad" not in f["datasets"]
        assert "run_time" not in f


def test_results_writer_checkpoints_leave_valid_files(tmp_path):
    manager = make_run(tmp_path)
    writer = ResultsWriter(tmp_path / "run.h5", manager, 7, 10.0, EXPID, "v")
    writer.checkpoint()
    with h5py.File(tmp_path / "run.h5", "r") as f:
        assert "run_time" not in f and list(f["datasets"]) == ["counts.bright"]
    writer.run_time = 11.0
    manager.set("more", 1.0, {}, broadcast=False, persist=False, archive=True)
    writer.close()
    with h5py.File(tmp_path / "run.h5", "r") as f:
        assert sorted(f["datasets"]) == ["counts.bright", "more"] and f["run_time"][()] == 11
    with pytest.raises(RuntimeError, match="already closed"):
        writer.checkpoint()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.h5"]


def test_rid_counter_increases_across_instances_and_recovers_from_results(tmp_path):
    root = tmp_path / "results"
    assert [RidCounter(root).get(), RidCounter(root).get()] == [0, 1]
    assert RidCounter(root).last() == 1
    (root / "last_rid.pyon").unlink()
    hour = root / "2024-01-02" / "13"
    hour.mkdir(parents=True)
    (hour / "000000041-Ramsey.h5").touch()
    assert RidCounter(root).get() == 42


# --- scheduler ---------------------------------------------------------------------------


def make_scheduler(clock):
    rids = iter(range(100, 200))
    queue = RunQueue(lambda: next(rids), clock=clock)
    queue.add_running(1, "main", {"class_name": "Night"}, priority=0)
    return queue, SimScheduler(queue, 1, "main", {"class_name": "Night"}, 0)


def test_submit_defaults_to_current_run_and_get_status():
    queue, scheduler = make_scheduler(lambda: 1000.0)
    rid = scheduler.submit(due_date=2000.0)
    assert rid == 100
    assert scheduler.get_status()[100] == {
        "pipeline": "main", "expid": {"class_name": "Night"}, "priority": 0,
        "due_date": 2000.0, "flush": False, "status": "pending"}
    assert scheduler.get_status()[1]["status"] == "running"
    scheduler.delete(rid)
    assert 100 not in scheduler.get_status()


def test_check_pause_follows_priority_pipeline_and_virtual_clock():
    now = [1000.0]
    queue, scheduler = make_scheduler(lambda: now[0])
    scheduler.submit(priority=0)
    scheduler.submit(pipeline_name="other", priority=5)
    assert scheduler.check_pause() is False
    scheduler.submit(priority=3, due_date=1500.0)
    assert scheduler.check_pause() is False
    now[0] = 1600.0
    assert scheduler.check_pause() is True
    assert queue.next_due("main").priority == 3


def test_pause_runs_handler_then_honours_termination():
    queue, scheduler = make_scheduler(lambda: 0.0)
    executed = []

    def run_waiting(paused_rid):
        assert queue.runs[paused_rid].status == "paused"
        waiting = queue.next_due("main")
        executed.append(waiting.rid)
        queue.finish(waiting.rid)

    queue.pause_handler = run_waiting
    scheduler.pause()
    assert executed == []
    scheduler.submit(priority=1)
    scheduler.pause()
    assert executed == [100] and queue.runs[1].status == "running"
    scheduler.request_termination(1)
    assert scheduler.check_termination() and scheduler.check_pause()
    with pytest.raises(TerminationRequested):
        scheduler.pause()


def test_request_termination_of_queued_run_deletes_it():
    queue, scheduler = make_scheduler(lambda: 0.0)
    rid = scheduler.submit()
    scheduler.request_termination(rid)
    assert rid not in queue.runs
    with pytest.raises(KeyError, match="RID 555 not found"):
        scheduler.check_pause(555)


# --- examine -----------------------------------------------------------------------------

EXPERIMENT_FILE = '''
from artiq.experiment import *


class Ramsey(EnvExperiment):
    """Ramsey scan.

    Details."""

    def build(self):
        self.setattr_device("core")
        self.setattr_device("ttl0")
        self.setattr_argument("n", NumberValue(100, precision=0, step=1), "Shots", "count")
        self.setattr_argument("t", Scannable(RangeScan(0, 1 * us, 11), unit="us"))
        self.setattr_argument("flag", BooleanValue())
        self.set_default_scheduling(priority=3)

    def run(self):
        pass


class NoDoc(EnvExperiment):
    def run(self):
        pass


class _Helper(EnvExperiment):
    def run(self):
        pass
'''


def test_examine_file_lists_public_experiments(tmp_path):
    path = tmp_path / "ramsey.py"
    path.write_text(EXPERIMENT_FILE)
    descriptions = {d.class_name: d for d in examine_file(path)}
    assert sorted(descriptions) == ["NoDoc", "Ramsey"]
    ramsey = descriptions["Ramsey"]
    assert ramsey.name == "Ramsey scan" and descriptions["NoDoc"].name == "NoDoc"
    assert ramsey.devices == ["core", "ttl0"]
    assert ramsey.scheduler_defaults == {"priority": 3}
    assert list(ramsey.arginfo) == ["n", "t", "flag"]
    assert ramsey.arginfo["n"] == (NumberValue(100, precision=0, step=1).describe(),
                                   "Shots", "count")
    assert ramsey.arginfo["t"][0]["default"][0]["ty"] == "RangeScan"


def test_examine_repository_reports_broken_files(tmp_path):
    (tmp_path / "good.py").write_text(EXPERIMENT_FILE)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "broken.py").write_text("from artiq.experiment import *\n1 +\n")
    (tmp_path / "sub" / "fails.py").write_text(
        "from artiq.experiment import *\n"
        "class Bad(EnvExperiment):\n"
        "    def build(self):\n"
        "        raise RuntimeError('no laser')\n")
    (tmp_path / ".hidden.py").write_text("1 +\n")
    descriptions, failures = examine_repository(tmp_path)
    assert sorted(d.class_name for d in descriptions) == ["NoDoc", "Ramsey"]
    assert sorted(failures) == [str(tmp_path / "sub" / "broken.py"),
                                str(tmp_path / "sub" / "fails.py")]
    assert "does not import: SyntaxError" in failures[str(tmp_path / "sub" / "broken.py")]
    assert "building Bad failed: RuntimeError: no laser" in \
        failures[str(tmp_path / "sub" / "fails.py")]
    assert all("\n" not in reason for reason in failures.values())
