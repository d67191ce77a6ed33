"""Continuous click records of the node's detectors (PMTs and station SNSPDs).

Each detector owns one :class:`ClickRecord`: the complete, time-ordered list of its output
pulses over the run, built once and read by every consumer (TTL gates, a time tagger).
Querying is non-consuming and idempotent: ``query(t0, t1)`` of an interval that is already
final returns the same edges however often and in whatever pieces it is asked for.

How the record grows (``finalise(until, segments)`` makes it final up to ``until``):

- *Rate-driven clicks* (dark counts, PMT fluorescence and stray light) form an
  inhomogeneous Poisson process of intensity ``dark_rate + segment rate``. It is sampled by
  time rescaling: the detector draws one fixed stream of unit-rate arrival "positions"
  (cumulative sums of Exp(1) gaps, in blocks) and a click sits where the integrated
  intensity crosses one. The clicks therefore do not depend on how the run is cut into
  finalisation intervals, gated or not.
- *Signal clicks* (photons resolved at the station) are added with :meth:`add_signal` at
  times not before the finalised horizon.
- Dead time (non-paralysable) is applied once, in time order, on the merged stream.

Memory is bounded: clicks older than ``retention_mu`` before the finalised horizon are
dropped; asking for them raises :class:`RecordExpired`.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

import numpy as np

EMPTY = np.empty(0, dtype=np.int64)
_BLOCK = 256


class RecordExpired(ValueError):
    """A query reaches back before the retained part of a click record."""


class ClickRecord:
    """The click record of one detector.

    :param name: detector name (for error messages).
    :param rng: the detector's own random stream (dark counts, fluorescence clicks).
    :param dark_rate_hz: rate of the always-present background (dark counts), 1/s.
    :param dead_time_mu: non-paralysable dead time in machine units (ns); 0 = none.
    :param retention_mu: how far behind the finalised horizon clicks are kept (mu).
    """

    def __init__(self, name: str, rng: np.random.Generator, dark_rate_hz: float,
                 dead_time_mu: int, retention_mu: int):
        if retention_mu <= 0:
            raise ValueError(f"retention of {name} must be > 0 mu, got {retention_mu}")
        self.name = name
        self._rng = rng
        self.dark_rate_hz = float(dark_rate_hz)
        self.dead_time_mu = int(dead_time_mu)
        self.retention_mu = int(retention_mu)
        #: clicks are final (complete) for t < final_until.
        self.final_until = 0
        #: clicks before this time have been dropped.
        self.kept_from = 0
        self._chunks: list[np.ndarray] = []
        self._chunk_last: list[int] = []
        self._pending: list[int] = []       # signal clicks at >= final_until, sorted
        self._last_click = -(1 << 62)
        # unit-rate arrival positions; _lam = integrated intensity consumed so far
        self._buf = np.empty(0)
        self._pos = 0
        self._lam = 0.0
        self._extend()
        self._next = float(self._buf[0])

    # ------------------------------------------------------------------ building
    def _extend(self, need: float = 0.0) -> None:
        """Append blocks of unit-rate arrivals reaching past ``need`` (integrated intensity
        beyond the cursor), rebasing positions to the cursor. Blocks are drawn in sequence,
        so the arrivals do not depend on how many are drawn at once."""
        rest = self._buf[self._pos:] - self._lam
        base = float(rest[-1]) if rest.size else 0.0
        blocks = max(int((need - base) / _BLOCK * 1.1) + 1, 1)
        block = base + np.cumsum(self._rng.exponential(1.0, _BLOCK * blocks))
        self._buf = np.concatenate([rest, block]) if rest.size else block
        self._pos = 0
        self._lam = 0.0

    def _arrivals(self, a: int, b: int, rate_hz: float) -> np.ndarray | None:
        """Rate-driven clicks in [a, b) for a constant total rate (1/s); None if none."""
        span = rate_hz * (b - a) * 1e-9
        lam_end = self._lam + span
        if lam_end <= self._next:
            self._lam = lam_end
            return None
        while self._buf[-1] <= lam_end:
            self._extend(span)
            lam_end = span   # positions were rebased to the current cursor
        k = int(np.searchsorted(self._buf, lam_end, side="left"))
        pos = self._buf[self._pos:k]
        times = a + np.floor((pos - self._lam) / rate_hz * 1e9).astype(np.int64)
        np.maximum(times, a, out=times)     # (np.clip, without its dtype checks)
        np.minimum(times, b - 1, out=times)
        self._pos = k
        self._lam = lam_end
        self._next = float(self._buf[k])
        return times

    def add_signal(self, times_mu: Iterable[int]) -> None:
        """Add signal clicks (before dead time); they must lie at or after the horizon."""
        for t in times_mu:
            t = int(t)
            if t < self.final_until:
                raise ValueError(f"{self.name}: signal click at {t} mu is before the "
                                 f"finalised horizon {self.final_until} mu")
            bisect.insort(self._pending, t)

    def finalise(self, until: int, segments: Iterable[tuple[int, int, float]] = ()) -> None:
        """Make the record final up to ``until`` (mu).

        :param segments: extra rate (1/s) on ``[start, end)`` pieces, sorted and not
            overlapping, covering at most ``[final_until, until)`` (e.g. fluorescence).
        """
        t0 = self.final_until
        if until <= t0:
            return
        if not segments and not self._pending and (
                self.dark_rate_hz <= 0 or self._lam + self.dark_rate_hz * (until - t0) * 1e-9
                <= self._next):
            # nothing in [t0, until) (``_arrivals`` would find no click): only the horizon
            if self.dark_rate_hz > 0:
                self._lam += self.dark_rate_hz * (until - t0) * 1e-9
            self.final_until = until
            if until - self.retention_mu > self.kept_from:
                self._prune()
            return
        parts = []
        dark = self.dark_rate_hz
        cursor = t0
        for s0, s1, rate in segments:
            s0, s1 = max(s0, cursor), min(s1, until)
            if s1 <= s0:
                continue
            if s0 > cursor and dark > 0:
                got = self._arrivals(cursor, s0, dark)
                if got is not None:
                    parts.append(got)
            total = dark + rate
            if total > 0:
                got = self._arrivals(s0, s1, total)
                if got is not None:
                    parts.append(got)
            cursor = s1
        if cursor < until and dark > 0:
            got = self._arrivals(cursor, until, dark)
            if got is not None:
                parts.append(got)
        pending = self._pending
        if pending and pending[0] < until:
            cut = bisect.bisect_left(pending, until)
            parts.append(np.array(pending[:cut], dtype=np.int64))
            del pending[:cut]
        self.final_until = until
        if parts:
            clicks = np.sort(np.concatenate(parts)) if len(parts) > 1 else parts[0]
            clicks = self._apply_dead_time(clicks)
            if clicks.size:
                self._chunks.append(clicks)
                self._chunk_last.append(int(clicks[-1]))
        self._prune()

    def _apply_dead_time(self, clicks: np.ndarray) -> np.ndarray:
        dead = self.dead_time_mu
        if dead <= 0:
            if clicks.size:
                self._last_click = int(clicks[-1])
            return clicks
        last = self._last_click
        if clicks.size == 1 or (np.all(np.diff(clicks) >= dead)):
            if clicks[0] - last >= dead:
                self._last_click = int(clicks[-1])
                return clicks
        keep = []
        for t in clicks.tolist():
            if t - last >= dead:
                keep.append(t)
                last = t
        self._last_click = last
        return np.array(keep, dtype=np.int64)

    def _prune(self) -> None:
        limit = self.final_until - self.retention_mu
        if limit <= self.kept_from:
            return
        n = bisect.bisect_left(self._chunk_last, limit)
        if n:
            del self._chunks[:n]
            del self._chunk_last[:n]
        self.kept_from = limit

    # ------------------------------------------------------------------ reading
    def query(self, t0: int, t1: int) -> np.ndarray:
        """Clicks (sorted int64, mu) in ``[t0, t1)``; ``t1`` must not exceed the horizon."""
        if t1 <= t0:
            return EMPTY
        if t1 > self.final_until:
            raise ValueError(f"{self.name}: clicks up to {t1} mu asked for, but the record "
                             f"is final only up to {self.final_until} mu")
        if t0 < self.kept_from:
            raise RecordExpired(
                f"{self.name}: clicks from {t0} mu asked for, but the record keeps only "
                f"{self.retention_mu * 1e-9:g} s of node time (from {self.kept_from} mu); "
                "read detectors more often or raise the retention")
        last = self._chunk_last
        i = bisect.bisect_left(last, t0)
        if i == len(last):
            return EMPTY
        out = []
        chunks = self._chunks
        while i < len(chunks):
            c = chunks[i]
            if c[0] >= t1:
                break
            lo = 0 if c[0] >= t0 else int(np.searchsorted(c, t0))
            hi = c.size if last[i] < t1 else int(np.searchsorted(c, t1))
            if hi > lo:
                out.append(c[lo:hi])
            i += 1
        if not out:
            return EMPTY
        return out[0].copy() if len(out) == 1 else np.concatenate(out)
