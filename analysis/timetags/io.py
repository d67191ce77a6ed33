"""Write and read detector time-tag files in a Photon-HDF5-compatible layout.

One file holds one merged, time-ordered stream::

    /photon_data/timestamps                       int64, chunked, compressed
    /photon_data/detectors                        uint8 detector id of each tag
    /photon_data/timestamps_specs/timestamps_unit float, seconds per timestamp unit
    /acquisition_duration                         float, seconds
    /description                                  str
    /setup/...                                    num_pixels, num_spots, ..., detectors/
    /identity/...                                 format_name, format_version, software, ...

The root attributes ``format_name = "Photon-HDF5"`` and ``format_version`` mark the file as
Photon-HDF5 0.5; strings are fixed-length byte strings and every node carries the format's
official description as its ``TITLE`` attribute, so phconvert/PyTables-based tools accept
it. Timestamps are stored absolute (not delta coded), so any HDF5 reader with the
Blosc/Blosc2 plugin (``hdf5plugin``) reads them directly; bit-shuffling inside Blosc makes the
slowly varying high bits of consecutive timestamps compress well.

Crash safety (``TimeTagWriter(..., crash_safe=True)``): HDF5 keeps part of a file's
metadata in memory, and by default re-uses file space freed during a session. A flush
rewrites the partial last chunk at a new place (its compressed size changes) and frees the
old one; a later chunk may then be written into that freed space while the index on disk
still points there, so a process killed between flushes could leave already flushed tags
unreadable or wrong. The crash-safe mode therefore (1) never re-uses freed file space
(``fs_strategy="none"``), so what a flush's on-disk index points to is never overwritten,
and (2) writes in HDF5's single-writer/multiple-reader (SWMR) mode (file format of HDF5 1.10),
which orders the flushes of the metadata cache so that the file on disk never holds a
pointer to space not yet written. A file left by a crashed crash-safe writer still carries
the SWMR "open for writing" mark: :class:`TimeTagReader` opens it (in SWMR read mode, which
also lets it read a stream file while it is being written); other HDF5 tools need
``h5clear -s FILE`` first. Its valid tags are the first :func:`flushed_tag_count` ones.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import hdf5plugin
import numpy as np

from analysis.errors import AnalysisError, MalformedFileError, open_hdf5_for_reading
from analysis.timetags.kernels import count_channels, first_disorder

__all__ = ["COMPRESSIONS", "TimeTagReader", "TimeTagWriter", "flushed_tag_count"]

FORMAT_NAME = "Photon-HDF5"
FORMAT_VERSION = "0.5"
FORMAT_URL = "http://photon-hdf5.org/"
SOFTWARE = "ionlink.analysis.timetags"
SOFTWARE_VERSION = "0.1.0"

DEFAULT_CHUNK_TAGS = 1 << 18  # 2 MiB of timestamps: fits the caches Blosc works in
DEFAULT_COMPRESSION = "blosc-lz4-bitshuffle"
# file format of crash-safe (SWMR) files: HDF5 1.10, the first with SWMR, pinned so that
# readers linked with HDF5 1.10 .. 1.14 (PyTables, phconvert) read them; h5py's "latest"
# would follow the HDF5 library it is built with (2.0 writes layouts 1.14 cannot read)
SWMR_LIBVER = ("v110", "v110")
BLOSC_THREADS_VARIABLE = "BLOSC_NTHREADS"  # read by the Blosc/Blosc2 HDF5 filters per call


def _default_compression_threads() -> int:
    """Blosc threads: $BLOSC_NTHREADS if set, else the CPU count (at most 4)."""
    configured = os.environ.get(BLOSC_THREADS_VARIABLE)
    if configured and configured.isdigit() and int(configured) > 0:
        return int(configured)
    return max(1, min(os.cpu_count() or 1, 4))


@contextlib.contextmanager
def _blosc_threads(threads: int) -> Iterator[None]:
    """Set $BLOSC_NTHREADS for the HDF5 Blosc filters during a write, then restore it.

    The filters (c-blosc and c-blosc2 inside hdf5plugin) read this variable on every
    compression call; it is the only way to give them threads through h5py.
    """
    previous = os.environ.get(BLOSC_THREADS_VARIABLE)
    os.environ[BLOSC_THREADS_VARIABLE] = str(threads)
    try:
        yield
    finally:
        if previous is None:
            del os.environ[BLOSC_THREADS_VARIABLE]
        else:
            os.environ[BLOSC_THREADS_VARIABLE] = previous


def _compression_filter(name: str) -> Any:
    """Return the hdf5plugin filter object for a compression name in COMPRESSIONS."""
    if name == "blosc-lz4-bitshuffle":
        return hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.BITSHUFFLE)
    if name == "blosc-zstd-bitshuffle":
        return hdf5plugin.Blosc(cname="zstd", clevel=1, shuffle=hdf5plugin.Blosc.BITSHUFFLE)
    if name == "blosc2-lz4-bitshuffle":
        return hdf5plugin.Blosc2(cname="lz4", clevel=5, filters=hdf5plugin.Blosc2.BITSHUFFLE)
    if name == "blosc2-zstd-bitshuffle":
        return hdf5plugin.Blosc2(cname="zstd", clevel=1, filters=hdf5plugin.Blosc2.BITSHUFFLE)
    if name == "none":
        return {}
    raise ValueError(f"compression: unknown {name!r}; choose one of {COMPRESSIONS}")


COMPRESSIONS = (
    "blosc-lz4-bitshuffle",
    "blosc-zstd-bitshuffle",
    "blosc2-lz4-bitshuffle",
    "blosc2-zstd-bitshuffle",
    "none",
)


# Photon-HDF5 requires every node to carry a TITLE attribute holding the format's official
# description of that field (photon-hdf5.readthedocs.io, "Photon-HDF5 format definition";
# readers such as phconvert compare them verbatim), and strings stored as fixed-length byte
# strings (PyTables, which those readers use, cannot read variable-length ones).
PHOTON_HDF5_TITLES = {
    "/": "A file format for photon-counting detector based single-molecule spectroscopy "
         "experiments.",
    "/acquisition_duration": "Measurement duration in seconds.",
    "/description": "A user-defined comment describing the data file.",
    "/photon_data": "Group containing arrays of photon-data.",
    "/photon_data/timestamps": "Array of photon timestamps. Units specified in timestamps_units "
                               "(defined in timestamps_specs/).",
    "/photon_data/detectors": "Array of pixel IDs for each timestamp.",
    "/photon_data/timestamps_specs": "Specifications for timestamps.",
    "/photon_data/timestamps_specs/timestamps_unit":
        "Value of 1-unit timestamp-increment in seconds.",
    "/setup": "Information about the experimental setup.",
    "/setup/num_pixels": "Total number of detector pixels.",
    "/setup/num_spots": 'Number of excitation (or detection) "spots" in the sample.',
    "/setup/num_spectral_ch": "Number of distinct spectral bands which are acquired.",
    "/setup/num_polarization_ch": "Number of distinct polarization states which are acquired.",
    "/setup/num_split_ch": "Number of distinct detection channels detecting the same spectral "
                           "band and polarization. This value is > 1 when using a "
                           "non-polarizing beam splitter.",
    "/setup/modulated_excitation": "True (i.e. 1) if there is any form of excitation modulation "
                                   "of excitation wavelength (as in us-ALEX or PAX) or "
                                   "polarization. This field is also True for "
                                   "pulse-interleaved excitation (PIE) or ns-ALEX measurements.",
    "/setup/excitation_alternated": "New in version 0.5. Indicates whether each excitation "
                                    "source is alternated (True, or 1) or not alternated "
                                    "(False, or 0).",
    "/setup/lifetime": "True (i.e. 1) if the measurement includes a nanotimes array of photon "
                       "arrival times with respect to a laser pulse (as in TCSPC "
                       "measurements).",
    "/setup/detectors": "Metadata relative to each detector's pixel. Each field is an array "
                        "with size equal to the number of the detectors.",
    "/setup/detectors/id": "Detector IDs as they appear on /photon_data/detectors.",
    "/setup/detectors/label": "Labels (strings) describing each detector.",
    "/setup/detectors/counts": "Total number of counts detected by each detector.",
    "/identity": "Information about the Photon-HDF5 data file.",
    "/identity/author": "Author of the current data file.",
    "/identity/filename": "Original file name of the current Photon-HDF5 file (i.e. file name "
                          "at creation time).",
    "/identity/filename_full": "Original file name (with full path) of the current Photon-HDF5 "
                               "file (i.e. full file name at creation time).",
    "/identity/creation_time": "Creation time of the current Photon-HDF5 file.",
    "/identity/software": "Name of the software used to create the current Photon-HDF5 file.",
    "/identity/software_version":
        "Version of the software used to create current the Photon-HDF5 file.",
    "/identity/format_name": "Name of the file format.",
    "/identity/format_version": "Version for the Photon-HDF5 format.",
    "/identity/format_url": "Official URL for the Photon-HDF5 format.",
}


def _fixed_string(text: str) -> np.ndarray:
    """A scalar fixed-length UTF-8 byte string (Photon-HDF5 / PyTables string type)."""
    data = text.encode("utf-8")
    return np.array(data, dtype=f"S{max(len(data), 1)}")


def _as_tag_arrays(timestamps: Any, detectors: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert one block of tags to (int64 timestamps, uint8 detectors)."""
    timestamps = np.asarray(timestamps)
    detectors = np.asarray(detectors)
    if timestamps.ndim != 1 or detectors.ndim != 1:
        raise ValueError(
            f"timestamps and detectors must be 1-D, got shapes {timestamps.shape} "
            f"and {detectors.shape}"
        )
    if len(timestamps) != len(detectors):
        raise ValueError(
            f"timestamps ({len(timestamps)}) and detectors ({len(detectors)}) differ in length"
        )
    if timestamps.dtype != np.int64:
        if timestamps.dtype.kind not in "iu" and len(timestamps):
            raise TypeError(f"timestamps must be integers, got dtype {timestamps.dtype}")
        if timestamps.dtype == np.uint64 and len(timestamps) and timestamps.max() > 2**63 - 1:
            raise ValueError("timestamps exceed the int64 range")
        timestamps = timestamps.astype(np.int64)
    if detectors.dtype != np.uint8:
        if detectors.dtype.kind not in "iu" and len(detectors):
            raise TypeError(f"detectors must be integers, got dtype {detectors.dtype}")
        if len(detectors) and (detectors.min() < 0 or detectors.max() > 255):
            raise ValueError("detector ids must lie in 0..255")
        detectors = detectors.astype(np.uint8)
    return timestamps, detectors


