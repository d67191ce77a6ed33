"""One continuous click record per detector, shared by TTL gates and a time tagger."""

import math

import numpy as np
import pytest
from artiq.experiment import kernel

from ionlink.node.detectors import RecordExpired
from tests.node_driver import Driver, quiet_config

PULSE_MU = 100


def station_config(dark_hz, dead_s=50e-9, alpha=0.3):
    tau = -PULSE_MU * 1e-9 / math.log(1 - alpha)
    return quiet_config(photon={"collection_efficiency": 1.0, "conversion_efficiency": 1.0,
                                "filter_transmission": 1.0},
                        fibre={"loss_db_per_km": 0.0},
                        laser_393={"generation_time_constant_s": tau},
                        station={"detector_efficiency": 1.0, "dark_count_rate_hz": dark_hz,
                                 "dead_time_s": dead_s})


def fire(drv):
    """Quench, fire both 393 pulses; returns the arrival time (mu) of the photons."""
    drv.reset()
    for n in "ab":
        drv.net.output(drv.t, drv.sw[f"dds_393_{n}"], "level", 1)
        drv.net.output(drv.t + PULSE_MU, drv.sw[f"dds_393_{n}"], "level", 0)
    return drv.t + PULSE_MU + int(drv.net.fibre_delay_s(0, 0.0) * 1e9)


def test_gates_and_tagger_see_the_same_clicks_whatever_the_reading_pattern():
    cfg = station_config(dark_hz=3e5)
    gated, tagged = Driver(cfg, seed=21), Driver(cfg, seed=21)
    windows, gate_edges, tags = [], [[], []], [[], []]
    cursor = 0
    chunk = 7_001
    for _ in range(60):
        t_arr = fire(gated)
        assert fire(tagged) == t_arr
        w = (t_arr - 2000, t_arr + 6000)
        windows.append(w)
        for d, edges in enumerate(gated.station(*w)):
            gate_edges[d].append(edges)
        # the gate's reading again, in overlapping pieces: the same edges
        mid = (w[0] + w[1]) // 2
        for d in range(2):
            key = gated.dev[f"det_station_{d}"]
            again = np.concatenate([gated.net.input_edges(key, w[0], mid + 500),
                                    gated.net.input_edges(key, mid + 500, w[1])])
            assert np.array_equal(again, gate_edges[d][-1])
        gated.t = tagged.t = w[1] + 3000
        # the tagger reads everything, in consecutive chunks, by alias
        while cursor + chunk <= tagged.t:
            for d in range(2):
                tags[d].append(tagged.net.input_edges(f"det_station_{d}", cursor,
                                                      cursor + chunk))
            cursor += chunk
    n_gate = 0
    for d in range(2):
        record = np.concatenate(tags[d])
        assert np.all(np.diff(record) >= 50)           # dead time on the whole stream
        for (t0, t1), edges in zip(windows, gate_edges[d], strict=True):
            if t1 > cursor:
                continue
            lo, hi = np.searchsorted(record, [t0, t1])
            assert np.array_equal(record[lo:hi], edges)
            n_gate += len(edges)
        # dark counts exist outside the gates too
        inside = sum(len(e) for (_, t1), e in zip(windows, gate_edges[d], strict=True)
                     if t1 <= cursor)
        covered = sum(t1 - t0 for t0, t1 in windows if t1 <= cursor)
        outside = len(record) - inside
        mu = 3e5 * (cursor - covered) * 1e-9
        assert abs(outside - mu) < 6 * math.sqrt(mu) + 0.1 * mu
    assert n_gate > 60   # photons and dark counts were seen through the gates


def test_dead_time_is_applied_once_on_the_continuous_stream():
    rate, dead = 2e6, 50e-9
    drv = Driver(station_config(dark_hz=rate, dead_s=dead), seed=22)
    rng = np.random.default_rng(1)
    key = drv.dev["det_station_1"]
    edges, t = [], 0
    while t < 2_000_000:
        step = int(rng.integers(1, 3000))
        edges.append(drv.net.input_edges(key, t, t + step))
        t += step
    record = np.concatenate(edges)
    assert np.diff(record).min() >= 50
    mean = rate / (1 + rate * dead) * t * 1e-9      # non-paralysable dead time
    assert abs(len(record) - mean) < 5 * math.sqrt(mean)
    assert np.array_equal(drv.net.input_edges(key, 0, t), record)


def test_pmt_reads_are_idempotent_and_counts_dark_counts_outside_readouts():
    drv = Driver(quiet_config(readout={"pmt_dark_count_rate_hz": 2e5}), seed=23)
    key = drv.dev["pmt_a"]
    start = drv.t
    n = drv.readout("a", 200_000)
    end = drv.t
    first = drv.net.input_edges(key, start, start + 200_000)
    assert len(first) == n
    pieces = [drv.net.input_edges(key, a, a + 10_000) for a in range(start, end - 100, 10_000)]
    assert np.array_equal(np.concatenate(pieces), first)
    drv.t += 1_000_000
    dark = drv.net.input_edges(key, end, drv.t)
    mu = 2e5 * (drv.t - end) * 1e-9
    assert abs(len(dark) - mu) < 5 * math.sqrt(mu)


def test_retention_bounds_memory_and_names_expired_reads():
    drv = Driver(station_config(dark_hz=1e6), seed=24, record_retention_s=1e-3)
    key = drv.dev["det_station_0"]
    for _ in range(40):
        t_arr = fire(drv)
        drv.net.input_edges(key, t_arr, t_arr + 5000)
        drv.t = t_arr + 100_000
    # det_station_1 was never read: its record was still finalised and pruned
    for rec in drv.net._station_records:
        assert rec.final_until >= drv.t - 2_000_000
        clicks = sum(len(c) for c in rec._chunks)
        assert clicks < 1e6 * 2.1e-3 * 1.5
    with pytest.raises(RecordExpired, match="keeps only 0.001 s"):
        drv.net.input_edges(key, 0, 1000)


class _Kernel:
    def __init__(self, core):
        self.core = core

    @kernel
    def run(self, fn, *args):
        return fn(*args)


def test_ttl_timestamps_equal_the_record_through_the_core():
    from tests.node_driver import node_rig
    rig = node_rig(station_config(dark_hz=2e6), seed=25)
    try:
        ttl = rig.get("det_station_0")
        got = []

        def gates():
            rig.core.break_realtime()
            for _ in range(20):
                t_end = ttl.gate_rising_mu(5000)
                while True:
                    t = ttl.timestamp_mu(t_end)
                    if t < 0:
                        break
                    got.append((t_end, t))
                rig.core.break_realtime()
        _Kernel(rig.core).run(gates)
        assert got
        net = rig.world
        for t_end, t in got:
            record = net.input_edges("det_station_0", t_end - 5000, t_end)
            assert t in record.tolist()
        ends = sorted({e for e, _ in got})
        total = sum(len(net.input_edges("det_station_0", e - 5000, e)) for e in ends)
        assert total == len([1 for e, _ in got if e in ends])
    finally:
        rig.close()
