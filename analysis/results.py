"""Read ARTIQ master results files (HDF5) and find them in a results directory tree.

Layout (as written by the ARTIQ master and by ionlink's runner)::

    results/YYYY-MM-DD/HH/{rid:09d}-{ClassName}.h5
        artiq_version   str
        rid             int
        start_time      int, unix seconds (UTC)
        run_time        float, unix seconds
        expid           JSON (ionlink) or PYON (ARTIQ) string: file, class_name, arguments,
                        log_level, repo_rev
        datasets/       archived dataset values, one HDF5 dataset per key (keys may contain dots)
        archive/        values read from the dataset database

Each dataset may carry the attributes ``unit``, ``scale`` and ``precision``.
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from analysis import pyon
from analysis.errors import AnalysisError, MalformedFileError, open_hdf5_for_reading

__all__ = [
    "DatasetGroup",
    "ResultsFile",
    "find",
    "iter_results",
    "load",
    "load_rid",
]

METADATA_ATTRS = ("unit", "scale", "precision")
REQUIRED_ROOT_DATASETS = ("rid", "start_time", "expid")
FILE_NAME_PATTERN = re.compile(r"^(?P<rid>\d{9,})-(?P<class_name>[A-Za-z_][A-Za-z0-9_]*)\.h5$")
DAY_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")
HOUR_PATTERN = re.compile(r"^\d{2}$")


def _to_python(value: Any) -> Any:
    """Convert an h5py read result to a plain value: bytes become str, 0-d arrays scalars."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "O":
            return np.array(
                [v.decode("utf-8") if isinstance(v, bytes) else v for v in value.ravel()],
                dtype=object,
            ).reshape(value.shape)
        if value.dtype.kind == "S":
            return np.char.decode(value, "utf-8")
    return value


class DatasetGroup(Mapping):
    """Read-only, lazy mapping ``name -> value`` over one group of a results file.

    Values are read from disk only when accessed: scalars come back as numpy scalars (or
    ``str``), arrays as ``numpy.ndarray``. Names containing dots are plain names.
    """

    def __init__(self, results: ResultsFile, group_name: str):
        self._results = results
        self._group_name = group_name

    def _group(self) -> h5py.Group | None:
        handle = self._results._require_open()
        group = handle.get(self._group_name)
        return group if isinstance(group, h5py.Group) else None

    def _dataset(self, name: str) -> h5py.Dataset:
        group = self._group()
        item = group.get(name) if group is not None else None
        if not isinstance(item, h5py.Dataset):
            raise KeyError(
                f"{name!r}: no such dataset in {self._group_name}/ of {self._results.path}"
            )
        return item

    def __getitem__(self, name: str) -> Any:
        dataset = self._dataset(name)
        try:
            return _to_python(dataset[()])
        except (OSError, RuntimeError) as error:
            raise MalformedFileError(
                f"{self._results.path}: cannot read {self._group_name}/{name}: {error}"
            ) from error

    def __iter__(self) -> Iterator[str]:
        group = self._group()
        if group is None:
            return iter(())
        return iter([name for name, item in group.items() if isinstance(item, h5py.Dataset)])

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, name: object) -> bool:
        group = self._group()
        return (
            isinstance(name, str)
            and group is not None
            and isinstance(group.get(name), h5py.Dataset)
        )

    def metadata(self, name: str) -> dict[str, Any]:
        """Return the display metadata (``unit``, ``scale``, ``precision``) set on ``name``.

        Only attributes present in the file appear in the result.
        """
        attrs = self._dataset(name).attrs
        return {key: _to_python(attrs[key]) for key in METADATA_ATTRS if key in attrs}

    def shape(self, name: str) -> tuple[int, ...]:
        """Return the shape of dataset ``name`` without reading its values."""
        return tuple(self._dataset(name).shape)

    def __repr__(self) -> str:
        return f"DatasetGroup({self._results.path}, {self._group_name!r})"


