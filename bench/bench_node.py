"""Simulated node time per wall second on a 10 km single-photon heralding loop.

Drives VirtualNetwork directly with the event pattern of one attempt (per node: 854 and 866
quench on/off, 393 pulse on/off; then two station gate windows), as a DMA playback would.
Run: ``python bench/bench_node.py [attempts]``.
"""

from __future__ import annotations

import sys
import time

from ionlink.node import VirtualNetwork
from ionlink.node.wiring import NODES, example_device_db
from ionlink.sim.world import PHASE_MODE_TRACKING, DDSState


def run(attempts: int = 5000, seed: int = 0) -> dict[str, float]:
    db = example_device_db()
    net = VirtualNetwork(db, seed=seed)
    dev = net.wiring.devices
    sw = {r: db[dev[r]]["arguments"]["sw_device"] for r in dev if r.startswith("dds")}
    for n in NODES:
        for la in ("854", "866", "393"):
            net.output(0, dev[f"dds_{la}_{n}"], "dds",
                       DDSState(80e6, 0.0, 1.0, PHASE_MODE_TRACKING, 0))
    delay = int(net.fibre_delay_s(0, 0.0) * 1e9)
    period = delay * 2 + 50_000  # photon flight + herald signal back + preparation
    det0, det1 = dev["det_station_0"], dev["det_station_1"]
    t = 10_000
    heralds = 0
    events = 0
    wall0 = time.perf_counter()
    for _ in range(attempts):
        for n in NODES:
            net.output(t, sw[f"dds_854_{n}"], "level", 1)
            net.output(t, sw[f"dds_866_{n}"], "level", 1)
            net.output(t + 3000, sw[f"dds_854_{n}"], "level", 0)
            net.output(t + 3000, sw[f"dds_866_{n}"], "level", 0)
            net.output(t + 4000, sw[f"dds_393_{n}"], "level", 1)
            net.output(t + 4100, sw[f"dds_393_{n}"], "level", 0)
        events += 12
        t_arr = t + 4100 + delay
        c0 = net.input_edges(det0, t_arr - 500, t_arr + 5000)
        c1 = net.input_edges(det1, t_arr - 500, t_arr + 5000)
        heralds += (len(c0) + len(c1)) == 1
        t += period
    wall = time.perf_counter() - wall0
    sim = attempts * period * 1e-9
    return {"attempts": attempts, "attempt_period_us": period / 1e3, "wall_s": wall,
            "simulated_s": sim, "sim_per_wall": sim / wall, "events_per_s": events / wall,
            "herald_probability": heralds / attempts}


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    for key, value in run(n).items():
        print(f"{key:>20}: {value:.6g}")
