"""Heralding monitor: attempts, heralds per second, mean generation time, its ratio to the
memory decoherence rate (rate x T2), and the estimated fidelity, with their history.

Datasets (analysis.schemas): totals ``heralding.attempts``, ``heralding.heralds``,
``heralding.duration_s`` (node time), ``heralding.memory_t2_s`` and the experiment's
``heralding.fidelity`` (+ ``_stderr``), all optional but the first three. The rate history
comes from the first of these that exists:

1. reports: ``heralding.history.time_s`` / ``.attempts`` / ``.heralds`` (cumulative at each
   report), rates per interval between reports;
2. herald attempts: ``heralding.herald_attempts`` (the attempt number of each herald),
   heralds counted in equal bins of attempts, each attempt taking the run's mean node time
   per attempt (duration / attempts), so the history agrees with the totals;
3. herald times: ``heralding.herald_times_mu`` (RTIO time, ``heralding.ref_period_s`` s per
   mu), heralds counted in equal bins of RTIO time between the first and the last herald
   (RTIO time also runs while the host works between kernels);
4. live: the totals as they are broadcast, one point per change (the applet keeps them;
   a smaller duration than the last one starts a new history).

Error bars are Poisson (sqrt of the heralds in the interval). The running fidelity is
recomputed from the heralded measurements (``heralding.basis_a``/``basis_b``, ``outcome_a``/
``outcome_b_corrected``) after every twentieth of the heralds: linear-inversion tomography
(:func:`analysis.tomography.linear_inversion`) and the fidelity to the closest
(|01> + e^{i phi}|10>)/sqrt2, (rho_01,01 + rho_10,10)/2 + |rho_01,10|.
Run: ``python -m applets.heralding_monitor RESULTS.h5`` (``--follow RESULTS_DIR``: live).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import QtWidgets

from analysis import schemas, stats, tomography
from applets import _launch
from applets._widgets import (
    BLUE,
    GREEN,
    GREY,
    ORANGE,
    AppletWidget,
    MissingData,
    dataset,
    format_si,
    reference_line,
)

DATASETS = (
    _launch.DatasetArg("attempts", schemas.HERALDING_ATTEMPTS, "total attempts"),
    _launch.DatasetArg("heralds", schemas.HERALDING_HERALDS, "total heralds"),
    _launch.DatasetArg("duration", schemas.HERALDING_DURATION, "node time of the run (s)"),
    _launch.DatasetArg("t2", schemas.HERALDING_T2, "memory coherence time T2 (s)"),
    _launch.DatasetArg("fidelity", schemas.HERALDING_FIDELITY, "estimated fidelity"),
    _launch.DatasetArg("fidelity_stderr", schemas.HERALDING_FIDELITY_STDERR,
                       "standard error of the fidelity"),
    _launch.DatasetArg("history_time", schemas.HERALDING_HISTORY_TIME,
                       "report times (s since the run's start)"),
    _launch.DatasetArg("history_attempts", schemas.HERALDING_HISTORY_ATTEMPTS,
                       "cumulative attempts at each report"),
    _launch.DatasetArg("history_heralds", schemas.HERALDING_HISTORY_HERALDS,
                       "cumulative heralds at each report"),
    _launch.DatasetArg("herald_attempts", schemas.HERALDING_HERALD_ATTEMPTS,
                       "attempt number of each herald"),
    _launch.DatasetArg("herald_times", schemas.HERALDING_TIMES, "herald times (mu)"),
    _launch.DatasetArg("ref_period", schemas.HERALDING_REF_PERIOD, "seconds per mu"),
    _launch.DatasetArg("basis_a", schemas.HERALDING_BASES[0], "basis of A per herald"),
    _launch.DatasetArg("basis_b", schemas.HERALDING_BASES[1], "basis of B per herald"),
    _launch.DatasetArg("outcome_a", schemas.HERALDING_OUTCOMES[0], "outcome of A per herald"),
    _launch.DatasetArg("outcome_b", schemas.HERALDING_OUTCOMES[1], "outcome of B per herald"),
)

#: Running-fidelity points (chunks of the heralds).
FIDELITY_POINTS = 20
#: Most bins of the herald-time history.
MAX_TIME_BINS = 40


@dataclass(frozen=True)
class History:
    """Rates per interval at the interval midpoints ``t_s`` (s): heralds/s with Poisson
    error, mean generation time (s, NaN without heralds); ``source`` says where from."""

    source: str
    t_s: np.ndarray
    rate_hz: np.ndarray
    rate_err_hz: np.ndarray
    generation_time_s: np.ndarray

    @staticmethod
    def empty() -> History:
        z = np.zeros(0)
        return History("none", z, z, z, z)


@dataclass(frozen=True)
class HeraldingView:
    """Totals (rates in Hz, times in s; ratio = rate x T2, NaN without T2), the rate
    history and its ratio to the decoherence rate, and the running fidelity (after
    ``fidelity_heralds[k]`` heralds)."""

    attempts: int
    heralds: int
    duration_s: float
    success_probability: float
    success_interval: tuple[float, float]
    herald_rate_hz: float
    herald_rate_err_hz: float
    mean_generation_time_s: float
    t2_s: float | None
    rate_over_decoherence: float
    fidelity: float | None
    fidelity_stderr: float | None
    history: History
    ratio: np.ndarray
    fidelity_heralds: np.ndarray
    fidelity_history: np.ndarray


def _rates(source: str, edges_s: np.ndarray, counts: np.ndarray) -> History:
    dt = np.diff(edges_s)
    counts = counts.astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        generation = np.where(counts > 0, dt / np.where(counts > 0, counts, 1.0), np.nan)
    return History(source, 0.5 * (edges_s[1:] + edges_s[:-1]), counts / dt,
                   np.sqrt(counts) / dt, generation)


def history_from_reports(time_s, heralds, attempts=None) -> History:
    """Rates between reports from cumulative heralds at report times (s since the start;
    the start, t = 0 with nothing counted, is added when the first report is later)."""
    t = np.asarray(time_s, dtype=float).ravel()
    h = np.asarray(heralds, dtype=float).ravel()
    a = h if attempts is None else np.asarray(attempts, dtype=float).ravel()
    if not t.size == a.size == h.size:
        raise ValueError(f"history lengths differ: time {t.size}, attempts {a.size}, "
                         f"heralds {h.size}")
    if np.any(np.diff(t) <= 0) or np.any(np.diff(h) < 0) or np.any(np.diff(a) < 0):
        raise ValueError("history must have increasing times and non-decreasing "
                         "cumulative attempts and heralds")
    if t.size and t[0] > 0:
        t, h = np.concatenate(([0.0], t)), np.concatenate(([0.0], h))
    return _rates("reports", t, np.diff(h)) if t.size > 1 else History.empty()


def _bins(n: int) -> int:
    return int(np.clip(np.sqrt(n), 2, MAX_TIME_BINS))


def history_from_herald_attempts(herald_attempts, attempts: int,
                                 duration_s: float) -> History:
    """Heralds per equal bin of attempt numbers 0..attempts, on a node-time axis of
    duration / attempts per attempt (s); sqrt(N) bins, at most MAX_TIME_BINS."""
    k = np.asarray(herald_attempts, dtype=np.int64).ravel()
    if k.size < 3:
        return History.empty()
    if np.any((k < 0) | (k >= attempts)):
        raise ValueError(f"herald attempt numbers must lie in [0, attempts = {attempts})")
    counts, edges = np.histogram(k, bins=_bins(k.size), range=(0, attempts))
    return _rates("herald attempts", edges * (duration_s / attempts), counts)


def history_from_herald_times(times_mu, ref_period_s: float | None = None) -> History:
    """Heralds per equal bin of RTIO time from the first to the last herald (s since the
    first herald); sqrt(N) bins, at most MAX_TIME_BINS."""
    period = schemas.DEFAULT_REF_PERIOD_S if ref_period_s is None else float(ref_period_s)
    if not period > 0:
        raise ValueError(f"ref period must be > 0 s, got {period}")
    t = np.sort(np.asarray(times_mu, dtype=np.int64).ravel())
    if t.size < 3 or t[-1] == t[0]:
        return History.empty()
    seconds = (t - t[0]) * period
    counts, edges = np.histogram(seconds, bins=_bins(t.size), range=(0.0, seconds[-1]))
    return _rates("herald times", edges, counts)


def max_phase_fidelity(rho: np.ndarray) -> float:
    """Fidelity of a two-qubit state to the closest (|01> + e^{i phi}|10>)/sqrt2."""
    return float(np.real(rho[1, 1] + rho[2, 2]) / 2 + abs(rho[1, 2]))


def running_fidelity(basis_a, basis_b, outcome_a, outcome_b,
                     points: int = FIDELITY_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """(heralds used, fidelity) after each of ``points`` equal chunks of the heralds, from
    linear-inversion tomography; chunks before all nine basis pairs are seen are left out."""
    arrays = [np.asarray(v).ravel().astype(np.int64)
              for v in (basis_a, basis_b, outcome_a, outcome_b)]
    n = min(v.size for v in arrays)
    ba, bb, a, b = (v[:n] for v in arrays)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    if np.any((ba < 0) | (ba > 2) | (bb < 0) | (bb > 2)):
        raise ValueError("bases must be 0 (X), 1 (Y) or 2 (Z)")
    if np.any((a < 0) | (a > 1) | (b < 0) | (b > 1)):
        raise ValueError("outcomes must be 0 or 1")
    cell = (ba * 3 + bb) * 4 + 2 * a + b
    ends = np.unique(np.linspace(0, n, min(points, n) + 1).round().astype(np.int64)[1:])
    used, fidelity = [], []
    for end in ends:
        counts = np.bincount(cell[:end], minlength=36).reshape(3, 3, 4)
        if np.all(counts.sum(axis=2) > 0):
            used.append(int(end))
            fidelity.append(max_phase_fidelity(tomography.linear_inversion(counts)))
    return np.array(used, dtype=np.int64), np.array(fidelity)


def compute_view(attempts, heralds, duration_s, t2_s=None, fidelity=None,
                 fidelity_stderr=None, history: History | None = None,
                 fidelity_points: tuple[np.ndarray, np.ndarray] | None = None) -> HeraldingView:
    """Figures of a heralding run from its totals, a rate history and running fidelity."""
    attempts, heralds, duration = int(attempts), int(heralds), float(duration_s)
    if attempts < 1 or not 0 <= heralds <= attempts:
        raise ValueError(f"need attempts >= 1 and 0 <= heralds <= attempts, got "
                         f"attempts={attempts}, heralds={heralds}")
    if not duration > 0:
        raise ValueError(f"duration must be > 0 s, got {duration}")
    t2 = None if t2_s is None else float(t2_s)
    if t2 is not None and not t2 > 0:
        raise ValueError(f"memory T2 must be > 0 s, got {t2}")
    history = History.empty() if history is None else history
    rate = heralds / duration
    ratio = history.rate_hz * t2 if t2 is not None else np.full(history.rate_hz.shape, np.nan)
    used, fid = (np.zeros(0, dtype=np.int64), np.zeros(0)) if fidelity_points is None \
        else fidelity_points
    return HeraldingView(
        attempts, heralds, duration, heralds / attempts,
        stats.wilson_interval(heralds, attempts), rate, np.sqrt(heralds) / duration,
        duration / heralds if heralds else np.nan, t2,
        rate * t2 if t2 is not None else np.nan,
        None if fidelity is None else float(fidelity),
        None if fidelity_stderr is None else float(fidelity_stderr), history, ratio, used, fid)


class HeraldingMonitorWidget(AppletWidget):
    """Four history plots (herald rate, generation time, rate x T2, fidelity) + totals."""

    name = "Heralding monitor"

    def __init__(self, args, req=None) -> None:
        super().__init__(args, req)
        self.totals = QtWidgets.QLabel()
        self.totals.setStyleSheet("font-size: 13pt")
        self.totals.setWordWrap(True)
        self.content.addWidget(self.totals)
        grid = QtWidgets.QGridLayout()
        self.content.addLayout(grid, stretch=1)
        self.rate_plot = self.plot("Heralds per second", "time", "rate", "s", "Hz")
        self.time_plot = self.plot("Mean generation time", "time", "time", "s", "s")
        self.ratio_plot = self.plot("Rate \u00d7 T2 (generation / decoherence)", "time",
                                    "ratio", "s")
        self.fidelity_plot = self.plot("Running fidelity (linear inversion)", "heralds",
                                       "fidelity")
        for i, p in enumerate((self.rate_plot, self.time_plot, self.ratio_plot,
                               self.fidelity_plot)):
            grid.addWidget(p, i // 2, i % 2)
        self.rate_curve = self.rate_plot.plot(pen=pg.mkPen(BLUE, width=2), symbol="o",
                                              symbolSize=5, symbolBrush=BLUE)
        self.rate_errors = pg.ErrorBarItem(x=np.zeros(0), y=np.zeros(0), height=np.zeros(0),
                                           pen=pg.mkPen(BLUE))
        self.rate_plot.addItem(self.rate_errors)
        self.mean_rate_line = reference_line(0.0, GREY, "run mean")
        self.rate_plot.addItem(self.mean_rate_line)
        self.time_curve = self.time_plot.plot(pen=pg.mkPen(ORANGE, width=2), symbol="o",
                                              symbolSize=5, symbolBrush=ORANGE)
        self.ratio_curve = self.ratio_plot.plot(pen=pg.mkPen(GREEN, width=2), symbol="o",
                                                symbolSize=5, symbolBrush=GREEN)
        self.ratio_plot.addItem(reference_line(1.0, GREY, "1"))
        self.fidelity_curve = self.fidelity_plot.plot(pen=pg.mkPen(BLUE, width=2), symbol="o",
                                                      symbolSize=5, symbolBrush=BLUE)
        self.fidelity_plot.addItem(reference_line(0.5, GREY, "0.5"))
        #: (duration, heralds) of each broadcast change, for the live history.
        self.live: list[tuple[float, int]] = []

    def _live_history(self, duration: float, heralds: int) -> History:
        if self.live and duration < self.live[-1][0]:
            self.live = []                                   # a new run started
        if not self.live or duration > self.live[-1][0]:
            self.live.append((duration, heralds))
        t, h = (np.array(v) for v in zip(*self.live, strict=True))
        if np.any(np.diff(h) < 0):
            self.live = [self.live[-1]]
            return History.empty()
        return replace(history_from_reports(t, h), source="live")

    def compute(self, value: dict, metadata: dict) -> HeraldingView:
        get = lambda name: dataset(value, self.args, name, required=False)  # noqa: E731
        attempts, heralds, duration = get("attempts"), get("heralds"), get("duration")
        for name, v in (("attempts", attempts), ("heralds", heralds), ("duration", duration)):
            if v is None:
                raise MissingData(f"waiting for dataset {getattr(self.args, name)}")
        if get("history_time") is not None and get("history_heralds") is not None:
            history = history_from_reports(get("history_time"), get("history_heralds"),
                                           get("history_attempts"))
        elif get("herald_attempts") is not None and np.size(get("herald_attempts")) > 2:
            history = history_from_herald_attempts(get("herald_attempts"), int(attempts),
                                                   float(duration))
        elif get("herald_times") is not None and np.size(get("herald_times")) > 2:
            history = history_from_herald_times(get("herald_times"), get("ref_period"))
        else:
            history = self._live_history(float(duration), int(heralds))
        measured = [get(k) for k in ("basis_a", "basis_b", "outcome_a", "outcome_b")]
        points = None if any(m is None for m in measured) else running_fidelity(*measured)
        return compute_view(attempts, heralds, duration, get("t2"), get("fidelity"),
                            get("fidelity_stderr"), history, points)

    def show_view(self, v: HeraldingView) -> None:
        h = v.history
        self.rate_curve.setData(h.t_s, h.rate_hz)
        self.rate_errors.setData(x=h.t_s, y=h.rate_hz, height=2 * h.rate_err_hz)
        self.mean_rate_line.setValue(v.herald_rate_hz)
        finite = np.isfinite(h.generation_time_s)
        self.time_curve.setData(h.t_s[finite], h.generation_time_s[finite])
        if v.t2_s is None:
            self.ratio_curve.setData([], [])
        else:
            self.ratio_curve.setData(h.t_s, v.ratio)
        self.ratio_plot.setVisible(v.t2_s is not None)
        self.fidelity_curve.setData(v.fidelity_heralds, v.fidelity_history)
        low, high = v.success_interval
        fidelity = "\u2014" if v.fidelity is None else f"{v.fidelity:.3f}"
        if v.fidelity is not None and v.fidelity_stderr is not None:
            fidelity += f" \u00b1 {v.fidelity_stderr:.3f}"
        ratio = ("\u2014 (no T2)" if v.t2_s is None
                 else f"{v.rate_over_decoherence:.3g} (T2 = {format_si(v.t2_s, 's')})")
        self.totals.setText(
            f"attempts {v.attempts:,}   heralds {v.heralds:,}   p = {v.success_probability:.3g}"
            f" [{low:.3g}, {high:.3g}]<br>"
            f"<b>{v.herald_rate_hz:.4g} \u00b1 {v.herald_rate_err_hz:.2g} heralds/s</b>   "
            f"mean generation time {format_si(v.mean_generation_time_s, 's')}   "
            f"rate \u00d7 T2 {ratio}   fidelity {fidelity}")
        time_axis = ("time since the first herald" if h.source == "herald times"
                     else "node time")
        for plot in (self.rate_plot, self.time_plot, self.ratio_plot):
            plot.setLabel("bottom", time_axis, units="s")
        self.status.setText(f"history from {h.source}: {h.t_s.size} intervals; run "
                            f"{format_si(v.duration_s, 's')} node time")


def main(argv: Sequence[str] | None = None) -> None:
    """Run the applet (see the module documentation for the command line)."""
    _launch.run(HeraldingMonitorWidget, DATASETS, __doc__, argv)


if __name__ == "__main__":
    main()