class ResultsFile:
    """An open ARTIQ results file; use :func:`load` to create one.

    Attributes:
        path: file path.
        rid: run identifier.
        start_time: start of the run as a timezone-aware UTC ``datetime``.
        run_time: time the run stage began, unix seconds (float), or None if absent.
        expid: the experiment id dictionary.
        class_name, arguments: taken from ``expid``.
        artiq_version: version string of the writer, or None if absent.
        datasets: lazy mapping of archived datasets (``datasets/``).
        archive: lazy mapping of values read from the dataset database (``archive/``).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._handle: h5py.File | None = open_hdf5_for_reading(self.path)
        try:
            self._read_header()
        except BaseException:
            self.close()
            raise
        self.datasets = DatasetGroup(self, "datasets")
        self.archive = DatasetGroup(self, "archive")

    def _read_root(self, name: str) -> Any:
        handle = self._require_open()
        item = handle.get(name)
        if not isinstance(item, h5py.Dataset):
            raise MalformedFileError(f"{self.path}: not an ARTIQ results file: missing /{name}")
        try:
            return _to_python(item[()])
        except (OSError, RuntimeError) as error:
            raise MalformedFileError(f"{self.path}: cannot read /{name}: {error}") from error

    def _read_header(self) -> None:
        handle = self._require_open()
        missing = [name for name in REQUIRED_ROOT_DATASETS if name not in handle]
        if "datasets" not in handle:
            missing.append("datasets/")
        if missing:
            raise MalformedFileError(
                f"{self.path}: not an ARTIQ results file: missing {', '.join(missing)}"
            )
        try:
            self.rid = int(self._read_root("rid"))
            start_seconds = int(self._read_root("start_time"))
        except (TypeError, ValueError) as error:
            raise MalformedFileError(
                f"{self.path}: /rid or /start_time is not an integer: {error}"
            ) from error
        self.start_time = dt.datetime.fromtimestamp(start_seconds, tz=dt.timezone.utc)
        self.run_time = float(self._read_root("run_time")) if "run_time" in handle else None
        self.artiq_version = (
            str(self._read_root("artiq_version")) if "artiq_version" in handle else None
        )
        expid = self._decode_expid(self._read_root("expid"))
        if "class_name" not in expid:
            raise MalformedFileError(f"{self.path}: /expid has no 'class_name'")
        self.expid: dict[str, Any] = expid
        self.class_name: str = expid["class_name"]
        self.arguments: dict[str, Any] = dict(expid.get("arguments") or {})

    def _decode_expid(self, text: Any) -> dict[str, Any]:
        """/expid as a dict: JSON (ionlink runner) or PYON v1/v2 (ARTIQ master, sipyco.pyon).
        Always decoded as PYON, which reads plain JSON too: v2 is JSON text whose
        ``{"__jsonclass__": ...}`` objects (tuples, arrays, ...) json.loads would leave as
        dicts."""
        if not isinstance(text, str):
            raise MalformedFileError(f"{self.path}: /expid is not a string")
        try:
            expid = pyon.decode(text)
        except pyon.PyonError as error:
            raise MalformedFileError(
                f"{self.path}: /expid is neither JSON nor PYON: {error}") from error
        if not isinstance(expid, dict):
            raise MalformedFileError(f"{self.path}: /expid is not a dictionary")
        return expid

    def _require_open(self) -> h5py.File:
        if self._handle is None:
            raise AnalysisError(f"{self.path}: results file is closed")
        return self._handle

    def close(self) -> None:
        """Close the underlying HDF5 file; values already read stay valid."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> ResultsFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ResultsFile(rid={self.rid}, class_name={self.class_name!r}, path={self.path})"


def load(path: str | Path) -> ResultsFile:
    """Open the ARTIQ results file at ``path``.

    Raises:
        FileNotFoundError: the file does not exist.
        MalformedFileError: the file is truncated, not HDF5, or lacks the ARTIQ layout.
    """
    return ResultsFile(path)


