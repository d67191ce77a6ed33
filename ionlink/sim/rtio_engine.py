"""The simulated RTIO core: timeline, CPU-time counter, SED lanes, channels, input FIFOs.

One :class:`RTIOEngine` stands for the gateware and the kernel CPU's sense of time:

- The RTIO counter is the CPU clock of the cost model (:mod:`ionlink.sim.costs`): every
  kernel operation advances it, blocking reads wait for it, so slack is real.
- Output events go through ARTIQ's checks in the gateware's order: underflow (raised as
  :class:`RTIOUnderflow`, the event discarded); the SED lane distributor (a lane keeps
  strictly increasing coarse timestamps, the next lane is taken otherwise, a sequence error
  drops the event; a full lane stalls the CPU until its oldest event leaves); then the
  channel (replacement of same-timestamp events where the channel supports it, collisions,
  busy). Gateware errors are logged and counted, never raised, as on hardware.
- Accepted events reach the :class:`~ionlink.sim.world.World` and, when tracing, the trace.
- DMA playback runs the checks once per recorded trace and replays the outcome as a batch
  whenever that provably equals the event-by-event result (:mod:`ionlink.sim.dma_plan`;
  ``fast_dma = False`` forces event by event).
- TTL inputs materialise the world's edges while gated, into FIFOs of finite depth that
  overflow (:class:`RTIOOverflow` on the next read) when the CPU does not drain them.
"""

from __future__ import annotations

import logging
from bisect import insort
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from artiq.coredevice.exceptions import RTIOOverflow, RTIOUnderflow

from ionlink.sim import dma_plan
from ionlink.sim.costs import DEFAULT_COSTS, CostModel
from ionlink.sim.timeline import TimeManager
from ionlink.sim.world import QuietWorld, World

logger = logging.getLogger("ionlink.sim.rtio")

#: log2 of the coarse RTIO period in machine units (125 MHz coarse clock, 1 ns fine).
COARSE_SHIFT = 3

# TTLInOut register addresses (as in artiq.coredevice.ttl).
ADDR_O = 0
ADDR_OE = 1
ADDR_SENS = 2
ADDR_SAMPLE = 3
#: placeholder of a DMA plan not compiled yet (None: the trace plays event by event)
_UNCOMPILED = object()


@dataclass
class ChannelInfo:
    """What the engine knows about one RTIO channel.

    :param device: device_db key of the device that owns the channel.
    :param replace: same-timestamp events replace each other (TTLs) instead of colliding.
    :param forward_level: output data on address 0 reaches the world as ``"level"``.
    """

    channel: int
    device: str
    replace: bool = True
    forward_level: bool = True
    is_input: bool = False
    # Per address: timestamp of the last accepted event, and busy-until time.
    last_t: dict[int, int] = field(default_factory=dict)
    busy_until: int = -1


class InputChannel:
    """A TTL input: gate (sensitivity) timeline, arrivals, FIFO, overflow flag."""

    def __init__(self, info: ChannelInfo, depth: int):
        self.info = info
        self.depth = depth
        # Sensitivity changes (t_mu, sens): bit 0 rising, bit 1 falling.
        self.sens_events: list[tuple[int, int]] = []
        self.sens = 0             # sensitivity in force at ``materialised_until``
        self.materialised_until = -(1 << 62)
        self.arrivals: deque[tuple[int, int]] = deque()   # (t_mu, data) not yet in FIFO
        self.fifo: deque[tuple[int, int]] = deque()
        self.overflow = False
        self.last_rising = -(1 << 62)
        self.sample_requests: list[tuple[int, int]] = []  # (t_mu, mode)
        #: sensitivity changes already materialised that lay after the RTIO counter when
        #: they were, ``(t_mu, sens before, sens after)``: what ``core.reset()`` takes back
        self.future_sens: list[tuple[int, int, int]] = []


