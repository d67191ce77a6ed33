"""Urukul RF switches: the world sees the OR of the ``sw`` TTL and the CPLD CFG bit.

On Urukul each channel's RF switch is driven by its TTL line (the AD9910's ``sw_device``)
OR'ed with the channel's RF-switch bit in the CPLD configuration register (ARTIQ's
``CPLD.cfg_sw``: "These values are logically OR-ed with the LVDS lines on EEM1"). The
simulated TTL and CPLD report their own levels, ``(sw_key, "level", v)`` and
``(dds_key, "level", v)``; :class:`RFSwitchWorld` sits between the engine and the world
and makes ``(sw_key, "level", ttl OR cfg)`` the level the world gets for the switch, at
the timestamp of each change of either input. The CFG event itself is passed on too.

Events reach the world in submission order, which is not always time order (``at_mu``
back in time, DMA playback). The OR at an event is computed from both inputs' levels at
that timestamp, and an event that lands before later ones re-sends the switch level at
those later timestamps when it changed them (a world orders its events by timestamp and
then arrival, so the re-sent value wins). Input history older than the RTIO counter (no
later submission can land there) is dropped. ``core.reset()`` (``discard_after``) drops the
history after the RTIO counter: those events never happen.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Any

#: History entries per switch kept before pruning what lies behind the RTIO counter.
_PRUNE_AT = 64


class _Switch:
    """Both inputs of one RF switch, time-ordered entries
    ``[t, seq, source, level, ttl_after, cfg_after, sent]`` (source 0: TTL, 1: CFG)."""

    __slots__ = ("sw_key", "history")

    def __init__(self, sw_key: str):
        self.sw_key = sw_key
        self.history: list[list] = []


class RFSwitchWorld:
    """A :class:`ionlink.sim.world.World` wrapper that ORs the two RF switch inputs.

    :param world: the world behind it (every other call and event goes there unchanged).
    :param engine: the RTIO engine (its counter bounds how far back events can land).
    """

    def __init__(self, world: Any, engine: Any):
        self.inner = world
        self.engine = engine
        self._by_device: dict[str, tuple[_Switch, int]] = {}
        self._seq = 0

    def pair(self, sw_key: str, dds_key: str) -> None:
        """Declare that TTL ``sw_key`` and the CFG bit of ``dds_key`` drive one switch."""
        switch = _Switch(sw_key)
        self._by_device[sw_key] = (switch, 0)
        self._by_device[dds_key] = (switch, 1)
        self.__dict__.pop("_batch_plans", None)    # playback plans may involve it now

    def output(self, t_mu: int, device: str, attr: str, value: Any) -> None:
        entry = self._by_device.get(device) if attr == "level" else None
        if entry is None:
            self.inner.output(t_mu, device, attr, value)
            return
        switch, source = entry
        if source == 1:
            self.inner.output(t_mu, device, attr, value)
        self._seq += 1
        history = switch.history
        new = [int(t_mu), self._seq, source, 1 if value else 0, 0, 0, None]
        index = bisect_right(history, new)
        history.insert(index, new)
        ttl, cfg = (history[index - 1][4], history[index - 1][5]) if index else (0, 0)
        for i in range(index, len(history)):
            item = history[i]
            if item[2] == 0:
                ttl = item[3]
            else:
                cfg = item[3]
            item[4], item[5] = ttl, cfg
            level = ttl | cfg
            if i == index or item[6] != level:
                item[6] = level
                self.inner.output(item[0], switch.sw_key, "level", level)
        if len(history) > _PRUNE_AT:
            self._prune(switch)

    def output_batch(self, t0_mu: int, events: tuple) -> None:
        """The world events of one DMA playback (:mod:`ionlink.sim.dma_plan`), as
        :meth:`output` would take them one by one. When the OR changes nothing -- only TTL
        levels (0/1) in time order per switch, landing after each switch's history, with
        its CFG bit 0 -- the world behind gets exactly these events, so they are passed
        on as one batch (the same tuple, which a world may cache work on)."""
        plans = self.__dict__.setdefault("_batch_plans", {})
        plan = plans.get(id(events))
        if plan is None or plan[0] is not events:
            if len(plans) > 64:
                plans.clear()
            plan = plans[id(events)] = (events, self._batch_plan(events))
        touched = plan[1]
        if touched is not None:
            for switch, rel_first in touched[0]:
                history = switch.history
                if history and (history[-1][0] > t0_mu + rel_first or history[-1][5]):
                    touched = None
                    break
        if touched is None:
            for rel, device, attr, value in events:
                self.output(t0_mu + rel, device, attr, value)
            return
        seq = self._seq
        for switch, rel, value in touched[1]:   # the history entries output() would append
            seq += 1
            history = switch.history
            history.append([t0_mu + rel, seq, 0, value, value, 0, value])
            if len(history) > _PRUNE_AT:
                self._prune(switch)
        self._seq = seq
        inner = self.inner
        batch = getattr(type(inner), "output_batch", None)
        if batch is not None:
            batch(inner, t0_mu, events)
        else:
            for rel, device, attr, value in events:
                inner.output(t0_mu + rel, device, attr, value)

    def _batch_plan(self, events: tuple) -> tuple | None:
        """((switch, earliest relative time) of each switch a playback's events drive,
        (switch, relative time, level) of each of its switch events in order), or None
        when a batch could need the OR (a CFG event, a level other than 0/1, a switch
        going back in time within the playback)."""
        first: dict[_Switch, int] = {}
        last: dict[_Switch, int] = {}
        appends: list[tuple[_Switch, int, int]] = []
        for rel, device, attr, value in events:
            entry = self._by_device.get(device) if attr == "level" else None
            if entry is None:
                continue
            switch, source = entry
            if source != 0 or type(value) is not int or value not in (0, 1):
                return None
            if switch in last and rel < last[switch]:
                return None
            last[switch] = rel
            first.setdefault(switch, rel)
            appends.append((switch, rel, value))
        return tuple(first.items()), tuple(appends)

    def _prune(self, switch: _Switch) -> None:
        """Drop history behind the RTIO counter, keeping the levels in force there."""
        history = switch.history
        cut = bisect_right(history, [self.engine.cpu])
        if cut >= 2:
            del history[:cut - 1]

    def discard_after(self, t_mu: int) -> None:
        """``core.reset()`` at counter ``t_mu``: both inputs' events after ``t_mu`` never
        happen (levels at or before it do not depend on them), nor do the switch levels
        sent for them, which the world behind discards too (where it can)."""
        seen = set()
        for switch, _source in self._by_device.values():
            if id(switch) in seen:
                continue
            seen.add(id(switch))
            history = switch.history
            while history and history[-1][0] > t_mu:
                history.pop()
        discard = getattr(self.inner, "discard_after", None)
        if discard is not None:
            discard(t_mu)

    def input_edges(self, device: str, t_from_mu: int, t_to_mu: int):
        return self.inner.input_edges(device, t_from_mu, t_to_mu)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def pair_switch(engine: Any, sw_key: str, dds_key: str) -> None:
    """Route the RF switch of ``dds_key`` (TTL ``sw_key`` OR its CFG bit) to the world."""
    world = engine.world
    if not isinstance(world, RFSwitchWorld):
        world = RFSwitchWorld(world, engine)
        engine.world = world
    world.pair(sw_key, dds_key)
