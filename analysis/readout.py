"""Fluorescence readout: choose the photon-count threshold separating bright from dark.

Convention (used everywhere in ionlink): a shot is **bright when counts > threshold** and
dark when counts <= threshold. (ARTIQ examples often write `counts >= t`; their t is our
threshold + 1.) Bright is the ion in S1/2 (scatters 397 nm), dark the ion shelved in D5/2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Threshold:
    """Optimal threshold and the error rates it gives on the calibration data.

    bright_error: fraction of bright shots with counts <= threshold (read as dark);
    dark_error: fraction of dark shots with counts > threshold (read as bright);
    fidelity: 1 - (bright_error + dark_error) / 2, the mean readout fidelity.
    """

    threshold: int
    fidelity: float
    bright_error: float
    dark_error: float


def _counts(name: str, values) -> np.ndarray:
    array = np.asarray(values).ravel()
    if array.size == 0:
        raise ValueError(f"{name} is empty: need at least one shot")
    if not np.issubdtype(array.dtype, np.integer):
        if not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
            raise ValueError(f"{name} must hold integer photon counts per shot")
        array = array.astype(np.int64)
    if np.any(array < 0):
        raise ValueError(f"{name} has negative photon counts")
    return array


def optimize_threshold(bright_counts, dark_counts) -> Threshold:
    """Threshold maximising the mean readout fidelity.

    bright_counts, dark_counts: photon counts per shot (one integer per shot) recorded with
    the ion prepared bright and dark. When a run of consecutive thresholds gives the same
    best fidelity (no calibration shot has counts in the gap between the two histograms),
    the middle of the first such run is chosen (rounded down): the threshold farthest from
    both histograms, so the unseen tails of each distribution are split evenly.
    """
    bright = _counts("bright_counts", bright_counts)
    dark = _counts("dark_counts", dark_counts)
    top = int(max(bright.max(), dark.max())) + 1
    bright_cdf = np.cumsum(np.bincount(bright, minlength=top)) / bright.size
    dark_cdf = np.cumsum(np.bincount(dark, minlength=top)) / dark.size
    # threshold t: bright error = P(b <= t) = bright_cdf[t]; dark error = 1 - dark_cdf[t]
    mean_error = 0.5 * (bright_cdf + (1.0 - dark_cdf))
    first = int(np.argmin(mean_error))
    last = first
    while last + 1 < top and mean_error[last + 1] == mean_error[first]:
        last += 1
    best = (first + last) // 2
    return Threshold(best, float(1.0 - mean_error[best]), float(bright_cdf[best]),
                     float(1.0 - dark_cdf[best]))


def classify_bright(counts, threshold: int) -> np.ndarray:
    """Boolean array: True where counts > threshold (bright)."""
    return np.asarray(counts) > threshold
