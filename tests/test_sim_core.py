"""ARTIQ semantics of the simulated core device: timeline, slack, gateware errors, inputs,
DMA."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from artiq.coredevice.exceptions import RTIOOverflow, RTIOUnderflow
from artiq.experiment import (
    at_mu,
    delay,
    delay_mu,
    kernel,
    ms,
    now_mu,
    ns,
    parallel,
    sequential,
    us,
)

from ionlink.sim.costs import CostModel
from ionlink.sim.rtio_engine import COARSE_SHIFT
from ionlink.sim.world import ScriptedInputs


class Kernel:
    """Runs a function as a kernel on the rig's core: ``Kernel(rig).run(fn, *args)``."""

    def __init__(self, rig):
        self.core = rig.core

    @kernel
    def run(self, fn, *args):
        return fn(*args)


def levels(world, device):
    return [(t, v) for t, d, a, v in world.outputs if d == device and a == "level"]


# -- timeline -------------------------------------------------------------------------


def test_parallel_and_sequential_nesting(rig):
    ttl4, ttl5 = rig.get("ttl4"), rig.get("ttl5")

    def body():
        at_mu(1_000_000_000)
        t0 = now_mu()
        with parallel:
            ttl4.pulse_mu(100)
            with sequential:
                delay_mu(50)
                ttl5.pulse_mu(300)
            delay_mu(20)
        t1 = now_mu()
        with sequential:
            with parallel:
                delay_mu(10)
                delay_mu(40)
            delay_mu(5)
        return t0, t1, now_mu()

    t0, t1, t2 = Kernel(rig).run(body)
    assert t1 - t0 == 350          # longest branch: 50 + 300
    assert t2 - t1 == 45           # parallel(10, 40) then 5
    assert levels(rig.world, "ttl4") == [(t0, 1), (t0 + 100, 0)]
    assert levels(rig.world, "ttl5") == [(t0 + 50, 1), (t0 + 350, 0)]


def test_delay_rounds_but_seconds_to_mu_floors(rig):
    core = rig.core
    assert core.seconds_to_mu(1.9 * ns) == 1
    assert core.seconds_to_mu(-0.5 * ns) == -1
    assert isinstance(core.seconds_to_mu(1 * us), np.int64)
    assert core.mu_to_seconds(1500) == pytest.approx(1.5e-6)

    def body():
        at_mu(0)
        delay(1.5 * ns)    # rounds half away from zero: 2
        a = now_mu()
        delay(1.4 * ns)    # 1
        b = now_mu()
        delay(-1.5 * ns)   # -2
        return a, b, now_mu()

    assert Kernel(rig).run(body) == (2, 3, 1)


def test_reset_and_break_realtime_margin(rig):
    def body():
        rig.core.reset()
        after_reset = now_mu() - rig.core.get_rtio_counter_mu()
        at_mu(rig.core.get_rtio_counter_mu() + 10**9)
        far = now_mu()
        rig.core.break_realtime()      # already later: no change
        return after_reset, now_mu() == far

    after_reset, unchanged = Kernel(rig).run(body)
    assert 0 < after_reset <= 125000
    assert unchanged


# -- slack and gateware errors ----------------------------------------------------------


def test_underflow_exactly_when_slack_negative(make_rig):
    rig = make_rig(costs=CostModel(rtio_output_ns=0, kernel_call_ns=0, kernel_launch_ns=0))
    ttl4 = rig.get("ttl4")
    engine = rig.engine

    def at(t):
        at_mu(t)
        ttl4.on()

    k = Kernel(rig)
    engine.cpu = 5000
    k.run(at, 5000)                      # slack 0: accepted
    with pytest.raises(RTIOUnderflow) as info:
        k.run(at, 4999)                  # slack -1
    message = str(info.value)
    assert "ttl4" in message and "4999 mu" in message and "slack -1 mu" in message
    assert engine.errors["underflow"] == 1


