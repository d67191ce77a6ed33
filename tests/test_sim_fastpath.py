"""DMA playback as a batch (``ionlink.sim.dma_plan``) and the node's batched processing give
exactly the event-by-event results: same errors, CPU clock, SED/channel state, VCD trace,
world events, and (through the virtual node) the same clicks and ion states for one seed."""

from __future__ import annotations

import logging
import random
import sys
from pathlib import Path

import numpy as np
import pytest
from artiq.coredevice.exceptions import RTIOUnderflow

from ionlink.sim.costs import CostModel
from ionlink.sim.rtio_engine import RTIOEngine
from ionlink.sim.world import ScriptedInputs

N_CHANNELS = 6
INPUT_CHANNEL = 6


def _engine(fast: bool, costs: CostModel) -> RTIOEngine:
    engine = RTIOEngine(world=ScriptedInputs({"in6": [50, 400, 900]}), costs=costs,
                        trace=True)
    engine.fast_dma = fast
    for ch in range(N_CHANNELS):
        engine.register_channel(ch, f"ttl{ch}", replace=(ch != 3))
    engine.register_channel(INPUT_CHANNEL, "in6", is_input=True)
    return engine


def _random_trace(rng: random.Random) -> list:
    """Events ``(t_rel, target, data, world_event, busy_mu)`` in submission order: mostly
    increasing, with same-timestamp bursts, steps back in time (sequence errors,
    collisions), busy channels, input gates and notify-only world events."""
    events = []
    t = rng.randrange(0, 40)
    for _ in range(rng.randrange(1, 40)):
        r = rng.random()
        if r < 0.5:
            t += rng.choice([0, 1, 3, 8, 20, 300])
        elif r < 0.6:
            t -= rng.randrange(0, 30)
        if rng.random() < 0.1:
            events.append((t, -1, None, ("dds0", "att_db", rng.random()), 0))
            continue
        if rng.random() < 0.1:
            target = INPUT_CHANNEL << 8 | 2
            data = rng.choice([0, 1, 3])
        else:
            target = rng.randrange(N_CHANNELS) << 8
            data = rng.randrange(2)
        busy = rng.choice([0, 0, 0, 40])
        world_event = ("dds1", "level", data) if rng.random() < 0.1 else None
        events.append((t, target, data, world_event, busy))
    return events


def _state(engine: RTIOEngine) -> tuple:
    return (engine.cpu, dict(engine.errors), engine.events_submitted, list(engine.trace),
            list(engine.world.outputs), engine._lane, engine._last_coarse,
            list(engine._lane_last),
            [[t for t in q if t > engine.cpu] for q in engine._lane_queue],
            {ch: (dict(info.last_t), info.busy_until) for ch, info in engine.channels.items()},
            list(engine.inputs[INPUT_CHANNEL].sens_events))


def _play_all(engine: RTIOEngine, traces: list, schedule: list) -> list:
    outcomes = []
    for which, mode, gap in schedule:
        if mode == 0:       # plenty of slack after everything earlier
            t0 = max(engine.tm.now, engine.cpu) + gap * 10
        elif mode == 1:     # right after the previous trace (shared coarse periods)
            t0 = engine.tm.now + gap // 1000
        else:               # little slack: underflows
            t0 = engine.cpu + gap // 20 - 100
        try:
            engine.play(traces[which], t0)
            outcomes.append(None)
        except RTIOUnderflow as exc:
            outcomes.append(str(exc))
        engine.tm.now = t0 + max(t for t, *_ in traces[which]) + 1
        if len(outcomes) % 7 == 0:      # now and then an event between playbacks
            try:
                engine.output(1 << 8, len(outcomes) & 1)
            except RTIOUnderflow as exc:
                outcomes.append(str(exc))
    return outcomes


@pytest.mark.parametrize("seed", range(12))
def test_batch_playback_equals_event_by_event(seed, caplog):
    rng = random.Random(seed)
    traces = [_random_trace(rng) for _ in range(3)]
    # small lanes so that stalls and full lanes happen too
    costs = CostModel(sed_lanes=4, sed_lane_depth=rng.choice([4, 16, 128]))
    schedule = [(rng.randrange(3), rng.choice([0, 0, 0, 1, 2]), rng.randrange(0, 8000))
                for _ in range(80)]
    results = []
    for fast in (False, True):
        engine = _engine(fast, costs)
        engine.tm.now = engine.cpu + 10_000
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="ionlink.sim.rtio"):
            outcomes = _play_all(engine, traces, schedule)
        results.append((outcomes, _state(engine), [r.getMessage() for r in caplog.records]))
    assert results[0] == results[1]


