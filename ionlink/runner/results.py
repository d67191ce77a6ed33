"""Results files in the ARTIQ master's layout, and run ids (RIDs).

A results file ``<root>/YYYY-MM-DD/HH/{rid:09d}-{ClassName}.h5`` (local time of the run's
start, as ARTIQ) holds, as ARTIQ's worker writes them:

- root datasets ``artiq_version`` (str), ``rid`` (int), ``start_time`` and ``run_time``
  (float seconds since the epoch; ARTIQ stores both as doubles since 3.0), and ``expid``
  (PYON text of the expid dict: ``file``, ``class_name``, ``arguments``, ``log_level``,
  ``repo_rev``, ...);
- groups ``datasets/`` and ``archive/`` from :meth:`DatasetManager.write_hdf5`.

Every write goes to a temporary file in the same folder that then replaces the results
file, so the file on disk is always complete; :class:`ResultsWriter` uses this to write the
same file again and again during a long run (``checkpoint()``) and once more at the end.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import h5py

from ionlink.runner import pyon
from ionlink.runner.datasets import DatasetManager

__all__ = ["RidCounter", "ResultsWriter", "results_path", "write_results"]

logger = logging.getLogger(__name__)


def results_path(root: str | os.PathLike, start_time: float, rid: int,
                 class_name: str) -> Path:
    """Return ``root/YYYY-MM-DD/HH/{rid:09d}-{class_name}.h5`` for a run started at
    ``start_time`` (seconds since the epoch; local time, as ARTIQ)."""
    if not isinstance(rid, int) or rid < 0:
        raise ValueError(f"rid must be a non-negative int, not {rid!r}")
    if not class_name or "/" in class_name or "\\" in class_name:
        raise ValueError(f"class name {class_name!r} cannot be used in a file name")
    local = time.localtime(start_time)
    return (Path(root) / time.strftime("%Y-%m-%d", local) / time.strftime("%H", local)
            / f"{rid:09d}-{class_name}.h5")


def write_results(path: str | os.PathLike, dataset_mgr: DatasetManager, rid: int,
                  start_time: float, run_time: float | None, expid: dict,
                  artiq_version: str) -> Path:
    """Write a complete results file at ``path`` (replacing it atomically) and return it.

    Safe to call from an exception handler: whatever the dataset manager holds is written.
    ``run_time`` None (the run stage never started) leaves the ``run_time`` dataset out.
    Datasets HDF5 cannot hold are left out and reported by a TypeError raised after the
    file is in place.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".",
                                             suffix=".tmp")
    os.close(descriptor)
    dataset_error = None
    try:
        with h5py.File(temporary, "w") as f:
            try:
                dataset_mgr.write_hdf5(f)
            except TypeError as e:
                dataset_error = e
            f["artiq_version"] = artiq_version
            f["rid"] = rid
            f["start_time"] = float(start_time)
            if run_time is not None:
                f["run_time"] = float(run_time)
            f["expid"] = pyon.encode(expid)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    if dataset_error is not None:
        raise dataset_error
    return path


class ResultsWriter:
    """Writes one run's results file, repeatedly if wanted, each time a complete file.

    :param path: the results file (see :func:`results_path`).
    :param dataset_mgr: the run's datasets.
    :param rid: the run id.
    :param start_time: when the run was built, seconds since the epoch.
    :param expid: the run's expid dict.
    :param artiq_version: the ARTIQ version string recorded in the file.
    """

    def __init__(self, path: str | os.PathLike, dataset_mgr: DatasetManager, rid: int,
                 start_time: float, expid: dict, artiq_version: str) -> None:
        self.path = Path(path)
        self.dataset_mgr = dataset_mgr
        self.rid = rid
        self.start_time = start_time
        self.expid = expid
        self.artiq_version = artiq_version
        #: When the run stage started (seconds since the epoch); set by the runner.
        self.run_time: float | None = None
        self.closed = False

    def checkpoint(self) -> Path:
        """Write the results gathered so far; the file stays valid if the run dies later."""
        if self.closed:
            raise RuntimeError(f"results file {self.path} is already closed")
        return write_results(self.path, self.dataset_mgr, self.rid, self.start_time,
                             self.run_time, self.expid, self.artiq_version)

    def close(self) -> Path:
        """Write the final results file; later checkpoints are refused."""
        path = self.checkpoint()
        self.closed = True
        return path


class RidCounter:
    """Hands out increasing run ids, remembered across runs in ``last_rid.pyon``.

    :param root: the results folder. The last rid is kept in ``root/last_rid.pyon`` (as
        ARTIQ's ``last_rid.pyon``); when that file is missing the results folder is scanned
        for ``YYYY-MM-DD/HH/{rid:09d}-*.h5`` files, as ARTIQ does.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.cache_path = self.root / "last_rid.pyon"

    def last(self) -> int:
        """Return the last rid handed out (-1 when none)."""
        if self.cache_path.exists():
            text = self.cache_path.read_text().strip()
            try:
                return int(text)
            except ValueError:
                raise ValueError(f"{self.cache_path} does not hold a run id: "
                                 f"{text[:40]!r}") from None
        return self._last_from_results()

    def get(self) -> int:
        """Return the next rid and remember it."""
        rid = self.last() + 1
        self.root.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=self.root, prefix="last_rid.",
                                                 suffix=".tmp")
        with os.fdopen(descriptor, "w") as f:
            f.write(f"{rid}\n")
        os.replace(temporary, self.cache_path)
        return rid

    def _last_from_results(self) -> int:
        last = -1
        if not self.root.is_dir():
            return last
        for day in self.root.iterdir():
            if not (day.is_dir() and re.fullmatch(r"\d{4}-\d{2}-\d{2}", day.name)):
                continue
            for hour in day.iterdir():
                if not (hour.is_dir() and re.fullmatch(r"\d\d(-\d\d)?", hour.name)):
                    continue
                for entry in hour.iterdir():
                    match = re.fullmatch(r"(\d{9})-.*\.h5", entry.name)
                    if match:
                        last = max(last, int(match.group(1)))
        return last


def read_expid(f: Any) -> dict:
    """Return the expid dict stored in an open results file."""
    raw = f["expid"][()]
    return pyon.decode(raw.decode() if isinstance(raw, bytes) else raw)
