"""Compiled (numba) loops over one merged tag buffer; the streaming drivers live in algorithms.py.

All times are integers in timestamp units. Every kernel scans ``timestamps``/``detectors``
from index ``first`` on; indices before ``first`` are earlier tags carried over from the
previous chunk, which a kernel may look back into but does not process again.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.cpython.unsafe.numbers import trailing_zeros
from numba.extending import intrinsic

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


# -- correlation histogram ----------------------------------------------------------------------
# Per block of CORRELATION_BLOCK tags (it stays in L1/L2 cache):
#   1a. a vectorised pass over the timestamps (no compares, no branches): near bit 1 "the gap to
#       the previous tag is <= span/2", near bit 2 "the tag two before is within span/2 too";
#       the OR of all gaps is negative iff the block is out of time order;
#   1b. a vectorised pass over the detector bytes makes the flags: bit 1 "pairs with the tag
#       just before it" (the other channel, near), bit 2 "may pair with more than one earlier
#       tag" (a click or start tag with near bit 2: exact walk-back), bits 4/8 click/start tag;
#   2.  the flags are packed into 64-bit masks (8 flag bytes per multiply; channel counts by
#       the same trick) and only flagged tags are visited: bit-1-only tags add their single
#       pair directly, bit-2 tags walk back. No integer division: bins by float reciprocal
#       (exact, see _bin_index); rejected pairs go to a dump bin instead of a branch.
# A tag with a partner j < i within range is always flagged: j = i - 1 sets bit 1, and j <= i - 2
# implies t_i - t_(i-2) <= t_i - t_j, which sets bit 2. So the flags never miss a pair, and the
# bin arithmetic and walk-back decide exactly which pairs count.
CORRELATION_BLOCK = 4096


@intrinsic
def _prefetch(typingctx, array, index):
    """Ask the CPU to fetch the cache line of ``array[index]`` (a hint: no effect on results).

    The correlation kernel alternates streaming (pass 1) with compute (pass 2) per block, which
    stalls the hardware prefetcher; pass 2 prefetches the next block instead."""
    if not isinstance(array, types.Array) or not isinstance(index, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        pointer = builder.bitcast(builder.gep(data, [args[1]]), ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        function = builder.module.declare_intrinsic(  # name mangled for this llvmlite
            "llvm.prefetch", [pointer.type],
            ir.FunctionType(ir.VoidType(), [pointer.type, i32, i32, i32]))
        builder.call(function, [pointer, i32(0), i32(3), i32(1)])  # read, keep, data cache
        return context.get_dummy_value()

    return types.void(array, index), codegen


_BYTE_LSB = np.uint64(0x0101010101010101)
_GATHER_BITS = np.uint64(0x0102040810204080)  # (x & _BYTE_LSB) * this >> 56: bit k = byte k
# Float bins: with 0 <= x <= 2*span, (x + 0.5) / two_bw has a fractional part in
# [0.5/two_bw, 1 - 0.5/two_bw]; x + 0.5 is exact in a double and the two roundings of
# (x + 0.5) * (1 / two_bw) err by at most (n_bins + 1) * 2**-52 < 0.5 / two_bw when
# (n_bins + 1) * two_bw < 2**51, which span < 2**48 ensures: truncation gives floor exactly.
_FLOAT_BIN_LIMIT = 1 << 48


@njit(cache=True, nogil=True, inline="always")
def _bin_index(x, two_bw, inverse, span):
    """floor(x / two_bw) for 0 <= x <= 2*span, exact; a float multiply instead of a division
    (any value for other x: callers send those pairs to the dump bin)."""
    if span >= _FLOAT_BIN_LIMIT:
        return x // two_bw
    return np.int64((x + 0.5) * inverse)


@njit(cache=True, nogil=True)
def _correlation_near(t0, t1, t2, half, near):
    """Pass 1a on one block: ``t0`` the block's timestamps, ``t1``/``t2`` the same shifted by
    one and two tags. near = 1 if t0 - t1 <= half, + 2 if t0 - t2 <= half (sign-bit arithmetic,
    no compares). Returns True if some gap t0 - t1 is negative (time disorder)."""
    gaps = 0
    for i in range(t0.shape[0]):
        t = t0[i]
        gap = t - t1[i]
        gaps |= gap
        near1 = ((half - gap) >> 63) + 1
        near2 = ((half - (t - t2[i])) >> 63) + 1
        near[i] = np.uint8(near1 + 2 * near2)
    return gaps < 0


@njit(cache=True, nogil=True)
def _correlation_flags(d0, d1, ch_click, ch_start, near, flags):
    """Pass 1b on one block, on bytes (32 tags per vector op): ``d0``/``d1`` the block's
    detectors and the same shifted by one. Flag bits: 1 pair with the previous tag, 2 walk
    back, 4 click tag, 8 start tag."""
    c = np.uint8(ch_click)
    s = np.uint8(ch_start)
    one = np.uint8(1)
    two = np.uint8(2)
    for i in range(d0.shape[0]):
        dc = np.uint8(d0[i] == c)
        ds = np.uint8(d0[i] == s)
        ec = np.uint8(d1[i] == c)
        es = np.uint8(d1[i] == s)
        n = near[i]
        flags[i] = ((((dc & es) | (ds & ec)) & n & one) | (((dc | ds) << one) & n & two)
                    | (dc << two) | (ds << np.uint8(3)))


@njit(cache=True, nogil=True, inline="always")
def _correlation_walk(timestamps, detectors, i, ch_click, ch_start, n_bins, span, two_bw,
                      inverse, histogram):
    """Add every pair of tag i with an earlier tag into ``histogram`` (n_bins + 1 bins).

    Walks back while the earlier tag is within range; branch-free inside the range: a pair
    with a tag of the wrong channel goes to the dump bin n_bins. Pairs need 0 <= dt, so a
    thread walking back into another range's unordered tags (reported there) cannot write
    outside the histogram."""
    t = timestamps[i]
    d = detectors[i]
    auto = ch_click == ch_start
    if d != ch_click and d != ch_start:
        return
    # cross: later tag is the click: tau = +dt, range ends before +span/2 (2 dt < span);
    # later tag is the start: tau = -dt, range starts at -span/2 (2 dt <= span).
    # auto: -dt as for a later start, and +dt too when 2 dt < span.
    if d == ch_click and not auto:
        other, sign, limit = ch_start, 1, span - 1
    else:
        other, sign, limit = ch_click, -1, span
    j = i - 1
    while j >= 0:
        dt2 = 2 * (t - timestamps[j])
        if dt2 > limit:
            break
        ok = np.int64(detectors[j] == other) & np.int64(dt2 >= 0)
        k = _bin_index(span + sign * dt2, two_bw, inverse, span)
        histogram[k + (n_bins - k) * (ok ^ 1)] += 1
        if auto:
            k = _bin_index(span + dt2, two_bw, inverse, span)
            histogram[k + (n_bins - k) * ((ok & np.int64(dt2 < span)) ^ 1)] += 1
        j -= 1


_HISTOGRAM_COPIES = 4  # single pairs go to copy i % 4: increments of one bin do not queue


@njit(cache=True, nogil=True)
def _correlation_range(timestamps, detectors, lo, hi, ch_click, ch_start, binwidth, n_bins,
                       histogram, counts):
    """Process tags lo..hi-1 (see correlation_histogram) into ``histogram`` (n_bins + 1 bins,
    the last one a dump for rejected pairs). Returns the first disorder index or -1."""
    stride = n_bins + 1
    copies = np.zeros(_HISTOGRAM_COPIES * stride, dtype=np.int64)
    bad = _correlation_blocks(timestamps, detectors, lo, hi, ch_click, ch_start, binwidth,
                              n_bins, copies, counts)
    for c in range(_HISTOGRAM_COPIES):
        for b in range(stride):
            histogram[b] += copies[c * stride + b]
    return bad


@njit(cache=True, nogil=True)
def _correlation_blocks(timestamps, detectors, lo, hi, ch_click, ch_start, binwidth, n_bins,
                        copies, counts):
    """The body of _correlation_range; ``copies`` holds _HISTOGRAM_COPIES histograms of
    n_bins + 1 bins, back to back (walk-backs use the first)."""
    stride = n_bins + 1
    histogram = copies[:stride]
    span = n_bins * binwidth
    two_bw = 2 * binwidth
    inverse = 1.0 / two_bw
    half = span // 2
    auto = ch_click == ch_start
    # the first two tags of the buffer have no two predecessors: exact loop
    while lo < min(hi, 2):
        if lo > 0 and timestamps[lo] < timestamps[lo - 1]:
            return lo
        d = detectors[lo]
        counts[0] += d == ch_click
        counts[1] += d == ch_start
        _correlation_walk(timestamps, detectors, lo, ch_click, ch_start, n_bins, span, two_bw,
                          inverse, histogram)
        lo += 1
    near = np.empty(CORRELATION_BLOCK, dtype=np.uint8)
    flags = np.zeros(CORRELATION_BLOCK + 64, dtype=np.uint8)
    words = flags.view(np.uint64)
    for b0 in range(lo, hi, CORRELATION_BLOCK):
        b1 = min(b0 + CORRELATION_BLOCK, hi)
        m = b1 - b0
        if _correlation_near(timestamps[b0:b1], timestamps[b0 - 1:b1 - 1],
                             timestamps[b0 - 2:b1 - 2], half, near):
            bad = b0
            while timestamps[bad] >= timestamps[bad - 1]:
                bad += 1
            for i in range(b0, bad):  # the ordered part before the fault
                _correlation_walk(timestamps, detectors, i, ch_click, ch_start, n_bins, span,
                                  two_bw, inverse, histogram)
            return bad
        _correlation_flags(detectors[b0:b1], detectors[b0 - 1:b1 - 1], ch_click, ch_start,
                           near, flags)
        flags[m:m + 64] = 0
        for g in range((m + 63) // 64):
            ahead = b1 + 64 * g  # the next block's tags, one group of 64 per group here
            if ahead + 64 <= hi:
                for q in range(8):
                    _prefetch(timestamps, ahead + 8 * q)
                _prefetch(detectors, ahead)
            single = np.uint64(0)
            walk = np.uint64(0)
            n_click = np.uint64(0)
            n_start = np.uint64(0)
            for q in range(8):
                x = words[8 * g + q]
                shift = np.uint64(8 * q)
                single |= (((x & _BYTE_LSB) * _GATHER_BITS) >> np.uint64(56)) << shift
                walk |= ((((x >> np.uint64(1)) & _BYTE_LSB) * _GATHER_BITS)
                         >> np.uint64(56)) << shift
                n_click += ((x >> np.uint64(2)) & _BYTE_LSB) * _BYTE_LSB >> np.uint64(56)
                n_start += ((x >> np.uint64(3)) & _BYTE_LSB) * _BYTE_LSB >> np.uint64(56)
            counts[0] += n_click
            counts[1] += n_start
            single &= ~walk
            base = b0 + 64 * g
            while single:  # exactly one pair, with tag i - 1
                i = base + np.int64(trailing_zeros(single))
                single &= single - np.uint64(1)
                dt2 = 2 * (timestamps[i] - timestamps[i - 1])
                offset = (i & (_HISTOGRAM_COPIES - 1)) * stride
                # click later: tau = +dt, valid if 2 dt < span; start later: tau = -dt, valid
                # (2 dt <= span: near); auto-correlation: both. Rejected: the dump bin n_bins
                if auto:
                    copies[offset + _bin_index(span - dt2, two_bw, inverse, span)] += 1
                    k = _bin_index(span + dt2, two_bw, inverse, span)
                    copies[offset + k + (n_bins - k) * np.int64(dt2 >= span)] += 1
                else:
                    sign = 2 * np.int64(detectors[i] == ch_click) - 1
                    k = _bin_index(span + sign * dt2, two_bw, inverse, span)
                    copies[offset + k + (n_bins - k) * np.int64(sign * dt2 >= span)] += 1
            while walk:
                i = base + np.int64(trailing_zeros(walk))
                walk &= walk - np.uint64(1)
                _correlation_walk(timestamps, detectors, i, ch_click, ch_start, n_bins, span,
                                  two_bw, inverse, histogram)
    return -1


@njit(cache=True, nogil=True)
def correlation_histogram(timestamps, detectors, first, ch_click, ch_start, binwidth, n_bins,
                          histogram, counts):
    """Add tau = t_click - t_start of every click/start pair into ``histogram``.

    Bins: n_bins bins of ``binwidth`` covering [-n_bins*binwidth/2, +n_bins*binwidth/2),
    bin k = floor((2*tau + n_bins*binwidth) / (2*binwidth)). With ``ch_click == ch_start``
    each unordered pair of distinct tags adds both +|dt| and -|dt|. All tests use 2*dt so
    that they stay in int64 for odd n_bins * binwidth. ``histogram`` must have n_bins + 1
    entries: the last one is a dump bin (branch-free rejection), to be discarded.
    ``counts[0]``/``counts[1]`` get the number of click/start tags at index >= ``first``.

    Single pass that also checks time order: returns the index of the first tag earlier than
    its predecessor (histogram and counts are then incomplete), or -1.
    """
    return _correlation_range(timestamps, detectors, first, timestamps.shape[0], ch_click,
                              ch_start, binwidth, n_bins, histogram, counts)


@njit(cache=True, nogil=True)
def correlation_histogram_range(timestamps, detectors, lo, hi, ch_click, ch_start, binwidth,
                                n_bins, histogram, counts):
    """:func:`correlation_histogram` of the tags lo..hi-1 only (earlier tags: look-back).

    Releases the GIL, so that threads can process consecutive ranges of one buffer at once,
    each into its own ``histogram``/``counts``. Returns the first disorder index in the range
    (the gap into ``lo`` included) or -1.
    """
    return _correlation_range(timestamps, detectors, lo, hi, ch_click, ch_start, binwidth,
                              n_bins, histogram, counts)


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
