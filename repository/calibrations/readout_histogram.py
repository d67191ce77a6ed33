"""Readout calibration: bright/dark PMT histograms -> count threshold and readout fidelity."""

import numpy as np
from artiq.experiment import *

from ionlink.blocks import FluorescenceReadout, Rotation729, StatePreparation, node_argument


class ReadoutHistogram(EnvExperiment):
    """Readout histograms

    Prepares the ion of the chosen node alternately bright (S1/2) and dark (D5/2, by a
    729 nm pi pulse), counts 397 nm fluorescence on the PMT for each shot, and from the two
    histograms chooses the count threshold with the best mean readout fidelity. The fidelity
    is corrected for imperfect dark-state preparation: dark-prepared shots are a mixture of
    dark ions and a fraction ``readout.dark_prep_error`` of bright ones (estimated from the
    shots above the bright median, where a dark ion gives no counts). A fidelity above the
    acceptance level is stored as the persistent datasets
    ``calib.readout_threshold_<node>`` and ``calib.readout_fidelity_<node>``; the detection
    time used is stored as ``calib.detection_time_<node>``.
    """

    def build(self):
        self.setattr_device("core")
        self.setattr_device("scheduler")
        node = node_argument(self, "which node's ion to calibrate")
        self.setattr_argument("shots", NumberValue(300, precision=0, step=100, min=10,
                                                   type="int"),
                              group="Readout", tooltip="shots per state (bright and dark)")
        self.setattr_argument("detection_time", NumberValue(1 * ms, unit="ms", min=10 * us,
                                                            max=100 * ms),
                              group="Readout", tooltip="PMT gate length per shot")
        self.setattr_argument("min_fidelity", NumberValue(0.95, min=0.5, max=1.0),
                              group="Acceptance",
                              tooltip="store the threshold only above this mean fidelity")
        self.prep = StatePreparation(self, node)
        self.rotation = Rotation729(self, node)
        self.readout = FluorescenceReadout(self, node)

    def prepare(self):
        super().prepare()
        self.bright_counts = np.full(self.shots, -1, dtype=np.int32)
        self.dark_counts = np.full(self.shots, -1, dtype=np.int32)
        self.done = 0

    @kernel
    def init(self):
        self.core.reset()
        self.prep.init()
        self.rotation.init()
        self.readout.init()

    @kernel
    def run_shots(self, start: TInt32) -> TInt32:
        """Shots ``start``.. until done or a pause is due; returns the next shot index."""
        self.core.break_realtime()
        for i in range(start, self.shots):
            if i % 50 == 0 and self.scheduler.check_pause():
                return i
            self.prep.prepare_state()
            self.bright_counts[i] = self.readout.detect_for(self.detection_time)
            self.core.break_realtime()
            self.prep.prepare_state()
            self.rotation.pi_pulse()
            self.dark_counts[i] = self.readout.detect_for(self.detection_time)
            self.core.break_realtime()
        return self.shots

    def run(self):
        self.init()
        while self.done < self.shots:
            self.done = self.run_shots(self.done)
            if self.done < self.shots:
                self.core.close()
                self.scheduler.pause()
                self.init()
        self.set_dataset("readout.bright_counts", self.bright_counts)
        self.set_dataset("readout.dark_counts", self.dark_counts)

    def analyze(self):
        node = self.node
        threshold, fidelity, prep_error = corrected_threshold(self.bright_counts,
                                                              self.dark_counts)
        raw = 1.0 - 0.5 * (float(np.mean(self.bright_counts <= threshold))
                           + float(np.mean(self.dark_counts > threshold)))
        self.set_dataset("readout.frequency_397", self.readout.frequency_397)
        self.set_dataset("readout.detection_time", self.detection_time)
        self.set_dataset("readout.threshold", threshold)
        self.set_dataset("readout.fidelity", fidelity)
        self.set_dataset("readout.fidelity_raw", raw)
        self.set_dataset("readout.dark_prep_error", prep_error)
        self.set_dataset("readout.mean_bright", float(np.mean(self.bright_counts)))
        self.set_dataset("readout.mean_dark", float(np.mean(self.dark_counts)))
        print(f"node {node}: threshold {threshold}, fidelity {fidelity:.4f} "
              f"(raw {raw:.4f}, dark preparation error {prep_error:.3f})")
        if fidelity >= self.min_fidelity:
            self.set_dataset(f"calib.readout_threshold_{node}", threshold, persist=True)
            self.set_dataset(f"calib.readout_fidelity_{node}", fidelity, persist=True)
            self.set_dataset(f"calib.detection_time_{node}", self.detection_time, persist=True)
            print(f"calib.readout_threshold_{node} = {threshold}, "
                  f"calib.readout_fidelity_{node} = {fidelity:.4f} stored")
        else:
            print(f"readout fidelity {fidelity:.4f} below {self.min_fidelity}: "
                  f"calib.readout_threshold_{node} not stored")


def corrected_threshold(bright, dark_prepared) -> tuple[int, float, float]:
    """Count threshold (bright: counts > threshold), mean readout fidelity and dark-preparation
    error ``eps`` from the two histograms.

    Dark-prepared shots are a mixture ``(1 - eps) dark + eps bright`` (failed preparation).
    ``cut`` is the bright histogram's 1 % quantile, which a dark ion practically never reaches:
    ``eps`` is the fraction of dark-prepared shots above ``cut`` divided by that fraction
    among bright shots. The threshold minimises the mean error of Poisson distributions with
    the bright mean and the mean of the dark-prepared shots below ``cut`` (smooth, unlike the
    sparse empirical tails); the fidelity at that threshold is the empirical one with the
    dark error corrected for the admixture (the contaminants above ``cut`` cancel, so its
    noise is that of the shots between threshold and ``cut``)."""
    from scipy import stats

    bright = np.asarray(bright, dtype=np.int64)
    dark_prepared = np.asarray(dark_prepared, dtype=np.int64)
    cut = int(np.floor(np.quantile(bright, 0.01)))
    above_b = float(np.mean(bright > cut))
    eps = float(np.mean(dark_prepared > cut)) / above_b if above_b > 0 else 0.0
    eps = min(max(eps, 0.0), 0.5)
    dark_only = dark_prepared[dark_prepared <= cut]
    lam_b = float(np.mean(bright))
    lam_d = float(np.mean(dark_only)) if dark_only.size else 0.0
    t = np.arange(max(cut, 1) + 1)
    model_error = stats.poisson.cdf(t, lam_b) + stats.poisson.sf(t, lam_d)
    threshold = int(t[np.argmin(model_error)])
    bright_error = float(np.mean(bright <= threshold))
    dark_error = (float(np.mean(dark_prepared > threshold))
                  - eps * float(np.mean(bright > threshold))) / (1.0 - eps)
    return threshold, 1.0 - 0.5 * (bright_error + min(max(dark_error, 0.0), 1.0)), eps
