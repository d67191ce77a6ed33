"""The lab clock of the simulated node, carried across runs in one results directory.

On hardware the node lives on between experiments; in the simulation each run builds a new
virtual node, so the lab time at which it starts must come from somewhere. :class:`LabClock`
keeps it in ``RESULTS/lab_clock.json`` (``{"lab_time_s": ..., "epoch_s": ...}``): every run
starts its node at the current lab time (``VirtualNetwork.lab_time_origin_s``) and, when it
ends, the clock moves on by the node time the run took (its RTIO counter). A run started
while another one pauses (scheduler ``pause()``) starts at the paused run's current lab time,
and the paused run's node is moved forward by the time the inner run took, so lab time never
runs backwards.

``epoch_s`` maps lab time to wall-clock time (seconds since the epoch): ``wall = epoch_s +
lab``. When the runner simulates a night it makes the experiments' ``time.time()`` and the
scheduler's due dates follow this virtual wall clock (:func:`virtual_wall_clock`).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["CLOCK_FILE", "LabClock", "virtual_wall_clock"]

CLOCK_FILE = "lab_clock.json"

_active: dict[Path, LabClock] = {}
_real_time = time.time


class LabClock:
    """Lab time (seconds) of the simulated node in one results directory.

    :param root: the results directory (the file is created on the first save).
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.path = Path(root) / CLOCK_FILE
        self.lab_time_s = 0.0
        self.epoch_s = _real_time()
        if self.path.exists():
            try:
                raw = json.loads(self.path.read_text())
                self.lab_time_s = float(raw["lab_time_s"])
                self.epoch_s = float(raw["epoch_s"])
            except (ValueError, KeyError, TypeError) as e:
                raise ValueError(f"lab clock file {self.path} is unreadable: {e}") from None
        self._runs: list[list[Any]] = []  # [engine, origin_s, world]

    @classmethod
    def for_root(cls, root: str | os.PathLike) -> LabClock:
        """The clock of ``root``: the one in use when a run there is under way, else
        freshly read from its file."""
        key = Path(root).resolve()
        clock = _active.get(key)
        if clock is None or not clock._runs:
            clock = cls(root)
            _active[key] = clock
        return clock

    def now(self) -> float:
        """The current lab time in seconds (inside a run: its node's present time)."""
        if not self._runs:
            return self.lab_time_s
        engine, origin, _world = self._runs[-1]
        return origin + engine.cpu * engine.ref_period

    def wall_time(self) -> float:
        """The virtual wall-clock time (seconds since the epoch) of :meth:`now`."""
        return self.epoch_s + self.now()

    def begin_run(self, engine: Any, world: Any) -> float:
        """A run starts on ``engine`` with ``world`` behind it: shift the world's lab time
        origin (if it has one) by the current lab time, which is returned."""
        origin = self.now()
        if hasattr(world, "lab_time_origin_s"):
            world.lab_time_origin_s = float(world.lab_time_origin_s) + origin
        self._runs.append([engine, origin, world])
        return origin

    def end_run(self) -> float:
        """The innermost run ended: advance the clock by its node time, save, and return
        that node time in seconds."""
        engine, origin, _world = self._runs.pop()
        elapsed = engine.cpu * engine.ref_period
        if self._runs:
            outer = self._runs[-1]
            outer[1] += elapsed
            if hasattr(outer[2], "lab_time_origin_s"):
                outer[2].lab_time_origin_s += elapsed
        else:
            self.lab_time_s = origin + elapsed
            self.save()
        return elapsed

    def advance_to(self, lab_time_s: float) -> None:
        """Let the node idle until ``lab_time_s`` (no effect when that is in the past)."""
        if self._runs:
            raise RuntimeError("the lab clock cannot jump while a run is under way")
        self.lab_time_s = max(self.lab_time_s, float(lab_time_s))
        self.save()

    def save(self) -> None:
        """Write the clock file atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"lab_time_s": self.lab_time_s, "epoch_s": self.epoch_s}))
        os.replace(tmp, self.path)


@contextlib.contextmanager
def virtual_wall_clock(clock: LabClock) -> Iterator[None]:
    """Make ``time.time()`` return ``clock.wall_time()`` inside the block (the host PC of
    a simulated lab lives on the lab's clock: due dates, results file names and experiments'
    timestamps then follow the simulated night). Nested use keeps the outer clock."""
    if time.time is not _real_time:
        yield
        return
    time.time = clock.wall_time
    try:
        yield
    finally:
        time.time = _real_time
