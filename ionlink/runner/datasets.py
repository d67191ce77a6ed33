"""Datasets: the persistent dataset database and the per-run dataset manager.

:class:`DatasetDB` plays the ARTIQ master's dataset database: it holds every broadcast
dataset as ``(persist, value, metadata)`` and keeps the persistent ones in a PYON file
(``dataset_db.pyon``; the master uses LMDB), written atomically by :meth:`DatasetDB.save`.

:class:`DatasetManager` plays the worker's dataset manager, with ARTIQ's rules:

- ``set(key, value, metadata, broadcast, persist, archive)``: ``persist`` implies
  ``broadcast``; a broadcast dataset is published to the database at once (a copy, as if it
  crossed the worker/master pipe); setting it again without ``broadcast`` removes it from
  the database; ``archive`` keeps it for this run's results file; neither broadcast nor
  archive logs a warning (the value is then kept nowhere).
- ``mutate`` and ``append_to`` change the run's value and publish the change when the
  dataset is broadcast.
- ``get(key, archive)`` looks in this run's archived values first, then in the database
  (which holds this run's broadcasts as well); with ``archive`` a database value is recorded
  for the ``archive/`` group of the results file.

Live consumers (applets) register a callable in :attr:`DatasetManager.on_broadcast`; it is
called with one dict per published change:
``{"action": "set", "key", "persist", "value", "metadata"}``,
``{"action": "delete", "key"}``, ``{"action": "mutate", "key", "index", "value"}`` or
``{"action": "append", "key", "value"}``.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable
from operator import setitem
from pathlib import Path
from typing import Any

from ionlink.runner import pyon

__all__ = ["DatasetDB", "DatasetManager", "slice_index"]

logger = logging.getLogger(__name__)


class DatasetDB:
    """The dataset database: broadcast datasets in memory, persistent ones in a file.

    :param path: the PYON file holding the persistent datasets (created on first save).
        It maps key -> ``(value, metadata)``.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._data: dict[str, tuple[bool, Any, dict]] = {}
        if self.path.exists():
            stored = pyon.load_file(self.path)
            if not isinstance(stored, dict):
                raise ValueError(f"dataset database {self.path} does not hold a dict")
            for key, entry in stored.items():
                if not (isinstance(entry, tuple) and len(entry) == 2):
                    raise ValueError(f"dataset database {self.path}: entry '{key}' is not "
                                     "a (value, metadata) pair")
                value, metadata = entry
                self._data[key] = (True, value, metadata)

    def __contains__(self, key: str) -> bool:
        return key in self._data

    def keys(self) -> list[str]:
        """Return the keys of all datasets in the database."""
        return list(self._data)

    def get(self, key: str) -> Any:
        """Return the value of ``key`` (the stored object itself); KeyError when absent."""
        return self._data[key][1]

    def get_metadata(self, key: str) -> dict:
        """Return the metadata dict of ``key``; KeyError when absent."""
        return self._data[key][2]

    def is_persistent(self, key: str) -> bool:
        """True when ``key`` is kept across runs; KeyError when absent."""
        return self._data[key][0]

    def set(self, key: str, value: Any, persist: bool | None = None,
            metadata: dict | None = None) -> None:
        """Set ``key``; ``persist``/``metadata`` None keep those of an existing entry."""
        old = self._data.get(key)
        if persist is None:
            persist = old[0] if old is not None else False
        if metadata is None:
            metadata = old[2] if old is not None else {}
        self._data[key] = (persist, value, metadata)

    def delete(self, key: str) -> None:
        """Remove ``key``; KeyError when absent."""
        del self._data[key]

    def save(self) -> None:
        """Write the persistent datasets to :attr:`path` atomically."""
        persistent = {key: (value, metadata)
                      for key, (persist, value, metadata) in self._data.items() if persist}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        pyon.store_file(self.path, persistent)


def slice_index(index: Any) -> Any:
    """Turn ARTIQ's ``mutate_dataset`` index into a Python index.

    A tuple of integers means ``slice(*index)``; a tuple of tuples means one slice per
    dimension; anything else (an int) is used as it is.
    """
    if isinstance(index, tuple):
        if index and isinstance(index[0], tuple):
            return tuple(slice(*part) for part in index)
        return slice(*index)
    return index


