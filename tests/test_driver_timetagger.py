"""Time-tagger driver: measurements, channel maps, streaming to rotating files, faults, and
agreement of simulated tags with the TTL inputs in a simulated run."""

from __future__ import annotations

import errno
import math

import numpy as np
import pytest
from artiq.experiment import at_mu, kernel, now_mu

from analysis.timetags.io import TimeTagReader, TimeTagWriter
from drivers.timetagger import measurements as m
from drivers.timetagger.channels import (
    ChannelError,
    channel_of_detector,
    detector_id,
    parse_channel_map,
)
from drivers.timetagger.driver import StreamError, TimeTaggerDriver
from drivers.timetagger.simulation import ManualClock, SimulatedTagger
from ionlink.node import VirtualNetwork, load_node_config
from ionlink.node.wiring import example_device_db
from ionlink.runner.devices import SimDeviceManager
from ionlink.sim import session
from ionlink.sim.world import PoissonInputs, ScriptedInputs


def read_all(files):
    ts, det = [], []
    for f in files:
        with TimeTagReader(f) as r:
            t, d = r.read()
        ts.append(t)
        det.append(d)
    return np.concatenate(ts), np.concatenate(det)


def make_driver(world, clock=None, channels=None):
    channels = channels or {1: "d0", 2: "d1"}
    backend = SimulatedTagger(channels, lambda: world, clock or ManualClock())
    return TimeTaggerDriver(backend, channels), backend


# -- measurements ------------------------------------------------------------------------


def test_count_rates_and_window_counts():
    t = np.array([0, 10, 20, 30, 1000, 2000], dtype=np.int64)
    c = np.array([1, 2, 1, 1, 2, 1])
    assert m.count_rates(t, c, [1, 2], 10**12) == [4.0, 2.0]
    counts = m.window_counts(t, c, [1, 2], np.array([0, 15, 1500]), 20)
    assert counts.tolist() == [[1, 1], [2, 0], [0, 0]]
    with pytest.raises(ValueError, match="duration"):
        m.count_rates(t, c, [1], 0)


def test_coincidences_pair_each_tag_once():
    t = np.array([0, 5, 100, 300, 304, 306, 1000], dtype=np.int64)
    c = np.array([1, 2, 1, 2, 1, 2, 2])
    assert m.coincidence_tags(t, c, [1, 2], 10).tolist() == [5, 304]
    t3 = np.array([0, 2, 4, 50, 52], dtype=np.int64)
    c3 = np.array([1, 2, 3, 1, 2])
    assert m.coincidence_tags(t3, c3, [1, 2, 3], 10).tolist() == [4]
    with pytest.raises(ValueError, match=">= 2 channels"):
        m.coincidence_tags(t, c, [1], 10)


def test_correlation_histogram_of_a_fixed_delay():
    start = np.arange(0, 10**6, 1000, dtype=np.int64)
    stop = start + 250
    edges, counts = m.correlation(start, stop, 100, 20)
    assert edges[0] == -1000 and len(counts) == 20
    assert counts[edges.tolist().index(200)] == len(start)
    # pairs with the neighbouring start tags (delays -750 ps) also land in range
    assert counts[edges.tolist().index(-800)] == len(start) - 1
    assert counts.sum() == 2 * len(start) - 1


# -- channel maps ------------------------------------------------------------------------


def test_channel_map_and_detector_ids():
    assert parse_channel_map("1=det_station_0, 3=pmt_a") == {1: "det_station_0", 3: "pmt_a"}
    for bad, what in (("1=a,1=b", "twice"), ("x=a", "CHANNEL=DEVICE"), ("0=a", "1..127"),
                      ("", "names no channel")):
        with pytest.raises(ChannelError, match=what):
            parse_channel_map(bad)
    assert [detector_id(c) for c in (1, 18, -1, -18)] == [1, 18, 129, 146]
    assert channel_of_detector(146) == -18


def test_device_db_entry_parses_into_the_simulated_controller():
    from ionlink.runner.devices import load_device_db

    ddb = load_device_db("device_db.py")
    session.start(world=ScriptedInputs({"ttl1": [5, 7]}))
    try:
        drv = SimDeviceManager(ddb).get("timetagger")
        assert drv.get_channels() == {1: "det_station_0", 2: "det_station_1", 3: "pmt_a",
                                      4: "pmt_b"}
        assert drv._backend.devices[1] == "ttl1"          # alias resolved to the TTL key
    finally:
        session.end()


# -- streaming ---------------------------------------------------------------------------