def test_cpu_cost_consumes_slack(make_rig):
    rig = make_rig(costs=CostModel(rtio_output_ns=1000, kernel_call_ns=0))
    ttl4 = rig.get("ttl4")

    def body():
        rig.core.reset()                 # 125 us of slack
        for _ in range(200):             # costs 2 us of CPU per 1 us of timeline
            ttl4.pulse_mu(500)
            delay_mu(500)

    with pytest.raises(RTIOUnderflow):
        Kernel(rig).run(body)


def test_replacement_on_same_timestamp_leaves_no_pulse(rig):
    ttl4 = rig.get("ttl4")

    def body():
        rig.core.reset()
        ttl4.on()
        ttl4.off()
        delay_mu(8)

    Kernel(rig).run(body)
    events = levels(rig.world, "ttl4")
    assert [v for _, v in events] == [1, 0] and events[0][0] == events[1][0]
    assert sum(rig.engine.errors.values()) == 0


def test_collision_same_coarse_different_fine(rig, caplog):
    ttl4 = rig.get("ttl4")

    def body():
        rig.core.reset()
        t = now_mu() & ~7
        at_mu(t)
        ttl4.on()
        at_mu(t + 3)
        ttl4.off()

    with caplog.at_level(logging.ERROR):
        Kernel(rig).run(body)
    assert rig.engine.errors["collision"] == 1
    assert "collision" in caplog.text and "ttl4" in caplog.text
    assert [v for _, v in levels(rig.world, "ttl4")] == [1]


def test_sequence_error_after_lanes_exhausted(rig):
    ttls = [rig.get(f"ttl{i}") for i in range(4, 13)]   # nine channels

    def body():
        rig.core.reset()
        for ttl in ttls:
            ttl.on()                     # nine events in one coarse period, eight lanes

    Kernel(rig).run(body)
    assert rig.engine.errors["sequence_error"] == 1
    assert len(levels(rig.world, "ttl12")) == 0


def test_full_lane_stalls_cpu(make_rig):
    rig = make_rig(costs=CostModel(sed_lane_depth=16, kernel_call_ns=0))
    ttl4 = rig.get("ttl4")

    def body():
        rig.core.reset()
        at_mu(now_mu() + 1_000_000)      # far ahead: no underflow, lane fills
        start = now_mu()
        for _ in range(9):               # 18 events in one lane of depth 16
            ttl4.pulse_mu(1000)
            delay_mu(1000)
        return start

    start = Kernel(rig).run(body)
    assert rig.engine.cpu >= start + 1000   # the CPU waited for the lane's 2nd event


# -- inputs ---------------------------------------------------------------------------


def test_gate_count_and_timestamps(make_rig):
    t0 = 2_000_000_000
    edges = [t0 + 100, t0 + 2_000, t0 + 5_000, t0 + 20_000]
    rig = make_rig(world=ScriptedInputs({"ttl0": edges}))
    pmt = rig.get("pmt")

    def body():
        at_mu(t0)
        end = pmt.gate_rising_mu(10_000)
        n = pmt.count(end)
        at_mu(t0 + 15_000)
        end2 = pmt.gate_rising_mu(10_000)
        stamps = [pmt.timestamp_mu(end2) for _ in range(3)]
        return end, n, stamps

    rig.engine.cpu = 0
    end, n, stamps = Kernel(rig).run(body)
    assert end == t0 + 10_000
    assert n == 3
    assert stamps == [t0 + 20_000, -1, -1]
    # reading blocked until the second gate's end plus the gate latency (104 mu)
    assert rig.engine.cpu >= t0 + 25_000 + 104


def test_ungated_edges_are_not_registered(make_rig):
    rig = make_rig(world=ScriptedInputs({"ttl0": [2_000_000_010]}))
    pmt = rig.get("pmt")

    def body():
        at_mu(2_000_000_100)
        return pmt.count(pmt.gate_rising_mu(1000))

    assert Kernel(rig).run(body) == 0


