"""Streaming analyses of a merged detector time-tag stream.

Every function takes a *stream* (see :mod:`analysis.timetags.stream`: a TimeTagReader, a
``(timestamps, detectors)`` pair of arrays, or an iterable of such chunks) and gives exactly the
same result however the stream is split into chunks: the tags a later chunk may still pair
with are carried over. Memory use is bounded by the chunk size plus that carried tail.

Times (windows, bin widths) are integers in timestamp units (``timestamps_unit`` seconds
each, 1 ps in files written with the default); durations are in seconds and rates in Hz.
Channels are detector ids 0..255.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from analysis.timetags import kernels
from analysis.timetags.kernels import NO_DETECTION
from analysis.timetags.stream import (
    UnorderedStreamError,
    iter_stream_chunks,
    stream_timestamps_unit,
)

__all__ = [
    "NO_DETECTION",
    "ArrivalHistogram",
    "CorrelationResult",
    "CountRates",
    "HeraldedEvents",
    "MarkerCounts",
    "arrival_histogram",
    "coincidence_pairs",
    "coincidences",
    "correlation",
    "count_rates",
    "counts_between_markers",
    "heralded_events",
    "iter_counts_between_markers",
    "iter_heralded_events",
]

INT64_MIN = int(np.iinfo(np.int64).min)
EMPTY_TIMESTAMPS = np.empty(0, dtype=np.int64)
EMPTY_DETECTORS = np.empty(0, dtype=np.uint8)


def _integer(value: Any, name: str, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer (timestamp units), got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _channel(value: Any, name: str) -> int:
    channel = _integer(value, name, 0)
    if channel > 255:
        raise ValueError(f"{name} must be a detector id in 0..255, got {channel}")
    return channel


def _join(carry_ts, carry_det, timestamps, detectors):
    """Prepend the carried tail to a chunk; returns (timestamps, detectors, carry length)."""
    if len(carry_ts) == 0:
        return timestamps, detectors, 0
    return (
        np.concatenate((carry_ts, timestamps)),
        np.concatenate((carry_det, detectors)),
        len(carry_ts),
    )


def _raise_if_unordered(timestamps, bad: int, offset: int) -> None:
    """Raise UnorderedStreamError for a kernel's disorder index ``bad`` (>= 0) in a buffer
    whose index 0 is stream tag ``offset``; do nothing for bad = -1."""
    if bad >= 0:
        raise UnorderedStreamError(
            f"tag stream is not time-ordered at tag {offset + bad}: "
            f"{timestamps[bad - 1]} then {timestamps[bad]}"
        )


def _tail_from(timestamps, detectors, threshold: int):
    """Copy of the tags with timestamp >= threshold (the part later tags may pair with)."""
    start = int(np.searchsorted(timestamps, max(threshold, INT64_MIN), side="left"))
    return timestamps[start:].copy(), detectors[start:].copy()


# -- coincidences -------------------------------------------------------------------------------
def coincidences(
    stream: Any, ch_a: int, ch_b: int, window: int, *, chunk_tags: int | None = None
) -> int:
    """Number of pairs of a tag on ``ch_a`` and a tag on ``ch_b`` with |t_a - t_b| <= window.

    Every pair counts (a tag may be in several pairs). With ``ch_a == ch_b``: the number of
    unordered pairs of distinct tags on that channel within the window.

    Args:
        stream: the tag stream.
        ch_a, ch_b: detector ids.
        window: coincidence half-width, timestamp units (>= 0).
        chunk_tags: block size when reading a file or splitting in-memory arrays.
    """
    total, _ = _coincidence_pass(stream, ch_a, ch_b, window, chunk_tags, store=False)
    return total


def _coincidence_pass(stream, ch_a, ch_b, window, chunk_tags, store):
    """Run kernels.coincidence_scan over the stream (order checked by the kernel itself).

    Returns (pair count, list of (times_a, times_b) parts when ``store``)."""
    ch_a, ch_b = _channel(ch_a, "ch_a"), _channel(ch_b, "ch_b")
    window = _integer(window, "window", 0)
    total = 0
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    position = 0  # stream index of the current chunk's first tag
    carry_ts, carry_det = EMPTY_TIMESTAMPS, EMPTY_DETECTORS
    for chunk_ts, chunk_det in iter_stream_chunks(stream, chunk_tags, check_order=False):
        ts, det, first = _join(carry_ts, carry_det, chunk_ts, chunk_det)
        out_a = out_b = EMPTY_TIMESTAMPS
        if store:
            count, bad = kernels.coincidence_scan(ts, det, first, ch_a, ch_b, window, False,
                                                  out_a, out_b)
            out_a = np.empty(count, dtype=np.int64)
            out_b = np.empty(count, dtype=np.int64)
        count, bad = kernels.coincidence_scan(ts, det, first, ch_a, ch_b, window, store,
                                              out_a, out_b)
        _raise_if_unordered(ts, bad, position - first)
        total += int(count)
        if store:
            parts.append((out_a, out_b))
        position += len(chunk_ts)
        carry_ts, carry_det = _tail_from(ts, det, int(ts[-1]) - window)
    return total, parts


def coincidence_pairs(
    stream: Any, ch_a: int, ch_b: int, window: int, *, chunk_tags: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The pairs counted by :func:`coincidences`, as arrays ``(times_a, times_b)``.

    Pairs are ordered by the time of their later tag. With ``ch_a == ch_b``, ``times_a`` holds
    the later tag of each pair.
    """
    _, parts = _coincidence_pass(stream, ch_a, ch_b, window, chunk_tags, store=True)
    if not parts:
        return EMPTY_TIMESTAMPS.copy(), EMPTY_TIMESTAMPS.copy()
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


