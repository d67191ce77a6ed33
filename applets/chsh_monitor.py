"""Running CHSH S and QBER with confidence bands, and the DI-QKD key rate they imply.

Datasets (analysis.schemas): ``bell.x``, ``bell.y`` (settings), ``bell.a``, ``bell.b``
(outcomes), optional ``bell.is_test`` (1 test round, 0 key round, whose settings are not
used; without it every round is a test round and there is no QBER). Estimates are
cumulative at up to ``POINTS`` equally spaced round counts: S and its standard error from
the test rounds (:func:`analysis.bell.chsh_value`), the QBER of the key rounds with its
Wilson interval (:func:`analysis.stats.wilson_interval`), both at one standard deviation, and the
asymptotic key rate (:func:`analysis.qkd.asymptotic_key_rate`, secret bits per key round)
with its band from (S - sigma, upper QBER) to (S + sigma, lower QBER).
Run: ``python -m applets.chsh_monitor RESULTS.h5`` (``--follow RESULTS_DIR``: live).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import QtWidgets

from analysis import bell, qkd, schemas, stats
from applets import _launch
from applets._widgets import (
    BLUE,
    GREEN,
    GREY,
    ORANGE,
    RED,
    AppletWidget,
    MissingData,
    dataset,
    reference_line,
)

DATASETS = (
    _launch.DatasetArg("x", schemas.BELL_ROUNDS[0], "setting of node A per round"),
    _launch.DatasetArg("y", schemas.BELL_ROUNDS[1], "setting of node B per round"),
    _launch.DatasetArg("a", schemas.BELL_ROUNDS[2], "outcome of node A per round"),
    _launch.DatasetArg("b", schemas.BELL_ROUNDS[3], "outcome of node B per round"),
    _launch.DatasetArg("is_test", schemas.BELL_IS_TEST, "1 test round, 0 key round"),
)

#: Number of cumulative estimates drawn.
POINTS = 100


@dataclass(frozen=True)
class ChshView:
    """Cumulative estimates after ``rounds[k]`` rounds (NaN where undefined): CHSH S with
    standard error, QBER with its (low, high) 1-sigma interval, asymptotic key rate (bits per
    key round) with its band; and the counts behind the last point."""

    rounds: np.ndarray
    chsh: np.ndarray
    chsh_err: np.ndarray
    qber: np.ndarray
    qber_low: np.ndarray
    qber_high: np.ndarray
    key_rate: np.ndarray
    key_rate_low: np.ndarray
    key_rate_high: np.ndarray
    test_rounds: int
    key_rounds: int


def _key_rate(s: float, q: float) -> float:
    if not (np.isfinite(s) and np.isfinite(q)):
        return np.nan
    return qkd.asymptotic_key_rate(min(max(s, 0.0), qkd.TSIRELSON), min(max(q, 0.0), 0.5))


def compute_view(x, y, a, b, is_test=None, points: int = POINTS) -> ChshView:
    """Cumulative S, QBER and key rate of the rounds (see the module documentation)."""
    arrays = [np.asarray(v).ravel() for v in (x, y, a, b)]
    n = arrays[0].size
    if n == 0:
        raise MissingData("no Bell rounds yet")
    sizes = {v.size for v in arrays}
    if len(sizes) != 1:
        raise ValueError(f"x, y, a, b must have equal lengths, got {[v.size for v in arrays]}")
    xs, ys, as_, bs = (v.astype(np.int64) for v in arrays)
    test = np.ones(n, dtype=bool) if is_test is None else np.asarray(is_test).ravel() != 0
    if test.size != n:
        raise ValueError(f"is_test has {test.size} entries for {n} rounds")
    # test rounds: settings and outcomes 0/1; key rounds: outcomes 0/1 (B's key setting
    # may be 2, analysis.schemas)
    bell.counts_from_rounds(xs[test], ys[test], as_[test], bs[test])
    if np.any((as_[~test] | bs[~test]) & ~1):
        raise ValueError("outcomes a and b must be 0 or 1")
    ends = np.unique(np.linspace(0, n, min(points, n) + 1).round().astype(np.int64)[1:])
    cell = ((xs * 2 + ys) * 2 + as_) * 2 + bs
    test_table = np.empty((ends.size, 16), dtype=np.int64)   # cumulative counts per cell
    for k in range(16):
        test_table[:, k] = np.cumsum((cell == k) & test)[ends - 1]
    key_err = np.cumsum((~test) & (as_ != bs))
    key_n = np.cumsum(~test)
    out = {k: np.full(ends.size, np.nan) for k in ("s", "se", "q", "ql", "qh", "r", "rl", "rh")}
    for i, end in enumerate(ends):
        table = test_table[i].reshape(2, 2, 2, 2)
        if np.all(table.sum(axis=(2, 3)) > 0):
            result = bell.chsh_value(table)
            out["s"][i], out["se"][i] = result.value, result.stderr
        nk = int(key_n[end - 1])
        if nk:
            errors = int(key_err[end - 1])
            out["q"][i] = errors / nk
            out["ql"][i], out["qh"][i] = stats.wilson_interval(errors, nk)
        out["r"][i] = _key_rate(out["s"][i], out["q"][i])
        out["rl"][i] = _key_rate(out["s"][i] - out["se"][i], out["qh"][i])
        out["rh"][i] = _key_rate(out["s"][i] + out["se"][i], out["ql"][i])
    return ChshView(ends, out["s"], out["se"], out["q"], out["ql"], out["qh"], out["r"],
                    out["rl"], out["rh"], int(np.count_nonzero(test)),
                    int(np.count_nonzero(~test)))


class _Band:
    """A line with a shaded band between two curves, in one plot."""

    def __init__(self, plot: pg.PlotWidget, colour: tuple[int, int, int], name: str) -> None:
        self.low = pg.PlotDataItem(pen=pg.mkPen(None))
        self.high = pg.PlotDataItem(pen=pg.mkPen(None))
        self.fill = pg.FillBetweenItem(self.low, self.high, brush=(*colour, 60))
        plot.addItem(self.fill)
        self.line = plot.plot(pen=pg.mkPen(colour, width=2), name=name)

    def set(self, x: np.ndarray, y: np.ndarray, low: np.ndarray, high: np.ndarray) -> None:
        ok = np.isfinite(y) & np.isfinite(low) & np.isfinite(high)
        self.low.setData(x[ok], low[ok])
        self.high.setData(x[ok], high[ok])
        self.line.setData(x[ok], y[ok])


class ChshMonitorWidget(AppletWidget):
    """Three plots against the number of rounds: S, QBER, key rate (each with its band)."""

    name = "CHSH and QBER"

    def __init__(self, args, req=None) -> None:
        super().__init__(args, req)
        self.summary = QtWidgets.QLabel()
        self.summary.setStyleSheet("font-size: 13pt")
        self.summary.setWordWrap(True)
        self.content.addWidget(self.summary)
        row = QtWidgets.QHBoxLayout()
        self.content.addLayout(row, stretch=1)
        self.chsh_plot = self.plot("CHSH S", "rounds", "S")
        self.qber_plot = self.plot("QBER (key rounds)", "rounds", "QBER")
        self.rate_plot = self.plot("Asymptotic key rate", "rounds", "bits / key round")
        for p in (self.chsh_plot, self.qber_plot, self.rate_plot):
            row.addWidget(p)
        self.classical_line = reference_line(2.0, RED, "classical bound")
        self.tsirelson_line = reference_line(qkd.TSIRELSON, GREY, "Tsirelson")
        self.chsh_plot.addItem(self.classical_line)
        self.chsh_plot.addItem(self.tsirelson_line)
        self.chsh_band = _Band(self.chsh_plot, BLUE, "S")
        self.qber_band = _Band(self.qber_plot, ORANGE, "QBER")
        self.rate_band = _Band(self.rate_plot, GREEN, "key rate")

    def compute(self, value: dict, metadata: dict) -> ChshView:
        rounds = [dataset(value, self.args, k) for k in ("x", "y", "a", "b")]
        sizes = {np.size(r) for r in rounds}
        if len(sizes) > 1:        # live: the four lists are appended one after another
            n = min(sizes)
            rounds = [np.asarray(r).ravel()[:n] for r in rounds]
        is_test = dataset(value, self.args, "is_test", required=False)
        if is_test is not None:
            n = min(np.size(rounds[0]), np.size(is_test))
            rounds = [np.asarray(r).ravel()[:n] for r in rounds]
            is_test = np.asarray(is_test).ravel()[:n]
        return compute_view(*rounds, is_test=is_test)

    def show_view(self, v: ChshView) -> None:
        self.chsh_band.set(v.rounds, v.chsh, v.chsh - v.chsh_err, v.chsh + v.chsh_err)
        self.qber_band.set(v.rounds, v.qber, v.qber_low, v.qber_high)
        self.rate_band.set(v.rounds, v.key_rate, v.key_rate_low, v.key_rate_high)
        s, se, q, r = v.chsh[-1], v.chsh_err[-1], v.qber[-1], v.key_rate[-1]
        sign = -1.0 if np.isfinite(s) and s < 0 else 1.0     # bounds on the side of the data
        self.classical_line.setValue(2.0 * sign)
        self.tsirelson_line.setValue(qkd.TSIRELSON * sign)
        text = (f"S = {s:.3f} \u00b1 {se:.3f}" if np.isfinite(s)
                else "S: waiting for every setting")
        if np.isfinite(q):
            text += (f"   QBER = {q:.4f} [{v.qber_low[-1]:.4f}, {v.qber_high[-1]:.4f}]"
                     f"   key rate {r:.4f} bits/key round "
                     f"(\u2248 {r * v.key_rounds:.0f} bits asymptotically)")
        else:
            text += "   no key rounds (no QBER)"
        self.summary.setText(text)
        self.status.setText(f"{v.rounds[-1]} rounds: {v.test_rounds} test, "
                            f"{v.key_rounds} key; bands: 1 standard deviation")


def main(argv: Sequence[str] | None = None) -> None:
    """Run the applet (see the module documentation for the command line)."""
    _launch.run(ChshMonitorWidget, DATASETS, __doc__, argv)


if __name__ == "__main__":
    main()