class TimeTagWriter:
    """Streaming writer of one merged time-tag stream to a Photon-HDF5-compatible file.

    Tags are buffered into HDF5 chunks of ``chunk_tags`` tags and written compressed when a
    chunk fills. :meth:`flush` writes the partial chunk and the metadata and flushes the file,
    so after it returns a crash loses nothing appended before. With ``flush_interval`` (seconds)
    set, :meth:`append` flushes by itself whenever that much wall time has passed since the
    last flush, so a crash loses at most that interval.

    Args:
        path: file to create (an existing file is an error unless ``overwrite``).
        timestamps_unit: seconds per timestamp unit, e.g. 1e-12 for picoseconds.
        chunk_tags: tags per HDF5 chunk.
        compression: one of :data:`COMPRESSIONS`.
        description: free text stored in ``/description``.
        acquisition_duration: seconds; if None, it is ``(last - first) * timestamps_unit``.
        flush_interval: seconds between automatic flushes in :meth:`append`; None disables.
        compression_threads: Blosc threads used while writing; default $BLOSC_NTHREADS if
            set, else the CPU count (at most 4).
        author: stored in ``/identity/author`` when given.
        detector_labels: optional ``{id: label}`` stored in ``/setup/detectors``.
        overwrite: allow replacing an existing file.
        crash_safe: a process killed at any moment (SIGKILL, crash) leaves a readable
            file holding at least every tag appended before the last flush (see the module
            docstring): freed file space is never re-used and the file is written in SWMR
            mode. Costs file size: each flush leaves the previous copy of the partial last
            chunk behind as dead space, about ``chunk_tags / (2 * rate * flush interval)``
            times the data size at ``rate`` tags/s, so choose ``chunk_tags`` no larger than
            a few flush intervals' worth of tags. Needs HDF5 >= 1.10 to read.
    """

    def __init__(
        self,
        path: str | Path,
        timestamps_unit: float = 1e-12,
        *,
        chunk_tags: int = DEFAULT_CHUNK_TAGS,
        compression: str = DEFAULT_COMPRESSION,
        description: str = "",
        acquisition_duration: float | None = None,
        flush_interval: float | None = 1.0,
        compression_threads: int | None = None,
        author: str | None = None,
        detector_labels: dict[int, str] | None = None,
        overwrite: bool = False,
        crash_safe: bool = False,
    ):
        if not (np.isfinite(timestamps_unit) and timestamps_unit > 0):
            raise ValueError(f"timestamps_unit must be a positive number of seconds, "
                             f"got {timestamps_unit!r}")
        if int(chunk_tags) < 1:
            raise ValueError(f"chunk_tags must be >= 1, got {chunk_tags!r}")
        if flush_interval is not None and not flush_interval > 0:
            raise ValueError(f"flush_interval must be > 0 seconds or None, got {flush_interval!r}")
        if acquisition_duration is not None and not acquisition_duration >= 0:
            raise ValueError(f"acquisition_duration must be >= 0 s, got {acquisition_duration!r}")
        if compression_threads is None:
            compression_threads = _default_compression_threads()
        if int(compression_threads) < 1:
            raise ValueError(f"compression_threads must be >= 1, got {compression_threads!r}")
        filter_options = _compression_filter(compression)
        self.compression_threads = int(compression_threads)
        self.path = Path(path)
        self.timestamps_unit = float(timestamps_unit)
        self.chunk_tags = int(chunk_tags)
        self.compression = compression
        self.flush_interval = flush_interval
        self._acquisition_duration = acquisition_duration
        self._detector_labels = dict(detector_labels or {})
        self.crash_safe = bool(crash_safe)
        mode = "w" if overwrite else "x"
        if self.crash_safe:
            self._file: h5py.File | None = h5py.File(
                self.path, mode, libver=SWMR_LIBVER, fs_strategy="none"
            )
        else:
            self._file = h5py.File(self.path, mode)
        self._first_timestamp: int | None = None
        self._last_timestamp: int | None = None
        self._committed = 0  # tags on disk in complete chunks
        self._buffer_ts = np.empty(self.chunk_tags, dtype=np.int64)
        self._buffer_det = np.empty(self.chunk_tags, dtype=np.uint8)
        self._buffer_fill = 0
        self._detector_counts = np.zeros(256, dtype=np.int64)
        self._last_flush = time.monotonic()
        try:
            self._write_layout(filter_options, description, author)
            if self.crash_safe:
                self._file.swmr_mode = True  # no object may be created from here on
        except BaseException:
            self._file.close()
            self._file = None
            raise

    # -- layout ------------------------------------------------------------------------------
    def _write_layout(self, filter_options: Any, description: str, author: str | None) -> None:
        f = self._require_open()
        f.attrs["format_name"] = _fixed_string(FORMAT_NAME)
        f.attrs["format_version"] = _fixed_string(FORMAT_VERSION)
        f["description"] = _fixed_string(description)
        f["acquisition_duration"] = 0.0
        photon_data = f.create_group("photon_data")
        for name, dtype in (("timestamps", np.int64), ("detectors", np.uint8)):
            photon_data.create_dataset(
                name,
                shape=(0,),
                maxshape=(None,),
                dtype=dtype,
                chunks=(self.chunk_tags,),
                **filter_options,
            )
        photon_data["timestamps_specs/timestamps_unit"] = self.timestamps_unit
        setup = f.create_group("setup")
        setup["num_pixels"] = 0
        setup["num_spots"] = 1
        setup["num_spectral_ch"] = 1
        setup["num_polarization_ch"] = 1
        setup["num_split_ch"] = 1
        setup["modulated_excitation"] = False
        setup["lifetime"] = False
        # one excitation source (the photon-generation pulses), not alternated; no
        # measurement_specs group: its checks need the laser repetition rate, unknown here
        setup["excitation_alternated"] = np.array([False])
        # rewritten in place by every flush (SWMR mode allows no new objects)
        detectors = setup.create_group("detectors")
        columns: list[tuple[str, Any]] = [("id", np.uint8), ("counts", np.int64)]
        if self._detector_labels:
            longest = max(len(label.encode("utf-8")) for label in self._detector_labels.values())
            columns.append(("label", f"S{max(longest, 1)}"))
        for name, dtype in columns:
            detectors.create_dataset(name, shape=(0,), maxshape=(256,), chunks=(256,),
                                     dtype=dtype)
        identity = f.create_group("identity")
        for name, text in (
            ("format_name", FORMAT_NAME),
            ("format_version", FORMAT_VERSION),
            ("format_url", FORMAT_URL),
            ("software", SOFTWARE),
            ("software_version", SOFTWARE_VERSION),
            ("creation_time", dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")),
            ("filename", self.path.name),
            ("filename_full", str(self.path.resolve())),
            *((("author", author),) if author is not None else ()),
        ):
            identity[name] = _fixed_string(text)
        for path, title in PHOTON_HDF5_TITLES.items():
            if path in f:
                f[path].attrs["TITLE"] = _fixed_string(title)

    def _require_open(self) -> h5py.File:
        if self._file is None:
            raise AnalysisError(f"{self.path}: time-tag writer is closed")
        return self._file

    # -- writing -----------------------------------------------------------------------------
    @property
    def n_tags(self) -> int:
        """Number of tags appended so far."""
        return self._committed + self._buffer_fill

    def append(self, timestamps: Any, detectors: Any) -> None:
        """Append tags; timestamps (integers, timestamp units) must not decrease.

        Raises:
            ValueError: the block is not ordered, or starts before the last appended tag.
        """
        self._require_open()
        timestamps, detectors = _as_tag_arrays(timestamps, detectors)
        n = len(timestamps)
        if n == 0:
            return
        bad = int(first_disorder(timestamps, timestamps[0]))  # one pass, no temporary
        if bad > 0:
            raise ValueError(
                f"timestamps decrease at index {bad} of this block "
                f"({timestamps[bad - 1]} -> {timestamps[bad]})"
            )
        if self._last_timestamp is not None and timestamps[0] < self._last_timestamp:
            raise ValueError(
                f"block starts at {timestamps[0]}, before the last appended tag "
                f"{self._last_timestamp}"
            )
        if self._first_timestamp is None:
            self._first_timestamp = int(timestamps[0])
        self._last_timestamp = int(timestamps[-1])
        count_channels(detectors, self._detector_counts)
        position = 0
        while position < n:
            if self._buffer_fill == 0 and n - position >= self.chunk_tags:
                whole = (n - position) // self.chunk_tags * self.chunk_tags
                self._write_range(
                    self._committed,
                    timestamps[position : position + whole],
                    detectors[position : position + whole],
                )
                self._committed += whole
                position += whole
                continue
            take = min(self.chunk_tags - self._buffer_fill, n - position)
            fill = self._buffer_fill
            self._buffer_ts[fill : fill + take] = timestamps[position : position + take]
            self._buffer_det[fill : fill + take] = detectors[position : position + take]
            self._buffer_fill += take
            position += take
            if self._buffer_fill == self.chunk_tags:
                self._write_range(self._committed, self._buffer_ts, self._buffer_det)
                self._committed += self.chunk_tags
                self._buffer_fill = 0
        if (
            self.flush_interval is not None
            and time.monotonic() - self._last_flush >= self.flush_interval
        ):
            self.flush()

    def _write_range(self, offset: int, timestamps: np.ndarray, detectors: np.ndarray) -> None:
        photon_data = self._require_open()["photon_data"]
        end = offset + len(timestamps)
        with _blosc_threads(self.compression_threads):
            for name, values in (("timestamps", timestamps), ("detectors", detectors)):
                dataset = photon_data[name]
                if dataset.shape[0] < end:
                    dataset.resize((end,))
                dataset[offset:end] = values

    def _write_metadata(self) -> None:
        f = self._require_open()
        if self._acquisition_duration is not None:
            duration = self._acquisition_duration
        elif self._first_timestamp is not None:
            duration = (self._last_timestamp - self._first_timestamp) * self.timestamps_unit
        else:
            duration = 0.0
        f["acquisition_duration"][()] = duration
        ids = np.flatnonzero(self._detector_counts).astype(np.uint8)
        setup = f["setup"]
        setup["num_pixels"][()] = len(ids)
        columns = {"id": ids, "counts": self._detector_counts[ids]}
        if self._detector_labels:
            columns["label"] = [self._detector_labels.get(int(i), "").encode("utf-8")
                                for i in ids]
        for name, values in columns.items():
            dataset = setup["detectors"][name]
            dataset.resize((len(ids),))
            if len(ids):
                dataset[:] = values

    def flush(self) -> None:
        """Write buffered tags and metadata and flush the file to the operating system."""
        if self._buffer_fill:
            fill = self._buffer_fill
            self._write_range(self._committed, self._buffer_ts[:fill], self._buffer_det[:fill])
        self._write_metadata()
        self._require_open().flush()
        self._last_flush = time.monotonic()

    def close(self) -> None:
        """Flush and close the file; further appends are an error. Idempotent.

        The file is closed (its handle released) even when the flush fails; the error is
        then raised, and a second call does nothing.
        """
        if self._file is None:
            return
        try:
            self.flush()
        finally:
            f, self._file = self._file, None
            f.close()

    def __enter__(self) -> TimeTagWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _open_for_reading(path: Path) -> h5py.File:
    """Open read-only; a file marked as open by a SWMR writer (one being written, or left by
    a crashed crash-safe writer) is opened in SWMR read mode."""
    try:
        return open_hdf5_for_reading(path)
    except MalformedFileError as plain_error:
        try:
            return h5py.File(path, "r", swmr=True)
        except OSError:
            raise plain_error from None


class TimeTagReader:
    """Reader of a Photon-HDF5 time-tag file, whole or chunk by chunk in bounded memory.

    Reads files of any :class:`TimeTagWriter` (crash-safe or not, closed or left by a
    crashed writer) and Photon-HDF5 files of other writers.

    Attributes:
        path: the file.
        timestamps_unit: seconds per timestamp unit.
        n_tags: number of tags in the timestamps array; in a file left by a crashed writer
            only the first :attr:`flushed_tag_count` of them are sure to be valid.
        acquisition_duration: seconds, or None if the file has none.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._file: h5py.File | None = _open_for_reading(self.path)
        try:
            self._validate()
        except BaseException:
            self.close()
            raise
        self._channels: list[int] | None = None

    def _validate(self) -> None:
        f = self._require_open()
        timestamps = f.get("photon_data/timestamps")
        if not isinstance(timestamps, h5py.Dataset):
            raise MalformedFileError(
                f"{self.path}: not a Photon-HDF5 time-tag file: missing /photon_data/timestamps"
            )
        if timestamps.ndim != 1 or timestamps.dtype.kind not in "iu":
            raise MalformedFileError(
                f"{self.path}: /photon_data/timestamps must be a 1-D integer array, "
                f"got shape {timestamps.shape} dtype {timestamps.dtype}"
            )
        unit = f.get("photon_data/timestamps_specs/timestamps_unit")
        if not isinstance(unit, h5py.Dataset):
            raise MalformedFileError(
                f"{self.path}: missing /photon_data/timestamps_specs/timestamps_unit"
            )
        try:
            self.timestamps_unit = float(unit[()])
        except (OSError, TypeError, ValueError) as error:
            raise MalformedFileError(f"{self.path}: unreadable timestamps_unit: {error}") from error
        if not (np.isfinite(self.timestamps_unit) and self.timestamps_unit > 0):
            raise MalformedFileError(
                f"{self.path}: timestamps_unit {self.timestamps_unit} is not a positive number"
            )
        detectors = f.get("photon_data/detectors")
        if detectors is not None:
            if not isinstance(detectors, h5py.Dataset) or detectors.shape != timestamps.shape:
                raise MalformedFileError(
                    f"{self.path}: /photon_data/detectors does not match timestamps in shape"
                )
            if detectors.dtype.kind not in "iu":
                raise MalformedFileError(
                    f"{self.path}: /photon_data/detectors must be integers, got {detectors.dtype}"
                )
        self._timestamps = timestamps
        self._detectors = detectors
        self.n_tags = int(timestamps.shape[0])
        duration = f.get("acquisition_duration")
        self.acquisition_duration = (
            float(duration[()]) if isinstance(duration, h5py.Dataset) else None
        )

    def _require_open(self) -> h5py.File:
        if self._file is None:
            raise AnalysisError(f"{self.path}: time-tag reader is closed")
        return self._file

    @property
    def chunk_tags(self) -> int:
        """The HDF5 chunk length of the timestamps (tags), or 1 Mi if not chunked."""
        chunks = self._timestamps.chunks
        return int(chunks[0]) if chunks else DEFAULT_CHUNK_TAGS

    @property
    def flushed_tag_count(self) -> int:
        """Tags the file held at its writer's last flush: the sum of
        ``/setup/detectors/counts``, which each flush of :class:`TimeTagWriter` writes
        after the tags (at most :attr:`n_tags`). Equals :attr:`n_tags` for a file closed
        normally or one without per-detector counts (other writers)."""
        counts = self._require_open().get("setup/detectors/counts")
        if not isinstance(counts, h5py.Dataset):
            return self.n_tags
        try:
            flushed = int(np.sum(counts[()], dtype=np.int64))
        except (OSError, TypeError, ValueError) as error:
            raise MalformedFileError(
                f"{self.path}: unreadable /setup/detectors/counts: {error}"
            ) from error
        return min(flushed, self.n_tags)

    @property
    def channels(self) -> list[int]:
        """Sorted detector ids present in the file (from /setup/detectors/id, else scanned)."""
        if self._channels is None:
            ids = self._require_open().get("setup/detectors/id")
            if isinstance(ids, h5py.Dataset):
                self._channels = sorted(int(i) for i in ids[()])
            else:
                seen = np.zeros(256, dtype=bool)
                for _, detectors in self.iter_chunks():
                    seen[np.unique(detectors)] = True
                self._channels = [int(i) for i in np.flatnonzero(seen)]
        return self._channels

    def _read(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        self._require_open()
        try:
            timestamps = self._timestamps[start:stop]
            if self._detectors is None:
                detectors = np.zeros(stop - start, dtype=np.uint8)
            else:
                detectors = self._detectors[start:stop]
        except (OSError, RuntimeError) as error:
            raise MalformedFileError(
                f"{self.path}: cannot read tags {start}..{stop}: {error}"
            ) from error
        timestamps, detectors = _as_tag_arrays(timestamps, detectors)
        return timestamps, detectors

    def iter_chunks(
        self, chunk_tags: int | None = None, start: int = 0, stop: int | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(timestamps int64, detectors uint8)`` blocks of at most ``chunk_tags`` tags.

        Memory use is bounded by the block size. Default block: the file's HDF5 chunk length.
        """
        step = self.chunk_tags if chunk_tags is None else int(chunk_tags)
        if step < 1:
            raise ValueError(f"chunk_tags must be >= 1, got {chunk_tags!r}")
        stop = self.n_tags if stop is None else min(int(stop), self.n_tags)
        if start < 0:
            raise ValueError(f"start must be >= 0, got {start}")
        for block_start in range(int(start), stop, step):
            yield self._read(block_start, min(block_start + step, stop))

    def read(self) -> tuple[np.ndarray, np.ndarray]:
        """Read the whole stream into memory."""
        return self._read(0, self.n_tags)

    def close(self) -> None:
        """Close the file. Idempotent."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> TimeTagReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"TimeTagReader({self.path}, n_tags={self.n_tags})"


def flushed_tag_count(path: str | Path) -> int:
    """Number of tags a time-tag file held at its writer's last flush; after a crash the
    first this many tags are the valid ones (see :attr:`TimeTagReader.flushed_tag_count`)."""
    with TimeTagReader(path) as reader:
        return reader.flushed_tag_count