def test_batch_playback_is_taken_and_skipped_when_unsafe(monkeypatch):
    """The batch path is used for a plain trace with slack, and not when an event would
    underflow (the event-by-event path then raises after playing the rest)."""
    from ionlink.sim import dma_plan

    used = []
    real = dma_plan.play
    monkeypatch.setattr(dma_plan, "play",
                        lambda engine, plan, t0: used.append(real(engine, plan, t0)) or used[-1])
    engine = _engine(True, CostModel())
    trace = [(0, 0 << 8, 1, None, 0), (100, 0 << 8, 0, None, 0), (100, 1 << 8, 1, None, 0)]
    engine.play(trace, engine.cpu + 50_000)
    assert used == [True]
    with pytest.raises(RTIOUnderflow):
        engine.play(trace, engine.cpu)
    assert used == [True, False]
    assert engine.errors["underflow"] == 3     # each event of the trace underflows


def test_traces_with_deferred_hooks_play_event_by_event():
    engine = _engine(True, CostModel())
    seen = []
    trace = [(0, 0 << 8, 1, None, 0), (10, -2, lambda: seen.append(engine.tm.now), None, 0)]
    engine.play(trace, engine.cpu + 50_000)
    assert seen == [engine.cpu - engine.costs.dma_playback_overhead_ns
                    - engine.costs.dma_event_ns + 50_000 + 10]


# -- the virtual node behind the simulated core -------------------------------------------


def _bench():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    try:
        import bench_node
    finally:
        sys.path.pop(0)
    return bench_node


def _fingerprint(net, engine, result) -> tuple:
    net.flush()
    clicks = [c.tolist() for rec in net._station_records + net._pmt_records
              for c in rec._chunks]
    pops = None if net._pops is None else [p.tolist() for p in net._pops]
    rngs = [g.bit_generator.state["state"]["state"]
            for g in (net._rng, net._photon_rng, *(ion.noise._rng for ion in net.ions))]
    ions = [(ion.t_mu, ion.nbar, ion.noise.x, ion.noise_lag_s, ion.atom_phase_turns,
             ion.area_393) for ion in net.ions]
    return (result["herald_probability"], result["node_time_s"], result["rtio_events"],
            clicks, pops, rngs, ions, net._fibre_noise.x, dict(engine.errors),
            len(engine.trace or ()), list(engine.trace or ()))


def test_heralding_loop_same_seed_same_clicks(monkeypatch):
    """The bench's DMA heralding loop (cooling + attempt traces, station detectors read
    every attempt) gives identical clicks, ion states and random streams with the batch
    paths (engine and node) as event by event, tracing on."""
    from ionlink.sim import session

    bench_node = _bench()
    start = session.start
    runs = []
    for batch in (False, True):
        captured = {}

        def start_traced(world=None, _batch=batch, _captured=captured, **kw):
            engine = start(world=world, **{**kw, "trace": True})
            engine.fast_dma = _batch        # False: events (and world outputs) one by one
            _captured.update(net=world, engine=engine)
            return engine

        monkeypatch.setattr(session, "start", start_traced)
        result = bench_node.run(600, seed=3)
        runs.append(_fingerprint(captured["net"], captured["engine"], result))
    assert runs[0] == runs[1]
    assert runs[0][0] > 0                 # heralds happened (probability ~1 %)
    assert runs[0][9] > 600 * 16          # every event reached the trace


