"""DMA playback as a batch: a recorded trace validated once, replayed as precomputed arrays.

The gateware checks of a playback (:meth:`ionlink.sim.rtio_engine.RTIOEngine._submit`:
underflow, SED lanes and sequence errors, collisions, busy) depend on the trace and on the
engine's state when it starts. :func:`compile_plan` runs them once per trace and fine phase
(``t0 & 7``: the coarse timestamps of shifted events depend on it) from a *clean* state
(no earlier event in any lane or channel). :meth:`PlayPlan.play` then applies the outcome
in one step when the real state is provably equivalent to the clean one for this trace:

- every SED lane and ``_last_coarse`` hold coarse timestamps before the trace's earliest
  one (so the lane distributor takes the same decisions, and no channel can collide with
  or replace an earlier event: every accepted event set its lane's last coarse timestamp);
- no channel is busy at the trace's earliest timestamp;
- no event underflows: ``t0 + min_k(rel_k - (k + 1) dma_event_ns) >=`` the CPU clock after
  the playback overhead (events are charged in trace order, as the DMA engine reads them);
- no lane can fill up (each lane's pending events plus the trace's events for it fit in
  ``sed_lane_depth``), so the CPU never stalls.

Otherwise the engine plays the trace event by event, which is always exact. Errors the
trace makes on its own (a sequence error or collision inside the trace) are part of the
plan and are counted and logged as the event-by-event path does. Traces holding deferred
peripheral updates (``RTIOEngine.defer``) are always played event by event.

The world gets the playback's world events in one call, ``world.output_batch(t0, events)``
with ``events`` a tuple of ``(t_rel_mu, device, attr, value)`` in submission order; the
same tuple object comes with every playback of the plan, so a world may cache work per
trace on its identity. A world whose class has no ``output_batch`` gets ``output`` calls.
"""

from __future__ import annotations

from typing import Any

#: log2 of the coarse RTIO period (as in rtio_engine).
COARSE_SHIFT = 3
ADDR_O = 0
ADDR_SENS = 2
ADDR_SAMPLE = 3


class PlayPlan:
    """One trace compiled for playback at one fine phase (see module docstring)."""

    __slots__ = ("costs", "events", "n_real", "margin", "rel_min", "rel_max", "cmin",
                 "lane_appends",
                 "lanes_by_start", "fits_by_start", "lane_last_by_start", "lane_last_max",
                 "final_lane", "last_coarse", "lane_last", "channel_last", "busy_until",
                 "errors", "trace", "inputs", "world")

    def __init__(self) -> None:
        self.events: list = []


def compile_plan(engine: Any, events: list, phase: int) -> PlayPlan | None:
    """Run the gateware checks of ``events`` from a clean state at fine phase ``phase``;
    None if the trace cannot be played as a batch."""
    costs = engine.costs
    dma = costs.dma_event_ns
    lanes = costs.sed_lanes
    plan = PlayPlan()
    plan.events = events
    plan.costs = costs
    lane = 0
    last_coarse: int | None = None
    lane_last: dict[int, int] = {}
    lane_appends: dict[int, list[int]] = {}
    last_t: dict[tuple[int, int], int] = {}
    busy_until: dict[int, int] = {}
    errors: list[tuple[str, int]] = []
    trace: list[tuple[int, int, int, Any]] = []
    inputs: list[tuple[Any, int, int, Any]] = []
    world: list[tuple[int, str, str, Any]] = []
    margin = None
    rel_min = None
    k = 0
    for rel, target, data, world_event, busy_mu in events:
        if target < 0:
            if target != -1:
                return None         # a deferred hook: arbitrary code at playback
            world.append((rel, world_event[0], world_event[1], world_event[2]))
            continue
        k += 1
        m = rel - k * dma
        margin = m if margin is None else min(margin, m)
        rel_min = rel if rel_min is None else min(rel_min, rel)
        coarse = (rel + phase) >> COARSE_SHIFT
        channel = target >> 8
        address = target & 0xFF
        info = engine.channels.get(channel)
        if info is None:
            return None
        cand = lane
        if last_coarse is not None and coarse <= last_coarse:
            cand = lane + 1
        prev = lane_last.get(cand % lanes)
        if prev is not None and coarse <= prev:
            errors.append(("sequence_error", channel))
            continue
        lane_appends.setdefault(cand, []).append(rel)
        lane = cand
        last_coarse = coarse
        lane_last[cand % lanes] = coarse
        last = last_t.get((channel, address))
        if last is not None:
            if rel == last:
                if not info.replace:
                    errors.append(("collision", channel))
                    continue
            elif coarse == (last + phase) >> COARSE_SHIFT:
                errors.append(("collision", channel))
                continue
        if rel < busy_until.get(channel, -(1 << 62)) and rel != last:
            errors.append(("busy", channel))
            continue
        last_t[(channel, address)] = rel
        if busy_mu:
            busy_until[channel] = rel + busy_mu
        trace.append((rel, channel, address, data))
        if info.is_input and address in (ADDR_SENS, ADDR_SAMPLE):
            inputs.append((engine.inputs[channel], rel, address, data))
        if world_event is not None:
            world.append((rel, world_event[0], world_event[1], world_event[2]))
        elif address == ADDR_O and info.forward_level:
            world.append((rel, info.device, "level", data))
    plan.n_real = k
    plan.margin = margin
    plan.rel_min = rel_min
    plan.cmin = None if rel_min is None else min(
        (r + phase) >> COARSE_SHIFT for r, t, *_ in events if t >= 0)
    # lane offsets relative to the lane in use when the playback starts
    if any(len(v) > costs.sed_lane_depth for v in lane_appends.values()):
        return None
    plan.lane_appends = tuple((off, tuple(v)) for off, v in sorted(lane_appends.items()))
    plan.rel_max = max((max(v) for v in lane_appends.values()), default=None)
    # per starting lane: (queue index, relative timestamps) of each lane the trace uses
    # (offsets that wrap around reach the same queue: their timestamps are merged, in
    # order, so that the depth check sees all of them)
    by_start = []
    for start in range(lanes):
        merged: dict[int, list[int]] = {}
        for off, rels in plan.lane_appends:
            merged.setdefault((start + off) % lanes, []).extend(rels)
        by_start.append(tuple((index, tuple(rels)) for index, rels in merged.items()))
    plan.lanes_by_start = tuple(by_start)
    # per starting lane: the trace's events fit into empty lanes
    plan.fits_by_start = tuple(all(len(rels) <= costs.sed_lane_depth for _, rels in lanes_)
                               for lanes_ in by_start)
    plan.final_lane = lane if k else None
    plan.last_coarse = last_coarse
    plan.lane_last = tuple(lane_last.items())
    plan.lane_last_max = max(lane_last.values(), default=0)
    # per starting lane: (queue index, coarse timestamp) of each lane's last event
    plan.lane_last_by_start = tuple(
        tuple(((start + off) % lanes, c) for off, c in plan.lane_last)
        for start in range(lanes))
    plan.channel_last = tuple((engine.channels[ch].last_t, addr, rel)
                              for (ch, addr), rel in last_t.items())
    plan.busy_until = tuple((engine.channels[ch], rel) for ch, rel in busy_until.items())
    plan.errors = tuple(errors)
    plan.trace = tuple(trace)
    plan.inputs = tuple(inputs)
    plan.world = tuple(world)
    return plan


