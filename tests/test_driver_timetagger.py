"""Time-tagger driver: measurements, channel maps, streaming to rotating files, faults, and
agreement of simulated tags with the TTL inputs in a simulated run."""

from __future__ import annotations

import errno
import math
import time

import h5py
import numpy as np
import pytest
from artiq.experiment import at_mu, kernel, now_mu

from analysis.timetags.io import TimeTagReader, TimeTagWriter
from drivers.timetagger import measurements as m
from drivers.timetagger.channels import (
    ChannelError,
    channel_of_detector,
    coincidence_label,
    coincidence_members,
    detector_id,
    is_virtual_detector,
    parse_channel_map,
    virtual_detector_id,
)
from drivers.timetagger.driver import StreamError, TimeTaggerDriver
from drivers.timetagger.simulation import ManualClock, SimulatedTagger
from drivers.timetagger.streaming import detector_labels
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
    for bad, what in (("1=a,1=b", "twice"), ("x=a", "CHANNEL=DEVICE"), ("0=a", r"1\.\.99"),
                      ("100=a", "reserved for virtual channels"), ("", "names no channel")):
        with pytest.raises(ChannelError, match=what):
            parse_channel_map(bad)
    assert [detector_id(c) for c in (1, 18, 99, -1, -18, -99)] == [1, 18, 99, 129, 146, 227]
    for c in (1, 18, 99, -1, -18, -99):
        assert channel_of_detector(detector_id(c)) == c
        assert channel_of_detector(np.uint8(detector_id(c))) == c
    # the virtual ids 100..127 cannot clash with an input's id, rising or falling
    assert [virtual_detector_id(k) for k in (0, 27)] == [100, 127]
    assert {detector_id(c) for c in range(-99, 100) if c} & set(range(100, 128)) == set()
    assert all(is_virtual_detector(d) for d in range(100, 128))
    assert not any(is_virtual_detector(d) for d in (99, 128, 129))
    for bad, what in ((100, "virtual channel of its stream"), (127, "label names it"),
                      (0, "no tagger channel"), (128, "no tagger channel"),
                      (228, "no tagger channel"), (256, "no tagger channel")):
        with pytest.raises(ChannelError, match=what):
            channel_of_detector(bad)
    with pytest.raises(ChannelError, match="at most 28 virtual channels"):
        virtual_detector_id(28)
    for bad in (100, 0, -100):
        with pytest.raises(ChannelError, match="reserved for virtual"):
            detector_id(bad)
    assert coincidence_label([1, 2]) == "coincidence(1,2)"
    assert coincidence_members("coincidence(1,-2,3)") == [1, -2, 3]
    for bad in ("coincidence(1)", "coincidence(1,2", "coinc(1,2)", "coincidence(1,200)"):
        with pytest.raises(ChannelError):
            coincidence_members(bad)


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


# -- coincidence virtual channels in streams ------------------------------------------------