def test_node_playback_batches_equal_single_events():
    """``VirtualNetwork.output_batch`` (kept as one item, expanded when another event falls
    inside its span or the flush cuts it) processes events exactly as ``output`` does."""
    from ionlink.node import VirtualNetwork
    from ionlink.node.wiring import NODES, example_device_db
    from ionlink.sim.world import PHASE_MODE_TRACKING, DDSState

    db = example_device_db()
    nets = [VirtualNetwork(db, seed=11) for _ in range(2)]
    dev = nets[0].wiring.devices
    for net in nets:
        for n in NODES:
            net.output(0, dev[f"dds_397_{n}"], "dds",
                       DDSState(100e6, 0.0, 1.0, PHASE_MODE_TRACKING, 0))
            for la in ("854", "866", "393"):
                net.output(0, dev[f"dds_{la}_{n}"], "dds",
                           DDSState(80e6, 0.0, 1.0, PHASE_MODE_TRACKING, 0))
    sw = {f"dds_{laser}_{node}": key for key, targets in nets[0].wiring.switch.items()
          for node, laser in targets}
    attempt = tuple(
        [(0, sw[f"dds_{la}_{n}"], "level", 1) for n in NODES for la in ("854", "866")]
        + [(3000, sw[f"dds_{la}_{n}"], "level", 0) for n in NODES for la in ("854", "866")]
        + [(4000, sw[f"dds_393_{n}"], "level", 1) for n in NODES]
        + [(4300, sw[f"dds_393_{n}"], "level", 0) for n in NODES])
    rng = random.Random(5)
    t = 10_000
    for k in range(400):
        extra = None
        if k % 5 == 0:      # a single event inside the playback's span
            extra = (t + rng.choice([0, 3000, 4100, 4300]),
                     sw[f"dds_393_{rng.choice(NODES)}"], "level", rng.randrange(2))
        cut = t + rng.choice([2000, 4200, 5000, 9000])   # flushes inside and after
        for batch, net in zip((False, True), nets, strict=True):
            if batch:
                net.output_batch(t, attempt)
            else:
                for rel, device, attr, value in attempt:
                    net.output(t + rel, device, attr, value)
            if extra is not None:
                net.output(*extra)
            for det in (0, 1):
                net.input_edges(f"det_station_{det}", cut - 1000, cut)
        t += 20_000 if k % 20 else 520_000
    for net in nets:
        net.flush()
    fps = [([c.tolist() for rec in net._station_records for c in rec._chunks],
            None if net._pops is None else [p.tolist() for p in net._pops],
            None if net._rho is None else net._rho.tolist(),
            net._rng.bit_generator.state, [ion.nbar for ion in net.ions]) for net in nets]
    assert fps[0] == fps[1]
    assert any(fps[0][0])


# -- RF switches (TTL OR CPLD bit) in front of the world --------------------------------


class _BatchRecorder(ScriptedInputs):
    """Records outputs; takes batches (and counts them) like a world that caches them."""

    def __init__(self):
        super().__init__()
        self.batches = 0

    def output_batch(self, t0_mu, events):
        self.batches += 1
        for rel, device, attr, value in events:
            self.output(t0_mu + rel, device, attr, value)


@pytest.mark.parametrize("seed", range(6))
def test_rf_switch_batches_equal_single_events(seed):
    """``RFSwitchWorld.output_batch`` gives the world behind it the same events, in the
    same order, as ``output`` one by one; with CPLD bits set, events back in time and
    CFG events in a playback it falls back to the OR event by event."""
    from ionlink.sim.rf_switch import RFSwitchWorld

    rng = random.Random(seed)
    switches = [(f"sw{k}", f"dds{k}") for k in range(3)]
    traces = []
    for n in range(3):
        events, t = [], 0
        for _ in range(rng.randrange(1, 10)):
            t += rng.choice([0, 0, 5, 100])
            if n and rng.random() < 0.08:
                t -= 50
            k = rng.randrange(3)
            r = rng.random() if n else 0.0     # trace 0: TTL levels only
            if r < 0.75:
                events.append((t, switches[k][0], "level", rng.randrange(2)))
            elif r < 0.85:
                events.append((t, switches[k][1], "level", rng.randrange(2)))   # CFG bit
            else:
                events.append((t, f"other{k}", "att_db", float(k)))
        traces.append(tuple(events))
    worlds = []
    for batch in (False, True):
        inner = _BatchRecorder()
        engine = RTIOEngine(world=inner)
        world = RFSwitchWorld(inner, engine)
        for sw, dds in switches:
            world.pair(sw, dds)
        worlds.append((batch, world, inner, engine))
    t0 = 1000
    for _ in range(150):
        which = rng.randrange(3)
        single = None
        if rng.random() < 0.3:      # a CFG bit or TTL change between playbacks
            sw, dds = switches[rng.randrange(3)]
            single = (t0 - rng.choice([0, 30, 300]), rng.choice([sw, dds]), "level",
                      rng.choice([0, 0, 1]))
        for batch, world, _inner, engine in worlds:
            engine.cpu = t0 - 500
            if single is not None:
                world.output(*single)
            if batch:
                world.output_batch(t0, traces[which])
            else:
                for rel, device, attr, value in traces[which]:
                    world.output(t0 + rel, device, attr, value)
        t0 += rng.choice([200, 1000, 5000])
    assert worlds[0][2].outputs == worlds[1][2].outputs
    assert worlds[1][2].batches > 0        # the batch path was taken