def test_input_fifo_overflow_raises_on_next_read(make_rig):
    t0 = 2_000_000_000
    rig = make_rig(world=ScriptedInputs({"ttl0": t0 + 10 * np.arange(100)}))
    pmt = rig.get("pmt")

    def gate():
        at_mu(t0)
        return pmt.gate_rising_mu(2_000)

    k = Kernel(rig)
    end = k.run(gate)
    with pytest.raises(RTIOOverflow, match="overflow on channel 0x0000:ttl0"):
        k.run(pmt.count, end)
    # The 64 events that fitted can still be read afterwards.
    assert k.run(pmt.count, end) == 64


def test_sample_input_level(make_rig):
    rig = make_rig(world=ScriptedInputs({"ttl0": [2_000_003_000]}, pulse_width_mu=100))
    pmt = rig.get("pmt")

    def body():
        levels = []
        for t in (2_000_002_000, 2_000_003_050, 2_000_020_000):
            at_mu(t)
            pmt.sample_input()
            levels.append(pmt.sample_get())
        return levels

    assert Kernel(rig).run(body) == [0, 1, 0]


# -- DMA ------------------------------------------------------------------------------


def pulse_pattern(ttl4, ttl5):
    for i in range(5):
        with parallel:
            ttl4.pulse(200 * ns)
            ttl5.pulse_mu(8 * (i + 1))
        delay(300 * ns)


def test_dma_playback_equals_direct_sequence(make_rig):
    t0 = 2_000_000_000
    direct = make_rig()
    ttl4, ttl5 = direct.get("ttl4"), direct.get("ttl5")

    def run_direct():
        at_mu(t0)
        pulse_pattern(ttl4, ttl5)
        return now_mu()

    end_direct = Kernel(direct).run(run_direct)
    expected = list(direct.world.outputs)

    replay = make_rig()
    dma = replay.get("core_dma")
    ttl4, ttl5 = replay.get("ttl4"), replay.get("ttl5")

    def run_dma():
        at_mu(1234)
        with dma.record("pattern"):
            pulse_pattern(ttl4, ttl5)
        assert now_mu() == 1234          # recording does not advance the timeline
        handle = dma.get_handle("pattern")
        at_mu(t0)
        dma.playback_handle(handle)
        return now_mu()

    end_dma = Kernel(replay).run(run_dma)
    assert end_dma == end_direct
    assert replay.world.outputs == expected


def test_dma_underflow_reported_after_playback(make_rig):
    rig = make_rig(costs=CostModel(dma_event_ns=1000, dma_playback_overhead_ns=0))
    dma, ttl4 = rig.get("core_dma"), rig.get("ttl4")

    def body():
        with dma.record("fast"):
            for _ in range(100):
                ttl4.pulse_mu(100)
                delay_mu(100)
        rig.core.break_realtime()
        delay(5 * us)
        dma.playback("fast")

    with pytest.raises(RTIOUnderflow):
        Kernel(rig).run(body)
    assert len(levels(rig.world, "ttl4")) > 0   # the events in time were played


def test_dma_errors(rig):
    from artiq.coredevice.exceptions import DMAError

    dma = rig.get("core_dma")

    def stale():
        with dma.record("a"):
            delay(1 * ms)
        handle = dma.get_handle("a")
        dma.erase("a")
        dma.playback_handle(handle)

    with pytest.raises(DMAError):
        Kernel(rig).run(stale)
    with pytest.raises(DMAError, match="not found"):
        Kernel(rig).run(dma.playback, "missing")


def test_core_cache(rig):
    cache = rig.get("core_cache")
    k = Kernel(rig)
    k.run(cache.put, "row", [1, 2, 3])
    assert k.run(cache.get, "row") == [1, 2, 3]
    assert k.run(cache.get, "none") == []


def test_coarse_shift_matches_kasli():
    assert 1 << COARSE_SHIFT == 8
