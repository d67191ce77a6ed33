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