# -- compiled playback programs of the virtual node (ionlink.node.playback) -------------


def _bench_fingerprint(monkeypatch, seed: int, attempts: int, programs: bool,
                       fused: bool = True) -> tuple:
    """The bench's heralding loop (DMA batches on) with the node's playback programs on
    or off (off: every playback through ``_switch_level``)."""
    from ionlink.node import network, playback
    from ionlink.sim import session

    bench_node = _bench()
    monkeypatch.setattr(playback, "FUSED", fused)
    if not programs:
        monkeypatch.setattr(network, "compile_program", lambda net, steps: None)
    start = session.start
    captured = {}

    def start_traced(world=None, **kw):
        engine = start(world=world, **{**kw, "trace": True})
        captured.update(net=world, engine=engine)
        return engine

    monkeypatch.setattr(session, "start", start_traced)
    result = bench_node.run(attempts, seed=seed)
    monkeypatch.undo()
    return _fingerprint(captured["net"], captured["engine"], result)


@pytest.mark.parametrize("seed", [3, 8])
def test_playback_programs_equal_switch_by_switch(monkeypatch, seed):
    """Programs (fused and step by step, photons in light form) give the same clicks,
    ion states and random streams as ``_switch_level`` step by step."""
    runs = [_bench_fingerprint(monkeypatch, seed, 500, programs, fused)
            for programs, fused in ((False, True), (True, True), (True, False))]
    assert runs[0] == runs[1] == runs[2]
    assert runs[0][0] > 0          # heralds: the light record was built into a batch


