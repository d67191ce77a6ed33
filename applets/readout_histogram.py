"""Readout histograms: photon counts per shot, ion prepared bright and dark, with the
threshold (bright: counts > threshold) and the readout fidelity it gives.

Datasets (analysis.schemas): ``readout.bright_counts``, ``readout.dark_counts``; the
threshold is ``readout.threshold`` when the experiment wrote one, else the persistent
``calib.readout_threshold_a``, else the optimum of :func:`analysis.readout.optimize_threshold`.
Negative counts mark shots not yet taken (a run in progress) and are left out. The fidelity
shown is the raw one at the threshold; ``readout.fidelity`` (the experiment's, corrected
for imperfect dark-state preparation) is shown beside it when present.
Run: ``python -m applets.readout_histogram RESULTS.h5`` (or in the dashboard, without file).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import QtWidgets

from analysis import readout, schemas, stats
from applets import _launch
from applets._widgets import BLUE, GREEN, RED, AppletWidget, MissingData, dataset

DATASETS = (
    _launch.DatasetArg("bright", schemas.READOUT_BRIGHT, "counts per shot, ion bright"),
    _launch.DatasetArg("dark", schemas.READOUT_DARK, "counts per shot, ion dark"),
    _launch.DatasetArg("threshold", "readout.threshold",
                       "threshold (bright: counts > threshold)"),
    _launch.DatasetArg("stored_threshold", "calib.readout_threshold_a",
                       "persistent threshold used when --threshold is absent"),
    _launch.DatasetArg("fidelity", "readout.fidelity", "the experiment's readout fidelity"),
)


@dataclass(frozen=True)
class ReadoutView:
    """Histograms on integer bins ``edges[k] .. edges[k+1]`` (centred on k counts) and the
    errors at ``threshold``: bright_error = P(bright shot <= t), dark_error = P(dark > t),
    fidelity = 1 - (bright_error + dark_error) / 2; intervals are Wilson 1-sigma."""

    edges: np.ndarray
    bright_hist: np.ndarray
    dark_hist: np.ndarray
    threshold: int
    threshold_source: str
    fidelity: float
    bright_error: float
    dark_error: float
    bright_error_interval: tuple[float, float]
    dark_error_interval: tuple[float, float]
    optimal_threshold: int
    optimal_fidelity: float


def compute_view(bright_counts, dark_counts, threshold: int | None = None,
                 source: str = "dataset") -> ReadoutView:
    """Histograms and errors of the two shot series at ``threshold`` (None: the optimum)."""
    best = readout.optimize_threshold(bright_counts, dark_counts)     # validates the counts
    bright = np.asarray(bright_counts).ravel().astype(np.int64)
    dark = np.asarray(dark_counts).ravel().astype(np.int64)
    if threshold is None:
        threshold, source = best.threshold, "optimal"
    if int(threshold) != threshold or threshold < 0:
        raise ValueError(f"threshold must be a non-negative integer, got {threshold!r}")
    threshold = int(threshold)
    top = int(max(bright.max(), dark.max(), threshold)) + 1
    edges = np.arange(top + 1) - 0.5
    bright_hist = np.bincount(bright, minlength=top)
    dark_hist = np.bincount(dark, minlength=top)
    n_bright_err = int(np.count_nonzero(bright <= threshold))
    n_dark_err = int(np.count_nonzero(dark > threshold))
    bright_error = n_bright_err / bright.size
    dark_error = n_dark_err / dark.size
    return ReadoutView(edges, bright_hist, dark_hist, threshold, source,
                       1.0 - 0.5 * (bright_error + dark_error), bright_error, dark_error,
                       stats.wilson_interval(n_bright_err, bright.size),
                       stats.wilson_interval(n_dark_err, dark.size),
                       best.threshold, best.fidelity)


class ReadoutHistogramWidget(AppletWidget):
    """Bright and dark count histograms, the threshold line and the fidelity."""

    name = "Readout histograms"

    def __init__(self, args, req=None) -> None:
        super().__init__(args, req)
        self.plot_widget = self.plot("Photon counts per shot", "counts per shot", "shots")
        self.plot_widget.addLegend(offset=(-10, 10))
        self.content.addWidget(self.plot_widget)
        self.bright_curve = self.plot_widget.plot(
            [0, 1], [0], stepMode="center", fillLevel=0, pen=pg.mkPen(BLUE, width=2),
            brush=(*BLUE, 90), name="bright")
        self.dark_curve = self.plot_widget.plot(
            [0, 1], [0], stepMode="center", fillLevel=0, pen=pg.mkPen(RED, width=2),
            brush=(*RED, 90), name="dark")
        self.threshold_line = pg.InfiniteLine(
            pos=0.5, angle=90, pen=pg.mkPen(GREEN, width=2, style=pg.QtCore.Qt.PenStyle.DashLine),
            label="threshold", labelOpts={"position": 0.9, "color": GREEN})
        self.plot_widget.addItem(self.threshold_line)
        self.summary = QtWidgets.QLabel()
        self.summary.setWordWrap(True)
        self.content.addWidget(self.summary)
        self.reported_fidelity = None

    def compute(self, value: dict, metadata: dict) -> ReadoutView:
        bright = dataset(value, self.args, "bright")
        dark = dataset(value, self.args, "dark")
        threshold = dataset(value, self.args, "threshold", required=False)
        source = "dataset"
        if threshold is None:
            threshold = dataset(value, self.args, "stored_threshold", required=False)
            source = "stored"
        bright, dark = (np.asarray(c).ravel() for c in (bright, dark))
        bright, dark = bright[bright >= 0], dark[dark >= 0]     # < 0: shot not yet taken
        if bright.size == 0 or dark.size == 0:
            raise MissingData("waiting for the first shots")
        self.reported_fidelity = dataset(value, self.args, "fidelity", required=False)
        return compute_view(bright, dark, threshold, source)

    def show_view(self, view: ReadoutView) -> None:
        self.bright_curve.setData(view.edges, view.bright_hist)
        self.dark_curve.setData(view.edges, view.dark_hist)
        self.threshold_line.setValue(view.threshold + 0.5)
        reported = ("" if self.reported_fidelity is None
                    else f" (experiment, corrected: {float(self.reported_fidelity):.4f})")
        self.summary.setText(
            f"<b>threshold {view.threshold}</b> ({view.threshold_source}; bright if counts > "
            f"threshold)   <b>fidelity {view.fidelity:.4f}</b>{reported}<br>"
            f"bright error {view.bright_error:.4f}   dark error {view.dark_error:.4f}   "
            f"(optimum: threshold {view.optimal_threshold}, "
            f"fidelity {view.optimal_fidelity:.4f})")
        self.status.setText(f"{view.bright_hist.sum()} bright shots, "
                            f"{view.dark_hist.sum()} dark shots")


def main(argv: Sequence[str] | None = None) -> None:
    """Run the applet (see the module documentation for the command line)."""
    _launch.run(ReadoutHistogramWidget, DATASETS, __doc__, argv)


if __name__ == "__main__":
    main()
