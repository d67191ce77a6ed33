"""RTIO events per wall second on the simulated core device: TTL pulses issued directly
from a kernel loop, and the same pattern recorded once and replayed by DMA (event by event,
and as a batch: ``ionlink.sim.dma_plan``).

Prints events/s and, measured in the same process, the ratio to a floor: a bare Python
loop that only appends one (timestamp, channel, value) tuple per event. DESIGN.md quotes
DAX.sim at about 1.5e5 events/s on a Python-level loop on these machines; the ratio to
that quoted figure is printed for reference (it is not measured here).

Run: python bench/bench_rtio.py
"""

from __future__ import annotations

import time

from artiq.experiment import delay, kernel, now_mu, us

import ionlink  # noqa: F401
from ionlink.runner.devices import SimDeviceManager
from ionlink.sim import session

DAX_SIM_EVENTS_PER_S = 1.5e5
DDB = {
    "core": {"type": "local", "module": "artiq.coredevice.core", "class": "Core",
             "arguments": {"host": None, "ref_period": 1e-9}},
    "core_dma": {"type": "local", "module": "artiq.coredevice.dma", "class": "CoreDMA"},
    "ttl4": {"type": "local", "module": "artiq.coredevice.ttl", "class": "TTLOut",
             "arguments": {"channel": 4}},
}


class Pulses:
    def __init__(self, dmgr):
        self.core = dmgr.get("core")
        self.ttl = dmgr.get("ttl4")
        self.dma = dmgr.get("core_dma")

    @kernel
    def direct(self, n):
        self.core.reset()
        for _ in range(n):
            self.ttl.pulse(1 * us)
            delay(1 * us)

    @kernel
    def dma_playback(self, n_playbacks, pulses_per_trace, drain=False):
        self.core.reset()
        with self.dma.record("pulses"):
            for _ in range(pulses_per_trace):
                self.ttl.pulse(1 * us)
                delay(1 * us)
        handle = self.dma.get_handle("pulses")
        self.core.break_realtime()
        for _ in range(n_playbacks):
            self.dma.playback_handle(handle)
            if drain:
                # wait until the trace has left the SED lane (no stalls next time)
                self.core.wait_until_mu(now_mu())
                delay(10 * us)


def floor_events_per_s(n: int) -> float:
    trace = []
    t0 = time.perf_counter()
    for i in range(n):
        trace.append((i * 1000, 4, i & 1))
    return n / (time.perf_counter() - t0)


def best_of(repeats: int, fn) -> float:
    return min(fn() for _ in range(repeats))


def main() -> None:
    engine = session.start()
    exp = Pulses(SimDeviceManager(DDB))
    n = 100_000

    def run_direct():
        t0 = time.perf_counter()
        exp.direct(n // 2)
        return time.perf_counter() - t0

    def run_dma(drain=False):
        t0 = time.perf_counter()
        exp.dma_playback(n // 100, 50, drain)
        return time.perf_counter() - t0

    direct_rate = n / best_of(3, run_direct)
    # back to back, the CPU runs ahead of the 100 us traces: the SED lane fills up and the
    # CPU stalls (stalls are always played event by event)
    dma_rate = n / best_of(3, run_dma)
    rates = {}
    for fast in (False, True):
        engine.fast_dma = fast
        rates[fast] = n / best_of(3, lambda: run_dma(True))
    engine.fast_dma = True
    floor = max(floor_events_per_s(n) for _ in range(3))
    print(f"python floor (append a tuple per event): {floor:12.3e} events/s")
    for name, rate in (("direct TTL pulses", direct_rate),
                       ("DMA back to back (lane full, stalls)", dma_rate),
                       ("DMA, lane drained: event by event", rates[False]),
                       ("DMA, lane drained: as a batch", rates[True])):
        print(f"{name:40s} {rate:12.3e} events/s   ratio to floor {rate / floor:6.3f}   "
              f"vs DAX.sim's quoted 1.5e5: {rate / DAX_SIM_EVENTS_PER_S:5.2f}x")


if __name__ == "__main__":
    main()