def _as_date(value: dt.date | str, what: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        if value == "today":
            return dt.date.today()
        try:
            return dt.date.fromisoformat(value)
        except ValueError as error:
            raise ValueError(f"{what}: {value!r} is not a date in YYYY-MM-DD form") from error
    raise TypeError(f"{what}: expected a date or 'YYYY-MM-DD' string, got {type(value).__name__}")


def _day_range(day: Any) -> tuple[dt.date, dt.date] | None:
    if day is None:
        return None
    if isinstance(day, (tuple, list)):
        if len(day) != 2:
            raise ValueError(f"day: a range must be (first, last), got {day!r}")
        first, last = _as_date(day[0], "day[0]"), _as_date(day[1], "day[1]")
        if last < first:
            raise ValueError(f"day: range {first}..{last} is empty")
        return first, last
    one = _as_date(day, "day")
    return one, one


def _hour_range(hour: Any) -> tuple[int, int] | None:
    if hour is None:
        return None
    if isinstance(hour, (tuple, list)):
        if len(hour) != 2:
            raise ValueError(f"hour: a range must be (first, last), got {hour!r}")
        first, last = int(hour[0]), int(hour[1])
    else:
        first = last = int(hour)
    if not (0 <= first <= last <= 23):
        raise ValueError(f"hour: {hour!r} is not an hour or an inclusive range within 0..23")
    return first, last


def find(
    root: str | Path,
    *,
    rid: int | None = None,
    day: Any = None,
    hour: Any = None,
    class_name: str | None = None,
) -> list[Path]:
    """Find results files under ``root`` (the ``results`` directory).

    Args:
        root: directory holding ``YYYY-MM-DD/HH/`` sub-directories.
        rid: only this run id.
        day: a date, ``'YYYY-MM-DD'``, ``'today'``, or an inclusive ``(first, last)`` range.
        hour: an hour 0..23 or an inclusive ``(first, last)`` range.
        class_name: only files of this experiment class.

    Returns:
        Paths sorted by day, hour and rid. Only file names are inspected; entries that look
        like results but have malformed names are skipped with a warning.
    """
    root = Path(root)
    if not root.is_dir():
        raise AnalysisError(f"results root {root} is not a directory")
    days = _day_range(day)
    hours = _hour_range(hour)
    found: list[tuple[str, str, int, Path]] = []
    for day_dir in sorted(root.iterdir()):
        if not day_dir.is_dir():
            continue
        if not DAY_PATTERN.match(day_dir.name):
            warnings.warn(f"{day_dir}: skipped, directory name is not YYYY-MM-DD", stacklevel=2)
            continue
        try:
            day_date = dt.date.fromisoformat(day_dir.name)
        except ValueError:
            warnings.warn(f"{day_dir}: skipped, {day_dir.name} is not a valid date", stacklevel=2)
            continue
        if days is not None and not (days[0] <= day_date <= days[1]):
            continue
        for hour_dir in sorted(day_dir.iterdir()):
            if not hour_dir.is_dir():
                continue
            if not HOUR_PATTERN.match(hour_dir.name) or int(hour_dir.name) > 23:
                warnings.warn(
                    f"{hour_dir}: skipped, directory name is not an hour HH", stacklevel=2
                )
                continue
            if hours is not None and not (hours[0] <= int(hour_dir.name) <= hours[1]):
                continue
            for file in hour_dir.iterdir():
                if file.suffix != ".h5":
                    continue
                match = FILE_NAME_PATTERN.match(file.name)
                if match is None:
                    warnings.warn(
                        f"{file}: skipped, file name is not {{rid:09d}}-{{ClassName}}.h5",
                        stacklevel=2,
                    )
                    continue
                file_rid = int(match["rid"])
                if rid is not None and file_rid != rid:
                    continue
                if class_name is not None and match["class_name"] != class_name:
                    continue
                found.append((day_dir.name, hour_dir.name, file_rid, file))
    found.sort(key=lambda entry: entry[:3])
    return [entry[3] for entry in found]


def iter_results(root: str | Path, **filters: Any) -> Iterator[ResultsFile]:
    """Open each file :func:`find` returns; skip unreadable ones with a warning.

    The caller closes each yielded :class:`ResultsFile` (or uses it as a context manager).
    ``filters`` are the keyword arguments of :func:`find`.
    """
    for path in find(root, **filters):
        try:
            results = load(path)
        except (MalformedFileError, OSError) as error:
            warnings.warn(f"{path}: skipped, {error}", stacklevel=2)
            continue
        yield results


def load_rid(root: str | Path, rid: int) -> ResultsFile:
    """Open the results file of run ``rid`` under ``root``.

    Raises:
        AnalysisError: no file, or more than one file, has this rid.
        MalformedFileError: the file is unreadable.
    """
    paths = find(root, rid=rid)
    if not paths:
        raise AnalysisError(f"no results file with rid {rid} under {root}")
    if len(paths) > 1:
        raise AnalysisError(
            f"rid {rid} is ambiguous under {root}: " + ", ".join(str(p) for p in paths)
        )
    return load(paths[0])
