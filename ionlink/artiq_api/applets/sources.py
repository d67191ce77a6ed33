"""Dataset sources for applets without an ARTIQ master: results files and dataset databases.

An applet normally receives the master's broadcast datasets as a ``sync_struct`` mapping
``key -> (persist, value, metadata)`` and then a stream of modifications ("mods"). Without a
master, :class:`FileSource` builds the same mapping from files on disk:

- an ARTIQ results file (``.h5``): ``datasets/`` (this run's archived values, ``persist``
  False) over ``archive/`` (values the run read from the dataset database, ``persist``
  True), with the ``unit``/``scale``/``precision`` attributes as metadata;
- a dataset database (``dataset_db.pyon``, key -> ``(value, metadata)``): persistent values;
- a results directory (``RESULTS/YYYY-MM-DD/HH/*.h5`` plus ``RESULTS/dataset_db.pyon``): the
  database and, over it, the newest results file, so following the directory follows the
  run in progress (the runner checkpoints its results file while the run goes) and then
  each new run.

:meth:`FileSource.poll` re-reads what changed on disk and returns the mods that turn the
previous mapping into the new one, in ``sync_struct``'s format: ``{"action": "init",
"struct": ...}`` first, then ``{"action": "setitem", "path": [], "key": k, "value": (persist,
value, metadata)}`` and ``{"action": "delitem", "path": [], "key": k}``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

__all__ = ["FileSource", "SourceError", "read_dataset_db", "read_results_file",
           "newest_results_file", "diff_mods"]

RESULTS_SUFFIXES = (".h5", ".hdf5")
DATASET_DB_NAME = "dataset_db.pyon"
METADATA_ATTRS = ("unit", "scale", "precision")

Entry = tuple[bool, Any, dict]


class SourceError(Exception):
    """A dataset source cannot be read; the message names the file and the reason."""


def _plain(value: Any) -> Any:
    """h5py values as applets expect them: bytes -> str, 0-d arrays -> Python scalars."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "SO" and value.ndim == 0:
            return _plain(value[()])
        return value
    if isinstance(value, np.generic):
        return value.item()
    return value


def _read_group(group: h5py.Group, persist: bool, into: dict[str, Entry]) -> None:
    for key, item in group.items():
        if not isinstance(item, h5py.Dataset):
            continue
        metadata = {name: _plain(item.attrs[name]) for name in METADATA_ATTRS
                    if name in item.attrs}
        into[key] = (persist, _plain(item[()]), metadata)


def read_results_file(path: str | os.PathLike) -> dict[str, Entry]:
    """``key -> (persist, value, metadata)`` of an ARTIQ results file (``datasets/`` over
    ``archive/``); SourceError when it is not readable or lacks ``datasets/``."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            if "datasets" not in f:
                raise SourceError(f"{path}: not an ARTIQ results file (no datasets/ group)")
            data: dict[str, Entry] = {}
            if "archive" in f:
                _read_group(f["archive"], True, data)
            _read_group(f["datasets"], False, data)
            return data
    except OSError as e:
        raise SourceError(f"{path}: cannot read results file: {e}") from None


def read_dataset_db(path: str | os.PathLike) -> dict[str, Entry]:
    """``key -> (True, value, metadata)`` of a dataset database file (PYON)."""
    from ionlink.runner import pyon

    path = Path(path)
    try:
        stored = pyon.load_file(path)
    except OSError as e:
        raise SourceError(f"{path}: cannot read dataset database: {e}") from None
    except Exception as e:  # a malformed file: name it
        raise SourceError(f"{path}: not a PYON dataset database: {e}") from None
    if not isinstance(stored, dict):
        raise SourceError(f"{path}: dataset database does not hold a dict")
    data: dict[str, Entry] = {}
    for key, entry in stored.items():
        if not (isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[1], dict)):
            raise SourceError(f"{path}: entry {key!r} is not a (value, metadata) pair")
        data[key] = (True, entry[0], dict(entry[1]))
    return data


def newest_results_file(root: str | os.PathLike) -> Path | None:
    """The results file with the highest rid under ``root/YYYY-MM-DD/HH/`` (None if none)."""
    best: tuple[int, Path] | None = None
    for path in Path(root).glob("*/*/*"):
        if path.suffix not in RESULTS_SUFFIXES:
            continue
        head = path.name.partition("-")[0]
        if head.isdigit() and (best is None or int(head) > best[0]):
            best = (int(head), path)
    return None if best is None else best[1]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        try:
            return bool(np.array_equal(np.asarray(a), np.asarray(b)))
        except (TypeError, ValueError):
            return False
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def diff_mods(old: dict[str, Entry], new: dict[str, Entry]) -> list[dict]:
    """The ``sync_struct`` mods that turn mapping ``old`` into ``new`` (top level only)."""
    mods: list[dict] = []
    for key, entry in new.items():
        previous = old.get(key)
        if (previous is None or previous[0] != entry[0] or not _same(previous[1], entry[1])
                or previous[2] != entry[2]):
            mods.append({"action": "setitem", "path": [], "key": key, "value": entry})
    for key in old:
        if key not in new:
            mods.append({"action": "delitem", "path": [], "key": key})
    return mods


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class FileSource:
    """Datasets from a results file, a dataset database or a results directory.

    :param path: a results file (``.h5``), a ``.pyon`` dataset database, or a results
        directory (its ``dataset_db.pyon`` plus its newest results file).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise SourceError(f"{self.path}: no such file or directory")
        if self.path.is_file() and self.path.suffix not in RESULTS_SUFFIXES + (".pyon",):
            raise SourceError(f"{self.path}: expected a results file (.h5), a dataset "
                              "database (.pyon) or a results directory")
        self.data: dict[str, Entry] | None = None
        self.current_file: Path | None = None
        self._stamps: dict[Path, tuple | None] = {}

    def _files(self) -> list[Path]:
        """The files to read, lowest precedence first."""
        if self.path.is_dir():
            files = [self.path / DATASET_DB_NAME]
            newest = newest_results_file(self.path)
            if newest is not None:
                files.append(newest)
            return files
        return [self.path]

    def _read(self, files: list[Path]) -> dict[str, Entry]:
        data: dict[str, Entry] = {}
        for path in files:
            if not path.exists():
                continue
            if path.suffix == ".pyon":
                data.update(read_dataset_db(path))
            else:
                data.update(read_results_file(path))
                self.current_file = path
        return data

    def poll(self) -> list[dict]:
        """Re-read the files that changed since the last call; return the mods (an
        ``init`` mod on the first call, then ``setitem``/``delitem`` mods, maybe none)."""
        files = self._files()
        stamps = {path: _stamp(path) for path in files}
        if self.data is not None and stamps == self._stamps:
            return []
        new = self._read(files)
        self._stamps = stamps
        if self.data is None:
            self.data = new
            return [{"action": "init", "struct": dict(new)}]
        mods = diff_mods(self.data, new)
        self.data = new
        return mods
