"""Compiled (numba) loops over one merged tag buffer; the streaming drivers live in algorithms.py.

All times are integers in timestamp units. Every kernel scans ``timestamps``/``detectors``
from index ``first`` on; indices before ``first`` are earlier tags carried over from the
previous chunk, which a kernel may look back into but does not process again.
"""

from __future__ import annotations

import numpy as np
from numba import njit

NO_DETECTION = np.iinfo(np.int64).min


@njit(cache=True, nogil=True)
def first_disorder(timestamps, previous_last):
    """Index of the first tag earlier than its predecessor (``previous_last`` before index 0).

    Returns -1 when the block is ordered.
    """
    last = previous_last
    for i in range(timestamps.shape[0]):
        t = timestamps[i]
        if t < last:
            return i
        last = t
    return -1


@njit(cache=True, nogil=True)
def count_channels(detectors, counts):
    """Add the number of tags of each detector id to ``counts`` (length 256)."""
    for i in range(detectors.shape[0]):
        counts[detectors[i]] += 1


COINCIDENCE_BLOCK = 32  # tags tested at once for "any gap <= window" (vectorised fast path)


@njit(cache=True, nogil=True)
def coincidence_scan(timestamps, detectors, first, ch_a, ch_b, window, store, out_a, out_b):
    """Count pairs (a, b) of distinct tags on ``ch_a``/``ch_b`` with |t_a - t_b| <= window.

    Single pass that also checks time order. Each pair is counted once, when its later tag (in
    stream order) is processed; with ``ch_a == ch_b`` unordered pairs of distinct tags on that
    channel are counted. With ``store`` each pair's (t_a, t_b) also goes into ``out_a``/
    ``out_b`` (which must hold the count; with ``ch_a == ch_b`` ``out_a`` gets the later tag).

    Fast path: a block of COINCIDENCE_BLOCK gaps is tested at once (a branch-free, vectorised
    loop); only blocks holding a gap <= window (or a negative gap) are walked tag by tag.
    Returns (pairs, index of the first tag earlier than its predecessor or -1); counting stops
    at that tag.
    """
    n = timestamps.shape[0]
    count = 0
    i = max(first, 1)
    while i < n:
        stop = min(i + COINCIDENCE_BLOCK, n)
        near = 0
        for k in range(i, stop):
            near += timestamps[k] - timestamps[k - 1] <= window
        if near:
            for k in range(i, stop):
                t = timestamps[k]
                gap = t - timestamps[k - 1]
                if gap > window:
                    continue
                if gap < 0:
                    return count, k
                d = detectors[k]
                if d == ch_a:
                    other = ch_b
                elif d == ch_b:
                    other = ch_a
                else:
                    continue
                j = k - 1
                while j >= 0 and t - timestamps[j] <= window:
                    if detectors[j] == other:
                        if store:
                            if d == ch_a:
                                out_a[count] = t
                                out_b[count] = timestamps[j]
                            else:
                                out_a[count] = timestamps[j]
                                out_b[count] = t
                        count += 1
                    j -= 1
        i = stop
    return count, -1


