"""Detector time-tags: Photon-HDF5-compatible files, streaming analyses, synthetic streams.

Main entry points: :class:`TimeTagWriter`, :class:`TimeTagReader` (``io``), the analyses in
``algorithms`` (coincidences, heralded_events / iter_heralded_events, correlation,
arrival_histogram,
counts_between_markers, count_rates) and :func:`generate_tags` (``synthetic``).
"""

from analysis.timetags.algorithms import (
    NO_DETECTION,
    arrival_histogram,
    coincidence_pairs,
    coincidences,
    correlation,
    count_rates,
    counts_between_markers,
    heralded_events,
    iter_counts_between_markers,
    iter_heralded_events,
)
from analysis.timetags.io import COMPRESSIONS, TimeTagReader, TimeTagWriter
from analysis.timetags.stream import UnorderedStreamError
from analysis.timetags.synthetic import generate_tags

__all__ = [
    "COMPRESSIONS",
    "NO_DETECTION",
    "TimeTagReader",
    "TimeTagWriter",
    "UnorderedStreamError",
    "arrival_histogram",
    "coincidence_pairs",
    "coincidences",
    "correlation",
    "count_rates",
    "counts_between_markers",
    "generate_tags",
    "heralded_events",
    "iter_counts_between_markers",
    "iter_heralded_events",
]
