"""Simulated DMA (``artiq.coredevice.dma``): record output events, replay them fast.

Recording redirects output events into a trace with the cursor reset to 0, and restores
the cursor afterwards: it does not advance the timeline. Playback replays the trace's
events at the cursor through the same gateware checks (underflow, lanes, collisions),
paying the DMA engine's per-event cost instead of the CPU's, then advances the cursor
by the trace's duration. The engine plays a trace as one batch when that gives the same
result (:mod:`ionlink.sim.dma_plan`).
"""

from __future__ import annotations

from artiq.coredevice.exceptions import DMAError
from artiq.language.core import at_mu, delay_mu, kernel, now_mu


class DMARecordContextManager:
    """Context manager returned by :meth:`CoreDMA.record`."""

    def __init__(self, dma: CoreDMA):
        self.core = dma.core
        self._dma = dma
        self.name = ""
        self.saved_now_mu = 0
        self.enable_ddma = False

    @kernel
    def __enter__(self):
        self._dma._record_start(self.name)
        self.saved_now_mu = now_mu()
        at_mu(0)

    @kernel
    def __exit__(self, type, value, traceback):
        self._dma._record_stop(now_mu())
        at_mu(self.saved_now_mu)


class CoreDMA:
    """Core device Direct Memory Access driver."""

    kernel_invariants = {"core", "recorder"}

    def __init__(self, dmgr, core_device="core"):
        self.core = dmgr.get(core_device)
        self.recorder = DMARecordContextManager(self)
        self.epoch = 0
        # name -> (duration_mu, events); the "pointer" is an index into _by_ptr.
        self._traces: dict[str, tuple[int, int]] = {}
        self._by_ptr: list = []

    def _record_start(self, name: str) -> None:
        engine = self.core.engine
        if engine.recording is not None:
            raise DMAError("DMA is already recording")
        if name in self._traces:
            del self._traces[name]
        engine.recording = []

    def _record_stop(self, duration_mu: int) -> None:
        engine = self.core.engine
        events = engine.recording
        engine.recording = None
        self._by_ptr.append(events)
        self._traces[self.recorder.name] = (int(duration_mu), len(self._by_ptr) - 1)

    def _retrieve(self, name: str) -> tuple[int, int]:
        try:
            return self._traces[name]
        except KeyError:
            raise DMAError(f"DMA trace not found: {name!r}") from None

    @kernel
    def record(self, name, enable_ddma=False):
        """Context manager recording a DMA trace called ``name`` (replacing any old one)."""
        self.epoch += 1
        self.recorder.name = name
        self.recorder.enable_ddma = enable_ddma
        return self.recorder

    @kernel
    def erase(self, name):
        """Remove a recorded trace."""
        self.epoch += 1
        self._retrieve(name)
        del self._traces[name]

    @kernel
    def playback(self, name):
        """Replay a recorded trace at the cursor; advances the cursor by its duration."""
        advance_mu, ptr = self._retrieve(name)
        self.core.engine.play(self._by_ptr[ptr], now_mu())
        delay_mu(advance_mu)

    @kernel
    def get_handle(self, name):
        """A handle for :meth:`playback_handle`; valid until the next record or erase."""
        advance_mu, ptr = self._retrieve(name)
        return (self.epoch, advance_mu, ptr, False)

    @kernel
    def playback_handle(self, handle):
        """Replay the trace of a handle from :meth:`get_handle`."""
        epoch, advance_mu, ptr, _uses_ddma = handle
        if self.epoch != epoch:
            raise DMAError("Invalid handle")
        self.core.engine.play(self._by_ptr[ptr], now_mu())
        delay_mu(advance_mu)
