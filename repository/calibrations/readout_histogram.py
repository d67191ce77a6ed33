"""Readout calibration: bright/dark PMT histograms -> count threshold and readout fidelity."""

import math

import numpy as np
from artiq.experiment import *

from ionlink.blocks import FluorescenceReadout, Rotation729, StatePreparation, node_argument
from ionlink.blocks.scan import run_with_pauses


class ReadoutHistogram(EnvExperiment):
    """Readout histograms

    Prepares the ion of the chosen node alternately bright (S1/2) and dark (D5/2, by a
    729 nm pi pulse), counts 397 nm fluorescence on the PMT for each shot, and from the two
    histograms chooses the count threshold with the best mean readout fidelity.

    Dark-prepared shots are a mixture of dark ions (background counts only) and a fraction
    ``readout.dark_prep_error`` of bright ones (failed shelving), estimated from the shots
    above the bright histogram's 1 % quantile, where a dark ion gives no counts. That
    estimate is *trusted* only when a background ion practically never reaches that cut
    (Poisson tail of the mean dark-prepared count above the cut below 1e-3) and most
    dark-prepared shots are below it; then the fidelity is corrected for the admixture,
    otherwise (e.g. the 397 nm laser unlocked: both histograms are background with a few
    counts, the cut sits at 0 or 1 count) the raw fidelity is used, uncorrected.

    Stored as the persistent datasets ``calib.readout_threshold_<node>``,
    ``calib.readout_fidelity_<node>`` and ``calib.detection_time_<node>`` only when the
    histograms show a working readout: the bright mean is at least ``min_separation``
    combined per-shot standard deviations above the background (the dark ions' counts)
    and the fidelity (corrected when trusted, else raw) is at least ``min_fidelity``.
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
        self.setattr_argument("min_separation", NumberValue(3.0, min=0.0, max=100.0),
                              group="Acceptance",
                              tooltip="store only if the bright mean is this many standard "
                                      "deviations sqrt(var_bright + var_background) above "
                                      "the background mean")
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
        run_with_pauses(self, self.run_shots, self.shots)
        self.set_dataset("readout.bright_counts", self.bright_counts)
        self.set_dataset("readout.dark_counts", self.dark_counts)

    def analyze(self):
        node = self.node
        h = analyse_histograms(self.bright_counts, self.dark_counts)
        threshold, fidelity = h["threshold"], h["fidelity"]
        self.set_dataset("readout.frequency_397", self.readout.frequency_397)
        self.set_dataset("readout.detection_time", self.detection_time)
        self.set_dataset("readout.threshold", threshold)
        self.set_dataset("readout.fidelity", fidelity)
        self.set_dataset("readout.fidelity_raw", h["fidelity_raw"])
        self.set_dataset("readout.dark_prep_error", h["dark_prep_error"])
        self.set_dataset("readout.dark_prep_error_trusted", h["dark_prep_error_trusted"])
        self.set_dataset("readout.mean_bright", float(np.mean(self.bright_counts)))
        self.set_dataset("readout.mean_dark", float(np.mean(self.dark_counts)))
        self.set_dataset("readout.mean_background", h["mean_background"])
        self.set_dataset("readout.separation", h["separation"])
        kind = ("corrected" if h["dark_prep_error_trusted"]
                else "raw: the dark-preparation error estimate is not trusted")
        print(f"node {node}: threshold {threshold}, fidelity {fidelity:.4f} ({kind}; raw "
              f"{h['fidelity_raw']:.4f}, dark preparation error {h['dark_prep_error']:.3f}), "
              f"bright {h['mean_bright']:.2f} vs background {h['mean_background']:.2f} "
              f"counts: {h['separation']:.1f} standard deviations apart")
        reasons = acceptance(h, self.min_fidelity, self.min_separation)
        if not reasons:
            self.set_dataset(f"calib.readout_threshold_{node}", threshold, persist=True)
            self.set_dataset(f"calib.readout_fidelity_{node}", fidelity, persist=True)
            self.set_dataset(f"calib.detection_time_{node}", self.detection_time, persist=True)
            print(f"calib.readout_threshold_{node} = {threshold}, "
                  f"calib.readout_fidelity_{node} = {fidelity:.4f} stored")
        else:
            print(f"calib.readout_threshold_{node} not stored: {'; '.join(reasons)}")


#: Largest probability that a background-only shot exceeds the cut for the dark-preparation
#: error estimate to be trusted (it is then biased by less than 0.1 %).
BACKGROUND_TAIL_LIMIT = 1e-3


def acceptance(h: dict, min_fidelity: float, min_separation: float) -> list[str]:
    """Why the histograms analysed by :func:`analyse_histograms` do not show a working
    readout (empty list: they do)."""
    reasons = []
    if not h["separation"] >= min_separation:
        reasons.append(f"bright mean {h['mean_bright']:.2f} only {h['separation']:.2f} "
                       f"standard deviations above the background {h['mean_background']:.2f}"
                       f" (< {min_separation})")
    kind = "corrected" if h["dark_prep_error_trusted"] else "raw"
    if not h["fidelity"] >= min_fidelity:
        reasons.append(f"{kind} fidelity {h['fidelity']:.4f} below {min_fidelity}")
    if reasons and h["cut"] >= 5 and h["dark_above_cut"] > 0.5:
        reasons.append(f"the ion fluoresces, but {100 * h['dark_above_cut']:.0f} % of the "
                       "dark preparations stayed bright: the 729 pi pulse did not shelve it "
                       "(729 frequency or pi time off?)")
    return reasons


def analyse_histograms(bright, dark_prepared) -> dict:
    """Threshold, fidelities and acceptance statistics of bright/dark-prepared count
    histograms (counts per shot).

    Returns ``threshold`` (bright: counts > threshold), ``fidelity`` (corrected for the
    dark-preparation error when ``dark_prep_error_trusted``, else equal to
    ``fidelity_raw``), ``fidelity_raw`` (1 - mean of the two empirical error rates),
    ``dark_prep_error`` (the estimate, trusted or not), ``dark_prep_error_trusted``,
    ``mean_bright``, ``mean_background`` (counts of dark ions: the dark-prepared shots below
    the cut when the estimate is trusted, else all dark-prepared shots) and ``separation``
    = (mean_bright - mean_background) / sqrt(var_bright + var_background), each variance at
    least the Poisson one (its mean); ``cut`` (the bright histogram's 1 % quantile, counts)
    and ``dark_above_cut`` (fraction of dark-prepared shots above it).
    """
    from scipy import stats

    bright = np.asarray(bright, dtype=np.int64)
    dark_prepared = np.asarray(dark_prepared, dtype=np.int64)
    if bright.size < 2 or dark_prepared.size < 2:
        raise ValueError(f"need >= 2 shots per histogram, got {bright.size} bright and "
                         f"{dark_prepared.size} dark")
    threshold, corrected, eps, cut = corrected_threshold(bright, dark_prepared)
    raw = 1.0 - 0.5 * (float(np.mean(bright <= threshold))
                       + float(np.mean(dark_prepared > threshold)))
    dark_only = dark_prepared[dark_prepared <= cut]
    # the mean of all dark-prepared shots bounds the background mean from above
    tail = float(stats.poisson.sf(cut, float(np.mean(dark_prepared))))
    trusted = bool(tail <= BACKGROUND_TAIL_LIMIT
                   and dark_only.size >= max(2, dark_prepared.size // 2))
    background = dark_only if trusted else dark_prepared
    mean_b, mean_bg = float(np.mean(bright)), float(np.mean(background))
    var_b = max(float(np.var(bright, ddof=1)), mean_b)
    var_bg = max(float(np.var(background, ddof=1)) if background.size > 1 else 0.0, mean_bg)
    spread = math.sqrt(var_b + var_bg)
    separation = (mean_b - mean_bg) / spread if spread > 0 else 0.0
    return {"threshold": threshold, "fidelity": corrected if trusted else raw,
            "fidelity_raw": raw, "dark_prep_error": eps, "dark_prep_error_trusted": trusted,
            "mean_bright": mean_b, "mean_background": mean_bg, "separation": separation,
            "cut": cut, "dark_above_cut": 1.0 - dark_only.size / dark_prepared.size}


def corrected_threshold(bright, dark_prepared) -> tuple[int, float, float, int]:
    """Count threshold (bright: counts > threshold), mean readout fidelity, dark-preparation
    error ``eps`` and the cut (counts) from the two histograms.

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
    return threshold, 1.0 - 0.5 * (bright_error + min(max(dark_error, 0.0), 1.0)), eps, cut