# -- heralding ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class HeraldedEvents:
    """Detections in the window of each herald tag.

    Attributes:
        herald_times: (n_heralds,) herald timestamps.
        counts: (n_heralds, n_signal) detections per signal channel in the window.
        first_times: (n_heralds, n_signal) timestamp of the first such detection,
            :data:`NO_DETECTION` where there is none.
        signal_channels: the signal channels, in column order.
    """

    herald_times: np.ndarray
    counts: np.ndarray
    first_times: np.ndarray
    signal_channels: tuple[int, ...]


def heralded_events(
    stream: Any,
    herald_ch: int,
    signal_chs: int | Sequence[int],
    window_start: int,
    window_stop: int,
    *,
    chunk_tags: int | None = None,
) -> HeraldedEvents:
    """For each tag on ``herald_ch`` at t_h, the detections in [t_h + start, t_h + stop).

    Args:
        stream: the tag stream.
        herald_ch: detector id of the herald (e.g. the trigger of an attempt).
        signal_chs: one detector id or several; must not include ``herald_ch``.
        window_start, window_stop: window bounds relative to the herald, timestamp units,
            ``window_start < window_stop`` (either may be negative).
        chunk_tags: block size when reading a file or splitting in-memory arrays.

    The result holds one row per herald; for more heralds than fit in memory use
    :func:`iter_heralded_events`, which yields the same rows chunk by chunk.
    """
    blocks = list(iter_heralded_events(stream, herald_ch, signal_chs, window_start,
                                       window_stop, chunk_tags=chunk_tags))
    signals = _signal_channels(herald_ch, signal_chs)
    if not blocks:
        return HeraldedEvents(EMPTY_TIMESTAMPS.copy(), np.empty((0, len(signals)), np.int64),
                              np.empty((0, len(signals)), np.int64), signals)
    return HeraldedEvents(np.concatenate([b.herald_times for b in blocks]),
                          np.concatenate([b.counts for b in blocks]),
                          np.concatenate([b.first_times for b in blocks]), signals)


def _signal_channels(herald_ch: Any, signal_chs: Any) -> tuple[int, ...]:
    herald_ch = _channel(herald_ch, "herald_ch")
    signals = [signal_chs] if isinstance(signal_chs, (int, np.integer)) else list(signal_chs)
    signals = [_channel(s, "signal_chs") for s in signals]
    if not signals or len(set(signals)) != len(signals):
        raise ValueError(f"signal_chs must be distinct detector ids, got {signal_chs!r}")
    if herald_ch in signals:
        raise ValueError(f"herald_ch {herald_ch} is also a signal channel")
    return tuple(signals)


