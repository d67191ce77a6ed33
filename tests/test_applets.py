"""Applets rendered offscreen from recorded data: the image is not blank and the plotted
values (read back from the plot items) are the data's."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

os.environ["QT_QPA_PLATFORM"] = "offscreen"
pytest.importorskip("pyqtgraph.Qt", exc_type=ImportError)

from analysis import bell, qkd, readout, stats  # noqa: E402
from applets import render  # noqa: E402
from tests.test_applets_data import (  # noqa: E402,F401  (close_widgets: autouse)
    bell_data,
    calibration_db,
    close_widgets,
    heralding_data,
    write_results,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("applets")
    write_results(d / "heralding.h5", heralding_data())
    write_results(d / "bell.h5", bell_data())
    calibration_db(d / "dataset_db.pyon", time.time())
    return d


@pytest.fixture(scope="module")
def readout_results(tmp_path_factory) -> Path:
    """A results file of the readout calibration experiment run on the virtual node."""
    root = tmp_path_factory.mktemp("readout_run")
    run = subprocess.run(
        [sys.executable, "-m", "ionlink.cli", "run",
         str(REPO / "repository/calibrations/readout_histogram.py"), "shots=60",
         "-o", str(root), "--device-db", str(REPO / "device_db.py")],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    files = sorted(root.glob("*/*/*.h5"))
    assert len(files) == 1
    return files[0]


@pytest.fixture(scope="module")
def heralding_results(tmp_path_factory) -> Path:
    """A results file of the heralded-entanglement experiment run on the virtual node."""
    root = tmp_path_factory.mktemp("heralding_run")
    run = subprocess.run(
        [sys.executable, "-m", "ionlink.cli", "run",
         str(REPO / "repository/heralding/heralded_entanglement.py"), "attempts=6000",
         "batch_attempts=2000", "-o", str(root), "--device-db", str(REPO / "device_db.py")],
        cwd=REPO, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr
    (path,) = root.glob("*/*/*.h5")
    return path


def assert_not_blank(widget, min_colours: int = 20, min_fraction: float = 0.02) -> None:
    """The grabbed image has many colours and enough pixels away from the background."""
    image = render.grab(widget)
    width, height = image.width(), image.height()
    assert width > 100 and height > 100
    rgb = image.convertToFormat(image.Format.Format_RGB32)  # kept alive while read
    buffer = rgb.constBits()
    if hasattr(buffer, "setsize"):  # PyQt's sip.voidptr carries no size (PySide: memoryview)
        buffer.setsize(rgb.sizeInBytes())
    pixels = np.frombuffer(buffer, dtype=np.uint8, count=width * height * 4).reshape(
        height, width, 4)[:, :, :3].copy()
    colours, counts = np.unique(pixels.reshape(-1, 3), axis=0, return_counts=True)
    assert len(colours) >= min_colours
    background = colours[np.argmax(counts)]
    off_background = np.any(pixels != background, axis=2).mean()
    assert off_background >= min_fraction


def curve_xy(curve) -> tuple[np.ndarray, np.ndarray]:
    x, y = curve.getData()
    return np.asarray(x), np.asarray(y)


# ----------------------------------------------------------------------------- readout

def test_readout_histogram_from_experiment_run(readout_results):
    from ionlink.artiq_api.applets.sources import read_results_file

    data = {k: v[1] for k, v in read_results_file(readout_results).items()}
    bright = np.asarray(data["readout.bright_counts"])
    dark = np.asarray(data["readout.dark_counts"])
    widget = render.open_applet("readout_histogram", [str(readout_results)])
    assert_not_blank(widget)
    top = max(bright.max(), dark.max(), data["readout.threshold"]) + 1
    x, y = curve_xy(widget.bright_curve)
    np.testing.assert_array_equal(y, np.bincount(bright, minlength=top))
    np.testing.assert_allclose(x, np.arange(top + 1) - 0.5)
    np.testing.assert_array_equal(curve_xy(widget.dark_curve)[1],
                                  np.bincount(dark, minlength=top))
    t = data["readout.threshold"]
    assert widget.threshold_line.value() == pytest.approx(t + 0.5)
    fidelity = 1 - 0.5 * (np.mean(bright <= t) + np.mean(dark > t))
    assert widget.view.fidelity == pytest.approx(fidelity)
    best = readout.optimize_threshold(bright, dark)
    assert widget.view.optimal_threshold == best.threshold
    assert f"fidelity {fidelity:.4f}" in widget.summary.text()


def test_readout_threshold_falls_back_to_optimum(tmp_path):
    rng = np.random.default_rng(5)
    bright, dark = rng.poisson(20, 500), rng.poisson(1.5, 500)
    path = write_results(tmp_path / "r.h5", {"readout.bright_counts": bright,
                                             "readout.dark_counts": dark})
    widget = render.open_applet("readout_histogram", [str(path)])
    best = readout.optimize_threshold(bright, dark)
    assert widget.view.threshold_source == "optimal"
    assert widget.threshold_line.value() == pytest.approx(best.threshold + 0.5)
    assert widget.view.fidelity == pytest.approx(best.fidelity)


# ----------------------------------------------------------------------------- heralding

def test_heralding_monitor_history_from_reports(data_dir):
    d = heralding_data()
    widget = render.open_applet("heralding_monitor", [str(data_dir / "heralding.h5")])
    assert_not_blank(widget)
    assert widget.view.history.source == "reports"
    t = np.concatenate(([0.0], d["heralding.history.time_s"]))
    h = np.concatenate(([0], d["heralding.history.heralds"]))
    rate = np.diff(h) / np.diff(t)
    x, y = curve_xy(widget.rate_curve)
    np.testing.assert_allclose(x, 0.5 * (t[1:] + t[:-1]))
    np.testing.assert_allclose(y, rate)
    np.testing.assert_allclose(curve_xy(widget.ratio_curve)[1],
                               rate * d["heralding.memory_t2_s"])
    has = np.diff(h) > 0
    np.testing.assert_allclose(curve_xy(widget.time_curve)[1],
                               (np.diff(t) / np.where(has, np.diff(h), 1))[has])
    total_rate = d["heralding.heralds"] / d["heralding.duration_s"]
    assert widget.mean_rate_line.value() == pytest.approx(total_rate)
    v = widget.view
    assert v.attempts == d["heralding.attempts"] and v.heralds == d["heralding.heralds"]
    assert v.success_interval == pytest.approx(
        stats.wilson_interval(d["heralding.heralds"], d["heralding.attempts"]))
    assert v.mean_generation_time_s == pytest.approx(1 / total_rate)
    assert v.rate_over_decoherence == pytest.approx(total_rate * d["heralding.memory_t2_s"])
    assert f"{total_rate:.4g}" in widget.totals.text()


def test_heralding_applets_over_experiment_run(heralding_results):
    """The heralded-entanglement experiment's datasets drive both heralding applets."""
    from ionlink.artiq_api.applets.sources import read_results_file

    d = {k: v[1] for k, v in read_results_file(heralding_results).items()}
    widget = render.open_applet("heralding_monitor", [str(heralding_results)])
    assert widget.view is not None, widget.status.text()
    assert widget.view.attempts == 6000 and widget.view.heralds == d["heralding.heralds"]
    if "heralding.history.time_s" in d:
        t = np.concatenate(([0.0], d["heralding.history.time_s"]))
        h = np.concatenate(([0], d["heralding.history.heralds"]))
        np.testing.assert_allclose(curve_xy(widget.rate_curve)[1], np.diff(h) / np.diff(t))
    arrivals = render.open_applet("arrival_histogram", [str(heralding_results)])
    assert arrivals.view is not None, arrivals.status.text()
    detector = np.asarray(d["heralding.arrival_detector"])
    for i, curve in enumerate(arrivals.curves):
        assert curve_xy(curve)[1].sum() == np.count_nonzero(detector == i)
    assert arrivals.gate_region.getRegion() == pytest.approx(
        (d["heralding.gate_start_mu"] * 1e-9, d["heralding.gate_stop_mu"] * 1e-9))


