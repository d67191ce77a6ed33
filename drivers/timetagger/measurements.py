"""Live measurements computed from tag arrays (timestamps in ps, sorted; channel numbers).

Used by the simulated tagger for every measurement and by both backends for heralding-window
counts. All functions are pure and take ``timestamps_ps`` (int64, non-decreasing) and
``channels`` (int, same length).
"""

from __future__ import annotations

import numpy as np


def select(timestamps_ps: np.ndarray, channels: np.ndarray, channel: int) -> np.ndarray:
    """Timestamps (ps) of one channel."""
    return timestamps_ps[channels == channel]


def count_rates(timestamps_ps: np.ndarray, channels: np.ndarray, wanted: list[int],
                duration_ps: int) -> list[float]:
    """Mean count rate (Hz) of each wanted channel over ``duration_ps``."""
    if duration_ps <= 0:
        raise ValueError(f"duration must be > 0, got {duration_ps} ps")
    return [float(np.count_nonzero(channels == c)) / (duration_ps * 1e-12) for c in wanted]


def coincidence_tags(timestamps_ps: np.ndarray, channels: np.ndarray, members: list[int],
                     window_ps: int) -> np.ndarray:
    """Timestamps (ps) of coincidences: every member channel has a tag within ``window_ps``.

    A coincidence is stamped with its latest tag (Swabian's default). Scanning in time
    order, each tag closes a coincidence if the most recent tag of every other member lies
    within ``window_ps`` before it; the tags used are then consumed, so one tag contributes
    to at most one coincidence.
    """
    if len(members) < 2:
        raise ValueError(f"a coincidence needs >= 2 channels, got {members}")
    if window_ps < 0:
        raise ValueError(f"coincidence window must be >= 0, got {window_ps} ps")
    mask = np.isin(channels, members)
    ts, ch = timestamps_ps[mask], channels[mask]
    if len(members) == 2:
        # vectorised: consecutive tags of different members within the window, greedy
        a, b = members
        ok = (ch[1:] != ch[:-1]) & np.isin(ch[1:], (a, b)) & (np.diff(ts) <= window_ps)
        idx = np.flatnonzero(ok)
        out = []
        last_used = -1
        for i in idx:
            if i > last_used:
                out.append(ts[i + 1])
                last_used = i + 1
        return np.asarray(out, dtype=np.int64)
    last = {m: None for m in members}
    out = []
    for t, c in zip(ts.tolist(), ch.tolist(), strict=True):
        last[c] = t
        if all(v is not None and t - v <= window_ps for v in last.values()):
            out.append(t)
            last = {m: None for m in members}
    return np.asarray(out, dtype=np.int64)