def test_stream_rotates_by_size_and_keeps_every_tag_once(tmp_path):
    world = PoissonInputs({"d0": 2e6, "d1": 1e6}, seed=1)
    clock = ManualClock()
    drv, _ = make_driver(world, clock)
    drv.set_input_delay(2, -2.5e-9)                  # re-orders tags across reads
    drv.start_stream(str(tmp_path), prefix="run", max_file_bytes=40_000)
    sent = 0
    for _ in range(40):
        clock.t += 1_000_000                         # 1 ms per read
        sent = drv.stream_status()["n_tags"]
    summary = drv.stop_stream()
    assert summary["n_dropped"] == 0 and summary["n_tags"] >= sent > 0
    assert len(summary["files"]) >= 3, summary["files"]
    ts, det = read_all(summary["files"])
    assert len(ts) == summary["n_tags"]
    assert np.all(np.diff(ts) >= 0)
    assert set(np.unique(det)) == {1, 2}
    # tags are 1000 ps per mu plus the channel delay
    assert np.all(ts[det == 1] % 1000 == 0) and np.all(ts[det == 2] % 1000 == 500)
    assert drv.get_input_delay(2) == pytest.approx(-2.5e-9)
    with TimeTagReader(summary["files"][0]) as r:
        assert r.timestamps_unit == 1e-12


def test_unknown_channel_overlap_and_bad_arguments(tmp_path):
    drv, _ = make_driver(ScriptedInputs())
    with pytest.raises(ChannelError, match="unknown tagger channel 7"):
        drv.count_rates([7], 1e-3)
    with pytest.raises(ChannelError, match="unknown tagger channel 9"):
        drv.start_stream(str(tmp_path), channels=[1, 9])
    with pytest.raises(ValueError, match="duration must be a positive"):
        drv.count_rates([1], -1.0)
    drv.start_stream(str(tmp_path), prefix="a")
    with pytest.raises(StreamError, match="already running"):
        drv.start_stream(str(tmp_path), prefix="b")
    with pytest.raises(StreamError, match="cannot change while a stream runs"):
        drv.set_input_delay(1, 1e-9)
    drv.stop_stream()
    with pytest.raises(StreamError, match="no stream is running"):
        drv.stop_stream()
    with pytest.raises(OSError, match="already exists"):
        drv.start_stream(str(tmp_path), prefix="a")
    with pytest.raises(OSError, match="does not exist"):
        drv.start_stream(str(tmp_path / "missing"))


def test_disk_full_stops_the_stream_with_a_clear_error(tmp_path, monkeypatch):
    world = PoissonInputs({"d0": 1e6, "d1": 1e6}, seed=2)
    clock = ManualClock()
    drv, _ = make_driver(world, clock)
    drv.start_stream(str(tmp_path), prefix="full", max_file_bytes=20_000)
    while len(drv.stream_status()["files"]) < 2:
        clock.t += 1_000_000
    first = drv.stream_status()["files"][0]

    def no_space(self, offset, timestamps, detectors):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(TimeTagWriter, "_write_range", no_space)
    clock.t += 1_000_000
    with pytest.raises(StreamError, match="No space left on device") as info:
        drv.stream_status()
    assert first in str(info.value)
    monkeypatch.undo()
    # the complete file is valid, and the controller serves the next stream
    ts, _ = read_all([first])
    assert len(ts) > 0 and np.all(np.diff(ts) >= 0)
    assert drv.stream_status() == {"running": False}
    drv.start_stream(str(tmp_path), prefix="again")
    clock.t += 1_000_000
    assert drv.stop_stream()["n_tags"] > 0


def test_unplugged_device(tmp_path):
    clock = ManualClock()
    drv, backend = make_driver(PoissonInputs({"d0": 1e5}, seed=3), clock)
    drv.start_stream(str(tmp_path), prefix="u")
    clock.t += 10_000_000
    assert drv.stream_status()["n_tags"] > 0
    backend.simulate_unplug()
    clock.t += 10_000_000
    with pytest.raises(StreamError, match="does not answer"):
        drv.stop_stream()
    assert drv.ping() is False
    with pytest.raises(RuntimeError, match="does not answer"):
        drv.count_rates([1], 1e-3)
    ts, _ = read_all([tmp_path / "u_00000.h5"])
    assert len(ts) > 0


def test_buffer_overflow_is_counted_not_hidden(tmp_path):
    clock = ManualClock()
    drv, _ = make_driver(PoissonInputs({"d0": 1e6}, seed=4), clock)
    drv.start_stream(str(tmp_path), prefix="o", buffer_tags=100)
    clock.t += 1_000_000                              # ~1000 tags > 100 buffered
    s = drv.stop_stream()
    assert s["n_tags"] == 100 and s["n_dropped"] > 800


