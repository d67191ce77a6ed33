"""Calibrated parameters with provenance: who set each value, when, from which data.

Values live in persistent datasets (the keys experiments read, e.g.
``calib.frequency_729_a``); the history of each parameter lives beside it in the persistent
dataset ``provenance.<key>``: a JSON list of entries, oldest first, each
``{"action", "value", "previous", "rid", "time", "data", "node", "note"}`` (``time`` in
seconds since the epoch), plus ``"error"`` (the value's standard error) when the
calibration gave one. Keeping provenance in datasets (not in a file of its own) means
it works unchanged on a real ARTIQ master (the experiment cannot know where the master keeps
its dataset database), is visible in the dashboard, and travels with the values when the
database is copied; ``ionlink calib rollback`` edits the same database file offline.

:class:`ParamStore` works on two callables, so it serves an experiment
(``get_dataset``/``set_dataset(persist=True)``) and the offline database alike.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

__all__ = ["HISTORY_PREFIX", "ParamStore", "ProvenanceError"]

#: Dataset key prefix of a parameter's history.
HISTORY_PREFIX = "provenance."


class ProvenanceError(ValueError):
    """A rollback or history request cannot be honoured; the message says why."""


class ParamStore:
    """Calibrated values and their histories.

    :param get: ``get(key) -> value``, raising KeyError when the dataset does not exist.
    :param set: ``set(key, value)`` stores a persistent dataset.
    :param history_limit: entries kept per parameter (oldest dropped first).
    """

    def __init__(self, get: Callable[[str], Any], set: Callable[[str, Any], None],
                 history_limit: int = 500) -> None:
        if history_limit < 2:
            raise ValueError(f"history_limit must be >= 2, not {history_limit}")
        self._get = get
        self._set = set
        self.history_limit = history_limit

    def value(self, key: str) -> Any:
        """The stored value of ``key``, or None when it was never set."""
        try:
            return self._get(key)
        except KeyError:
            return None

    def history(self, key: str) -> list[dict]:
        """The entries of ``key``, oldest first (empty when it has none)."""
        try:
            raw = self._get(HISTORY_PREFIX + key)
        except KeyError:
            return []
        try:
            entries = json.loads(raw)
        except (TypeError, ValueError):
            raise ProvenanceError(f"dataset {HISTORY_PREFIX + key} does not hold a JSON "
                                  "list") from None
        if not isinstance(entries, list):
            raise ProvenanceError(f"dataset {HISTORY_PREFIX + key} does not hold a JSON list")
        return entries

    def update(self, key: str, value: Any, *, rid: int | None, time_s: float, data: str = "",
               node: str = "", action: str = "calibrated", note: str = "",
               error: float | None = None) -> dict:
        """Store ``value`` for ``key`` and append an entry recording the previous value
        (and, when known, ``error``: the value's standard error, same unit)."""
        if isinstance(value, float) and not math.isfinite(value):
            raise ProvenanceError(f"refusing to store non-finite {key} = {value}")
        previous = self.value(key)
        entry = {"action": action, "value": _plain(value), "previous": _plain(previous),
                 "rid": rid, "time": float(time_s), "data": data, "node": node, "note": note}
        if error is not None:
            entry["error"] = _plain(error)
        history = self.history(key)
        history.append(entry)
        history = history[-self.history_limit:]
        self._set(key, value)
        self._set(HISTORY_PREFIX + key, json.dumps(history))
        return entry

    def error(self, key: str) -> float | None:
        """Standard error recorded with the value ``key`` holds now (None: not recorded,
        e.g. after a rollback or for a value set outside the graph)."""
        changes = [e for e in self.history(key) if e.get("action") != "rejected"]
        if not changes or changes[-1].get("value") != _plain(self.value(key)):
            return None
        err = changes[-1].get("error")
        return float(err) if isinstance(err, (int, float)) and math.isfinite(err) else None

    def rollback(self, key: str, to_rid: int | None = None, *, rid: int | None = None,
                 time_s: float, note: str = "") -> dict:
        """Restore ``key`` to the value it had before its last change, or (``to_rid``) to the
        value run ``to_rid`` stored; the rollback is itself recorded."""
        history = self.history(key)
        changes = [e for e in history if e.get("action") != "rejected"]
        if not changes:
            raise ProvenanceError(f"{key} has no recorded history to roll back")
        if to_rid is None:
            target = changes[-1].get("previous")
            if target is None:
                raise ProvenanceError(f"{key} had no value before rid {changes[-1].get('rid')}")
            what = f"value before rid {changes[-1].get('rid')}"
        else:
            setters = [e for e in changes if e.get("rid") == to_rid]
            if not setters:
                rids = sorted({e.get("rid") for e in changes if e.get("rid") is not None})
                raise ProvenanceError(f"rid {to_rid} never set {key} (rids that did: "
                                      f"{', '.join(map(str, rids)) or 'none'})")
            target = setters[-1]["value"]
            what = f"value set by rid {to_rid}"
        return self.update(key, target, rid=rid, time_s=time_s, data=what, action="rollback",
                           note=note)

    def record_rejection(self, key: str, value: Any, *, rid: int | None, time_s: float,
                         data: str, node: str, note: str) -> dict:
        """Record a proposed value that was not stored (the stored value is unchanged)."""
        entry = {"action": "rejected", "value": _plain(value), "previous": _plain(self.value(key)),
                 "rid": rid, "time": float(time_s), "data": data, "node": node, "note": note}
        history = self.history(key)
        history.append(entry)
        self._set(HISTORY_PREFIX + key, json.dumps(history[-self.history_limit:]))
        return entry


def _plain(value: Any) -> Any:
    """A JSON-friendly copy of a dataset value (numpy scalars become Python numbers)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return value
    item = getattr(value, "item", None)
    if item is not None:
        try:
            return _plain(item())
        except (TypeError, ValueError):
            pass
    return repr(value)
