"""Highest sustained tag rate the time-tagger controller streams to files with no dropped tag.

Usage (from the repository root): python -m bench.bench_tagger_stream [--duration-s 2]
[--rates 1e6,2e6,4e6,8e6] [--buffer-s 0.1] [--dir DIR]

The simulated tagger runs on wall time (as stand-alone) over 4 channels of pre-generated
Poisson clicks (so generating clicks costs no CPU during the run); the driver's stream
thread reads every 20 ms and writes rotating Photon-HDF5 files (blosc-lz4-bitshuffle, 64 Ki
tag chunks, flush every second, 256 MB files). The device buffer holds ``--buffer-s`` of
tags: a pipeline slower than the tag rate falls behind and overflows it, so ``dropped == 0``
over the run means the rate is sustained. Also reported: the raw append throughput of the
same file writer, and each sustained rate as a fraction of it.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from drivers.timetagger.driver import TimeTaggerDriver
from drivers.timetagger.simulation import SimulatedTagger, WallClock
from drivers.timetagger.streaming import RotatingWriter
from ionlink.sim.world import ScriptedInputs

CHANNELS = {1: "d1", 2: "d2", 3: "d3", 4: "d4"}


def poisson_world(rate_hz: float, duration_s: float, seed: int) -> ScriptedInputs:
    rng = np.random.default_rng(seed)
    per = rate_hz / len(CHANNELS)
    span = int((duration_s + 1.0) * 1e9)
    edges = {}
    for name in CHANNELS.values():
        n = rng.poisson(per * span * 1e-9)
        edges[name] = np.sort(rng.integers(0, span, size=n, dtype=np.int64))
    return ScriptedInputs(edges)


def stream_once(rate_hz: float, duration_s: float, buffer_s: float, directory: Path,
                seed: int) -> dict:
    world = poisson_world(rate_hz, duration_s, seed)
    backend = SimulatedTagger(CHANNELS, lambda: world, WallClock())
    drv = TimeTaggerDriver(backend, CHANNELS)
    drv.start_stream(str(directory), prefix=f"bench_{int(rate_hz)}",
                     max_file_bytes=256 << 20,
                     buffer_tags=max(int(rate_hz * buffer_s), 1000))
    t0 = time.perf_counter()
    time.sleep(duration_s)
    s = drv.stop_stream()
    elapsed = time.perf_counter() - t0
    drv.close()
    return {"rate_hz": rate_hz, "tags": s["n_tags"], "dropped": s["n_dropped"],
            "achieved_hz": s["n_tags"] / elapsed, "files": len(s["files"])}


def raw_writer_rate(directory: Path, n_tags: int = 4_000_000) -> float:
    rng = np.random.default_rng(1)
    # merged Poisson stream at 4 Mtag/s, whole ns in ps (as the simulated tagger writes)
    t = np.cumsum(rng.exponential(250.0, size=n_tags)).astype(np.int64) * 1000
    d = rng.integers(1, 5, size=n_tags).astype(np.uint8)
    warm = RotatingWriter(directory, "warmup", 1 << 30, 3600.0)   # JIT-compiled kernels
    warm.append(t[:1000], d[:1000])
    warm.close()
    w = RotatingWriter(directory, "raw", 1 << 30, 3600.0)
    block = 100_000                                    # a 20 ms read at 5 Mtag/s
    t0 = time.perf_counter()
    for i in range(0, n_tags, block):
        w.append(t[i:i + block], d[i:i + block])
    w.close()
    return n_tags / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration-s", type=float, default=2.0)
    p.add_argument("--rates", default="1e6,2e6,4e6,6e6,8e6,12e6")
    p.add_argument("--buffer-s", type=float, default=0.1)
    p.add_argument("--dir", default=None)
    a = p.parse_args()
    logging.getLogger("drivers.timetagger.driver").setLevel(logging.ERROR)
    base = Path(a.dir) if a.dir else Path(tempfile.mkdtemp(prefix="bench_tagger_"))
    base.mkdir(parents=True, exist_ok=True)
    try:
        raw = raw_writer_rate(base)
        print(f"raw writer append throughput: {raw:.3g} tags/s")
        best = 0.0
        for i, rate in enumerate(float(r) for r in a.rates.split(",")):
            r = stream_once(rate, a.duration_s, a.buffer_s, base, seed=i)
            ok = r["dropped"] == 0
            print(f"rate {rate:.3g} tags/s: wrote {r['tags']} ({r['achieved_hz']:.3g}/s), "
                  f"dropped {r['dropped']}, {r['files']} file(s) -> "
                  f"{'sustained' if ok else 'DROPS'}; {rate / raw:.2f} of raw writer rate")
            if ok:
                best = rate
            else:
                break
        print(f"highest sustained rate with no dropped tag: {best:.3g} tags/s "
              f"({best / raw:.2f} of the raw writer rate)")
    finally:
        if a.dir is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
