"""Benchmark of the time-tag analyses and file writing, as ratios measured in one run.

Usage (from the repository root): python -m bench.bench_timetags [--duration-s 5] [--rate-hz 1e6]
[--dir DIR] [--repeats 5] [--extra-site DIR] [--no-files]

pycorrelate and tttrlib are not project dependencies: install them into a throw-away venv
outside the repository (``python -m venv /work/venv-bench && /work/venv-bench/bin/pip install
pycorrelate tttrlib``) and pass its site-packages with ``--extra-site``; it is appended to
``sys.path``, so the project's own packages still win.

Data: 4 channels of independent Poisson tags at --rate-hz each (channel 1 also carries partners
of 20 % of channel-0 tags 2 ns later), merged into one stream. Reports tags/s on one core for
coincidences, heralding and correlation, each as a multiple of the time of a plain
``numpy.sum`` over the same timestamps and detectors arrays; the correlation also on all numba
threads; the same correlation with pycorrelate and tttrlib when they import; HDF5 write/read
throughput and compression ratio.

Comparison with other libraries: every library starts from the same merged (timestamps,
detectors) stream and produces the same +-50 ns, 100 ps histogram, best of --repeats in this
process. Ours works on the merged stream directly; the others need their input prepared from
it (split by channel ``ts[det == c]``; for tttrlib also coarsened to 100 ps units), and that
preparation is part of their timed workload. The ratios without it are printed as well.
Ratios are given against our single-thread time and against our all-thread time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numba
import numpy as np

from analysis.timetags import (
    COMPRESSIONS,
    TimeTagReader,
    TimeTagWriter,
    coincidences,
    correlation,
    generate_tags,
    heralded_events,
)

BINWIDTH_PS = 100
N_BINS = 1000  # +-50 ns


REPEATS = 5


def best_time(function: Callable[[], object], repeats: int | None = None) -> float:
    """Shortest wall time of ``repeats`` calls, seconds."""
    best = float("inf")
    for _ in range(REPEATS if repeats is None else repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def bench_analyses(ts: np.ndarray, det: np.ndarray) -> dict[str, float]:
    """Print the analysis throughputs; return our correlation times in seconds, keyed
    "1 thread" and "N threads" (numba's thread count)."""
    n = len(ts)
    stream = (ts, det)
    floor = best_time(lambda: (np.sum(ts), np.sum(det)))
    print(f"numpy.sum floor (timestamps + detectors): {n / floor / 1e6:8.1f} Mtags/s")
    all_threads = numba.get_num_threads()

    def correlate() -> None:
        correlation(stream, 1, 0, BINWIDTH_PS, N_BINS)

    workloads = {
        "coincidences |dt|<=1 ns": (lambda: coincidences(stream, 0, 1, 1000), 1),
        "heralded_events [0, 5 ns)": (lambda: heralded_events(stream, 0, [1, 2], 0, 5000), 1),
        "correlation 1000 x 100 ps": (correlate, 1),
        f"  same on {all_threads} threads": (correlate, all_threads),
    }
    times = {}
    for name, (work, threads) in workloads.items():
        numba.set_num_threads(threads)
        try:
            times[name] = best_time(work)
        finally:
            numba.set_num_threads(all_threads)
        print(
            f"{name:28s} {n / times[name] / 1e6:8.1f} Mtags/s   "
            f"{times[name] / floor:5.2f} x numpy.sum time"
        )
    return {
        "1 thread": times["correlation 1000 x 100 ps"],
        f"{all_threads} threads": times[f"  same on {all_threads} threads"],
    }


def _print_ratios(name: str, with_prep_s: float, without_prep_s: float,
                  ours: dict[str, float]) -> None:
    print(f"{name}: {with_prep_s:.3f} s with its input preparation, "
          f"{without_prep_s:.3f} s without")
    for label, ours_s in ours.items():
        print(f"    ours {label} {ours_s * 1e3:6.1f} ms: {with_prep_s / ours_s:6.1f} x faster "
              f"(their preparation excluded: {without_prep_s / ours_s:6.1f} x)")


def bench_other_libraries(ts: np.ndarray, det: np.ndarray, ours: dict[str, float]) -> None:
    """Time the same +-50 ns, 100 ps correlation with pycorrelate and tttrlib, from the same
    merged stream: their input preparation (split by channel, coarsening) is timed with them
    and also reported separately."""

    def split() -> tuple[np.ndarray, np.ndarray]:
        return ts[det == 0], ts[det == 1]

    t_start, t_click = split()
    try:
        import pycorrelate
    except ImportError:
        print("pycorrelate: not installed")
    else:
        edges = (np.arange(N_BINS + 1) - N_BINS / 2) * BINWIDTH_PS
        pycorrelate.pcorrelate(t_start[:1000], t_click[:1000], edges)  # numba compile

        def pycorrelate_from_stream() -> None:
            starts, clicks = split()
            pycorrelate.pcorrelate(starts, clicks, edges)

        with_prep = best_time(pycorrelate_from_stream)
        without_prep = best_time(lambda: pycorrelate.pcorrelate(t_start, t_click, edges))
        _print_ratios("pycorrelate.pcorrelate", with_prep, without_prep, ours)
    try:
        import tttrlib
    except ImportError:
        print("tttrlib: not installed")
        return
    # tttrlib correlates positive lags on a linear grid of unit steps (n_casc=1): coarsen to
    # 100 ps units and run both orders to cover -50..+50 ns.

    def coarsen(starts: np.ndarray, clicks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return ((starts // BINWIDTH_PS).astype(np.uint64),
                (clicks // BINWIDTH_PS).astype(np.uint64))

    def run_tttrlib(coarse_start: np.ndarray, coarse_click: np.ndarray) -> None:
        for first, second in ((coarse_start, coarse_click), (coarse_click, coarse_start)):
            correlator = tttrlib.Correlator(method="wahl", n_bins=N_BINS // 2, n_casc=1)
            correlator.set_events(first, np.ones(len(first)), second, np.ones(len(second)))
            correlator.correlation  # noqa: B018 - the property runs the correlation

    coarse = coarsen(t_start, t_click)
    with_prep = best_time(lambda: run_tttrlib(*coarsen(*split())))
    without_prep = best_time(lambda: run_tttrlib(*coarse))
    _print_ratios("tttrlib.Correlator (n_casc=1, both signs)", with_prep, without_prep, ours)


def write_file(path: Path, compression: str, ts: np.ndarray, det: np.ndarray) -> None:
    with TimeTagWriter(path, compression=compression, overwrite=True,
                       flush_interval=None) as writer:
        writer.append(ts, det)


def read_file(path: Path) -> None:
    with TimeTagReader(path) as reader:
        for _ in reader.iter_chunks():
            pass


def bench_files(ts: np.ndarray, det: np.ndarray, directory: Path) -> None:
    """Write and read the stream with each compression; print GB/s of raw int64+uint8 bytes."""
    raw_bytes = ts.nbytes + det.nbytes
    for compression in COMPRESSIONS:
        path = directory / f"bench_{compression}.h5"

        write_s = best_time(lambda p=path, c=compression: write_file(p, c, ts, det))
        size = path.stat().st_size
        read_s = best_time(lambda p=path: read_file(p))
        print(
            f"  {compression:24s} write {raw_bytes / write_s / 1e9:5.2f} GB/s "
            f"({len(ts) / write_s / 1e6:5.0f} Mtags/s)  read {raw_bytes / read_s / 1e9:5.2f} GB/s"
            f"  ratio {raw_bytes / size:4.2f}  {size / len(ts):4.2f} bytes/tag"
        )
        path.unlink()
    path = directory / "bench_stream.h5"
    with TimeTagWriter(path, overwrite=True, flush_interval=None) as writer:
        writer.append(ts, det)
    with TimeTagReader(path) as reader:
        elapsed = best_time(lambda: coincidences(reader, 0, 1, 1000), 1)
    print(f"  coincidences streamed from the file: {len(ts) / elapsed / 1e6:.0f} Mtags/s")
    path.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-s", type=float, default=5.0)
    parser.add_argument("--rate-hz", type=float, default=1e6)
    parser.add_argument("--dir", type=Path, default=None, help="directory for the HDF5 files")
    parser.add_argument("--repeats", type=int, default=5, help="best of N timings (noisy host)")
    parser.add_argument("--extra-site", type=Path, default=None,
                        help="site-packages of a venv holding pycorrelate / tttrlib")
    parser.add_argument("--no-files", action="store_true", help="skip the HDF5 benchmark")
    args = parser.parse_args()
    global REPEATS
    REPEATS = max(1, args.repeats)
    if args.extra_site is not None:
        sys.path.append(str(args.extra_site))
    ts, det = generate_tags(
        args.rate_hz, args.duration_s, channels=(0, 1, 2, 3), seed=1, correlated_fraction=0.2,
        correlation_delay_s=2e-9, correlation_jitter_s=50e-12,
    )
    print(f"{len(ts):,} tags, 4 channels at {args.rate_hz:g} Hz, {args.duration_s} s; "
          f"BLOSC_NTHREADS={os.environ.get('BLOSC_NTHREADS', 'unset')}")
    warm = (ts[:10_000], det[:10_000])  # compile (or load cached) kernels before timing
    coincidences(warm, 0, 1, 1000)
    heralded_events(warm, 0, [1, 2], 0, 5000)
    correlation(warm, 1, 0, BINWIDTH_PS, N_BINS)
    correlation((ts, det), 1, 0, BINWIDTH_PS, N_BINS)  # the threaded kernel (large buffers)
    ours = bench_analyses(ts, det)
    bench_other_libraries(ts, det, ours)
    directories = [args.dir] if args.dir else [Path(tempfile.gettempdir())]
    if args.dir is None and Path("/dev/shm").is_dir():
        directories.append(Path("/dev/shm"))
    for directory in [] if args.no_files else directories:
        Path(directory).mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=directory))
        try:
            print(f"HDF5 files in {directory}:")
            bench_files(ts, det, work)
        finally:
            shutil.rmtree(work)


if __name__ == "__main__":
    main()