def iter_heralded_events(
    stream: Any,
    herald_ch: int,
    signal_chs: int | Sequence[int],
    window_start: int,
    window_stop: int,
    *,
    chunk_tags: int | None = None,
) -> Iterator[HeraldedEvents]:
    """:func:`heralded_events` in bounded memory: yields, per chunk of the stream, the
    heralds whose windows that chunk completes (in time order; none are repeated or
    skipped), so a file with more heralds than fit in memory can be reduced as it is read.
    Arguments as for :func:`heralded_events`; they are checked before the first chunk."""
    signals = _signal_channels(herald_ch, signal_chs)
    herald_ch = _channel(herald_ch, "herald_ch")
    window_start = _integer(window_start, "window_start")
    window_stop = _integer(window_stop, "window_stop")
    if window_start >= window_stop:
        raise ValueError(f"window_start ({window_start}) must be < window_stop ({window_stop})")
    signal_index = np.full(256, -1, dtype=np.int64)
    signal_index[list(signals)] = np.arange(len(signals))
    return _heralded_blocks(stream, herald_ch, signals, signal_index, window_start,
                            window_stop, chunk_tags)


def _heralded_blocks(stream, herald_ch, signals, signal_index, window_start, window_stop,
                     chunk_tags) -> Iterator[HeraldedEvents]:
    n_signal = len(signals)

    def evaluate(ts, det, first, final):
        n_heralds = int(np.count_nonzero(det[first:] == herald_ch))
        out_herald = np.empty(n_heralds, dtype=np.int64)
        out_counts = np.empty((n_heralds, n_signal), dtype=np.int64)
        out_first = np.empty((n_heralds, n_signal), dtype=np.int64)
        done, next_herald = kernels.heralded_windows(
            ts, det, first, herald_ch, signal_index, window_start, window_stop, final,
            out_herald, out_counts, out_first,
        )
        block = HeraldedEvents(out_herald[:done], out_counts[:done], out_first[:done], signals)
        return block, int(next_herald)

    carry_ts, carry_det = EMPTY_TIMESTAMPS, EMPTY_DETECTORS
    pending = 0
    for chunk_ts, chunk_det in iter_stream_chunks(stream, chunk_tags):
        ts, det, _ = _join(carry_ts, carry_det, chunk_ts, chunk_det)
        block, next_herald = evaluate(ts, det, pending, final=False)
        if len(block.herald_times):
            yield block
        reference = int(ts[next_herald]) if next_herald < len(ts) else int(ts[-1])
        threshold = min(reference, reference + window_start)
        keep_from = int(np.searchsorted(ts, max(threshold, INT64_MIN), side="left"))
        keep_from = min(keep_from, next_herald)
        carry_ts, carry_det = ts[keep_from:].copy(), det[keep_from:].copy()
        pending = next_herald - keep_from
    if pending < len(carry_ts):
        block, _ = evaluate(carry_ts, carry_det, pending, final=True)
        if len(block.herald_times):
            yield block


# -- correlation --------------------------------------------------------------------------------
@dataclass(frozen=True)
class CorrelationResult:
    """Cross-correlation histogram of tau = t_click - t_start.

    Attributes:
        tau: (n_bins,) bin centres, timestamp units.
        counts: (n_bins,) pair counts per bin.
        g2: (n_bins,) counts / (rate_click * rate_start * binwidth * duration), i.e.
            counts * duration / (n_click * n_start * binwidth); 1 for uncorrelated Poisson
            streams. None unless normalisation was asked for; NaN if a channel has no tags
            or the duration is zero.
        n_click, n_start: tags on each channel (counted with or without ``normalize``).
        duration: timestamp units, the duration used to normalise.
        binwidth: timestamp units.
        timestamps_unit: seconds per timestamp unit, if known.
    """

    tau: np.ndarray
    counts: np.ndarray
    g2: np.ndarray | None
    n_click: int
    n_start: int
    duration: float
    binwidth: int
    timestamps_unit: float | None


PARALLEL_MIN_TAGS = 1 << 18  # tags per thread below which the correlation runs on one thread
_POOL: dict[int, ThreadPoolExecutor] = {}  # by process id: a forked child makes its own


def _thread_pool() -> ThreadPoolExecutor:
    pid = os.getpid()
    if pid not in _POOL:
        _POOL.clear()
        _POOL[pid] = ThreadPoolExecutor(max_workers=os.cpu_count() or 1,
                                        thread_name_prefix="timetags")
    return _POOL[pid]


def _threads() -> int:
    """Threads the correlation may use: numba's setting (NUMBA_NUM_THREADS, set_num_threads)."""
    return numba.get_num_threads()


