"""The simulated scheduler: a run queue and the ``scheduler`` device experiments use.

:class:`RunQueue` is the master's side: the runs submitted (each with rid, pipeline,
expid, priority, due date, flush, status), termination requests, and the clock that
decides which runs are due (``time.time`` by default; pass a virtual clock to simulate a
night). It does not execute anything: the runner takes due runs with :meth:`RunQueue.next_due`
and reports their status.

:class:`SimScheduler` is the device an experiment gets as ``scheduler``, with ARTIQ's API:
attributes ``rid``, ``pipeline_name``, ``priority``, ``expid`` and methods ``submit``,
``delete``, ``request_termination``, ``get_status``, ``check_pause``, ``check_termination``,
``pause``. As in ARTIQ, ``check_pause`` is True when termination of the run was requested
or when a run of higher priority is due in the same pipeline; ordering of runs uses ARTIQ's
priority key ``(priority, -(due_date or 0), -rid)``.

``pause()`` raises ``TerminationRequested`` when termination was requested; otherwise, when
``check_pause()`` is True, it calls the queue's :attr:`RunQueue.pause_handler` (set by the
runner; it runs the due higher-priority experiments) and returns.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from artiq.language.core import TerminationRequested, host_only

__all__ = ["QueuedRun", "RunQueue", "SimScheduler"]

_STATUSES = ("pending", "flushing", "preparing", "prepare_done", "running", "run_done",
             "analyzing", "deleting", "paused")


@dataclass
class QueuedRun:
    """One run known to the queue (times in seconds since the epoch of the queue's clock)."""

    rid: int
    pipeline_name: str
    expid: dict
    priority: int
    due_date: float | None
    flush: bool
    status: str = "pending"
    termination_requested: bool = False

    def priority_key(self) -> tuple:
        """ARTIQ's ordering: higher priority first, then earlier due date, then lower rid."""
        return (self.priority, -(self.due_date or 0), -self.rid)

    def status_entry(self) -> dict:
        """The dict ``get_status()`` reports for this run."""
        return {"pipeline": self.pipeline_name, "expid": self.expid,
                "priority": self.priority, "due_date": self.due_date,
                "flush": self.flush, "status": self.status}


class RunQueue:
    """The runs of a session and the clock deciding when they are due.

    :param next_rid: returns a fresh run id (e.g. ``RidCounter(root).get``).
    :param clock: returns the current time in seconds since the epoch.
    """

    def __init__(self, next_rid: Callable[[], int],
                 clock: Callable[[], float] = time.time) -> None:
        self.next_rid = next_rid
        self.clock = clock
        self.runs: dict[int, QueuedRun] = {}
        #: Called as ``pause_handler(rid)`` when run ``rid`` pauses for higher-priority runs.
        self.pause_handler: Callable[[int], None] | None = None
        #: Called with no argument whenever a run yields to the scheduler
        #: (``check_pause``/``pause``): the runner checkpoints the results file there.
        self.checkpoint_hook: Callable[[], None] | None = None

    def submit(self, pipeline_name: str, expid: dict, priority: int = 0,
               due_date: float | None = None, flush: bool = False) -> int:
        """Queue a run and return its rid."""
        if not isinstance(pipeline_name, str) or not pipeline_name:
            raise ValueError(f"pipeline name must be a non-empty str, not {pipeline_name!r}")
        if not isinstance(expid, dict):
            raise TypeError(f"expid must be a dict, not {type(expid).__name__}")
        rid = self.next_rid()
        self.runs[rid] = QueuedRun(rid, pipeline_name, expid, int(priority), due_date,
                                   bool(flush))
        return rid

    def add_running(self, rid: int, pipeline_name: str, expid: dict, priority: int = 0,
                    due_date: float | None = None) -> None:
        """Register a run the runner started (itself, or taken from the queue with the
        ``due_date`` it was submitted with)."""
        self.runs[rid] = QueuedRun(rid, pipeline_name, expid, int(priority), due_date, False,
                                   status="running")

    def set_status(self, rid: int, status: str) -> None:
        """Record the stage of run ``rid`` (one of ARTIQ's run statuses)."""
        if status not in _STATUSES:
            raise ValueError(f"unknown run status {status!r}: expected one of "
                             f"{', '.join(_STATUSES)}")
        self._run(rid).status = status

    def finish(self, rid: int) -> None:
        """Forget run ``rid`` (it completed or failed)."""
        self.runs.pop(rid, None)

    def next_due(self, pipeline_name: str | None = None) -> QueuedRun | None:
        """Return the pending run to start now (highest priority key among the due ones,
        optionally only in ``pipeline_name``), or None."""
        now = self.clock()
        due = [run for run in self.runs.values()
               if run.status == "pending" and (run.due_date or 0) <= now
               and (pipeline_name is None or run.pipeline_name == pipeline_name)]
        return max(due, key=QueuedRun.priority_key, default=None)

    def next_due_date(self) -> float | None:
        """Return the earliest due date of the pending runs not yet due, or None."""
        now = self.clock()
        dates = [run.due_date for run in self.runs.values()
                 if run.status == "pending" and run.due_date is not None
                 and run.due_date > now]
        return min(dates, default=None)

    def delete(self, rid: int) -> None:
        """Remove run ``rid``; a running or paused run is asked to terminate instead.
        An unknown rid is ignored, as ARTIQ does."""
        run = self.runs.get(rid)
        if run is None:
            return
        if run.status in ("running", "paused"):
            run.termination_requested = True
        else:
            del self.runs[rid]

    def request_termination(self, rid: int) -> None:
        """Ask run ``rid`` to end gracefully; a run that is not running is deleted (what
        :meth:`delete` does here: the simulation ends a run only at its checkpoints)."""
        self.delete(rid)

    def get_status(self) -> dict[int, dict]:
        """Return rid -> {pipeline, expid, priority, due_date, flush, status}."""
        return {rid: run.status_entry() for rid, run in self.runs.items()}

    def check_pause(self, rid: int) -> bool:
        """True when run ``rid`` (running) should pause: termination requested, or a due run
        of higher priority key waiting in its pipeline."""
        run = self._run(rid)
        if run.status != "running":
            return False
        if run.termination_requested:
            return True
        waiting = self.next_due(run.pipeline_name)
        return waiting is not None and waiting.priority_key() > run.priority_key()

    def check_termination(self, rid: int) -> bool:
        """True when termination of run ``rid`` was requested (False for unknown rids)."""
        run = self.runs.get(rid)
        return run is not None and run.termination_requested

    def _run(self, rid: int) -> QueuedRun:
        try:
            return self.runs[rid]
        except KeyError:
            raise KeyError(f"RID {rid} not found in the scheduler") from None


class SimScheduler:
    """The ``scheduler`` device of one run.

    :param queue: the session's run queue.
    :param rid: this run's id.
    :param pipeline_name: this run's pipeline.
    :param expid: this run's expid dict.
    :param priority: this run's priority.
    """

    def __init__(self, queue: RunQueue, rid: int, pipeline_name: str = "main",
                 expid: dict | None = None, priority: int = 0) -> None:
        self.queue = queue
        self.set_run_info(rid, pipeline_name, expid if expid is not None else {}, priority)

    def set_run_info(self, rid: int, pipeline_name: str, expid: dict, priority: int) -> None:
        """Set the identity of the current run (as ARTIQ's worker does)."""
        self.rid = rid
        self.pipeline_name = pipeline_name
        self.expid = expid
        self.priority = priority

    def submit(self, pipeline_name: str | None = None, expid: dict | None = None,
               priority: int | None = None, due_date: float | None = None,
               flush: bool = False) -> int:
        """Queue a new run and return its rid; pipeline, expid and priority default to the
        current run's."""
        return self.queue.submit(
            self.pipeline_name if pipeline_name is None else pipeline_name,
            self.expid if expid is None else expid,
            self.priority if priority is None else priority,
            due_date, flush)

    def delete(self, rid: int) -> None:
        """Remove run ``rid`` from the queue."""
        self.queue.delete(rid)

    def request_termination(self, rid: int) -> None:
        """Ask run ``rid`` to end gracefully."""
        self.queue.request_termination(rid)

    def get_status(self) -> dict[int, dict]:
        """Return rid -> {pipeline, expid, priority, due_date, flush, status}."""
        return self.queue.get_status()

    def check_pause(self, rid: int | None = None) -> bool:
        """True when ``pause()`` would do something for run ``rid`` (default: this run)."""
        if self.queue.checkpoint_hook is not None:
            self.queue.checkpoint_hook()
        return self.queue.check_pause(self.rid if rid is None else rid)

    def check_termination(self, rid: int | None = None) -> bool:
        """True when termination of run ``rid`` (default: this run) was requested."""
        return self.queue.check_termination(self.rid if rid is None else rid)

    @host_only
    def pause(self) -> None:
        """Let due higher-priority runs execute; raise TerminationRequested when this run
        was asked to terminate (before or during the pause)."""
        if self.queue.check_termination(self.rid):
            raise TerminationRequested
        if not self.queue.check_pause(self.rid):
            return
        handler: Any = self.queue.pause_handler
        if handler is not None:
            self.queue.set_status(self.rid, "paused")
            try:
                handler(self.rid)
            finally:
                if self.rid in self.queue.runs:
                    self.queue.set_status(self.rid, "running")
        if self.queue.check_termination(self.rid):
            raise TerminationRequested