@pytest.mark.parametrize("scheme", ["single_photon", "two_photon"])
def test_programs_are_used_and_follow_laser_changes(monkeypatch, scheme):
    """Playbacks run as programs; a DDS or attenuation change of a switched laser, a 729
    pulse (phonon-number draws while heating) and a 393 pulse area change between
    playbacks give the same result as single events (programs recompiled or skipped),
    for both photon-generation schemes."""
    import math

    from ionlink.node import VirtualNetwork, playback
    from ionlink.node.config import load_node_config
    from ionlink.node.wiring import NODES, example_device_db
    from ionlink.sim.world import PHASE_MODE_TRACKING, DDSState

    config = None
    if scheme == "two_photon":      # alpha 0.3 per 300 ns pulse: many clicks
        config = load_node_config().replace(
            protocol={"scheme": "two_photon", "time_bin_separation_s": 2e-6},
            laser_393={"generation_time_constant_s": -300e-9 / math.log(0.7)})

    used = []
    real = playback.run_program

    def counting(net, program, t0, light=False):
        drawing = any(ion.n_shot is not None for ion in net.ions)    # step by step
        used.append((real(net, program, t0, light), drawing))
        return used[-1][0]

    monkeypatch.setattr("ionlink.node.network.run_program", counting)
    db = example_device_db()
    nets = [VirtualNetwork(db, config, seed=21) for _ in range(2)]
    dev = nets[0].wiring.devices
    sw = {f"dds_{laser}_{node}": key for key, targets in nets[0].wiring.switch.items()
          for node, laser in targets}

    def dds(amplitude: float) -> DDSState:
        return DDSState(80e6, 0.0, amplitude, PHASE_MODE_TRACKING, 0)

    for net in nets:
        for n in NODES:
            for la in ("854", "866", "393"):
                net.output(0, dev[f"dds_{la}_{n}"], "dds", dds(1.0))
            net.output(0, dev[f"dds_729_{n}"], "dds",
                       DDSState(net.transition_729_dds_hz(NODES.index(n), 0.0), 0.0, 1.0,
                                PHASE_MODE_TRACKING, 0))
    attempt = tuple(
        [(0, sw[f"dds_{la}_{n}"], "level", 1) for n in NODES for la in ("854", "866")]
        + [(3000, sw[f"dds_{la}_{n}"], "level", 0) for n in NODES for la in ("854", "866")]
        + [(4000, sw[f"dds_393_{n}"], "level", 1) for n in NODES]
        + [(4300, sw[f"dds_393_{n}"], "level", 0) for n in NODES])
    rng = random.Random(2)
    t = 10_000
    for k in range(300):
        singles = []
        if k % 40 == 13:     # a 729 pulse: the ions leave the population form
            singles += [(t - 5000, sw["dds_729_a"], "level", 1),
                        (t - 4000, sw["dds_729_a"], "level", 0)]
        if k % 30 == 7:
            node, laser = rng.choice(NODES), rng.choice(("393", "854"))
            key = dev[f"dds_{laser}_{node}"]
            singles.append((t - 100, key, "dds", dds(rng.choice([0.5, 0.8, 1.0]))))
        if k % 50 == 21:
            singles.append((t - 100, dev[f"dds_393_{rng.choice(NODES)}"], "att_db",
                            rng.choice([0.0, 3.0])))
        for batch, net in zip((False, True), nets, strict=True):
            for event in singles:
                net.output(*event)
            if batch:
                net.output_batch(t, attempt)
            else:
                for rel, device, attr, value in attempt:
                    net.output(t + rel, device, attr, value)
            for det in (0, 1):
                net.input_edges(f"det_station_{det}", t + 5000, t + 9000)
        t += 20_000
    for net in nets:
        net.flush()
    fps = [([c.tolist() for rec in net._station_records for c in rec._chunks],
            None if net._pops is None else [p.tolist() for p in net._pops],
            None if net._rho is None else net._rho.tolist(),
            net._rng.bit_generator.state, [(ion.nbar, ion.n_shot, ion.noise_lag_s,
                                           ion.area_393, ion.t_mu) for ion in net.ions],
            [(las.level, las.f, las.is_on) for las in net._all_lasers]) for net in nets]
    assert fps[0] == fps[1]
    assert any(fps[0][0])
    # mostly programs (not while the 729 pulse left the joint state), with and without
    # phonon-number draws
    assert 200 < sum(ok for ok, _ in used) == len(used) < 300
    assert any(drawing for _, drawing in used) and not all(drawing for _, drawing in used)


def test_elided_transfers_end_in_s():
    """Where ``_elision_applies`` allows it, the skipped transfers and the quench give S
    exactly (the result the program sets), for random posteriors and gaps."""
    from ionlink.node import VirtualNetwork
    from ionlink.node.ion import S
    from ionlink.node.playback import SNAP_MARGIN, _elision_applies
    from ionlink.node.wiring import example_device_db

    net = VirtualNetwork(example_device_db())
    quench = net._transfer(net._quench_rate, net._repump_rate, 3e-6)
    assert quench[S].min() >= 1 - SNAP_MARGIN
    rng = np.random.default_rng(4)
    checked = 0
    for _ in range(300):
        p = rng.dirichlet([5.0, 1.0, 0.5, 0.5]) * rng.choice([1.0, 1e-3, 1e-5])
        p[S] = 1.0 - p[1:].sum()
        gap = float(rng.choice([1e-7, 5e-5, 1e-3, 0.1]))
        if not _elision_applies(p, gap, False, 1e-6):
            continue
        checked += 1
        v = net._transfer(0.0, 0.0, gap).dot(p)
        v = net._transfer(0.0, 0.0, 1e-6).dot(v)
        v = quench.dot(v)
        assert 1.0 - v[S] <= net._snap_floor
    assert checked > 200
    assert not _elision_applies(np.array([1.0 - 1e-9, 1e-9, 0.0, 0.0]), 1e-5, False, 0.0)
    assert not _elision_applies(np.array([0.9, 0.1, 0.0, 0.0]), 0.6, False, 0.0)
