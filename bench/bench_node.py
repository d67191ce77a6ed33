"""Simulated node time per wall second on the 10 km heralding loop, through the simulated core.

A kernel records one attempt as a DMA trace (both nodes: 854 + 866 quench, 393 photon
generation pulse; both station detectors gated over the fibre-delayed arrival window) and a
Doppler-cooling trace (397 + 866), then replays them: cooling every ``COOL_EVERY`` attempts,
the attempt, reading the herald (``count`` on both detectors), a short wait for the herald
decision. DDS profiles are preset (they stay constant during the loop).

Prints node time / wall time and node time / CPU time (CPU time is the process's own, less
sensitive to other load on the machine), RTIO events per wall and per CPU second, the herald
probability. Run: ``python bench/bench_node.py [attempts] [--profile | --compare]``
(``--compare``: DMA traces played event by event vs as a batch, in one process).
"""

from __future__ import annotations

import sys
import time

from artiq.experiment import delay, delay_mu, kernel, now_mu, us

import ionlink  # noqa: F401  (serves artiq where it is not installed)
from ionlink.node import VirtualNetwork
from ionlink.node.wiring import NODES, example_device_db
from ionlink.runner.devices import SimDeviceManager
from ionlink.sim import session
from ionlink.sim.world import PHASE_MODE_TRACKING, DDSState

COOL_EVERY = 20


class HeraldingLoop:
    def __init__(self, dmgr, db, delay_mu: int):
        self.core = dmgr.get("core")
        self.dma = dmgr.get("core_dma")
        sw = {r: dmgr.get(db[db[r]]["arguments"]["sw_device"])
              for r in db if r.startswith("dds_") and isinstance(db[r], str)}
        self.quench = [sw[f"dds_{la}_{n}"] for n in NODES for la in ("854", "866")]
        self.gen = [sw[f"dds_393_{n}"] for n in NODES]
        self.cool = [sw[f"dds_{la}_{n}"] for n in NODES for la in ("397", "866")]
        self.det0 = dmgr.get("det_station_0")
        self.det1 = dmgr.get("det_station_1")
        self.flight_mu = delay_mu

    @kernel
    def record(self):
        with self.dma.record("attempt"):
            for s in self.quench:
                s.on()
            delay(3 * us)
            for s in self.quench:
                s.off()
            delay(1 * us)
            for s in self.gen:
                s.on()
            delay_mu(100)
            for s in self.gen:
                s.off()
            delay_mu(self.flight_mu - 500)
            self.det0._set_sensitivity(1)
            self.det1._set_sensitivity(1)
            delay(5.5 * us)
            self.det0._set_sensitivity(0)
            self.det1._set_sensitivity(0)
        with self.dma.record("cool"):
            for s in self.cool:
                s.on()
            delay(500 * us)
            for s in self.cool:
                s.off()
            delay(1 * us)

    @kernel
    def run(self, attempts: int) -> tuple[int, int]:
        self.core.reset()
        self.record()
        attempt = self.dma.get_handle("attempt")
        cool = self.dma.get_handle("cool")
        self.core.break_realtime()
        t0 = now_mu()
        heralds = 0
        for i in range(attempts):
            if i % COOL_EVERY == 0:
                self.dma.playback_handle(cool)
            self.dma.playback_handle(attempt)
            t_end = now_mu()
            clicks = self.det0.count(t_end) + self.det1.count(t_end)
            if clicks == 1:
                heralds += 1
            delay(20 * us)    # herald decision / classical signalling
        return heralds, now_mu() - t0


def run(attempts: int = 2000, seed: int = 0, batch: bool = True) -> dict[str, float]:
    """Run the loop; ``batch=False`` plays DMA traces event by event (the reference path)."""
    db = dict(example_device_db())
    db["core"] = {**db["core"], "arguments": {"host": None, "ref_period": 1e-9}}
    db["core_dma"] = {"type": "local", "module": "artiq.coredevice.dma", "class": "CoreDMA"}
    net = VirtualNetwork(db, seed=seed)
    engine = session.start(world=net)
    engine.fast_dma = batch
    try:
        dmgr = SimDeviceManager(db)
        dev = net.wiring.devices
        for n in NODES:
            net.output(0, dev[f"dds_397_{n}"], "dds",
                       DDSState(100e6, 0.0, 1.0, PHASE_MODE_TRACKING, 0))
            for la in ("854", "866", "393"):
                net.output(0, dev[f"dds_{la}_{n}"], "dds",
                           DDSState(80e6, 0.0, 1.0, PHASE_MODE_TRACKING, 0))
        loop = HeraldingLoop(dmgr, db, int(net.fibre_delay_s(0, 0.0) * 1e9))
        events0 = engine.events_submitted
        cpu0, wall0 = time.process_time(), time.perf_counter()
        heralds, node_mu = loop.run(attempts)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        events = engine.events_submitted - events0
    finally:
        session.end()
    node_s = node_mu * 1e-9
    return {"attempts": attempts, "node_time_s": node_s, "wall_s": wall, "cpu_s": cpu,
            "node_per_wall": node_s / wall, "node_per_cpu": node_s / cpu,
            "rtio_events": events, "events_per_wall_s": events / wall,
            "events_per_cpu_s": events / cpu, "herald_probability": heralds / attempts,
            "errors": sum(engine.errors.values())}


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 2000
    if "--profile" in sys.argv:
        import cProfile
        import pstats
        profiler = cProfile.Profile()
        profiler.runcall(run, n)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    elif "--compare" in sys.argv:
        # both paths in one process, alternating, best CPU time of three each
        results = {False: [], True: []}
        for _ in range(3):
            for batch in (False, True):
                results[batch].append(run(n, batch=batch))
        best = {b: min(r, key=lambda x: x["cpu_s"]) for b, r in results.items()}
        assert best[False]["herald_probability"] == best[True]["herald_probability"]
        print(f"{'':>20}  {'event by event':>14}  {'batch':>14}")
        for key in best[True]:
            print(f"{key:>20}: {best[False][key]:14.6g}  {best[True][key]:14.6g}")
        print(f"{'speed-up (CPU)':>20}: {best[False]['cpu_s'] / best[True]['cpu_s']:.3g}x")
    else:
        for key, value in run(n).items():
            print(f"{key:>20}: {value:.6g}")