class DatasetManager:
    """The datasets of one run (see the module documentation for the rules).

    :param db: the dataset database the run reads from and broadcasts to.
    """

    def __init__(self, db: DatasetDB) -> None:
        self.db = db
        self.local: dict[str, Any] = {}
        self.archive: dict[str, Any] = {}
        self.metadata: dict[str, dict] = {}
        self._archive_metadata: dict[str, dict] = {}
        self._broadcast: dict[str, Any] = {}
        #: Callables receiving each published change (see the module documentation).
        self.on_broadcast: list[Callable[[dict], None]] = []

    def _publish(self, change: dict) -> None:
        for callback in self.on_broadcast:
            callback(change)

    def set(self, key: str, value: Any, metadata: dict, broadcast: bool, persist: bool,
            archive: bool) -> None:
        """Set dataset ``key`` (see the module documentation)."""
        if not isinstance(key, str) or not key:
            raise ValueError(f"dataset key must be a non-empty str, not {key!r}")
        if persist:
            broadcast = True
        if not (broadcast or archive):
            logger.warning("Dataset '%s' will not be stored. Both 'broadcast' and "
                           "'archive' are set to False.", key)
        if broadcast:
            self._broadcast[key] = value
            published = copy.deepcopy(value)
            self.db.set(key, published, persist, dict(metadata))
            self._publish({"action": "set", "key": key, "persist": persist,
                           "value": published, "metadata": dict(metadata)})
        elif key in self._broadcast:
            del self._broadcast[key]
            if key in self.db:
                self.db.delete(key)
            self._publish({"action": "delete", "key": key})
        if archive:
            self.local[key] = value
        else:
            self.local.pop(key, None)
        self.metadata[key] = metadata

    def _mutation_target(self, key: str) -> Any:
        if key in self._broadcast:
            return self._broadcast[key]
        if key in self.local:
            return self.local[key]
        raise KeyError(f"Cannot mutate nonexistent dataset '{key}' "
                       "(set it with set_dataset in this experiment first)")

    def mutate(self, key: str, index: Any, value: Any) -> None:
        """Set ``dataset[index] = value`` (index as in :func:`slice_index`)."""
        target = self._mutation_target(key)
        python_index = slice_index(index)
        setitem(target, python_index, value)
        if key in self._broadcast:
            published = copy.deepcopy(value)
            setitem(self.db.get(key), python_index, published)
            self._publish({"action": "mutate", "key": key, "index": index,
                           "value": published})

    def append_to(self, key: str, value: Any) -> None:
        """Append ``value`` to the list dataset ``key``."""
        target = self._mutation_target(key)
        if not hasattr(target, "append"):
            raise TypeError(f"Cannot append to dataset '{key}' of type "
                            f"{type(target).__name__} (it must be a list)")
        target.append(value)
        if key in self._broadcast:
            published = copy.deepcopy(value)
            self.db.get(key).append(published)
            self._publish({"action": "append", "key": key, "value": published})

    def get(self, key: str, archive: bool = False) -> Any:
        """Return dataset ``key``: this run's archived value, else a copy of the database's
        (KeyError when in neither). With ``archive``, record the database value for the
        results file (a second read overwrites the record, with a warning, as ARTIQ)."""
        if key in self.local:
            return self.local[key]
        data = copy.deepcopy(self.db.get(key))
        if archive:
            if key in self.archive:
                logger.warning("Dataset '%s' is already in archive, overwriting", key)
            self.archive[key] = data
            self._archive_metadata[key] = dict(self.db.get_metadata(key))
        return data

    def get_metadata(self, key: str) -> dict:
        """Return the metadata of ``key``: this run's, else the database's (KeyError)."""
        if key in self.metadata:
            return self.metadata[key]
        return self.db.get_metadata(key)

    def write_hdf5(self, f: Any) -> None:
        """Write groups ``datasets/`` (archived values) and ``archive/`` (database values
        read) into the open h5py file or group ``f``, one HDF5 dataset per key (named by
        the key, dots kept), with attributes ``unit``, ``scale``, ``precision`` where set.

        Every writable dataset is written; then a TypeError names those HDF5 cannot hold.
        """
        failures = []
        datasets_group = f.create_group("datasets")
        for key, value in self.local.items():
            failures += _write_dataset(datasets_group, key, value, self.metadata.get(key, {}))
        archive_group = f.create_group("archive")
        for key, value in self.archive.items():
            metadata = self.metadata.get(key, self._archive_metadata.get(key, {}))
            failures += _write_dataset(archive_group, key, value, metadata)
        if failures:
            raise TypeError("Could not write to HDF5: " + "; ".join(failures))


def _write_dataset(group: Any, key: str, value: Any, metadata: dict) -> list[str]:
    """Write one dataset; return [] on success, else a one-item list describing the error."""
    try:
        group[key] = value
        for name, attribute in metadata.items():
            if attribute is not None:
                group[key].attrs[name] = attribute
    except (TypeError, ValueError) as e:
        if key in group:
            del group[key]
        return [f"dataset '{key}' of type '{type(value).__name__}': {e}"]
    return []
