"""Streaming time-tag analyses against brute-force references, on random data split into chunks."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.timetags import (
    NO_DETECTION,
    UnorderedStreamError,
    arrival_histogram,
    coincidence_pairs,
    coincidences,
    correlation,
    count_rates,
    counts_between_markers,
    generate_tags,
    heralded_events,
    iter_counts_between_markers,
    iter_heralded_events,
)

CHANNELS = (0, 1, 2, 3)


@st.composite
def chunked_streams(draw):
    """A small ordered stream with many ties, and the same stream cut into arbitrary chunks."""
    n = draw(st.integers(0, 120))
    steps = draw(st.lists(st.one_of(st.just(0), st.integers(0, 15)), min_size=n, max_size=n))
    offset = draw(st.integers(-1000, 1000))
    timestamps = offset + np.cumsum(np.array(steps, dtype=np.int64))
    detectors = np.array(
        draw(st.lists(st.sampled_from(CHANNELS), min_size=n, max_size=n)), dtype=np.uint8
    )
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=6)))
    bounds = [0, *cuts, n]
    chunks = [
        (timestamps[a:b], detectors[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]
    return timestamps, detectors, chunks


def brute_coincidences(ts, det, a, b, window):
    close = np.abs(ts[:, None] - ts[None, :]) <= window
    if a == b:
        on = det == a
        pair = on[:, None] & on[None, :]
        return int(np.triu(pair & close, k=1).sum())
    pair = (det[:, None] == a) & (det[None, :] == b)
    return int((pair & close).sum())


def brute_correlation(ts, det, click, start, binwidth, n_bins):
    tau = ts[:, None] - ts[None, :]  # row: click tag, column: start tag
    pair = (det[:, None] == click) & (det[None, :] == start)
    np.fill_diagonal(pair, False)
    index = (2 * tau[pair] + n_bins * binwidth) // (2 * binwidth)
    index = index[(index >= 0) & (index < n_bins)]
    return np.bincount(index, minlength=n_bins)


settings.register_profile("timetags", max_examples=120, deadline=None)
settings.load_profile("timetags")


@given(chunked_streams(), st.sampled_from(CHANNELS), st.sampled_from(CHANNELS), st.integers(0, 30))
def test_coincidences_match_brute_force(stream, a, b, window):
    ts, det, chunks = stream
    expected = brute_coincidences(ts, det, a, b, window)
    assert coincidences((ts, det), a, b, window) == expected
    assert coincidences(chunks, a, b, window) == expected
    times_a, times_b = coincidence_pairs(chunks, a, b, window)
    assert len(times_a) == expected
    assert np.all(np.abs(times_a - times_b) <= window)
    whole_a, whole_b = coincidence_pairs((ts, det), a, b, window)
    assert sorted(zip(times_a, times_b, strict=True)) == sorted(zip(whole_a, whole_b, strict=True))


@given(
    chunked_streams(),
    st.sampled_from(CHANNELS),
    st.sampled_from(CHANNELS),
    st.integers(1, 7),
    st.integers(1, 9),
)
def test_correlation_matches_brute_force(stream, click, start, binwidth, n_bins):
    ts, det, chunks = stream
    expected = brute_correlation(ts, det, click, start, binwidth, n_bins)
    whole = correlation((ts, det), click, start, binwidth, n_bins, normalize=False)
    np.testing.assert_array_equal(whole.counts, expected)
    split = correlation(chunks, click, start, binwidth, n_bins)
    np.testing.assert_array_equal(split.counts, expected)
    assert split.n_click == int(np.sum(det == click))
    assert split.n_start == int(np.sum(det == start))


@given(
    chunked_streams(),
    st.integers(-20, 20),
    st.integers(1, 30),
    st.sampled_from([(1,), (2, 3), (3, 1)]),
)
def test_heralded_events_match_brute_force(stream, window_start, width, signals):
    ts, det, chunks = stream
    window_stop = window_start + width
    heralds = np.flatnonzero(det == 0)
    result = heralded_events(chunks, 0, signals, window_start, window_stop)
    np.testing.assert_array_equal(result.herald_times, ts[heralds])
    assert result.counts.shape == (len(heralds), len(signals))
    for row, h in enumerate(heralds):
        inside = (ts >= ts[h] + window_start) & (ts < ts[h] + window_stop)
        for column, s in enumerate(signals):
            hits = ts[inside & (det == s)]
            assert result.counts[row, column] == len(hits)
            expected_first = hits.min() if len(hits) else NO_DETECTION
            assert result.first_times[row, column] == expected_first
    whole = heralded_events((ts, det), 0, signals, window_start, window_stop)
    np.testing.assert_array_equal(whole.counts, result.counts)
    np.testing.assert_array_equal(whole.first_times, result.first_times)


def test_iter_heralded_events_streams_in_bounded_blocks():
    """The per-chunk blocks are, concatenated, heralded_events' rows; no block holds more
    heralds than its chunk (plus the carried tail) could complete; bad arguments are reported
    before any chunk is read."""
    ts, det = generate_tags(2e5, 0.05, channels=(0, 1, 2), seed=5, correlated_fraction=0.3,
                            correlation_delay_s=2e-9, correlation_jitter_s=1e-10)
    whole = heralded_events((ts, det), 0, (1, 2), -500, 3000)
    blocks = list(iter_heralded_events((ts, det), 0, (1, 2), -500, 3000, chunk_tags=1000))
    assert len(blocks) > 10
    assert max(len(b.herald_times) for b in blocks) <= 1000
    np.testing.assert_array_equal(np.concatenate([b.herald_times for b in blocks]),
                                  whole.herald_times)
    np.testing.assert_array_equal(np.concatenate([b.counts for b in blocks]), whole.counts)
    np.testing.assert_array_equal(np.concatenate([b.first_times for b in blocks]),
                                  whole.first_times)

    def never_read():
        raise AssertionError("stream read before the arguments were checked")
        yield

    with pytest.raises(ValueError, match="window_start"):
        iter_heralded_events(never_read(), 0, 1, 10, 5)


def test_iter_counts_between_markers_streams_in_blocks():
    """Blocks concatenate to counts_between_markers' rows, each row paired with the marker
    opening its interval; arguments are checked before any chunk is read."""
    ts, det = generate_tags([1e5, 3e5, 2e5], 0.05, channels=(0, 1, 2), seed=6)
    whole = counts_between_markers((ts, det), 0, (1, 2))
    blocks = list(iter_counts_between_markers((ts, det), 0, (1, 2), chunk_tags=777))
    assert len(blocks) > 10
    np.testing.assert_array_equal(np.concatenate([b.counts for b in blocks]), whole.counts)
    np.testing.assert_array_equal(np.concatenate([b.marker_times for b in blocks]),
                                  whole.marker_times[:-1])
    with pytest.raises(ValueError, match="marker_ch"):
        iter_counts_between_markers(iter(()), 1, (1, 2))


@given(chunked_streams(), st.integers(1, 6), st.integers(1, 12))
def test_arrival_histogram_matches_reference(stream, binwidth, n_bins):
    ts, det, chunks = stream
    expected = np.zeros(n_bins, dtype=np.int64)
    last = None
    for t, d in zip(ts, det, strict=True):
        if d == 3:
            last = t
        elif d == 1 and last is not None and t - last < n_bins * binwidth:
            expected[(t - last) // binwidth] += 1
    result = arrival_histogram(chunks, 3, 1, binwidth, n_bins)
    np.testing.assert_array_equal(result.counts, expected)
    np.testing.assert_array_equal(result.edges, np.arange(n_bins + 1) * binwidth)


@given(chunked_streams())
def test_counts_between_markers_matches_reference(stream):
    ts, det, chunks = stream
    markers = np.flatnonzero(det == 2)
    expected = [
        [int(np.sum(det[m0 + 1 : m1] == c)) for c in (0, 3)]
        for m0, m1 in zip(markers[:-1], markers[1:], strict=True)
    ]
    result = counts_between_markers(chunks, 2, [0, 3])
    np.testing.assert_array_equal(result.counts.reshape(-1, 2), np.array(expected).reshape(-1, 2))
    np.testing.assert_array_equal(result.marker_times, ts[markers])


@given(chunked_streams())
def test_count_rates_match_bincount(stream):
    ts, det, chunks = stream
    result = count_rates(chunks, duration=2.0)
    totals = np.bincount(det, minlength=4)
    assert result.counts == {c: int(totals[c]) for c in CHANNELS if totals[c]}
    assert result.rates_hz == {c: n / 2.0 for c, n in result.counts.items()}


def test_herald_window_waits_for_ties_in_the_next_chunk():
    # the window [0, 5) of the herald at 0 can still get a tag at 4 from the next chunk
    chunks = [
        (np.array([0, 4], dtype=np.int64), np.array([0, 2], dtype=np.uint8)),
        (np.array([4], dtype=np.int64), np.array([1], dtype=np.uint8)),
    ]
    result = heralded_events(chunks, 0, [1], 0, 5)
    np.testing.assert_array_equal(result.counts, [[1]])
    np.testing.assert_array_equal(result.first_times, [[4]])


def test_unordered_stream_is_rejected_across_chunks():
    chunks = [(np.array([5, 6], dtype=np.int64), np.zeros(2, np.uint8)),
              (np.array([4], dtype=np.int64), np.zeros(1, np.uint8))]
    with pytest.raises(UnorderedStreamError, match="tag 2: 6 then 4"):
        coincidences(chunks, 0, 1, 10)


def test_unordered_tag_deep_inside_a_chunk_is_found_by_the_fused_kernels():
    # coincidence and correlation kernels check order in their one pass: fault at tag 70
    ts = np.arange(100, dtype=np.int64) * 1000
    ts[70] = ts[69] - 1
    for function in (coincidences, coincidence_pairs):
        with pytest.raises(UnorderedStreamError, match="tag 70: 69000 then 68999"):
            function((ts, np.zeros(100, np.uint8)), 0, 1, 10, chunk_tags=40)
    # the correlation kernel checks order in its own pass too
    with pytest.raises(UnorderedStreamError, match="tag 70: 69000 then 68999"):
        correlation((ts, np.zeros(100, np.uint8)), 0, 1, 10, 4, chunk_tags=40)
    ts[70] = ts[69] - 5000  # far outside the histogram range as well
    with pytest.raises(UnorderedStreamError, match="tag 70"):
        correlation((ts, np.zeros(100, np.uint8)), 0, 0, 10, 4, chunk_tags=33)


def test_correlation_follows_swabian_conventions():
    """Swabian Time Tagger ``Correlation(tagger, channel_1, channel_2, binwidth, n_bins)``
    (Iterators.h of the Time Tagger software): channel_1 receives the (stop) clicks,
    channel_2 the reference (start) clicks, every tag is both start and stop, both signs of
    the time difference are histogrammed, and getDataNormalized is
    g2(tau) = Delta_t / (binwidth * N_1 * N_2) * histogram(tau)."""
    ts = np.array([0, 1_030, 5_000, 5_250], dtype=np.int64)
    det = np.array([0, 1, 0, 1], dtype=np.uint8)       # 0: start (channel_2), 1: click
    result = correlation((ts, det), 1, 0, 100, 30, duration=1e-6, timestamps_unit=1e-12)
    # click-start pairs: +1030, 1030 - 5000 (outside +-1500), +5250 (outside), +250;
    # 30 bins of 100 covering [-1500, 1500), half-open: +250 -> bin 17, +1030 -> bin 25
    assert result.counts.sum() == 2
    assert result.counts[17] == 1 and result.counts[25] == 1
    assert result.tau[17] == 250 and result.tau[25] == 1050     # bin centres
    np.testing.assert_allclose(result.g2[17], 1e6 / (100 * 2 * 2))
    # swapping the channels mirrors the histogram (tau -> -tau; no tau on a bin edge here)
    mirrored = correlation((ts, det), 0, 1, 100, 30, normalize=False)
    assert mirrored.counts[30 - 1 - 17] == 1 and mirrored.counts[30 - 1 - 25] == 1


def test_bad_arguments_are_named():
    stream = (np.arange(3, dtype=np.int64), np.zeros(3, np.uint8))
    with pytest.raises(ValueError, match="ch_a"):
        coincidences(stream, 256, 1, 3)
    with pytest.raises(TypeError, match="window"):
        coincidences(stream, 0, 1, 2.5)
    with pytest.raises(ValueError, match="window_start"):
        heralded_events(stream, 0, 1, 5, 5)
    with pytest.raises(ValueError, match="herald_ch"):
        heralded_events(stream, 0, [0, 1], 0, 5)
    with pytest.raises(ValueError, match="binwidth"):
        correlation(stream, 0, 1, 0, 10)
    with pytest.raises(ValueError, match="differ"):
        arrival_histogram(stream, 1, 1, 1, 10)
    with pytest.raises(TypeError, match="stream"):
        coincidences(42, 0, 1, 3)


# -- statistics on synthetic Poisson data (expectations derived below, 5-sigma tolerances) ----
UNIT = 1e-12


def test_accidental_coincidences_follow_poisson_expectation():
    rate, duration, window = 1e6, 0.05, 500  # Hz, s, ps
    ts, det = generate_tags(rate, duration, channels=(0, 1), seed=3)
    # pairs with |dt| <= window: (2*window + 1) time units of overlap for each pair of rates
    expected = (2 * window + 1) * UNIT * rate * rate * duration
    observed = coincidences((ts, det), 0, 1, window, chunk_tags=10_000)
    assert abs(observed - expected) < 5 * np.sqrt(expected)


def test_g2_of_independent_streams_is_one_and_peak_shows_correlation():
    rate, duration, fraction = 1e6, 0.1, 0.2
    delay_s, jitter_s = 2e-9, 30e-12
    ts, det = generate_tags(
        rate, duration, channels=(0, 1), seed=5, correlated_fraction=fraction,
        correlation_delay_s=delay_s, correlation_jitter_s=jitter_s,
    )
    binwidth, n_bins = 1000, 200  # 1 ns bins, +-100 ns
    result = correlation(
        (ts, det), 1, 0, binwidth, n_bins, duration=duration, timestamps_unit=UNIT,
        chunk_tags=50_000,
    )
    away = np.abs(result.tau) > 10 * binwidth
    # mean of g2 away from the peak: total accidental counts there ~ n_bins * 1e2, so the mean
    # has relative standard deviation 1/sqrt(total); 5 sigma
    total_away = result.counts[away].sum()
    assert abs(result.g2[away].mean() - 1) < 5 / np.sqrt(total_away)
    # the partners sit at +2 ns (bins centred at 1.5 and 2.5 ns share them): their number is
    # Binomial(N0, fraction), accidentals in those bins are subtracted using the flat level
    peak = (result.tau > 1000) & (result.tau < 3000)
    accidentals = result.counts[away].mean() * peak.sum()
    partners = result.counts[peak].sum() - accidentals
    n0 = result.n_start
    expected = fraction * n0
    sigma = np.sqrt(n0 * fraction * (1 - fraction) + 2 * accidentals)
    assert abs(partners - expected) < 5 * sigma


# -- correlation kernel: block, walk-back, parallel and edge paths ------------------------------
def pair_reference(ts, det, click, start, binwidth, n_bins):
    """Correlation histogram from every click/start pair found with searchsorted (no n^2 matrix,
    independent of the kernel's flags and walk-back)."""
    span = n_bins * binwidth
    click_index = np.flatnonzero(det == click)
    start_index = np.flatnonzero(det == start)
    t_click, t_start = ts[click_index], ts[start_index]
    lo = np.searchsorted(t_start, t_click - span // 2 - 1, side="left")
    hi = np.searchsorted(t_start, t_click + span // 2 + 1, side="right")
    per_click = hi - lo
    owner = np.repeat(np.arange(len(t_click)), per_click)
    partner = np.arange(per_click.sum()) - np.repeat(np.cumsum(per_click) - per_click, per_click)
    partner += np.repeat(lo, per_click)
    distinct = click_index[owner] != start_index[partner]
    tau = t_click[owner][distinct] - t_start[partner][distinct]
    index = (2 * tau + span) // (2 * binwidth)
    return np.bincount(index[(index >= 0) & (index < n_bins)], minlength=n_bins)


def dense_stream(seed, n, max_gap, channels=CHANNELS):
    """n ordered tags with gaps 0..max_gap (many ties and clusters) on random channels."""
    rng = np.random.default_rng(seed)
    ts = rng.integers(-500, 500) + np.cumsum(rng.integers(0, max_gap + 1, n))
    return ts.astype(np.int64), rng.choice(np.array(channels, dtype=np.uint8), n)


def test_pair_reference_matches_brute_force():
    ts, det = dense_stream(1, 300, 6)
    for click, start, binwidth, n_bins in ((1, 0, 3, 7), (2, 2, 4, 5), (0, 3, 1, 1)):
        np.testing.assert_array_equal(
            pair_reference(ts, det, click, start, binwidth, n_bins),
            brute_correlation(ts, det, click, start, binwidth, n_bins),
        )


@settings(max_examples=60)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(4200, 9000),
    st.sampled_from([2, 8, 40, 400]),
    st.sampled_from(CHANNELS),
    st.sampled_from(CHANNELS),
    st.integers(1, 9),
    st.integers(1, 12),
    st.integers(500, 5000),
)
def test_correlation_over_several_blocks_matches_reference(
    seed, n, max_gap, click, start, binwidth, n_bins, chunk
):
    # streams longer than kernels.CORRELATION_BLOCK: sparse (single pairs with the previous
    # tag) to dense (3+ earlier tags in range: walk-back), whole and chunked
    ts, det = dense_stream(seed, n, max_gap)
    expected = pair_reference(ts, det, click, start, binwidth, n_bins)
    whole = correlation((ts, det), click, start, binwidth, n_bins, normalize=False)
    np.testing.assert_array_equal(whole.counts, expected)
    assert whole.n_click == int(np.sum(det == click))
    assert whole.n_start == int(np.sum(det == start))
    split = correlation((ts, det), click, start, binwidth, n_bins, chunk_tags=chunk)
    np.testing.assert_array_equal(split.counts, expected)
    assert (split.n_click, split.n_start) == (whole.n_click, whole.n_start)


@pytest.mark.parametrize("n_segments", [1, 2, 3, 7])
@pytest.mark.parametrize("click, start", [(1, 0), (0, 1), (2, 2)])
def test_correlation_kernel_over_consecutive_ranges_matches_reference(n_segments, click, start):
    # the threaded path: consecutive ranges of one buffer, each into its own histogram, looking
    # back into the tags before its range
    from analysis.timetags import kernels

    ts, det = dense_stream(7, 30_000, 30)
    binwidth, n_bins = 5, 21  # odd span 105: range [-52.5, 52.5)
    expected = pair_reference(ts, det, click, start, binwidth, n_bins)
    for first in (0, 1, 2, 5000):  # tags before ``first`` are look-back only
        bounds = [first + (len(ts) - first) * k // n_segments for k in range(n_segments + 1)]
        histogram = np.zeros(n_bins + 1, dtype=np.int64)
        counts = np.zeros(2, dtype=np.int64)
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            part = np.zeros(n_bins + 1, dtype=np.int64)
            bad = kernels.correlation_histogram_range(
                ts, det, lo, hi, click, start, binwidth, n_bins, part, counts
            )
            assert bad == -1
            histogram += part
        only_late = expected - pair_reference(ts[:first], det[:first], click, start, binwidth,
                                              n_bins)
        np.testing.assert_array_equal(histogram[:n_bins], only_late)
        assert counts[0] == np.sum(det[first:] == click)
        assert counts[1] == np.sum(det[first:] == start)


def test_correlation_uses_threads_for_large_buffers(monkeypatch):
    from analysis.timetags import algorithms

    ts, det = dense_stream(3, 20_000, 50)
    expected = pair_reference(ts, det, 1, 0, 10, 30)
    monkeypatch.setattr(algorithms, "PARALLEL_MIN_TAGS", 1000)
    for threads in (1, 2, 3):
        monkeypatch.setattr(algorithms, "_threads", lambda n=threads: n)
        for chunk_tags in (None, 7000):
            result = correlation((ts, det), 1, 0, 10, 30, chunk_tags=chunk_tags)
            np.testing.assert_array_equal(result.counts, expected)
            assert result.n_click == int(np.sum(det == 1))
            assert result.n_start == int(np.sum(det == 0))


@pytest.mark.parametrize("binwidth, n_bins", [(4, 5), (3, 5), (1, 1), (2, 1)])
@pytest.mark.parametrize("between", [False, True])
def test_correlation_range_edges(binwidth, n_bins, between):
    # pairs at exactly -span/2 (first bin, included) and +span/2 (excluded), one unit inside
    # and outside; ``between`` puts a third tag between the two (walk-back path)
    span = n_bins * binwidth
    for tau in sorted({-(span // 2) - 1, -(span // 2), -(-span // 2), span // 2,
                       span // 2 + 1, -(span + 1) // 2, (span + 1) // 2}):
        t_click = 1000 + tau
        times, dets = [1000, t_click], [0, 1]
        if between:
            times.append((1000 + t_click) // 2)
            dets.append(3)
        order = np.argsort(times, kind="stable")
        ts = np.array(times, dtype=np.int64)[order]
        det = np.array(dets, dtype=np.uint8)[order]
        expected = brute_correlation(ts, det, 1, 0, binwidth, n_bins)
        inside = -span <= 2 * tau < span
        assert expected.sum() == int(inside)
        result = correlation((ts, det), 1, 0, binwidth, n_bins, normalize=False)
        np.testing.assert_array_equal(result.counts, expected)
        auto_det = np.where(det == 3, 3, 2).astype(np.uint8)
        auto = correlation((ts, auto_det), 2, 2, binwidth, n_bins, normalize=False)
        np.testing.assert_array_equal(auto.counts, brute_correlation(ts, auto_det, 2, 2,
                                                                     binwidth, n_bins))


@pytest.mark.parametrize("binwidth, n_bins", [(49, 6), (98, 5), (161, 3), (7, 4)])
@pytest.mark.parametrize("middle_tag", [False, True])
def test_correlation_bin_edges_are_exact(binwidth, n_bins, middle_tag):
    # one isolated start/click pair per tau, at every bin edge and one unit either side (for
    # binwidth 49, 98, 161 a plain float reciprocal puts exact multiples one bin too low)
    span = n_bins * binwidth
    edges = -(span // 2) + np.arange(n_bins + 1) * binwidth
    taus = np.unique(np.concatenate([edges - 1, edges, edges + 1]))
    times, dets = [], []
    for m, tau in enumerate(taus):
        base = 10 * span * (m + 1)
        pair = [(base, 0), (base + int(tau), 1)]
        if middle_tag:
            pair.append((base + int(tau) // 2, 3))
        for t, d in sorted(pair):
            times.append(t)
            dets.append(d)
    ts, det = np.array(times, dtype=np.int64), np.array(dets, dtype=np.uint8)
    expected = brute_correlation(ts, det, 1, 0, binwidth, n_bins)
    np.testing.assert_array_equal(
        correlation((ts, det), 1, 0, binwidth, n_bins, normalize=False).counts, expected
    )
    auto_det = np.where(det == 3, 3, 2).astype(np.uint8)
    np.testing.assert_array_equal(
        correlation((ts, auto_det), 2, 2, binwidth, n_bins, normalize=False).counts,
        brute_correlation(ts, auto_det, 2, 2, binwidth, n_bins),
    )


def test_correlation_with_huge_bins_uses_exact_integer_bins():
    # span >= 2**50: bins computed by integer division instead of the float reciprocal
    ts, det = dense_stream(11, 5000, 3)
    ts = ts * (1 << 40)
    binwidth, n_bins = 1 << 48, 7
    expected = brute_correlation(ts[:600], det[:600], 1, 2, binwidth, n_bins)
    result = correlation((ts[:600], det[:600]), 1, 2, binwidth, n_bins, normalize=False)
    np.testing.assert_array_equal(result.counts, expected)
    np.testing.assert_array_equal(
        correlation((ts, det), 1, 2, binwidth, n_bins, normalize=False).counts,
        pair_reference(ts, det, 1, 2, binwidth, n_bins),
    )


@pytest.mark.parametrize("chunk_tags", [None, 3000])
def test_unordered_tag_after_several_blocks_is_reported(chunk_tags, monkeypatch):
    from analysis.timetags import algorithms

    ts, det = dense_stream(5, 12_000, 10)
    ts[9001] = ts[9000] - 1
    with pytest.raises(UnorderedStreamError, match=f"tag 9001: {ts[9000]} then {ts[9001]}"):
        correlation((ts, det), 1, 0, 4, 9, chunk_tags=chunk_tags)
    monkeypatch.setattr(algorithms, "PARALLEL_MIN_TAGS", 1000)  # also from a later thread's range
    monkeypatch.setattr(algorithms, "_threads", lambda: 3)
    with pytest.raises(UnorderedStreamError, match="tag 9001"):
        correlation((ts, det), 1, 0, 4, 9, chunk_tags=chunk_tags)
