"""Photon arrival-time histogram at the heralding station's detectors, with the gate window.

Datasets (analysis.schemas): ``heralding.arrival_mu`` (click times after the photon's
emission, mu), ``heralding.arrival_detector`` (0/1 per click; all 0 when absent),
``heralding.gate_start_mu`` / ``heralding.gate_stop_mu`` (the window, same origin) and
``heralding.ref_period_s`` (s per mu, default 1 ns). Without ``--arrival`` data the click
offsets in seconds of the photon-wavepacket calibration (``photon_wavepacket.offsets_s``,
both detectors together) are shown. Bins are whole machine units. Clicks
outside the gate give the background rate per detector (counts per second of arrival
time), from which the background expected inside the gate is estimated.
Run: ``python -m applets.arrival_histogram RESULTS.h5`` (``--follow RESULTS_DIR``: live).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import QtWidgets

from analysis import schemas
from applets import _launch
from applets._widgets import BLUE, GREEN, RED, AppletWidget, MissingData, dataset, format_si

DATASETS = (
    _launch.DatasetArg("arrival", schemas.HERALDING_ARRIVAL, "click times after emission (mu)"),
    _launch.DatasetArg("detector", schemas.HERALDING_ARRIVAL_DETECTOR,
                       "detector (0/1) of each click"),
    _launch.DatasetArg("gate_start", schemas.HERALDING_GATE_START, "gate opens (mu)"),
    _launch.DatasetArg("gate_stop", schemas.HERALDING_GATE_STOP, "gate closes (mu)"),
    _launch.DatasetArg("ref_period", schemas.HERALDING_REF_PERIOD, "seconds per mu"),
    _launch.DatasetArg("arrival_s", "photon_wavepacket.offsets_s",
                       "click times after emission (s), used without --arrival"),
)

#: Largest number of bins drawn; the bin width is the smallest whole number of mu below it.
MAX_BINS = 200
DETECTORS = 2


@dataclass(frozen=True)
class ArrivalView:
    """Histogram of arrival times (``edges_s``: bin edges in s, ``counts[d]``: clicks of
    detector d per bin), the gate (s, None when unknown), clicks in the gate per detector
    and the background expected in the gate from the clicks outside it (NaN when there is
    no gate or no time outside it)."""

    edges_s: np.ndarray
    counts: np.ndarray
    bin_mu: int
    gate_s: tuple[float, float] | None
    in_gate: np.ndarray
    background_in_gate: np.ndarray
    clicks: int
    detectors_known: bool


def compute_view(arrival_mu, detector=None, gate_start_mu=None, gate_stop_mu=None,
                 ref_period_s: float | None = None) -> ArrivalView:
    """Histogram the clicks (whole-mu bins, at most MAX_BINS) and count them in the gate.

    The observed span runs from the earliest click (or the gate's start, if earlier) to the
    latest click + 1 mu (or the gate's stop, if later); the background in the gate is the
    clicks outside the gate per mu of span outside it, times the gate length."""
    t = np.asarray(arrival_mu).ravel()
    if t.size == 0:
        raise MissingData("no station clicks yet")
    if not np.all(np.isfinite(t.astype(float))):
        raise ValueError("arrival times must be finite")
    t = np.round(t).astype(np.int64)
    d = (np.zeros(t.size, dtype=np.int64) if detector is None
         else np.asarray(detector).ravel().astype(np.int64))
    if d.size != t.size:
        raise ValueError(f"{d.size} detector ids for {t.size} arrival times")
    if np.any((d < 0) | (d >= DETECTORS)):
        raise ValueError(f"detector ids must be 0..{DETECTORS - 1}")
    period = schemas.DEFAULT_REF_PERIOD_S if ref_period_s is None else float(ref_period_s)
    if not period > 0:
        raise ValueError(f"ref period must be > 0 s, got {period}")
    gate = None
    if gate_start_mu is not None and gate_stop_mu is not None:
        gate = (int(gate_start_mu), int(gate_stop_mu))
        if gate[1] <= gate[0]:
            raise ValueError(f"gate must close after it opens, got {gate} mu")
    low, high = int(t.min()), int(t.max()) + 1
    if gate is not None:
        low, high = min(low, gate[0]), max(high, gate[1])
    bin_mu = max(1, -(-(high - low) // MAX_BINS))
    nbins = -(-(high - low) // bin_mu)
    edges_mu = low + bin_mu * np.arange(nbins + 1)
    index = (t - low) // bin_mu
    counts = np.bincount(d * nbins + index, minlength=DETECTORS * nbins).reshape(
        DETECTORS, nbins)
    in_gate = np.zeros(DETECTORS, dtype=np.int64)
    background = np.full(DETECTORS, np.nan)
    if gate is not None:
        inside = (t >= gate[0]) & (t < gate[1])
        in_gate = np.bincount(d[inside], minlength=DETECTORS)
        outside_span = (high - low) - (gate[1] - gate[0])
        if outside_span > 0:
            background = (np.bincount(d[~inside], minlength=DETECTORS) / outside_span
                          * (gate[1] - gate[0]))
    gate_s = None if gate is None else (gate[0] * period, gate[1] * period)
    return ArrivalView(edges_mu * period, counts, bin_mu, gate_s, in_gate, background,
                       int(t.size), detector is not None)


class ArrivalHistogramWidget(AppletWidget):
    """Per-detector step histograms of arrival times with the gate as a shaded region."""

    name = "Photon arrival times"
    pens = (BLUE, RED)

    def __init__(self, args, req=None) -> None:
        super().__init__(args, req)
        self.plot_widget = self.plot("Station clicks after emission", "arrival time",
                                     "clicks per bin", "s")
        self.legend = self.plot_widget.addLegend(offset=(-10, 10))
        self.content.addWidget(self.plot_widget)
        self.curves = [self.plot_widget.plot([0, 1], [0], stepMode="center", fillLevel=0,
                                             pen=pg.mkPen(c, width=2), brush=(*c, 70),
                                             name=f"detector {i}")
                       for i, c in enumerate(self.pens)]
        self.gate_region = pg.LinearRegionItem(values=(0, 0), movable=False,
                                               brush=(*GREEN, 50), pen=pg.mkPen(GREEN))
        self.gate_region.setZValue(-10)
        self.plot_widget.addItem(self.gate_region)
        self.summary = QtWidgets.QLabel()
        self.summary.setWordWrap(True)
        self.content.addWidget(self.summary)

    def compute(self, value: dict, metadata: dict) -> ArrivalView:
        get = lambda name: dataset(value, self.args, name, required=False)  # noqa: E731
        period = get("ref_period")
        if get("arrival") is None and get("arrival_s") is not None:
            period = schemas.DEFAULT_REF_PERIOD_S if period is None else float(period)
            seconds = np.asarray(get("arrival_s"), dtype=float).ravel()
            return compute_view(np.round(seconds / period), None, None, None, period)
        return compute_view(dataset(value, self.args, "arrival"), get("detector"),
                            get("gate_start"), get("gate_stop"), period)

    def show_view(self, v: ArrivalView) -> None:
        for curve, counts in zip(self.curves, v.counts, strict=True):
            curve.setData(v.edges_s, counts)
        self.curves[1].setVisible(v.detectors_known)
        self.legend.clear()
        if v.detectors_known:
            for i, curve in enumerate(self.curves):
                self.legend.addItem(curve, f"detector {i}")
        else:
            self.legend.addItem(self.curves[0], "all clicks")
        self.gate_region.setVisible(v.gate_s is not None)
        low, high = v.edges_s[0], v.edges_s[-1]       # margins so the gate's edges show
        self.plot_widget.setXRange(low - 0.08 * (high - low), high + 0.08 * (high - low),
                                   padding=0)
        if v.gate_s is None:
            self.summary.setText("no gate window in the data")
        else:
            self.gate_region.setRegion(v.gate_s)
            inside = ", ".join(f"detector {i}: {n}" for i, n in enumerate(v.in_gate))
            if np.all(np.isfinite(v.background_in_gate)):
                background = "expected background in the gate: " + ", ".join(
                    f"{b:.3g}" for b in v.background_in_gate)
            else:
                background = "no clicks recorded outside the gate"
            self.summary.setText(f"gate {format_si(v.gate_s[0], 's')} \u2013 "
                                 f"{format_si(v.gate_s[1], 's')}; clicks in the gate: "
                                 f"{inside}; {background}")
        self.status.setText(f"{v.clicks} clicks, bin {v.bin_mu} mu")


def main(argv: Sequence[str] | None = None) -> None:
    """Run the applet (see the module documentation for the command line)."""
    _launch.run(ArrivalHistogramWidget, DATASETS, __doc__, argv)


if __name__ == "__main__":
    main()