def play(engine: Any, plan: PlayPlan, t0: int) -> bool:
    """Apply ``plan`` at ``t0`` if the engine's state allows it (see module docstring);
    False (nothing changed that matters) if the trace must be played event by event."""
    costs = engine.costs
    if costs is not plan.costs:
        return False                                      # compiled for other costs
    cpu = engine.cpu + costs.dma_playback_overhead_ns
    if plan.n_real:
        if t0 + plan.margin < cpu:
            return False                                  # an event would underflow
        c0 = t0 >> COARSE_SHIFT
        cmin = c0 + plan.cmin
        if cmin <= engine._last_coarse or cmin <= engine._lane_last_max:
            return False
        if t0 + plan.rel_min < engine._busy_max:
            return False
        queues = engine._lane_queues
        n = len(queues)
        depth = costs.sed_lane_depth
        lane0 = engine._lane
        start = engine.cpu
        lanes = plan.lanes_by_start[lane0]
        lazy = engine._lane_lazy
        if lazy is not None:
            if lazy[2] <= start:
                engine._lane_lazy = None    # all emitted: nothing to add
            else:
                engine._add_lazy_lanes()
        if engine._lane_max > start or not plan.fits_by_start[lane0]:
            # (otherwise no lane holds an event not yet emitted, and the trace fits)
            for index, rels in lanes:
                q = queues[index]
                if len(q) + len(rels) > depth:
                    # (events already emitted leave the lane; popped lazily, as _submit
                    # does)
                    while q and q[0] <= start:
                        q.popleft()
                    if len(q) + len(rels) > depth:
                        return False
        # -- the outcome is the clean-state one: apply it (the lane entries lazily)
        engine._lane_lazy = (t0, lanes, t0 + plan.rel_max)
        engine._lane = (lane0 + plan.final_lane) % n
        engine._last_coarse = c0 + plan.last_coarse
        lane_last = engine._lane_last
        for index, c in plan.lane_last_by_start[lane0]:
            lane_last[index] = c0 + c
        if c0 + plan.lane_last_max > engine._lane_last_max:
            engine._lane_last_max = c0 + plan.lane_last_max
        for last_t, address, rel in plan.channel_last:
            last_t[address] = t0 + rel
        for info, rel in plan.busy_until:
            info.busy_until = t0 + rel
            if t0 + rel > engine._busy_max:
                engine._busy_max = t0 + rel
        engine.events_submitted += plan.n_real
        for kind, channel in plan.errors:
            engine._gateware_error(kind, channel)
        trace = engine.trace
        if trace is not None:
            trace.extend([(t0 + rel, ch, addr, data) for rel, ch, addr, data in plan.trace])
        for inp, rel, address, data in plan.inputs:
            t = t0 + rel
            events = inp.sens_events
            if address == ADDR_SENS and (not events or t >= events[-1][0]):
                events.append((t, data))
            else:
                engine._input_control(inp, t, address, data)
    engine.cpu = cpu + plan.n_real * costs.dma_event_ns
    if plan.world:
        world = engine.world
        batch = getattr(type(world), "output_batch", None)
        if batch is not None:
            batch(world, t0, plan.world)
        else:
            output = world.output
            for rel, device, attr, value in plan.world:
                output(t0 + rel, device, attr, value)
    return True