def test_live_measurements_on_the_simulated_clock():
    rate = 2e5
    clock = ManualClock(100_000_000)
    drv, _ = make_driver(PoissonInputs({"d0": rate, "d1": rate}, seed=5), clock)
    duration = 0.05
    r1, r2 = drv.count_rates([1, 2], duration)
    n = rate * duration
    for r in (r1, r2):                                # Poisson: 5 sigma
        assert abs(r * duration - n) < 5 * math.sqrt(n)
    tau = 1e-7
    v = drv.define_coincidence([1, 2], tau)
    assert drv.get_channels()[v] == "coincidence(1,2)"
    (rv,) = drv.count_rates([v], duration)
    # accidentals of independent Poisson streams: a tag of the merged stream (rate 2R) is
    # followed within tau by a tag of the other channel with probability (1 - e^-2R tau)/2
    # (pairs overlapping a used tag are excluded: a correction of order 2R tau = 4 %)
    expected = 2 * n * 0.5 * (1 - math.exp(-2 * rate * tau))
    assert abs(rv * duration - expected) < 5 * math.sqrt(expected) + 0.05 * expected
    corr = drv.correlation(1, 2, 1e-7, 40, duration)
    assert len(corr["counts"]) == 40 and corr["bin_edges_s"][0] == pytest.approx(-2e-6)
    herald = drv.herald_window_counts(1, [2], 0.0, 1e-6, duration)
    assert abs(herald[0] - rate * 1e-6 * n) < 5 * math.sqrt(rate * 1e-6 * n) + 5


# -- one detector model, two consumers -----------------------------------------------------


class Gates:
    def __init__(self, core, pmt, det):
        self.core, self.pmt, self.det = core, pmt, det

    @kernel
    def run(self, n, width):
        stamps = []
        self.core.break_realtime()
        t0 = now_mu() + 100_000
        at_mu(t0)
        for _ in range(n):
            end_p = self.pmt.gate_rising_mu(width)
            at_mu(end_p - width)
            end_d = self.det.gate_rising_mu(width)
            while True:
                t = self.pmt.timestamp_mu(end_p)
                if t < 0:
                    break
                stamps.append((3, t))
            while True:
                t = self.det.timestamp_mu(end_d)
                if t < 0:
                    break
                stamps.append((1, t))
            at_mu(end_p + width)
        return stamps, t0


def test_tags_agree_with_ttl_timestamps_in_a_simulated_run(tmp_path):
    ddb = example_device_db()
    ddb["timetagger"] = {
        "type": "controller", "host": "::1", "port": 3270,
        "channels": "1=det_station_0,2=det_station_1,3=pmt_a,4=pmt_b",
        "command": "aqctl_ionlink_timetagger -p {port} --bind {bind} --channels {channels}"}
    cfg = load_node_config().replace(readout={"pmt_dark_count_rate_hz": 1e5},
                                     station={"dark_count_rate_hz": 1e5})
    net = VirtualNetwork(ddb, cfg, seed=7)
    session.start(world=net)
    try:
        dmgr = SimDeviceManager(ddb)
        tagger = dmgr.get("timetagger")
        core, pmt, det = dmgr.get("core"), dmgr.get("pmt_a"), dmgr.get("det_station_0")
        tagger.start_stream(str(tmp_path), channels=[1, 3], prefix="agree")
        width = 100_000                                  # ~10 clicks per 100 us gate
        stamps, t0 = Gates(core, pmt, det).run(20, width)
        summary = tagger.stop_stream()
        dmgr.close_devices()
    finally:
        session.end()
    ts, det_ids = read_all(summary["files"])
    assert len(stamps) > 100
    windows = [(t0 + 2 * k * width, t0 + (2 * k + 1) * width) for k in range(20)]
    for channel in (1, 3):
        tags_mu = ts[det_ids == channel] // 1000
        in_gates = np.concatenate([tags_mu[(tags_mu >= a) & (tags_mu < b)] for a, b in windows])
        ttl = np.array(sorted(t for c, t in stamps if c == channel), dtype=np.int64)
        assert np.array_equal(in_gates, ttl), channel
        # the tagger also saw the clicks between the gates, which the TTLs did not register
        assert len(tags_mu) > len(ttl)


def test_window_counts_in_tagger_time():
    clock = ManualClock(10_000)
    drv, _ = make_driver(ScriptedInputs({"d0": [100, 150, 900, 5000], "d1": [120, 4999]}),
                         clock)
    assert drv.window_counts([1, 2], [100e-9, 4.95e-6], 100e-9) == [[2, 1], [1, 1]]
    assert drv.window_counts([1], [4.9e-6], 100e-9) == [[0]]          # [start, end)
    with pytest.raises(ValueError, match="windows must lie"):
        drv.window_counts([1], [9.95e-6], 100e-9)
    assert drv.window_counts([1], [], 1e-9) == []