def test_heralding_running_fidelity(tmp_path):
    from analysis.tomography import linear_inversion
    from applets.heralding_monitor import max_phase_fidelity

    visibility = 0.8
    d = heralding_data(p_success=6e-3, visibility=visibility)
    widget = render.open_applet("heralding_monitor", [str(write_results(tmp_path / "h.h5", d))])
    used, fid = curve_xy(widget.fidelity_curve)
    n = d["heralding.heralds"]
    assert used[-1] == n and 10 <= used.size <= 20
    cell = (d["heralding.basis_a"] * 3 + d["heralding.basis_b"]) * 4 + \
        2 * d["heralding.outcome_a"] + d["heralding.outcome_b_corrected"]
    for k in (0, used.size // 2, -1):
        counts = np.bincount(cell[:int(used[k])], minlength=36).reshape(3, 3, 4)
        assert fid[k] == pytest.approx(max_phase_fidelity(linear_inversion(counts)))
    # Werner state: F = (1 + 3 V) / 4; each of the 9 settings has about n/9 heralds and the
    # estimate combines correlators with errors ~ 1/sqrt(n/9): allow 5 of them
    assert abs(fid[-1] - (1 + 3 * visibility) / 4) < 5 / np.sqrt(n / 9)


def test_heralding_history_from_herald_attempts(tmp_path):
    d = heralding_data()
    for key in ("heralding.history.time_s", "heralding.history.attempts",
                "heralding.history.heralds"):
        del d[key]
    widget = render.open_applet("heralding_monitor", [str(write_results(tmp_path / "h.h5", d))])
    assert widget.view.history.source == "herald attempts"
    attempts, duration = d["heralding.attempts"], d["heralding.duration_s"]
    bins = int(np.clip(np.sqrt(d["heralding.heralds"]), 2, 40))
    counts, edges = np.histogram(d["heralding.herald_attempts"], bins=bins,
                                 range=(0, attempts))
    edges_s = edges * duration / attempts
    x, y = curve_xy(widget.rate_curve)
    np.testing.assert_allclose(x, 0.5 * (edges_s[1:] + edges_s[:-1]))
    np.testing.assert_allclose(y, counts / np.diff(edges_s))
    # equal bins: the history's mean rate is the run's
    assert y.mean() == pytest.approx(d["heralding.heralds"] / duration)


def test_heralding_history_from_herald_times(tmp_path):
    d = heralding_data()
    for key in ("heralding.history.time_s", "heralding.history.attempts",
                "heralding.history.heralds", "heralding.herald_attempts"):
        del d[key]
    widget = render.open_applet("heralding_monitor", [str(write_results(tmp_path / "h.h5", d))])
    assert widget.view.history.source == "herald times"
    t = np.sort(d["heralding.herald_times_mu"]) * 1e-9
    t = t - t[0]
    bins = int(np.clip(np.sqrt(t.size), 2, 40))
    counts, edges = np.histogram(t, bins=bins, range=(0, t[-1]))
    x, y = curve_xy(widget.rate_curve)
    np.testing.assert_allclose(x, 0.5 * (edges[1:] + edges[:-1]))
    np.testing.assert_allclose(y, counts / np.diff(edges))
    assert y.mean() == pytest.approx(t.size / t[-1], rel=0.01)


def test_heralding_live_history_from_broadcast_totals():
    """Live: each broadcast of the totals adds a point; a new run starts a new history."""
    from applets import _launch, heralding_monitor

    applet = _launch.make_applet(heralding_monitor.HeraldingMonitorWidget,
                                 heralding_monitor.DATASETS, "x", ["--follow"])
    applet.args_init(["--follow"])                 # the command line's defaults, no source
    widget = heralding_monitor.HeraldingMonitorWidget(applet.args)
    reports = [(0.5, 5000, 7), (1.0, 10000, 15), (1.5, 15000, 20)]
    for duration, attempts, heralds in reports:
        value = {"heralding.attempts": attempts, "heralding.heralds": heralds,
                 "heralding.duration_s": duration, "heralding.memory_t2_s": 0.1}
        widget.data_changed(value, {}, {}, [])
    assert widget.view.history.source == "live"
    np.testing.assert_allclose(curve_xy(widget.rate_curve)[1], [14.0, 16.0, 10.0])
    np.testing.assert_allclose(curve_xy(widget.ratio_curve)[1], [1.4, 1.6, 1.0])
    widget.data_changed({"heralding.attempts": 100, "heralding.heralds": 1,
                         "heralding.duration_s": 0.2}, {}, {}, [])
    np.testing.assert_allclose(curve_xy(widget.rate_curve)[1], [5.0])


def test_heralding_monitor_totals_only(tmp_path):
    path = write_results(tmp_path / "h.h5", {"heralding.attempts": 10_000,
                                             "heralding.heralds": 25,
                                             "heralding.duration_s": 2.0})
    widget = render.open_applet("heralding_monitor", [str(path)])
    assert widget.view.herald_rate_hz == pytest.approx(12.5)
    assert not widget.ratio_plot.isVisibleTo(widget)        # no T2: no ratio to show
    assert "no T2" in widget.totals.text()


# ----------------------------------------------------------------------------- arrivals

def test_arrival_histogram_with_gate(data_dir):
    d = heralding_data()
    widget = render.open_applet("arrival_histogram", [str(data_dir / "heralding.h5")])
    assert_not_blank(widget)
    t, det = d["heralding.arrival_mu"], d["heralding.arrival_detector"]
    gate = (d["heralding.gate_start_mu"], d["heralding.gate_stop_mu"])
    for i, curve in enumerate(widget.curves):
        x, y = curve_xy(curve)
        edges_mu = np.round(x / 1e-9).astype(np.int64)
        assert np.all(np.diff(edges_mu) == widget.view.bin_mu)
        expected, _ = np.histogram(t[det == i], bins=edges_mu)
        np.testing.assert_array_equal(y, expected)
        assert y.sum() == np.count_nonzero(det == i)
        inside = np.count_nonzero((det == i) & (t >= gate[0]) & (t < gate[1]))
        assert widget.view.in_gate[i] == inside
    assert widget.gate_region.getRegion() == pytest.approx((gate[0] * 1e-9, gate[1] * 1e-9))
    assert widget.gate_region.isVisible()


def test_arrival_offsets_in_seconds_without_detectors(tmp_path):
    """The photon-wavepacket calibration's click offsets (s, both detectors together)."""
    rng = np.random.default_rng(4)
    offsets = 24.5e-6 + rng.exponential(1e-6, 500)
    path = write_results(tmp_path / "w.h5", {"photon_wavepacket.offsets_s": offsets})
    widget = render.open_applet("arrival_histogram", [str(path)])
    x, y = curve_xy(widget.curves[0])
    edges_mu = np.round(x / 1e-9).astype(np.int64)
    expected, _ = np.histogram(np.round(offsets / 1e-9), bins=edges_mu)
    np.testing.assert_array_equal(y, expected)
    assert not widget.curves[1].isVisible() and not widget.gate_region.isVisible()
    assert "no gate" in widget.summary.text()


def test_arrival_background_estimate():
    from applets.arrival_histogram import compute_view

    # 100 clicks, one every 10 mu from 0 to 990 (observed span 0..991 mu); the gate of
    # 200 mu holds 20 of them, the other 80 fall in 791 mu outside it
    t = np.arange(0, 1000, 10)
    v = compute_view(t, None, 400, 600)
    assert v.in_gate[0] == 20
    assert v.background_in_gate[0] == pytest.approx(80 / 791 * 200)


# ----------------------------------------------------------------------------- CHSH / QBER

def test_chsh_monitor_running_values(data_dir):
    d = bell_data()
    widget = render.open_applet("chsh_monitor", [str(data_dir / "bell.h5")])
    assert_not_blank(widget)
    x, y, a, b, test = (d[k] for k in ("bell.x", "bell.y", "bell.a", "bell.b", "bell.is_test"))
    v = widget.view
    assert v.rounds[-1] == x.size and v.rounds.size == 100
    test = test == 1
    for k in (9, 49, 99):              # cumulative values at some chunk ends
        n = v.rounds[k]
        s = bell.chsh_from_rounds(x[:n][test[:n]], y[:n][test[:n]], a[:n][test[:n]],
                                  b[:n][test[:n]])
        assert v.chsh[k] == pytest.approx(s.value)
        assert v.chsh_err[k] == pytest.approx(s.stderr)
        key = ~test[:n]
        errors = int(np.count_nonzero(a[:n][key] != b[:n][key]))
        assert v.qber[k] == pytest.approx(errors / key.sum())
        assert (v.qber_low[k], v.qber_high[k]) == pytest.approx(
            stats.wilson_interval(errors, int(key.sum())))
        assert v.key_rate[k] == pytest.approx(qkd.asymptotic_key_rate(s.value, v.qber[k]))
    px, py = curve_xy(widget.chsh_band.line)
    np.testing.assert_array_equal(px, v.rounds)
    np.testing.assert_allclose(py, v.chsh)
    np.testing.assert_allclose(curve_xy(widget.chsh_band.high)[1], v.chsh + v.chsh_err)
    np.testing.assert_allclose(curve_xy(widget.qber_band.line)[1], v.qber)
    np.testing.assert_allclose(curve_xy(widget.rate_band.line)[1], v.key_rate)
    # the recorded Werner state: S = 2 sqrt2 V and QBER = (1 - V) / 2 within statistics
    assert abs(v.chsh[-1] - 2 * np.sqrt(2) * 0.9) < 4 * v.chsh_err[-1]
    q_sigma = np.sqrt(0.05 * 0.95 / v.key_rounds)
    assert abs(v.qber[-1] - 0.05) < 4 * q_sigma
    assert v.key_rate_low[-1] <= v.key_rate[-1] <= v.key_rate_high[-1]


def test_chsh_without_key_rounds_has_no_qber(tmp_path):
    d = bell_data(rounds=2000, test_fraction=1.0)
    del d["bell.is_test"]
    widget = render.open_applet("chsh_monitor", [str(write_results(tmp_path / "b.h5", d))])
    assert np.all(np.isnan(widget.view.qber))
    assert "no key rounds" in widget.summary.text()
    assert np.isfinite(widget.view.chsh[-1])


# ----------------------------------------------------------------------------- calibrations

def test_calibration_board(data_dir):
    widget = render.open_applet("calibration_board", [str(data_dir / "dataset_db.pyon")])
    assert_not_blank(widget, min_fraction=0.01)
    table = widget.table
    rows = {table.item(i, 0).text(): [table.item(i, j).text() for j in range(table.columnCount())]
            for i in range(table.rowCount())}
    # calib.ramsey.x is a scan result, not a parameter; wavepacket_time_a was never stored
    assert sorted(rows) == ["fibre_delay_a", "frequency_729_a", "pi_time_729_a",
                            "readout_threshold_a", "t2_a", "wavepacket_time_a"]
    status = {name: row[4] for name, row in rows.items()}
    assert status == {"fibre_delay_a": "no spec", "frequency_729_a": "in spec",
                      "pi_time_729_a": "stale", "readout_threshold_a": "rejected",
                      "t2_a": "out of spec", "wavepacket_time_a": "failed"}
    assert rows["frequency_729_a"][1] == "80.0123 MHz"
    assert rows["frequency_729_a"][3] == "2 min"        # the graph's last passing check
    assert rows["fibre_delay_a"][3] == "unknown"
    assert rows["fibre_delay_a"][1] == "24.48 us"
    assert rows["pi_time_729_a"][3] == "5.0 h"
    assert rows["wavepacket_time_a"][1] == "\u2014"
    assert "1.1 \u00b5s rejected by rid 20" in rows["wavepacket_time_a"][5]
    assert "too few clicks" in rows["wavepacket_time_a"][5]
    assert "80.0101 MHz \u2192 80.0123 MHz" in rows["frequency_729_a"][5]
    assert "rid 19" in rows["frequency_729_a"][5]
    assert "9 rejected by rid 21" in rows["readout_threshold_a"][5]


def test_board_ages_follow_a_lab_clock_ahead_of_the_wall_clock():
    from applets.calibration_board import compute_rows

    future = time.time() + 7200.0                      # a simulated night, 2 h ahead
    history = ('[{"action": "calibrated", "value": 1.0, "previous": null, "rid": 1, '
               f'"time": {future - 1800.0}}}, {{"action": "rejected", "value": 2.0, '
               f'"previous": 1.0, "rid": 2, "time": {future}}}]')
    (row,) = compute_rows({"calib.x": 1.0, "provenance.calib.x": history}, {})
    assert row.age_s == pytest.approx(1800.0)
    assert row.status == "rejected"


def test_calibration_board_over_experiment_database(readout_results):
    """Without provenance or spec (a fresh dataset database) the board still lists values."""
    root = readout_results.parents[2]
    widget = render.open_applet("calibration_board", [str(root)])
    names = [widget.table.item(i, 0).text() for i in range(widget.table.rowCount())]
    assert "readout_threshold_a" in names
    row = names.index("readout_threshold_a")
    from ionlink.runner import pyon

    stored = pyon.load_file(root / "dataset_db.pyon")["calib.readout_threshold_a"][0]
    assert widget.table.item(row, 1).text() == str(stored)
    assert widget.table.item(row, 3).text() == "unknown"
    # no spec dataset: the calibration graph's bounds and timeout for the parameter
    from applets.calibration_board import spec_from_graph

    spec = spec_from_graph()["calib.readout_threshold_a"]
    inside = spec.get("min", -np.inf) <= stored <= spec.get("max", np.inf)
    assert widget.table.item(row, 4).text() == ("in spec" if inside else "out of spec")
    assert "every" in widget.table.item(row, 2).text()


# ----------------------------------------------------------------------------- live / errors

def test_follow_results_directory_sees_new_data(tmp_path):
    """--follow on a results directory: a checkpointed file and then a newer run show up."""
    root = tmp_path / "results"
    first = heralding_data(reports=5)
    write_results(root / "2026-01-01" / "10" / "000000003-Heralding.h5", first, rid=3)
    widget = render.open_applet("heralding_monitor", [str(root), "--follow",
                                                      "--poll-interval", "0.05"])
    applet = widget._applet
    assert widget.view.history.t_s.size == 5
    more = heralding_data(reports=9)
    write_results(root / "2026-01-01" / "10" / "000000003-Heralding.h5", more, rid=3)
    os.utime(root / "2026-01-01" / "10" / "000000003-Heralding.h5", ns=(1, time.time_ns() + 10**9))
    applet.poll()
    assert widget.view.history.t_s.size == 9
    newer = heralding_data(reports=3, seed=9)
    write_results(root / "2026-01-01" / "11" / "000000004-Heralding.h5", newer, rid=4)
    from pyqtgraph.Qt import QtWidgets

    deadline = time.monotonic() + 5
    while widget.view.heralds != newer["heralding.heralds"] and time.monotonic() < deadline:
        QtWidgets.QApplication.processEvents()
        time.sleep(0.02)
    assert widget.view.heralds == newer["heralding.heralds"]   # the timer polled


def test_bad_data_is_reported_not_drawn(tmp_path):
    path = write_results(tmp_path / "bad.h5", {"heralding.attempts": 10,
                                               "heralding.heralds": 20,
                                               "heralding.duration_s": 1.0})
    widget = render.open_applet("heralding_monitor", [str(path)])
    assert widget.view is None
    assert "heralds <= attempts" in widget.status.text()


def test_missing_dataset_is_named(tmp_path):
    path = write_results(tmp_path / "empty.h5", {"other": 1})
    widget = render.open_applet("chsh_monitor", [str(path)])
    assert widget.view is None
    assert "bell.x" in widget.status.text()


def test_no_source_without_artiq_is_one_clear_error():
    from applets import _launch, readout_histogram

    if _launch.applet_module([]).__name__.startswith("artiq."):
        pytest.skip("real ARTIQ installed: the applet would subscribe to a master")
    applet = _launch.make_applet(readout_histogram.ReadoutHistogramWidget,
                                 readout_histogram.DATASETS, "x", [])
    with pytest.raises(SystemExit, match="no master to subscribe to"):
        applet.start([])


def test_dataset_names_can_be_overridden(tmp_path):
    rng = np.random.default_rng(3)
    path = write_results(tmp_path / "r.h5", {"my.bright": rng.poisson(15, 200),
                                             "my.dark": rng.poisson(1, 200)})
    widget = render.open_applet("readout_histogram", [str(path), "--bright", "my.bright",
                                                      "--dark", "my.dark"])
    assert widget.view is not None and widget.view.bright_hist.sum() == 200


def test_render_command_line(tmp_path, data_dir):
    out = tmp_path / "shot.png"
    run = subprocess.run([sys.executable, "-m", "applets.render", "arrival_histogram",
                          str(out), str(data_dir / "heralding.h5")], cwd=REPO,
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert run.returncode == 0, run.stderr
    assert out.stat().st_size > 10_000
