"""The stand-in for artiq.applets.simple: import hook, file sources, mods, requests."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

os.environ["QT_QPA_PLATFORM"] = "offscreen"
pytest.importorskip("pyqtgraph.Qt", exc_type=ImportError)

import ionlink  # noqa: E402,F401
from ionlink._artiq_fallback import artiq_is_real  # noqa: E402
from ionlink.artiq_api.applets import simple, sources  # noqa: E402
from ionlink.runner import pyon  # noqa: E402
from tests.test_applets_data import close_widgets, write_results  # noqa: E402,F401


def test_import_hook_serves_the_stand_in():
    if artiq_is_real():
        pytest.skip("real ARTIQ installed: artiq.applets.simple is ARTIQ's")
    import artiq.applets.simple

    assert artiq.applets.simple is simple
    assert hasattr(artiq.applets.simple, "TitleApplet")


def test_results_file_datasets_over_archive(tmp_path):
    path = write_results(tmp_path / "r.h5", {"calib.x": 2.0, "a": np.arange(3)})
    import h5py

    with h5py.File(path, "a") as f:
        f["archive/calib.x"] = 1.0               # the value the run read before it set 2.0
        f["archive/calib.y"] = 5
        f["datasets/a"].attrs["unit"] = "us"
    data = sources.read_results_file(path)
    assert data["calib.x"] == (False, 2.0, {})
    assert data["calib.y"] == (True, 5, {})
    persist, value, metadata = data["a"]
    np.testing.assert_array_equal(value, [0, 1, 2])
    assert metadata == {"unit": "us"} and persist is False


def test_bad_sources_name_the_file(tmp_path):
    with pytest.raises(sources.SourceError, match="no such file"):
        sources.FileSource(tmp_path / "missing.h5")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(sources.SourceError, match="expected a results file"):
        sources.FileSource(tmp_path / "notes.txt")
    (tmp_path / "broken.h5").write_bytes(b"not hdf5")
    with pytest.raises(sources.SourceError, match="broken.h5"):
        sources.read_results_file(tmp_path / "broken.h5")
    (tmp_path / "db.pyon").write_text("[1, 2]")
    with pytest.raises(sources.SourceError, match="does not hold a dict"):
        sources.read_dataset_db(tmp_path / "db.pyon")


def test_directory_source_polls_database_and_newest_run(tmp_path):
    pyon.store_file(tmp_path / "dataset_db.pyon", {"calib.t": (1.0, {"unit": "s"})})
    write_results(tmp_path / "2026-01-01" / "09" / "000000001-A.h5", {"n": 1}, rid=1)
    source = sources.FileSource(tmp_path)
    (init,) = source.poll()
    assert init["action"] == "init"
    assert init["struct"] == {"calib.t": (True, 1.0, {"unit": "s"}), "n": (False, 1, {})}
    assert source.poll() == []                                   # nothing changed
    write_results(tmp_path / "2026-01-01" / "10" / "000000002-B.h5", {"m": 2}, rid=2)
    mods = source.poll()
    assert {"action": "setitem", "path": [], "key": "m", "value": (False, 2, {})} in mods
    assert {"action": "delitem", "path": [], "key": "n"} in mods
    assert source.current_file.name == "000000002-B.h5"


def test_diff_mods_compares_arrays_by_value():
    old = {"a": (False, np.arange(3), {}), "b": (True, 1, {})}
    new = {"a": (False, np.arange(3), {}), "b": (True, 1, {"unit": "s"})}
    assert sources.diff_mods(old, new) == [
        {"action": "setitem", "path": [], "key": "b", "value": (True, 1, {"unit": "s"})}]


def test_apply_mod_like_sync_struct():
    data = {}
    simple.apply_mod(data, {"action": "init", "struct": {"a": [False, [1, 2, 3], {}]}})
    simple.apply_mod(data, {"action": "setitem", "path": ["a", 1], "key": 0, "value": 9})
    simple.apply_mod(data, {"action": "append", "path": ["a", 1], "x": 4})
    simple.apply_mod(data, {"action": "setitem", "path": [], "key": "b",
                            "value": [True, np.zeros(4), {}]})
    simple.apply_mod(data, {"action": "setitem", "path": ["b", 1], "key": (1, 3), "value": 7})
    assert data["a"][1] == [9, 2, 3, 4]
    np.testing.assert_array_equal(data["b"][1], [0, 7, 7, 0])
    simple.apply_mod(data, {"action": "delitem", "path": [], "key": "a"})
    assert list(data) == ["b"]
    with pytest.raises(ValueError, match="unknown mod action"):
        simple.apply_mod(data, {"action": "explode", "path": []})


class _Recorder:
    """A main widget that records its calls, with ARTIQ's constructor and callback."""

    def __init__(self, args, req):
        self.args, self.req, self.calls = args, req, []

    def data_changed(self, value, metadata, persist, mods, title=None):
        self.calls.append((dict(value), dict(persist), list(mods), title))

    def show(self):
        pass


def test_simple_applet_delivers_subscribed_changes_and_requests(tmp_path):
    path = write_results(tmp_path / "r.h5", {"x.rate": 3.0, "y.other": 1})
    applet = simple.TitleApplet(_Recorder)
    applet.add_dataset("rate", "a rate")
    widget = applet.start(["x.rate", str(path), "--title", "rate {x/rate}"])
    value, persist, mods, title = widget.calls[-1]
    assert value["x.rate"] == 3.0 and persist["x.rate"] is False
    assert mods[0]["action"] == "init" and title == "rate 3.0"
    widget.req.set_dataset("x.rate", 4.0, unit="Hz")
    assert widget.calls[-1][0]["x.rate"] == 4.0 and widget.calls[-1][3] == "rate 4.0"
    n = len(widget.calls)
    widget.req.set_dataset("y.other", 2)                       # not subscribed: no call
    assert len(widget.calls) == n
    widget.req.set_dataset("list", [1])
    widget.req.append_to_dataset("list", 2)
    widget.req.mutate_dataset("list", 0, 5)
    assert applet.data["list"][1] == [5, 2]


def test_update_delay_buffers_mods(tmp_path):
    from pyqtgraph.Qt import QtWidgets

    path = write_results(tmp_path / "r.h5", {"k": 1})
    applet = simple.SimpleApplet(_Recorder)
    applet.add_dataset("k")
    widget = applet.start(["k", str(path), "--update-delay", "0.05"])
    widget.req.set_dataset("k", 2)
    widget.req.set_dataset("k", 3)
    assert widget.calls == []
    deadline = time.monotonic() + 5
    while not widget.calls and time.monotonic() < deadline:
        QtWidgets.QApplication.processEvents()
        time.sleep(0.01)
    ((value, _, mods, _),) = widget.calls
    assert value["k"] == 3 and len(mods) == 3            # init + two sets, one update


def test_embedding_needs_artiq(tmp_path, monkeypatch):
    path = write_results(tmp_path / "r.h5", {"k": 1})
    monkeypatch.setenv("ARTIQ_APPLET_EMBED", "pipe")
    applet = simple.SimpleApplet(_Recorder)
    with pytest.raises(SystemExit, match="embedding in the dashboard needs ARTIQ"):
        applet.start([str(path)])


def test_launcher_picks_files_runner():
    from applets import _launch

    assert _launch.wants_files(["results/x.h5"])
    assert _launch.wants_files(["--follow", "results"])
    assert not _launch.wants_files(["--server", "10.0.0.1"])
    module = _launch.applet_module(["x.h5"])
    assert module is simple