@njit(cache=True, nogil=True)
def correlation_histogram(timestamps, detectors, first, ch_click, ch_start, binwidth, n_bins,
                          histogram):
    """Add tau = t_click - t_start of every click/start pair into ``histogram``.

    Bins: n_bins bins of ``binwidth`` covering [-n_bins*binwidth/2, +n_bins*binwidth/2),
    bin k = floor((2*tau + n_bins*binwidth) / (2*binwidth)). With ``ch_click == ch_start``
    each unordered pair of distinct tags adds both +|dt| and -|dt|. All tests use 2*dt so
    that they stay in int64 for odd n_bins * binwidth.

    Single pass that also checks time order: returns the index of the first tag earlier than
    its predecessor (the histogram then holds the pairs before it), or -1.
    """
    span = n_bins * binwidth
    two_bw = 2 * binwidth
    n = timestamps.shape[0]
    if first >= n:
        return -1
    prev = timestamps[first - 1] if first > 0 else timestamps[0]
    auto = ch_click == ch_start
    for i in range(first, n):
        t = timestamps[i]
        gap = t - prev
        prev = t
        if 2 * gap > span:
            continue
        if gap < 0:
            return i
        d = detectors[i]
        if auto:
            if d != ch_click:
                continue
            j = i - 1
            while j >= 0:
                dt2 = 2 * (t - timestamps[j])
                if dt2 > span:
                    break
                if detectors[j] == ch_click:
                    histogram[(span - dt2) // two_bw] += 1
                    if dt2 < span:
                        histogram[(span + dt2) // two_bw] += 1
                j -= 1
        elif d == ch_click or d == ch_start:
            # later tag is the click: tau = +dt, range ends before +span/2 (2 dt < span);
            # later tag is the start: tau = -dt, range starts at -span/2 (2 dt <= span)
            if d == ch_click:
                other, sign, limit = ch_start, 1, span - 1
            else:
                other, sign, limit = ch_click, -1, span
            j = i - 1
            while j >= 0:
                dt2 = 2 * (t - timestamps[j])
                if dt2 > limit:
                    break
                if detectors[j] == other:
                    histogram[(span + sign * dt2) // two_bw] += 1
                j -= 1
    return -1


@njit(cache=True, nogil=True)
def heralded_windows(timestamps, detectors, first, herald_ch, signal_index, window_start,
                     window_stop, final, out_herald, out_counts, out_first):
    """Evaluate the detection window [t_h + start, t_h + stop) of each herald tag.

    Heralds at index >= ``first`` are processed in order until one whose window may still
    receive tags from later chunks (t_h + stop > last timestamp of the buffer), unless
    ``final``. ``signal_index[channel]`` is the output column of a signal channel or -1.
    Returns (number of heralds evaluated, buffer index of the first herald not evaluated).
    """
    n = timestamps.shape[0]
    if n == 0:
        return 0, first
    last_time = timestamps[n - 1]
    n_signal = out_counts.shape[1]
    lo = 0
    done = 0
    for h in range(first, n):
        if detectors[h] != herald_ch:
            continue
        t_h = timestamps[h]
        if not final and t_h + window_stop > last_time:
            return done, h
        lo_time = t_h + window_start
        while lo < n and timestamps[lo] < lo_time:
            lo += 1
        hi_time = t_h + window_stop
        out_herald[done] = t_h
        for s in range(n_signal):
            out_counts[done, s] = 0
            out_first[done, s] = NO_DETECTION
        j = lo
        while j < n and timestamps[j] < hi_time:
            s = signal_index[detectors[j]]
            if s >= 0:
                if out_counts[done, s] == 0:
                    out_first[done, s] = timestamps[j]
                out_counts[done, s] += 1
            j += 1
        done += 1
    return done, n


@njit(cache=True, nogil=True)
def arrival_histogram_update(timestamps, detectors, trigger_ch, ch, binwidth, n_bins,
                             histogram, last_trigger, has_trigger):
    """Histogram t - t_last_trigger of tags on ``ch`` in [0, n_bins*binwidth).

    The trigger state (``last_trigger``, ``has_trigger``) is carried between chunks and the
    updated state returned.
    """
    span = n_bins * binwidth
    for i in range(timestamps.shape[0]):
        d = detectors[i]
        if d == trigger_ch:
            last_trigger = timestamps[i]
            has_trigger = True
        elif d == ch and has_trigger:
            dt = timestamps[i] - last_trigger
            if dt < span:
                histogram[dt // binwidth] += 1
    return last_trigger, has_trigger


@njit(cache=True, nogil=True)
def marker_counts_update(detectors, marker_ch, channel_index, current, has_marker, out_rows):
    """Count tags per channel between consecutive markers.

    ``current`` holds the counts since the last marker (carried between chunks);
    each marker after the first closes one interval, stored as a row of ``out_rows``.
    Returns (rows stored, has_marker).
    """
    rows = 0
    n_channels = current.shape[0]
    for i in range(detectors.shape[0]):
        d = detectors[i]
        if d == marker_ch:
            if has_marker:
                for c in range(n_channels):
                    out_rows[rows, c] = current[c]
                rows += 1
            for c in range(n_channels):
                current[c] = 0
            has_marker = True
        elif has_marker:
            c = channel_index[d]
            if c >= 0:
                current[c] += 1
    return rows, has_marker
