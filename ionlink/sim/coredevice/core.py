"""Simulated core device: runs kernels on the host against the simulated RTIO engine.

Same constructor and methods as ``artiq.coredevice.core.Core``. ``run`` executes the
kernel's Python function directly; ARTIQ's ``@kernel`` wrapper calls ``core.run`` for
every kernel call, so a kernel calling another kernel (a driver method, say) comes here
too: such nested calls run inside a sequential block (one statement in a parallel block,
as in a compiled kernel) and cost ``kernel_call_ns`` of CPU time. Host methods a kernel
calls are RPCs and cost ``rpc_ns`` / ``rpc_async_ns`` (see :mod:`ionlink.sim.rpc`).
"""

from __future__ import annotations

import importlib

import numpy as np
from artiq.language import core as language_core
from artiq.language.core import at_mu, kernel, now_mu, portable

from ionlink.sim import rpc, session

#: Margin ``reset``/``break_realtime`` put between the RTIO counter and the cursor (mu).
REALTIME_MARGIN_MU = 125000


def _start_session(dmgr, factory: str, **kwargs) -> None:
    """Call ``factory`` (``"module:function"``) to start the session this core joins."""
    module_name, _, attr = factory.partition(":")
    getattr(importlib.import_module(module_name), attr)(dmgr, **kwargs)


class Core:
    """Simulated core device driver.

    :param host: core device address (unused in simulation, kept for the device db).
    :param ref_period: period of the RTIO fine timestamp, in seconds (1 ns on Kasli).
    :param ref_multiplier: fine timestamps per coarse RTIO period (8).
    :param sim_session: when given, a dict ``{"factory": "module:function", ...}``:
        creating the core first calls ``function(dmgr, **rest)``, which starts a new
        simulation session (``ionlink simdb`` writes one that puts the virtual node behind
        the channels, for the real ``artiq_run``/``artiq_master``). Without it the core
        joins the current session (the one ``ionlink run`` started).
    """

    kernel_invariants = {"core", "ref_period", "coarse_ref_period", "ref_multiplier"}

    def __init__(self, dmgr, host=None, ref_period=1e-9, analyzer_proxy=None,
                 analyze_at_run_end=False, ref_multiplier=8, target="rv32g",
                 satellite_cpu_targets={}, report_invariants=False,  # noqa: B006
                 sim_session=None):
        self.ref_period = ref_period
        self.ref_multiplier = ref_multiplier
        self.coarse_ref_period = ref_period * ref_multiplier
        self.host = host
        self.target = target
        self.satellite_cpu_targets = dict(satellite_cpu_targets)
        self.core = self
        if sim_session is not None:
            _start_session(dmgr, **sim_session)
        self.engine = session.engine()
        self.engine.ref_period = ref_period
        self.engine.tm.ref_period = ref_period
        self._depth = 0
        #: Kernels run since the device was created.
        self.kernels_run = 0

    def close(self) -> None:
        pass

    def notify_run_end(self) -> None:
        pass

    def run(self, function, args, kwargs):
        """Execute a kernel (or a kernel called from a kernel) on the host."""
        embedded = getattr(function, "artiq_embedded", None)
        body = embedded.function if embedded is not None else function
        engine = self.engine
        if self._depth:
            if args and type(args[0]) not in rpc.active:
                rpc.instrument(type(args[0]))
            engine.cpu += engine.costs.kernel_call_ns
            tm = engine.tm
            tm.enter_sequential()
            try:
                return body(*args, **kwargs)
            finally:
                tm.exit()
        language_core.set_time_manager(engine.tm)
        engine.cpu += engine.costs.kernel_launch_ns
        self.kernels_run += 1
        self._depth = 1
        rpc.start(engine)
        try:
            if args:
                rpc.instrument(type(args[0]))
            return body(*args, **kwargs)
        finally:
            rpc.stop()
            self._depth = 0
            engine.tm.reset_blocks()
            flush = getattr(engine.world, "flush", None)
            if flush is not None:
                # events up to the cursor, but none a reset could still discard: the next
                # kernel starts kernel_launch_ns later, so its counter is past these
                flush(min(max(engine.cpu, engine.tm.now),
                          engine.cpu + engine.costs.kernel_launch_ns + 1))

    def compile(self, function, args, kwargs, set_result=None, attribute_writeback=True,
                print_as_rpc=True, target=None, destination=0, subkernel_arg_types=[],  # noqa: B006
                old_embedding_map=None):
        raise NotImplementedError(
            "the simulated core device runs kernels on the host and does not compile "
            "them; use ARTIQ's own Core (host: None) to compile-check kernels")

    def precompile(self, function, *args, **kwargs):
        """Return a callable that runs ``function`` with the given arguments later."""
        def run_precompiled():
            return self.run(function, args, kwargs)
        return run_precompiled

    @portable
    def seconds_to_mu(self, seconds):
        """Convert seconds to machine units, rounding down (as ARTIQ's Core does)."""
        return np.int64(seconds // self.ref_period)

    @portable
    def mu_to_seconds(self, mu):
        """Convert machine units to seconds."""
        return mu * self.ref_period

    @kernel
    def get_rtio_counter_mu(self):
        """The current value of the RTIO counter (the simulated CPU clock)."""
        return np.int64(self.engine.cpu)

    @kernel
    def wait_until_mu(self, cursor_mu):
        """Block until the RTIO counter reaches ``cursor_mu``."""
        self.engine.wait_until(int(cursor_mu))

    @kernel
    def get_rtio_destination_status(self, destination):
        """Whether a DRTIO destination is up; simulated links are always up."""
        return True

    @kernel
    def reset(self):
        """Clear RTIO FIFOs -- output events the RTIO counter has not reached are discarded
        (:meth:`ionlink.sim.rtio_engine.RTIOEngine.reset`) -- and set the cursor 125000 mu
        after the RTIO counter."""
        self.engine.reset()
        at_mu(self.engine.cpu + REALTIME_MARGIN_MU)

    @kernel
    def break_realtime(self):
        """Set the cursor 125000 mu after the RTIO counter unless it is already later."""
        min_now = self.engine.cpu + REALTIME_MARGIN_MU
        if now_mu() < min_now:
            at_mu(min_now)

    def trigger_analyzer_proxy(self):
        """The simulated core has no analyzer proxy; the trace goes to ``--vcd``."""
