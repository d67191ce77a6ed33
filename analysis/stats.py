"""Small statistics helpers: binomial confidence intervals and weighted means.

Confidence levels are given as a probability (default 0.6827, i.e. one Gaussian standard
deviation); intervals are two-sided and central.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as _stats

ONE_SIGMA = 0.682689492137086


def _check_counts(successes: int, trials: int) -> None:
    if int(trials) != trials or trials < 1:
        raise ValueError(f"trials must be a positive integer, got {trials!r}")
    if int(successes) != successes or not 0 <= successes <= trials:
        raise ValueError(f"successes must be an integer in [0, trials={trials}], got {successes!r}")


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")


def wilson_interval(
    successes: int, trials: int, confidence: float = ONE_SIGMA
) -> tuple[float, float]:
    """Wilson score interval (lower, upper) for a binomial proportion successes / trials."""
    _check_counts(successes, trials)
    _check_confidence(confidence)
    z = _stats.norm.ppf(0.5 + confidence / 2.0)
    n = float(trials)
    p = successes / n
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2.0 * n)) / denominator
    half_width = z * np.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n)) / denominator
    return max(0.0, centre - half_width), min(1.0, centre + half_width)


def clopper_pearson_interval(
    successes: int, trials: int, confidence: float = ONE_SIGMA
) -> tuple[float, float]:
    """Exact (conservative) Clopper-Pearson interval (lower, upper) for successes / trials."""
    _check_counts(successes, trials)
    _check_confidence(confidence)
    tail = (1.0 - confidence) / 2.0
    lower = 0.0 if successes == 0 else _stats.beta.ppf(tail, successes, trials - successes + 1)
    upper = 1.0 if successes == trials else _stats.beta.ppf(1 - tail, successes + 1,
                                                             trials - successes)
    return float(lower), float(upper)


@dataclass(frozen=True)
class WeightedMean:
    """Inverse-variance weighted mean with its standard error and the reduced chi2 of the
    values about the mean (values far above 1 flag scatter beyond the quoted errors)."""

    mean: float
    stderr: float
    chi2_reduced: float


def weighted_mean(values, errors) -> WeightedMean:
    """Inverse-variance weighted mean of `values` with standard errors `errors` (same units)."""
    x = np.asarray(values, dtype=float).ravel()
    s = np.asarray(errors, dtype=float).ravel()
    if x.size == 0 or x.shape != s.shape:
        raise ValueError(f"values and errors must be non-empty and of equal length, got "
                         f"{x.size} and {s.size}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(s)) and np.all(s > 0)):
        raise ValueError("values must be finite and errors finite and > 0")
    w = 1.0 / s**2
    mean = float(np.sum(w * x) / np.sum(w))
    stderr = float(np.sqrt(1.0 / np.sum(w)))
    chi2 = float(np.sum(w * (x - mean) ** 2) / (x.size - 1)) if x.size > 1 else float("nan")
    return WeightedMean(mean, stderr, chi2)