def _correlation_kernel(ts, det, first, ch_click, ch_start, binwidth, n_bins, histogram,
                        counts) -> int:
    """Run the correlation kernel on the tags first.. of one buffer, split into consecutive
    ranges on up to _threads() threads (the kernel releases the GIL; one thread below
    2 * PARALLEL_MIN_TAGS tags). Returns the first disorder index or -1."""
    length = len(ts) - first
    segments = min(_threads(), length // PARALLEL_MIN_TAGS)
    if segments < 2:
        return int(kernels.correlation_histogram(
            ts, det, first, ch_click, ch_start, binwidth, n_bins, histogram, counts))
    bounds = [first + length * k // segments for k in range(segments + 1)]
    parts = np.zeros((segments, len(histogram)), dtype=np.int64)
    part_counts = np.zeros((segments, 2), dtype=np.int64)
    futures = [
        _thread_pool().submit(
            kernels.correlation_histogram_range, ts, det, bounds[k], bounds[k + 1], ch_click,
            ch_start, binwidth, n_bins, parts[k], part_counts[k])
        for k in range(segments)
    ]
    bad = [int(future.result()) for future in futures]
    for index in bad:  # ranges are in stream order: the first fault is the earliest
        if index >= 0:
            return index
    histogram += parts.sum(axis=0)
    counts += part_counts.sum(axis=0)
    return -1


def correlation(
    stream: Any,
    ch_click: int,
    ch_start: int,
    binwidth: int,
    n_bins: int,
    *,
    normalize: bool = True,
    duration: float | None = None,
    timestamps_unit: float | None = None,
    chunk_tags: int | None = None,
) -> CorrelationResult:
    """Correlation histogram with the semantics of Swabian's ``Correlation`` measurement.

    Every tag is both a start and a stop: each pair of a click tag and a start tag adds
    tau = t_click - t_start (either sign). The ``n_bins`` bins of width ``binwidth`` are centred
    on tau = 0 and cover [-n_bins*binwidth/2, +n_bins*binwidth/2), each bin half-open
    [low, high). With ``ch_click == ch_start`` (auto-correlation) each pair of distinct tags
    adds both +dt and -dt; a tag is not paired with itself.

    Checked against Swabian's Time Tagger API header (class ``Correlation``): channel_1
    receives the (stop) clicks and channel_2 the reference (start) clicks, so
    tau = t_channel_1 - t_channel_2; every click is both start and stop and both signs are
    histogrammed; ``getDataNormalized`` is Delta_t / (binwidth * N_1 * N_2) * histogram, which
    is ``g2`` here. The header gives ``getIndex`` only as "the time bins in ps" (int64); our
    ``tau`` are the bin centres of the half-open bins above.

    One pass over the tags (which also counts the two channels and checks time order);
    in-memory arrays are not copied. Buffers of at least 2 * PARALLEL_MIN_TAGS tags are split
    into consecutive ranges processed on up to ``numba.get_num_threads()`` threads
    (``NUMBA_NUM_THREADS`` / ``numba.set_num_threads``); the result does not depend on it.

    Args:
        stream: the tag stream.
        ch_click, ch_start: detector ids (Swabian's channel_1 and channel_2).
        binwidth: timestamp units (>= 1).
        n_bins: number of bins (>= 1).
        normalize: also compute ``g2``.
        duration: seconds, for the normalisation; default the file's acquisition_duration,
            else the span from the first to the last tag of the stream.
        timestamps_unit: seconds per unit; needed with ``duration`` for in-memory arrays.
        chunk_tags: block size when reading a file or splitting in-memory arrays.
    """
    ch_click, ch_start = _channel(ch_click, "ch_click"), _channel(ch_start, "ch_start")
    binwidth = _integer(binwidth, "binwidth", 1)
    n_bins = _integer(n_bins, "n_bins", 1)
    unit = stream_timestamps_unit(stream, timestamps_unit)
    half_range = -(-n_bins * binwidth // 2)  # ceil: the largest |tau| a pair can have
    histogram = np.zeros(n_bins + 1, dtype=np.int64)  # + the kernel's dump bin
    channel_counts = np.zeros(2, dtype=np.int64)  # click, start tags (counted by the kernel)
    first_time = last_time = None
    position = 0  # stream index of the current chunk's first tag
    carry_ts, carry_det = EMPTY_TIMESTAMPS, EMPTY_DETECTORS
    for chunk_ts, chunk_det in iter_stream_chunks(stream, chunk_tags, check_order=False):
        ts, det, first = _join(carry_ts, carry_det, chunk_ts, chunk_det)
        bad = _correlation_kernel(ts, det, first, ch_click, ch_start, binwidth, n_bins,
                                  histogram, channel_counts)
        _raise_if_unordered(ts, bad, position - first)
        if first_time is None:
            first_time = int(chunk_ts[0])
        last_time = int(chunk_ts[-1])
        position += len(chunk_ts)
        carry_ts, carry_det = _tail_from(ts, det, int(ts[-1]) - half_range)
    histogram = histogram[:n_bins].copy()
    tau = (np.arange(n_bins) - n_bins / 2 + 0.5) * binwidth
    g2 = None
    duration_units = math.nan
    n_click = int(channel_counts[0])
    n_start = int(channel_counts[1])
    if normalize:
        if duration is not None:
            if unit is None:
                raise ValueError("duration in seconds needs timestamps_unit for in-memory arrays")
            if not duration > 0:
                raise ValueError(f"duration must be > 0 seconds, got {duration}")
            duration_units = duration / unit
        elif getattr(stream, "acquisition_duration", None) and unit is not None:
            duration_units = stream.acquisition_duration / unit
        elif first_time is not None:
            duration_units = float(last_time - first_time)
        denominator = float(n_click) * float(n_start) * binwidth
        if denominator > 0 and duration_units > 0:
            g2 = histogram * (duration_units / denominator)
        else:
            g2 = np.full(n_bins, math.nan)
    return CorrelationResult(
        tau, histogram, g2, n_click, n_start, duration_units, binwidth, unit
    )


# -- arrival-time histogram ---------------------------------------------------------------------
@dataclass(frozen=True)
class ArrivalHistogram:
    """Histogram of t - t_last_trigger.

    Attributes:
        edges: (n_bins + 1,) bin edges, timestamp units; bins are [edges[k], edges[k+1]).
        counts: (n_bins,) tags per bin.
    """

    edges: np.ndarray
    counts: np.ndarray


def arrival_histogram(
    stream: Any,
    trigger_ch: int,
    ch: int,
    binwidth: int,
    n_bins: int,
    *,
    chunk_tags: int | None = None,
) -> ArrivalHistogram:
    """Start-multistop histogram: each tag on ``ch`` against the most recent trigger.

    "Most recent" is in stream order (a trigger and a tag with the same timestamp pair only if
    the trigger comes first in the stream). Tags before the first trigger, or later than
    n_bins*binwidth after the last trigger, are not counted.

    Args:
        trigger_ch, ch: distinct detector ids.
        binwidth: timestamp units (>= 1). n_bins: >= 1.
    """
    trigger_ch, ch = _channel(trigger_ch, "trigger_ch"), _channel(ch, "ch")
    if trigger_ch == ch:
        raise ValueError(f"trigger_ch and ch must differ, both are {ch}")
    binwidth = _integer(binwidth, "binwidth", 1)
    n_bins = _integer(n_bins, "n_bins", 1)
    histogram = np.zeros(n_bins, dtype=np.int64)
    last_trigger, has_trigger = 0, False
    for ts, det in iter_stream_chunks(stream, chunk_tags):
        last_trigger, has_trigger = kernels.arrival_histogram_update(
            ts, det, trigger_ch, ch, binwidth, n_bins, histogram, last_trigger, has_trigger
        )
    edges = np.arange(n_bins + 1, dtype=np.int64) * binwidth
    return ArrivalHistogram(edges, histogram)


# -- counts between markers ---------------------------------------------------------------------
@dataclass(frozen=True)
class MarkerCounts:
    """Tags per channel in each interval between consecutive markers.

    Attributes:
        counts: (n_markers - 1, n_channels); row i covers marker i to marker i + 1.
        marker_times: (n_markers,) marker timestamps.
        channels: the counted channels, in column order.
    """

    counts: np.ndarray
    marker_times: np.ndarray
    channels: tuple[int, ...]


def counts_between_markers(
    stream: Any, marker_ch: int, channels: Sequence[int], *, chunk_tags: int | None = None
) -> MarkerCounts:
    """Count tags on ``channels`` between consecutive tags of ``marker_ch`` (stream order).

    Tags before the first marker and after the last one are not counted. The result holds
    one row per marker; for more markers than fit in memory use
    :func:`iter_counts_between_markers`.
    """
    channels = _counted_channels(marker_ch, channels)
    rows, markers = [], []
    for counts, chunk_markers in _marker_blocks(stream, _channel(marker_ch, "marker_ch"),
                                                channels, chunk_tags):
        rows.append(counts)
        markers.append(chunk_markers)
    counts = np.concatenate(rows) if rows else np.empty((0, len(channels)), dtype=np.int64)
    marker_times = np.concatenate(markers) if markers else EMPTY_TIMESTAMPS.copy()
    return MarkerCounts(counts, marker_times, channels)


def iter_counts_between_markers(
    stream: Any, marker_ch: int, channels: Sequence[int], *, chunk_tags: int | None = None
) -> Iterator[MarkerCounts]:
    """:func:`counts_between_markers` in bounded memory: yields, per chunk of the stream, the
    intervals that chunk closes, as a MarkerCounts whose ``marker_times`` are the markers
    opening those intervals (one per row). Concatenated, the rows are those of
    counts_between_markers. Arguments are checked before the first chunk is read."""
    channels = _counted_channels(marker_ch, channels)
    marker_ch = _channel(marker_ch, "marker_ch")

    def blocks() -> Iterator[MarkerCounts]:
        previous = None  # the marker opening the interval still being counted
        for counts, chunk_markers in _marker_blocks(stream, marker_ch, channels, chunk_tags):
            if not len(chunk_markers):
                continue
            opening = (chunk_markers[:-1] if previous is None
                       else np.concatenate(([previous], chunk_markers[:-1])))
            previous = chunk_markers[-1]
            if len(counts):
                yield MarkerCounts(counts, opening, channels)

    return blocks()


def _counted_channels(marker_ch: Any, channels: Any) -> tuple[int, ...]:
    marker_ch = _channel(marker_ch, "marker_ch")
    channels = [_channel(c, "channels") for c in channels]
    if not channels or len(set(channels)) != len(channels):
        raise ValueError(f"channels must be distinct detector ids, got {channels!r}")
    if marker_ch in channels:
        raise ValueError(f"marker_ch {marker_ch} is also a counted channel")
    return tuple(channels)


def _marker_blocks(stream, marker_ch, channels, chunk_tags):
    """Per chunk: (rows of the intervals the chunk closes, the chunk's marker times)."""
    channel_index = np.full(256, -1, dtype=np.int64)
    channel_index[list(channels)] = np.arange(len(channels))
    current = np.zeros(len(channels), dtype=np.int64)
    has_marker = False
    for ts, det in iter_stream_chunks(stream, chunk_tags):
        chunk_markers = ts[det == marker_ch]
        out_rows = np.empty((len(chunk_markers), len(channels)), dtype=np.int64)
        stored, has_marker = kernels.marker_counts_update(
            det, marker_ch, channel_index, current, has_marker, out_rows
        )
        yield out_rows[:stored], chunk_markers


# -- count rates --------------------------------------------------------------------------------
@dataclass(frozen=True)
class CountRates:
    """Tags and mean rate per channel.

    Attributes:
        counts: {channel: number of tags}.
        duration_s: seconds used for the rates.
        rates_hz: {channel: counts / duration_s}.
    """

    counts: dict[int, int]
    duration_s: float
    rates_hz: dict[int, float]


def count_rates(
    stream: Any,
    *,
    duration: float | None = None,
    timestamps_unit: float | None = None,
    chunk_tags: int | None = None,
) -> CountRates:
    """Mean count rate of every channel present in the stream.

    Args:
        duration: seconds; default the file's acquisition_duration, else the span from the
            first to the last tag (which needs ``timestamps_unit`` for in-memory arrays).
    """
    unit = stream_timestamps_unit(stream, timestamps_unit)
    totals = np.zeros(256, dtype=np.int64)
    first_time = last_time = None
    for ts, det in iter_stream_chunks(stream, chunk_tags):
        if first_time is None:
            first_time = int(ts[0])
        last_time = int(ts[-1])
        kernels.count_channels(det, totals)
    if duration is None:
        file_duration = getattr(stream, "acquisition_duration", None)
        if file_duration:
            duration = float(file_duration)
        elif first_time is not None:
            if unit is None:
                raise ValueError("count_rates needs timestamps_unit (or duration) for arrays")
            duration = (last_time - first_time) * unit
        else:
            duration = 0.0
    elif not duration > 0:
        raise ValueError(f"duration must be > 0 seconds, got {duration}")
    counts = {int(c): int(totals[c]) for c in np.flatnonzero(totals)}
    rates = {c: (n / duration if duration > 0 else math.nan) for c, n in counts.items()}
    return CountRates(counts, float(duration), rates)
