"""Synthetic detector time-tag streams: merged Poisson processes, optionally with correlated pairs.

Used by tests and benchmarks. Times are integers in timestamp units (``timestamps_unit``
seconds each, default 1 ps).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["generate_tags"]


def _poisson_times(rng: np.random.Generator, rate_per_unit: float, span_units: int) -> np.ndarray:
    """Sorted integer arrival times of a Poisson process of ``rate_per_unit`` on [0, span)."""
    count = rng.poisson(rate_per_unit * span_units)
    times = rng.integers(0, span_units, size=count, dtype=np.int64)
    times.sort()
    return times


def generate_tags(
    rate_hz_per_channel: float | Sequence[float],
    duration_s: float,
    channels: Sequence[int] = (0, 1),
    seed: int = 0,
    correlated_fraction: float = 0.0,
    *,
    correlation_delay_s: float = 0.0,
    correlation_jitter_s: float = 0.0,
    timestamps_unit: float = 1e-12,
) -> tuple[np.ndarray, np.ndarray]:
    """Generate one merged, time-ordered tag stream.

    Each channel gets an independent Poisson stream of its rate over ``[0, duration_s)``.
    With ``correlated_fraction`` f > 0, each tag of ``channels[0]`` gets, with probability f, a
    partner tag on ``channels[1]`` at ``correlation_delay_s`` later plus Gaussian jitter of
    standard deviation ``correlation_jitter_s`` (partners falling outside the record are
    dropped). Partners add to ``channels[1]``'s own Poisson tags.

    Args:
        rate_hz_per_channel: Hz, one value for all channels or one per channel.
        duration_s: record length in seconds.
        channels: detector ids (0..255), distinct.
        seed: random seed; the same arguments and seed give the same stream.
        correlated_fraction: probability in [0, 1] that a ``channels[0]`` tag has a partner.
        correlation_delay_s, correlation_jitter_s: seconds.
        timestamps_unit: seconds per timestamp unit.

    Returns:
        ``(timestamps int64, detectors uint8)``, sorted by time (ties in channel order).
    """
    channels = [int(c) for c in channels]
    if not channels:
        raise ValueError("channels: need at least one channel")
    if len(set(channels)) != len(channels) or not all(0 <= c <= 255 for c in channels):
        raise ValueError(f"channels must be distinct ids in 0..255, got {channels}")
    rates = np.broadcast_to(np.asarray(rate_hz_per_channel, dtype=float), (len(channels),))
    if np.any(~np.isfinite(rates)) or np.any(rates < 0):
        raise ValueError(f"rate_hz_per_channel must be >= 0 Hz, got {rate_hz_per_channel}")
    if not (duration_s > 0 and timestamps_unit > 0):
        raise ValueError("duration_s and timestamps_unit must be > 0 seconds")
    if not 0.0 <= correlated_fraction <= 1.0:
        raise ValueError(f"correlated_fraction must lie in [0, 1], got {correlated_fraction}")
    if correlated_fraction > 0 and len(channels) < 2:
        raise ValueError("correlated_fraction > 0 needs at least two channels")
    if correlation_jitter_s < 0:
        raise ValueError(f"correlation_jitter_s must be >= 0, got {correlation_jitter_s}")
    span = int(round(duration_s / timestamps_unit))
    if span < 1:
        raise ValueError("duration_s is shorter than one timestamp unit")
    rng = np.random.default_rng(seed)
    per_channel = [_poisson_times(rng, rate * timestamps_unit, span) for rate in rates]
    if correlated_fraction > 0:
        sources = per_channel[0][rng.random(len(per_channel[0])) < correlated_fraction]
        offsets = correlation_delay_s + correlation_jitter_s * rng.standard_normal(len(sources))
        partners = sources + np.round(offsets / timestamps_unit).astype(np.int64)
        partners = partners[(partners >= 0) & (partners < span)]
        merged = np.concatenate([per_channel[1], partners])
        merged.sort()
        per_channel[1] = merged
    timestamps = np.concatenate(per_channel)
    detectors = np.concatenate(
        [np.full(len(t), c, dtype=np.uint8) for t, c in zip(per_channel, channels, strict=True)]
    )
    order = np.argsort(timestamps, kind="stable")
    return timestamps[order], detectors[order]
