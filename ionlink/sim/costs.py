"""How long the simulated core device's CPU takes for each kernel operation.

On hardware the RTIO counter runs with wall-clock time while the kernel CPU works; the
difference between the timeline cursor and the counter is the *slack*. In the simulation
the counter is driven by this cost model, so slack is real: a kernel that does too much
between events underflows here as it would on a Kasli.

All costs are in nanoseconds of CPU time (1 ns = 1 machine unit at ``ref_period`` 1 ns).
One table, each number with its source; a lab overrides any of them with
``ionlink run --costs FILE.toml`` (a flat table of the same names) or in code with
:meth:`CostModel.with_overrides`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


@dataclass(frozen=True)
class CostModel:
    """CPU time per kernel operation, in ns, and the sizes of the RTIO buffers."""

    #: Submitting one output event from the CPU. m-labs/artiq#636: ``test_pulse_rate``
    #: sustains one TTL pulse (two events) per 444 ns after the output-layout rework.
    rtio_output_ns: int = 222
    #: One input read syscall (``rtio_input_timestamp``): each event ``count`` or
    #: ``timestamp_mu`` drains. m-labs/artiq#446 measured a whole ``count()`` at 30-50 us on
    #: the 2016 runtime; the input path was rewritten since. Estimate: 3 us per call.
    rtio_input_ns: int = 3000
    #: Replaying one recorded event by DMA. m-labs/artiq#2943: 195 ns/event on
    #: release-8 (65 ns/event on master after #2592).
    dma_event_ns: int = 195
    #: Fixed cost of starting a DMA playback (retrieving the trace, programming the DMA
    #: engine). m-labs/artiq#2943 separates this overhead; estimate: 2 us.
    dma_playback_overhead_ns: int = 2000
    #: Recording one event into a DMA trace (a memory write, no RTIO round trip).
    #: m-labs/artiq#712 discusses recording cost; estimate: 100 ns.
    dma_record_event_ns: int = 100
    #: A call from one kernel function to another (not inlined): a few CPU cycles at
    #: 125 MHz. Estimate: 40 ns.
    kernel_call_ns: int = 40
    #: ``delay``/``delay_mu``/``at_mu``/``now_mu``: 64-bit arithmetic on the cursor, about
    #: 2 cycles (m-labs/artiq#636 breakdown). 16 ns.
    timeline_op_ns: int = 16
    #: A synchronous RPC round trip to the host, charged when a kernel calls a host method
    #: (see :mod:`ionlink.sim.rpc`). The ARTIQ manual calls RPCs slow
    #: (milliseconds on a loaded host); estimate for a quiet host on gigabit Ethernet: 200 us.
    rpc_ns: int = 200_000
    #: An asynchronous RPC (``@rpc(flags={"async"})``): the CPU only queues the message.
    #: Estimate: 10 us.
    rpc_async_ns: int = 10_000
    #: Compiling and uploading a kernel before it starts (host-side, the counter keeps
    #: running). Typical ARTIQ kernels compile in a few hundred ms; estimate 300 ms.
    kernel_launch_ns: int = 300_000_000
    #: Events one SED lane holds before the CPU stalls: ARTIQ's gateware builds the SED
    #: with ``fifo_depth=128`` (artiq/gateware/rtio/core.py). DESIGN.md quotes about 16
    #: from m-labs/artiq#1553 (a DRTIO satellite's buffer); set 16 to model that case.
    sed_lane_depth: int = 128
    #: Number of SED lanes (ARTIQ's default ``sed_lanes``; manual, rtio.rst).
    sed_lanes: int = 8
    #: Depth of a TTL input FIFO: ``ififo_depth=64`` (artiq/gateware/rtio/channel.py);
    #: m-labs/artiq#1313 overflowed after 64 events.
    input_fifo_depth: int = 64

    def with_overrides(self, **overrides: int) -> CostModel:
        """A copy with some entries replaced; unknown names are an error."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError("unknown cost model entries: {} (known: {})".format(
                ", ".join(unknown), ", ".join(sorted(known))))
        for name, value in overrides.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"cost model entry {name} must be a non-negative integer, "
                                 f"got {value!r}")
        return dataclasses.replace(self, **overrides)

    @classmethod
    def from_toml(cls, path: str | Path) -> CostModel:
        """The default table with the entries of a TOML file replaced."""
        with open(path, "rb") as f:
            return cls().with_overrides(**tomllib.load(f))


DEFAULT_COSTS = CostModel()