def _random_tags(rng, n, channels, span_ps, grid_ps):
    """Sorted (time, channel) tags on a coarse grid (equal-time tags of different channels
    occur), ordered by channel at equal times."""
    t = rng.integers(0, span_ps // grid_ps, size=n) * grid_ps
    c = rng.choice(channels, size=n)
    order = np.lexsort((c, t))
    return t[order].astype(np.int64), c[order]


@pytest.mark.parametrize("members", [[1, 2], [2, 1, 3]])
def test_coincidence_tracker_equals_the_whole_stream_scan_for_any_blocks(members):
    rng = np.random.default_rng(len(members))
    t, c = _random_tags(rng, 3000, [1, 2, 3, 4], 3_000_000, 50)
    window = 2000
    expected = m.coincidence_tags(t, c, members, window)
    assert len(expected) > 100
    splits = [np.arange(len(t) + 1),                                  # one tag per block
              np.unique(np.r_[0, rng.integers(0, len(t), 40), len(t)]),
              np.array([0, len(t)])]
    for cuts in splits:
        tracker = m.CoincidenceTracker(members, window)
        got = np.concatenate([tracker.feed(t[a:b], c[a:b]) for a, b in zip(cuts[:-1], cuts[1:],
                                                                           strict=True)])
        assert np.array_equal(got, expected)
    with pytest.raises(ValueError, match="distinct"):
        m.CoincidenceTracker([1, 1], 10)
    with pytest.raises(ValueError, match="window"):
        m.CoincidenceTracker([1, 2], -1)


def _scripted_edges(rng, names, span_mu, rate_per_mu):
    edges = {}
    for name in names:
        n = rng.poisson(rate_per_mu * span_mu)
        edges[name] = np.unique(rng.integers(0, span_mu, size=n))
    # some clicks at the same ns on every detector (equal-time tags with equal delays)
    common = rng.integers(0, span_mu, size=30)
    return {k: np.union1d(v, common) for k, v in edges.items()}


@pytest.mark.parametrize("case", [
    # (coincidences (members, window s), streamed inputs, input delays s)
    ([([1, 2], 50e-9)], [1], {1: 40e-9, 2: -30e-9}),                 # member 2 not streamed
    ([([1, 2, 3], 80e-9)], [1, 2, 3], {2: 7e-9, 3: -3e-9}),
    ([([1, 2], 30e-9), ([2, 3], 30e-9), ([1, 2, 3], 60e-9)], [4], {}),  # members unstreamed
])
def test_streamed_virtual_channels_equal_the_scan_of_the_whole_span(tmp_path, case):
    coincidences, inputs, delays = case
    names = {1: "d0", 2: "d1", 3: "d2", 4: "d3"}
    rng = np.random.default_rng(11)
    span = 2_000_000
    world = ScriptedInputs(_scripted_edges(rng, names.values(), span, 1 / 400))
    clock = ManualClock(1000)
    drv, backend = make_driver(world, clock, names)
    for ch, d in delays.items():
        drv.set_input_delay(ch, d)
    virtual = [drv.define_coincidence(mem, w) for mem, w in coincidences]
    streamed = virtual[:1] + inputs + virtual[1:]
    read = sorted(set(inputs) | {x for mem, _ in coincidences for x in mem})
    min_delay = min(backend.get_input_delay(c) for c in read)
    t_open = clock.t
    drv.start_stream(str(tmp_path), channels=streamed, prefix="v", max_file_bytes=30_000)
    horizons = []                    # the time up to which each read released the tags
    while clock.t < span:            # reads 1 ns .. 3 us apart
        clock.t += int(rng.choice([1, 7, 30, 100, 400, 3000]))
        drv.stream_status()
        horizons.append(clock.t * 1000 + min_delay)
    summary = drv.stop_stream()
    assert summary["n_dropped"] == 0 and len(summary["files"]) >= 2
    ts, det = read_all(summary["files"])
    assert np.all(np.diff(ts) >= 0) and len(ts) == summary["n_tags"]
    # the reference: the whole span at once, up to the last read's horizon
    t_all, c_all = backend._edges(read, t_open, clock.t)
    keep = t_all < horizons[-1]
    t_all, c_all = t_all[keep], c_all[keep]
    for ch in inputs:
        assert np.array_equal(ts[det == ch], t_all[c_all == ch])
    straddling = 0
    for k, (v, (mem, w)) in enumerate(zip(virtual, coincidences, strict=True)):
        expected = m.coincidence_tags(t_all, c_all, mem, round(w * 1e12))
        assert len(expected) > 20, (mem, len(expected))
        assert np.array_equal(ts[det == 100 + k], expected), (mem, k)
        assert drv.get_channels()[v] == coincidence_label(mem)
        # coincidences whose window holds a read boundary (released over several reads)
        h = np.asarray(horizons)
        straddling += int(np.count_nonzero(np.searchsorted(h, expected, side="right")
                                           > np.searchsorted(h, expected - round(w * 1e12),
                                                             side="right")))
    assert straddling > 20
    assert set(np.unique(det)) == {detector_id(c) for c in inputs} | {
        100 + k for k in range(len(virtual))}
    labels = {}
    for f in summary["files"]:
        labels.update(detector_labels(f))
    for k, (mem, _) in enumerate(coincidences):
        assert labels[100 + k] == f"coincidence({','.join(map(str, mem))})"
        assert coincidence_members(labels[100 + k]) == mem
    for ch in inputs:
        assert labels[ch] == names[ch]
    with h5py.File(summary["files"][0], "r") as f:
        description = f["description"][()].decode()
    assert f"100=coincidence({','.join(map(str, coincidences[0][0]))}) window " \
           f"{coincidences[0][1]:g} s" in description


def test_coincidences_straddling_reads_and_delays_by_hand(tmp_path):
    # Channel 2 is delayed by -20 ns, so each read releases the tags up to (read time -
    # 20 ns); later ones wait. Tags (ns), channel 1: 995 2000 2500 2508 4000; channel 2
    # (edge - 20): 983 1995 2505 2512 4010; channel 3: 4040. Reads at the clock times below.
    # [1,2] within 15 ns, greedy, stamped with the later tag:
    #   983+995 -> 995: 995 was read at 1000 and held back; 983 (edge 1003) read at 2001
    #   1995+2000 -> 2000: 1995 released at 2016, 2000 at 2509 (carried across reads)
    #   2500+2505 -> 2505, then 2508+2512 -> 2512 (2505 is used: no 2505+2508)
    #   4000+4010 -> 4010: released at 4025 and 4035
    # [1,2,3] within 40 ns: 4000, 4010, 4040 -> 4040, released by three different reads.
    world = ScriptedInputs({"d0": [995, 2000, 2500, 2508, 4000, 9000],
                            "d1": [1003, 2015, 2525, 2532, 4030, 9100],
                            "d2": [4040, 9200]})
    clock = ManualClock(0)
    drv, _ = make_driver(world, clock, {1: "d0", 2: "d1", 3: "d2"})
    drv.set_input_delay(2, -20e-9)
    v12 = drv.define_coincidence([1, 2], 15e-9)
    v123 = drv.define_coincidence([1, 2, 3], 40e-9)
    drv.start_stream(str(tmp_path), channels=[v123, 2, v12], prefix="hand")
    released = []
    for t in (1000, 2001, 2010, 2016, 2509, 2530, 4005, 4025, 4035, 4045, 5000):
        clock.t = t
        released.append(drv.stream_status()["n_tags"])
    summary = drv.stop_stream()
    assert summary["detector_ids"] == {v123: 100, 2: 2, v12: 101}
    ts, det = read_all(summary["files"])
    assert (ts[det == 101] // 1000).tolist() == [995, 2000, 2505, 2512, 4010]
    assert (ts[det == 100] // 1000).tolist() == [4040]
    assert (ts[det == 2] // 1000).tolist() == [983, 1995, 2505, 2512, 4010]
    # tags released per read: - | 983 995(v) | - | 1995 | 2000(v) | 2505 2505(v) | 2512 2512(v)
    # | - | 4010 4010(v) | - | 4040(v)
    assert released == [0, 2, 2, 3, 4, 6, 8, 8, 10, 10, 11]
    assert detector_labels(summary["files"][0]) == {2: "d1", 100: "coincidence(1,2,3)",
                                                   101: "coincidence(1,2)"}


def test_virtual_channel_misuse_gives_clear_errors(tmp_path):
    drv, _ = make_driver(ScriptedInputs())
    with pytest.raises(ChannelError, match=r"unknown tagger channel 100; input channels: "
                                           r"\[1, 2\], virtual channels from "
                                           r"define_coincidence: \[\]"):
        drv.start_stream(str(tmp_path), channels=[1, 100])
    v = drv.define_coincidence([1, 2], 1e-9)
    with pytest.raises(ChannelError, match=rf"channel {v} is a virtual channel "
                                           r"coincidence\(1,2\); this needs an input"):
        drv.set_input_delay(v, 1e-9)
    with pytest.raises(ChannelError, match="is a virtual channel"):
        drv.define_coincidence([1, v], 1e-9)
    with pytest.raises(ChannelError, match="unknown tagger channel 101"):
        drv.count_rates([v + 1], 1e-6)
    with pytest.raises(ChannelError, match="must be an integer"):
        drv.start_stream(str(tmp_path), channels=[1, "2"])
    many = [v] + [drv.define_coincidence([1, 2], (k + 2) * 1e-9) for k in range(28)]
    with pytest.raises(ChannelError, match="at most 28 virtual channels"):
        drv.start_stream(str(tmp_path), channels=many)
    drv.start_stream(str(tmp_path), channels=many[:28], prefix="full")  # 100..127 suffice
    drv.stop_stream()
    with pytest.raises(ChannelError, match="reserved for virtual channels"):
        TimeTaggerDriver(SimulatedTagger({1: "a"}, ScriptedInputs, ManualClock()),
                         {1: "a", 100: "b"})
    with pytest.raises(ChannelError, match="reserved for virtual channels"):
        SimulatedTagger({120: "a"}, ScriptedInputs, ManualClock())


class _FakeSwabianAPI:
    """A stand-in for Swabian's TimeTagger module: records the calls this backend makes;
    virtual channel numbers are large, as the API assigns its own."""

    class CoincidenceTimestamp:
        Last = "Last"

    def __init__(self, blocks):
        self.blocks = list(blocks)
        self.coincidences = []
        self.streams = []
        api = self

        class Data:
            def __init__(self, t, c):
                self.t, self.c = t, c

            def getTimestamps(self):
                return self.t

            def getChannels(self):
                return self.c

        class Coincidence:
            def __init__(self, tagger, channels, window, timestamp):
                api.coincidences.append((list(channels), window, timestamp))
                self.number = 0x4000_0000 + len(api.coincidences)

            def getChannel(self):
                return self.number

        class TimeTagStream:
            def __init__(self, tagger, buffer, channels):
                api.streams.append(list(channels))

            def getData(self):
                t, c = api.blocks.pop(0) if api.blocks else ([], [])
                return Data(np.asarray(t, np.int64), np.asarray(c, np.int64))

            def stop(self):
                pass

        self.Coincidence, self.TimeTagStream = Coincidence, TimeTagStream

    def createTimeTagger(self, serial):
        return object()

    def freeTimeTagger(self, tagger):
        pass


def test_swabian_backend_streams_virtual_channels_by_their_api_numbers(tmp_path):
    from drivers.timetagger.swabian import SwabianTagger

    big = 0x4000_0001
    api = _FakeSwabianAPI([([10, 20, 20, 30], [2, 2, big, 2]), ([40, 45], [big, 2])])
    drv = TimeTaggerDriver(SwabianTagger(api=api), {1: "det_station_0", 2: "det_station_1"},
                           poll_interval_s=0.001)
    v = drv.define_coincidence([1, 2], 3e-9)
    assert v == big and api.coincidences == [([1, 2], 3000, "Last")]
    drv.start_stream(str(tmp_path), channels=[2, v], prefix="sw")
    deadline = time.monotonic() + 10
    while api.blocks and time.monotonic() < deadline:     # the stream thread reads them
        time.sleep(0.002)
    summary = drv.stop_stream()
    drv.close()
    assert api.streams == [[2, big]]
    ts, det = read_all(summary["files"])
    assert ts.tolist() == [10, 20, 20, 30, 40, 45]
    assert det.tolist() == [2, 2, 100, 2, 100, 2]
    assert detector_labels(summary["files"][0]) == {2: "det_station_1",
                                                   100: "coincidence(1,2)"}