class RTIOEngine:
    """The simulated RTIO core and its CPU clock.

    :param world: what is behind the channels.
    :param costs: the CPU cost model.
    :param ref_period: seconds per machine unit.
    :param counter_mu: initial RTIO counter value.
    :param trace: keep every accepted output and input event (for VCD).
    """

    def __init__(self, world: World | None = None, costs: CostModel = DEFAULT_COSTS,
                 ref_period: float = 1e-9, counter_mu: int = 0, trace: bool = False):
        self.world: World = world if world is not None else QuietWorld()
        self.costs = costs
        self.ref_period = ref_period
        self.tm = TimeManager(ref_period)
        #: The RTIO counter = the CPU clock, in machine units.
        self.cpu = int(counter_mu)
        self.channels: dict[int, ChannelInfo] = {}
        self.inputs: dict[int, InputChannel] = {}
        self.errors: Counter[str] = Counter()
        self.events_submitted = 0
        #: output events accepted but discarded by ``reset`` before their time
        self.events_discarded = 0
        self.trace: list[tuple[int, int, int, Any]] | None = [] if trace else None
        #: When not None, output events go into this DMA recording instead.
        self.recording: list[tuple[int, int, Any, Any]] | None = None
        #: DMA playback as a batch (see :mod:`ionlink.sim.dma_plan`); False: event by event.
        self.fast_dma = True
        self._plans: dict[int, Any] = {}
        #: peripheral models changed for events after the counter: id -> (model, deque of
        #: (event time, state before the change)) (see :meth:`keep_for_reset`)
        self._kept: dict[int, tuple[Any, deque]] = {}
        #: called as ``hook(counter)`` by :meth:`reset` (drivers' own reset behaviour)
        self.reset_hooks: list[Callable[[int], None]] = []
        self._reset_sed()

    # -- channels ---------------------------------------------------------------------

    def register_channel(self, channel: int, device: str, *, replace: bool = True,
                         forward_level: bool = True, is_input: bool = False) -> None:
        """Declare a channel (drivers do this when the device manager creates them)."""
        if channel in self.channels and self.channels[channel].device != device:
            owner = self.channels[channel].device
            raise ValueError(f"RTIO channel 0x{channel:06x} is claimed by both {owner} "
                             f"and {device}")
        info = ChannelInfo(channel, device, replace, forward_level, is_input)
        self.channels[channel] = info
        self._plans.clear()     # DMA plans hold channel objects: compile them again
        if is_input:
            self.inputs[channel] = InputChannel(info, self.costs.input_fifo_depth)

    def channel_name(self, channel: int) -> str:
        info = self.channels.get(channel)
        return "0x{:04x}:{}".format(channel, info.device if info else "unknown")

    # -- CPU clock ----------------------------------------------------------------------

    def charge(self, ns: int) -> None:
        """Advance the CPU clock (and so the RTIO counter) by ``ns``."""
        self.cpu += ns

    def wait_until(self, t_mu: int) -> None:
        """Block the CPU until the RTIO counter reaches ``t_mu``."""
        if t_mu > self.cpu:
            self.cpu = t_mu

    def _reset_sed(self) -> None:
        lanes = self.costs.sed_lanes
        self._lane = 0
        self._last_coarse = -(1 << 62)
        self._lane_last = [-(1 << 62)] * lanes
        self._lane_last_max = -(1 << 62)    # max(_lane_last) (lanes only move forward)
        # per lane, the timestamps of the events in it (emitted ones leave lazily); read
        # through ``_lane_queue``, which first adds the last DMA batch's (``_lane_lazy``)
        self._lane_queues: list[deque[int]] = [deque() for _ in range(lanes)]
        #: the last batch playback's lane entries not added yet: (t0, ((queue index,
        #: relative timestamps), ...), latest timestamp), or None (see dma_plan.play)
        self._lane_lazy: tuple | None = None
        #: latest timestamp ever added to a lane queue
        self._lane_max = -(1 << 62)
        #: latest busy-until time of any channel (bounds busy errors of a DMA batch)
        self._busy_max = -1

    @property
    def _lane_queue(self) -> list[deque[int]]:
        """Per SED lane, the timestamps of the events in it (those at or before the RTIO
        counter have left the lane; they are dropped lazily)."""
        if self._lane_lazy is not None:
            self._add_lazy_lanes()
        return self._lane_queues

    def _add_lazy_lanes(self) -> None:
        t0, lanes, latest = self._lane_lazy
        self._lane_lazy = None
        queues = self._lane_queues
        for index, rels in lanes:
            queues[index].extend([t0 + r for r in rels])
        if latest > self._lane_max:
            self._lane_max = latest

    def reset(self) -> None:
        """``rtio_init`` (``core.reset``) at the RTIO counter ``c``: output events still in
        the SED lanes -- timestamps after ``c`` -- are discarded (never reach their
        channels: the world is told with ``discard_after(c)`` where it has that method, the
        trace -- what the channels did, as ``--vcd`` shows it -- loses them, and input edges
        after ``c`` are materialised again under the sensitivity in force at ``c``), events at
        or before ``c`` have executed (boundary: see
        :mod:`ionlink.sim.world`); input FIFOs, overflow flags, pending sample results and
        the SED/channel state are cleared. Gate sensitivities that took effect at or before
        ``c`` stay in force (they live in the PHYs, which the reset leaves alone), so a gate
        whose closing event is discarded stays open. Peripheral models (DDS chips, Urukul
        CPLD, DACs, SPI configuration) go back to their state at ``c``
        (:meth:`keep_for_reset`), and ``reset_hooks`` run."""
        counter = self.cpu
        self.events_discarded += sum(1 for q in self._lane_queue for t in q if t > counter)
        self._reset_sed()
        if self.trace is not None:
            self.trace[:] = [e for e in self.trace if e[0] <= counter]
        for inp in self.inputs.values():
            self._reset_input(inp, counter)
        for info in self.channels.values():
            info.last_t.clear()
            info.busy_until = -1
        for model, log in self._kept.values():
            for t, state in log:
                if t > counter:
                    model.restore(state)
                    break
        self._kept.clear()
        for hook in self.reset_hooks:
            hook(counter)
        discard = getattr(self.world, "discard_after", None)
        if discard is not None:
            discard(counter)

    def keep_for_reset(self, model: Any, t_mu: int) -> None:
        """A peripheral model (the hardware behind a channel: ``model.snapshot()`` returns
        its state, ``model.restore(state)`` puts it back) is about to change for an event
        at ``t_mu``. Models change when the CPU submits the event; if the counter has not
        reached ``t_mu`` yet, the state before the change is kept, and :meth:`reset`
        restores each model to its state before the first change after the counter (the
        event is discarded, the hardware never sees it). Changes are assumed to come in
        time order per model (SPI transfers on one bus do)."""
        cpu = self.cpu
        entry = self._kept.get(id(model))
        if entry is not None:
            log = entry[1]
            while log and log[0][0] <= cpu:
                log.popleft()
        if t_mu <= cpu:
            return
        if entry is None:
            entry = self._kept[id(model)] = (model, deque())
        entry[1].append((t_mu, model.snapshot()))

    @staticmethod
    def _reset_input(inp: InputChannel, counter: int) -> None:
        """An input at a reset at ``counter`` (see :meth:`reset`)."""
        inp.fifo.clear()
        inp.arrivals.clear()
        inp.overflow = False
        inp.sample_requests.clear()
        if inp.sens_events and inp.sens_events[-1][0] > counter:
            inp.sens_events = [e for e in inp.sens_events if e[0] <= counter]
        if inp.materialised_until > counter + 1:
            # edges after the counter were materialised under sensitivity changes that are
            # now discarded: materialise again from the counter on
            for t, before, _after in inp.future_sens:
                if t > counter:
                    inp.sens = before
                    break
            inp.materialised_until = counter + 1
            if inp.last_rising > counter:
                inp.last_rising = -(1 << 62)
        inp.future_sens.clear()

    # -- outputs ------------------------------------------------------------------------

    def output(self, target: int, data: Any, world_event: tuple[str, str, Any] | None = None,
               busy_mu: int = 0) -> None:
        """Submit one output event at the cursor, as ``rtio_output(target, data)``.

        :param target: ``channel << 8 | address``.
        :param data: the data word (what a trace shows).
        :param world_event: ``(device, attr, value)`` to deliver to the world instead of
            the channel's default ``(device, "level", data)``.
        :param busy_mu: how long the channel executes this event (for busy errors).
        """
        t = self.tm.now
        if self.recording is not None:
            self.cpu += self.costs.dma_record_event_ns
            self.recording.append((t, target, data, world_event, busy_mu))
            return
        self.cpu += self.costs.rtio_output_ns
        self._submit(t, target, data, world_event, busy_mu)

    def _submit(self, t: int, target: int, data: Any, world_event, busy_mu: int) -> None:
        self.events_submitted += 1
        cpu = self.cpu
        if t < cpu:
            channel = target >> 8
            self.errors["underflow"] += 1
            raise RTIOUnderflow(f"RTIO underflow at channel {self.channel_name(channel)}, "
                                f"{t} mu, slack {t - cpu} mu")
        # SED lane distributor.
        coarse = t >> COARSE_SHIFT
        lane = self._lane
        if coarse <= self._last_coarse:
            lane = (lane + 1) % len(self._lane_last)
        if coarse <= self._lane_last[lane]:
            self.errors["sequence_error"] += 1
            logger.error("RTIO sequence error involving channel %s",
                         self.channel_name(target >> 8))
            return
        queue = self._lane_queue[lane]
        while queue and queue[0] <= cpu:
            queue.popleft()
        if len(queue) >= self.costs.sed_lane_depth:
            # The lane is full: the CPU stalls until its oldest event is emitted.
            self.cpu = cpu = queue.popleft()
            while queue and queue[0] <= cpu:
                queue.popleft()
        queue.append(t)
        if t > self._lane_max:
            self._lane_max = t
        self._lane = lane
        self._last_coarse = coarse
        self._lane_last[lane] = coarse
        if coarse > self._lane_last_max:
            self._lane_last_max = coarse
        # The channel: replacement, collision, busy.
        channel = target >> 8
        address = target & 0xFF
        info = self.channels.get(channel)
        if info is None:
            self.errors["unknown_channel"] += 1
            logger.error("RTIO output to unknown channel 0x%06x", channel)
            return
        last = info.last_t.get(address)
        if last is not None:
            if t == last:
                if not info.replace:
                    self._gateware_error("collision", channel)
                    return
            elif (t >> COARSE_SHIFT) == (last >> COARSE_SHIFT):
                self._gateware_error("collision", channel)
                return
        if t < info.busy_until and t != last:
            self._gateware_error("busy", channel)
            return
        info.last_t[address] = t
        if busy_mu:
            info.busy_until = t + busy_mu
            if info.busy_until > self._busy_max:
                self._busy_max = info.busy_until
        if self.trace is not None:
            self.trace.append((t, channel, address, data))
        if info.is_input and address in (ADDR_SENS, ADDR_SAMPLE):
            self._input_control(self.inputs[channel], t, address, data)
        if world_event is not None:
            self.world.output(t, world_event[0], world_event[1], world_event[2])
        elif address == ADDR_O and info.forward_level:
            self.world.output(t, info.device, "level", data)

    def _gateware_error(self, kind: str, channel: int) -> None:
        self.errors[kind] += 1
        logger.error("RTIO %s involving channel %s", kind.replace("_", " "),
                     self.channel_name(channel))

    def notify_world(self, device: str, attr: str, value: Any) -> None:
        """Deliver a state change that rides on an already submitted event (e.g. a DDS
        profile taking effect at its IO_UPDATE edge) to the world at the cursor.

        Recorded into a DMA trace like an event, so playback repeats it.
        """
        t = self.tm.now
        if self.recording is not None:
            self.recording.append((t, -1, None, (device, attr, value), 0))
            return
        self.world.output(t, device, attr, value)

    def defer(self, hook: Callable[[], None]) -> None:
        """Run a peripheral model's update ``hook()`` when its event takes effect.

        Directly: now. While a DMA trace is recorded: when the playback reaches this point
        of the trace, with the cursor at the playback timestamp (so a DDS profile written
        by a recorded ``set()`` takes effect at playback, not at recording).
        """
        if self.recording is not None:
            self.recording.append((self.tm.now, -2, hook, None, 0))
        else:
            hook()

    # -- DMA ----------------------------------------------------------------------------

    def play(self, events: list[tuple[int, int, Any, Any, int]], t0: int) -> None:
        """Replay recorded events shifted by ``t0``, as the DMA engine does.

        The CPU pays the playback overhead and then the DMA per-event cost; an underflow
        of any event is raised after the whole trace has been submitted (the others are
        still played), as ARTIQ reports DMA underflows at the end of the playback.
        With ``fast_dma`` the trace is played as one batch whenever that provably gives
        the same result (:mod:`ionlink.sim.dma_plan`).
        """
        if self.fast_dma:
            entry = self._plans.get(id(events))
            if entry is None or entry[0] is not events:
                if len(self._plans) > 64:
                    self._plans.clear()
                entry = self._plans[id(events)] = (events, [_UNCOMPILED] * (1 << COARSE_SHIFT))
            plans = entry[1]
            phase = t0 & ((1 << COARSE_SHIFT) - 1)
            plan = plans[phase]
            if plan is _UNCOMPILED:
                plan = plans[phase] = dma_plan.compile_plan(self, events, phase)
            if plan is not None and dma_plan.play(self, plan, t0):
                return
        costs = self.costs
        self.cpu += costs.dma_playback_overhead_ns
        dma_cost = costs.dma_event_ns
        first_error: RTIOUnderflow | None = None
        world = self.world
        for t_rel, target, data, world_event, busy_mu in events:
            t = t0 + t_rel
            if target < 0:
                if target == -1:
                    world.output(t, world_event[0], world_event[1], world_event[2])
                else:
                    self._run_deferred(data, t)
                continue
            self.cpu += dma_cost
            try:
                self._submit(t, target, data, world_event, busy_mu)
            except RTIOUnderflow as exc:
                if first_error is None:
                    first_error = exc
        if first_error is not None:
            raise first_error

    def _run_deferred(self, hook: Callable[[], None], t: int) -> None:
        tm = self.tm
        cursor = tm.now
        tm.now = t
        try:
            hook()
        finally:
            tm.now = cursor

    # -- inputs -------------------------------------------------------------------------

    def _input_control(self, inp: InputChannel, t: int, address: int, data: int) -> None:
        if address == ADDR_SENS:
            if inp.sens_events and t < inp.sens_events[-1][0]:
                insort(inp.sens_events, (t, data))
            else:
                inp.sens_events.append((t, data))
        else:
            inp.sample_requests.append((t, data))
            if data:  # watch: gate the opposite edge from now on
                self._input_control(inp, t, ADDR_SENS, 2 if data == 2 else 1)

    def _materialise(self, inp: InputChannel, until: int) -> None:
        """Ask the world for the edges of every gated interval up to ``until``."""
        start = inp.materialised_until
        if until <= start:
            return
        device = inp.info.device
        world = self.world
        width = None
        sens = inp.sens
        events = inp.sens_events
        cursor = start
        i = 0
        while True:
            next_t = events[i][0] if i < len(events) else None
            stop = until if next_t is None or next_t > until else next_t
            if sens and stop > cursor:
                edges = world.input_edges(device, max(cursor, 0), stop)
                if len(edges):
                    if width is None:
                        width = world.input_pulse_width_mu(device)
                    inp.last_rising = int(edges[-1])
                    self._arrive(inp, edges, sens, width, stop)
            cursor = stop
            if next_t is None or next_t > until:
                break
            sens = events[i][1]
            i += 1
        if i and events[i - 1][0] > self.cpu:
            self._log_future_sens(inp, events, i)
        del events[:i]
        inp.sens = sens
        inp.materialised_until = until

    def _log_future_sens(self, inp: InputChannel, events: list, n: int) -> None:
        """Keep the first ``n`` sensitivity changes that lie after the counter (a reset may
        discard them after they were materialised)."""
        log = inp.future_sens
        cpu = self.cpu
        if log and log[-1][0] <= cpu:
            log.clear()
        sens = log[-1][2] if log else inp.sens
        for t, data in events[:n]:
            if t > cpu:
                log.append((t, sens, data))
            sens = data

    def _arrive(self, inp: InputChannel, edges: np.ndarray, sens: int, width: int,
                stop: int) -> None:
        arrivals = inp.arrivals
        trace = self.trace
        for e in edges.tolist():
            if sens & 1:
                arrivals.append((e, 1))
                if trace is not None:
                    trace.append((e, inp.info.channel, -1, 1))
            if sens & 2 and e + width < stop:
                arrivals.append((e + width, 0))
                if trace is not None:
                    trace.append((e + width, inp.info.channel, -1, 0))
        if sens & 3 == 3:
            # Interleave falling edges of one pulse before the next rising edge.
            inp.arrivals = deque(sorted(arrivals))

    def _fill_fifo(self, inp: InputChannel) -> None:
        """Move events that have arrived by the CPU time into the FIFO, overflowing."""
        arrivals = inp.arrivals
        fifo = inp.fifo
        cpu = self.cpu
        depth = inp.depth
        while arrivals and arrivals[0][0] <= cpu:
            event = arrivals.popleft()
            if len(fifo) >= depth:
                inp.overflow = True
            else:
                fifo.append(event)

    def input_timestamped_data(self, timeout_mu: int, channel: int) -> tuple[int, int]:
        """``rtio_input_timestamped_data``: the next input event before ``timeout_mu``
        (blocking until it arrives), or ``(-1, 0)`` once the counter reaches the timeout."""
        inp = self.inputs.get(channel)
        if inp is None:
            self._input(channel)        # raises
        self.cpu += self.costs.rtio_input_ns
        if timeout_mu > inp.materialised_until:
            self._materialise(inp, timeout_mu)
        if inp.arrivals:
            self._fill_fifo(inp)
        if inp.overflow:
            inp.overflow = False
            raise RTIOOverflow(f"RTIO input overflow on channel {self.channel_name(channel)}")
        if inp.fifo:
            return inp.fifo.popleft()
        if inp.arrivals and inp.arrivals[0][0] < timeout_mu:
            # Block until the next event arrives.
            self.cpu = max(self.cpu, inp.arrivals[0][0])
            self._fill_fifo(inp)
            return inp.fifo.popleft()
        if timeout_mu > self.cpu:       # (wait_until)
            self.cpu = timeout_mu
        if inp.arrivals:
            self._fill_fifo(inp)
        return -1, 0

    def input_count(self, timeout_mu: int, channel: int) -> int:
        """Number of input events before ``timeout_mu``, read one by one as a kernel's
        ``while rtio_input_timestamp(timeout, channel) >= 0`` loop does (same costs,
        blocking and overflow), in one call."""
        n = 0
        read = self.input_timestamped_data
        while read(timeout_mu, channel)[0] >= 0:
            n += 1
        return n

    def input_data(self, channel: int) -> int:
        """``rtio_input_data``: the next sample result (blocks until it is taken)."""
        inp = self._input(channel)
        self.cpu += self.costs.rtio_input_ns
        if not inp.sample_requests:
            raise RuntimeError(f"rtio_input_data on channel {self.channel_name(channel)} "
                               "without a pending sample request: the real kernel would "
                               "block forever")
        t, _mode = inp.sample_requests.pop(0)
        self.wait_until(t)
        width = self.world.input_pulse_width_mu(inp.info.device)
        lo = t - width + 1
        self._materialise(inp, lo)
        if inp.sens == 0 and not (inp.sens_events and inp.sens_events[0][0] <= t):
            # Ungated: look at the world only for the pulse width before the sample.
            edges = self.world.input_edges(inp.info.device, max(lo, 0), t + 1)
            if len(edges):
                inp.last_rising = int(edges[-1])
            inp.materialised_until = t + 1
        else:
            self._materialise(inp, t + 1)
        return 1 if inp.last_rising <= t < inp.last_rising + width else 0

    def _input(self, channel: int) -> InputChannel:
        inp = self.inputs.get(channel)
        if inp is None:
            raise ValueError(f"RTIO channel {self.channel_name(channel)} is not an input")
        return inp
