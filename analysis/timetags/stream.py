"""Turn the accepted kinds of tag stream into validated, ordered (timestamps, detectors) chunks.

A *stream* is one of:

- a :class:`~analysis.timetags.io.TimeTagReader` (read chunk by chunk in bounded memory);
- a pair ``(timestamps, detectors)`` of arrays held in memory;
- any iterable of such pairs (consecutive chunks of one stream).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from analysis.errors import AnalysisError
from analysis.timetags.io import _as_tag_arrays
from analysis.timetags.kernels import first_disorder

__all__ = ["UnorderedStreamError", "iter_stream_chunks", "stream_timestamps_unit"]


class UnorderedStreamError(AnalysisError, ValueError):
    """The tag stream is not in non-decreasing time order."""


def _raw_chunks(stream: Any, chunk_tags: int | None) -> Iterator[tuple[Any, Any]]:
    if hasattr(stream, "iter_chunks"):
        yield from stream.iter_chunks(chunk_tags)
        return
    if (
        isinstance(stream, tuple)
        and len(stream) == 2
        and isinstance(stream[0], np.ndarray)
    ):
        timestamps, detectors = stream
        if chunk_tags is None or len(timestamps) <= chunk_tags:
            yield timestamps, detectors
            return
        if chunk_tags < 1:
            raise ValueError(f"chunk_tags must be >= 1, got {chunk_tags}")
        for start in range(0, len(timestamps), chunk_tags):
            yield timestamps[start : start + chunk_tags], detectors[start : start + chunk_tags]
        return
    try:
        iterator = iter(stream)
    except TypeError:
        raise TypeError(
            "stream must be a TimeTagReader, a (timestamps, detectors) pair of arrays, "
            f"or an iterable of such pairs; got {type(stream).__name__}"
        ) from None
    for item in iterator:
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            raise TypeError(
                f"stream chunks must be (timestamps, detectors) pairs, got {type(item).__name__}"
            )
        yield item[0], item[1]


def iter_stream_chunks(
    stream: Any, chunk_tags: int | None = None, *, check_order: bool = True
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield validated ``(int64 timestamps, uint8 detectors)`` chunks of ``stream``.

    ``check_order=False`` skips the time-order pass, for callers whose kernel checks the
    order itself in its single pass over the tags (and raises UnorderedStreamError).

    Raises:
        UnorderedStreamError: a timestamp is earlier than the one before it (also across
            chunk boundaries).
    """
    previous_last = np.iinfo(np.int64).min
    position = 0
    for raw_timestamps, raw_detectors in _raw_chunks(stream, chunk_tags):
        timestamps, detectors = _as_tag_arrays(raw_timestamps, raw_detectors)
        if len(timestamps) == 0:
            continue
        bad = first_disorder(timestamps, previous_last) if check_order else -1
        if bad >= 0:
            before = timestamps[bad - 1] if bad > 0 else previous_last
            raise UnorderedStreamError(
                f"tag stream is not time-ordered at tag {position + bad}: "
                f"{before} then {timestamps[bad]}"
            )
        previous_last = int(timestamps[-1])
        position += len(timestamps)
        yield timestamps, detectors


def stream_timestamps_unit(stream: Any, timestamps_unit: float | None) -> float | None:
    """The stream's seconds per timestamp unit: the explicit value, else the reader's."""
    own = getattr(stream, "timestamps_unit", None)
    if timestamps_unit is not None:
        if not timestamps_unit > 0:
            raise ValueError(f"timestamps_unit must be > 0 seconds, got {timestamps_unit}")
        if own is not None and not np.isclose(own, timestamps_unit, rtol=1e-12, atol=0):
            raise ValueError(
                f"timestamps_unit {timestamps_unit} s contradicts the file's {own} s"
            )
        return float(timestamps_unit)
    return None if own is None else float(own)