class CoincidenceTracker:
    """:func:`coincidence_tags` of one virtual channel, computed block by block.

    Feeding the consecutive blocks of a time-ordered tag stream (each block later than the
    one before; ties in time ordered the same way as in the whole stream) returns, block by
    block, exactly the coincidences :func:`coincidence_tags` finds on the whole stream:
    the members' latest unconsumed tags are carried from block to block, so coincidences
    straddling a block boundary are found once, stamped with their latest tag.

    :param members: the member channels (>= 2, distinct).
    :param window_ps: the coincidence window (ps, >= 0).
    """

    def __init__(self, members: list[int], window_ps: int):
        if len(members) < 2 or len(set(members)) != len(members):
            raise ValueError(f"a coincidence needs >= 2 distinct channels, got {members}")
        if window_ps < 0:
            raise ValueError(f"coincidence window must be >= 0, got {window_ps} ps")
        self.members = list(members)
        self.window_ps = int(window_ps)
        # two members: the last member tag seen, if it is unconsumed (a one-tag tail)
        self._tail_t = np.empty(0, np.int64)
        self._tail_c = np.empty(0, np.int64)
        # more members: each member's latest unconsumed tag (ps) or None
        self._last: dict[int, int | None] = {m: None for m in self.members}

    def feed(self, timestamps_ps: np.ndarray, channels: np.ndarray) -> np.ndarray:
        """Coincidence timestamps (ps, int64) closed by the tags of this block."""
        mask = np.isin(channels, self.members)
        ts = np.asarray(timestamps_ps)[mask].astype(np.int64, copy=False)
        ch = np.asarray(channels)[mask].astype(np.int64, copy=False)
        if len(self.members) == 2:
            return self._feed_pair(ts, ch)
        out = []
        last, window = self._last, self.window_ps
        for t, c in zip(ts.tolist(), ch.tolist(), strict=True):
            last[c] = t
            if all(v is not None and t - v <= window for v in last.values()):
                out.append(t)
                for m in last:
                    last[m] = None
        return np.asarray(out, dtype=np.int64)

    def _feed_pair(self, ts: np.ndarray, ch: np.ndarray) -> np.ndarray:
        # A pair closes on consecutive tags of different members (the earlier one is the
        # other member's latest tag); greedy: a tag closes at most one pair. Only the
        # block's last tag can pair with a later block, and only if it is unconsumed.
        if len(self._tail_t):
            ts = np.concatenate([self._tail_t, ts])
            ch = np.concatenate([self._tail_c, ch])
        if not len(ts):
            return np.empty(0, np.int64)
        ok = (ch[1:] != ch[:-1]) & (ts[1:] - ts[:-1] <= self.window_ps)
        out = []
        used = -1
        for i in np.flatnonzero(ok).tolist():
            if i > used:
                out.append(i + 1)
                used = i + 1
        last = len(ts) - 1
        if used == last:
            self._tail_t, self._tail_c = ts[:0], ch[:0]
        else:
            self._tail_t, self._tail_c = ts[last:].copy(), ch[last:].copy()
        return ts[np.asarray(out, dtype=np.int64)]


def correlation(start_ps: np.ndarray, stop_ps: np.ndarray, bin_width_ps: int,
                n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Histogram of ``stop - start`` over all pairs, centred on zero delay.

    Bins span ``[-n_bins/2, n_bins/2) * bin_width_ps``; returns ``(bin_left_edges_ps,
    counts)``.
    """
    if bin_width_ps <= 0 or n_bins <= 0:
        raise ValueError(f"bin width and bin count must be > 0, got {bin_width_ps} ps, "
                         f"{n_bins}")
    lo_edge = -(n_bins // 2) * bin_width_ps
    hi_edge = lo_edge + n_bins * bin_width_ps
    counts = np.zeros(n_bins, dtype=np.int64)
    lo = np.searchsorted(stop_ps, start_ps + lo_edge, side="left")
    hi = np.searchsorted(stop_ps, start_ps + hi_edge, side="left")
    n_pairs = hi - lo
    total = int(n_pairs.sum())
    if total:
        owners = np.repeat(np.arange(len(start_ps)), n_pairs)
        offsets = np.arange(total) - np.repeat(np.cumsum(n_pairs) - n_pairs, n_pairs)
        delays = stop_ps[lo[owners] + offsets] - start_ps[owners]
        counts += np.bincount((delays - lo_edge) // bin_width_ps, minlength=n_bins)[:n_bins]
    edges = lo_edge + bin_width_ps * np.arange(n_bins, dtype=np.int64)
    return edges, counts


def window_counts(timestamps_ps: np.ndarray, channels: np.ndarray, wanted: list[int],
                  starts_ps: np.ndarray, length_ps: int) -> np.ndarray:
    """Counts of each wanted channel in each window ``[start, start + length)``: an int64
    array of shape ``(len(starts_ps), len(wanted))``."""
    if length_ps <= 0:
        raise ValueError(f"window length must be > 0, got {length_ps} ps")
    starts = np.asarray(starts_ps, dtype=np.int64)
    out = np.zeros((len(starts), len(wanted)), dtype=np.int64)
    for j, c in enumerate(wanted):
        t = select(timestamps_ps, channels, c)
        out[:, j] = (np.searchsorted(t, starts + length_ps, side="left")
                     - np.searchsorted(t, starts, side="left"))
    return out
