"""Calibration status board: each calibrated parameter, its value, age, whether it is in
spec, and its last change.

Parameters are the persistent datasets ``calib.<name>`` (no further dot: scan results
``calib.<scan>.x`` etc. are not parameters) and every parameter with a provenance history
(also one never stored, e.g. whose calibrations were all rejected). The calibration graph
(:mod:`ionlink.calgraph`) adds, all optional:

- provenance ``provenance.calib.<name>``: a JSON list of entries ``{"action", "value",
  "previous", "rid", "time", ...}`` oldest first (``action`` "calibrated", "rollback",
  "rejected"; an entry may carry a ``"verdict"`` "in_spec" / "out_of_spec" / "bad_data");
- node states ``calgraph.state`` (``--state``): JSON ``{node: {"last_ok",
  "last_calibrated", "failed", "message"}}``;
- a spec ``calgraph.spec`` (``--spec``): ``{"calib.<name>": {"min", "max", "timeout_s",
  "node"}}``; without it the bounds, timeouts and owning nodes of the graph's node
  definitions (:data:`ionlink.calgraph.iontrap.NODE_DEFS`, ions a and b).

Status, first that applies: "failed" (the owning node's state), "rejected" (the newest
provenance entry), the newest entry's verdict, "out of spec" outside [min, max], "stale"
when older than ``timeout_s``, "in spec" when a spec or a passing check exists, else "no
spec". The age counts from the newest of: provenance entries that are not rejections, the
node's last passing check and last calibration; "now" is the wall clock, or the newest
time in provenance or state if later (a simulated night runs on a lab clock ahead of the
wall clock). Values show their metadata's unit; without one, names with frequency,
resonance, linewidth or rabi are shown in Hz and names with time, delay, t2 or tau in s.
Run: ``python -m applets.calibration_board results/dataset_db.pyon`` (or ``RESULTS_DIR``).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import QtGui, QtWidgets

from applets import _launch
from applets._widgets import AppletWidget, MissingData, dataset, format_age, format_si

DATASETS = (
    _launch.DatasetArg("spec", "calgraph.spec", "spec per parameter (min, max, timeout_s)"),
    _launch.DatasetArg("state", "calgraph.state", "the calibration graph's node states"),
)
PARAMETER_PREFIX = "calib."
PROVENANCE_PREFIX = "provenance."
PREFIXES = (PARAMETER_PREFIX, PROVENANCE_PREFIX + PARAMETER_PREFIX)
PARAMETER = re.compile(r"^calib\.[^.]+$")
COLUMNS = ("parameter", "value", "spec", "age", "status", "last change")
STATUS_COLOURS = {"in spec": (190, 235, 190), "out of spec": (250, 180, 180),
                  "rejected": (250, 180, 180), "bad data": (250, 180, 180),
                  "stale": (255, 225, 160), "no spec": (225, 225, 225),
                  "failed": (250, 180, 180)}
VERDICTS = {"in_spec": "in spec", "out_of_spec": "out of spec", "bad_data": "bad data"}
HERTZ_WORDS = ("frequency", "resonance", "linewidth", "rabi")
SECOND_WORDS = ("time", "delay", "t2", "tau")


@dataclass(frozen=True)
class ParameterRow:
    """One parameter: value (as stored; None if never stored) and as shown, age (s, None
    without provenance or graph state), status, the last change and the spec as text, and
    the number of provenance entries."""

    key: str
    value: Any
    value_text: str
    age_s: float | None
    status: str
    last_change: str
    entries: int
    spec: str


def _json(text_or_obj: Any, what: str) -> Any:
    if isinstance(text_or_obj, (bytes, np.bytes_)):
        text_or_obj = text_or_obj.decode()
    if isinstance(text_or_obj, str):
        try:
            return json.loads(text_or_obj)
        except ValueError:
            raise ValueError(f"{what} is not valid JSON") from None
    return text_or_obj


def _scalar(value: Any) -> bool:
    return isinstance(value, (bool, int, float, str, np.generic))


def display_unit(key: str, metadata: dict) -> tuple[str, float, bool]:
    """(unit, scale, SI prefix wanted) to show ``key``: its metadata's unit and scale, else a
    unit guessed from the name (frequencies, line widths and resonances in Hz; times,
    delays and T2 in s, both with an SI prefix), else none."""
    if metadata.get("unit"):
        return str(metadata["unit"]), float(metadata.get("scale") or 1.0), False
    name = key.rsplit(".", 1)[-1]
    if any(word in name for word in HERTZ_WORDS):
        return "Hz", 1.0, True
    if any(word in name for word in SECOND_WORDS):
        return "s", 1.0, True
    return "", 1.0, False


def _format_value(value: Any, unit: tuple[str, float, bool]) -> str:
    if value is None:
        return "\u2014"
    if isinstance(value, (bool, str, np.bool_)):
        return str(value)
    symbol, scale, prefixed = unit
    if prefixed:
        return format_si(float(value), symbol, 6)
    return f"{float(value) / scale:.6g} {symbol}".strip()


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


def _status(value: Any, history: list[dict], spec: dict | None, state: dict | None,
            age: float | None) -> str:
    newest = history[-1] if history else {}
    if state is not None and state.get("failed"):
        return "failed"
    if newest.get("action") == "rejected":
        return "rejected"
    if newest.get("verdict") in VERDICTS:
        status = VERDICTS[newest["verdict"]]
    elif state is not None and state.get("last_ok") is not None:
        status = "in spec"
    else:
        status = "no spec"
    if status in ("no spec", "in spec") and spec:
        low, high = spec.get("min"), spec.get("max")
        number = float(value) if value is not None and not isinstance(value, str) else None
        if number is not None and ((low is not None and number < low)
                                   or (high is not None and number > high)):
            return "out of spec"
        if spec.get("timeout_s") is not None and age is not None \
                and age > float(spec["timeout_s"]):
            return "stale"
        if low is not None or high is not None or spec.get("timeout_s") is not None:
            return "in spec"
    return status


def parameter_row(key: str, value: Any, metadata: dict, history: list[dict],
                  spec: dict | None, now_s: float, state: dict | None = None) -> ParameterRow:
    """The board's row for one parameter (see the module documentation for the rules);
    ``value`` None: never stored; ``state``: the owning graph node's entry of
    ``calgraph.state`` (``last_ok``, ``last_calibrated``, ``failed``, ``message``)."""
    unit = display_unit(key, metadata)
    times = [float(e["time"]) for e in history
             if e.get("action") != "rejected" and e.get("time") is not None]
    if state is not None:
        times += [float(state[k]) for k in ("last_ok", "last_calibrated")
                  if state.get(k) is not None]
    age = now_s - max(times) if times else None
    changes = [e for e in history if e.get("action") in ("calibrated", "rollback")]
    parts = []
    if changes:
        e = changes[-1]
        previous = "none" if e.get("previous") is None else _format_value(e["previous"], unit)
        rid = "" if e.get("rid") is None else f", rid {e['rid']}"
        parts.append(f"{previous} \u2192 {_format_value(e.get('value'), unit)} "
                     f"({e.get('action')}{rid}, {_when(float(e['time']))})")
    newest = history[-1] if history else {}
    if newest.get("action") == "rejected":
        rid = "" if newest.get("rid") is None else f" by rid {newest['rid']}"
        parts.append(f"{_format_value(newest.get('value'), unit)} rejected{rid} "
                     f"{_when(float(newest['time']))}")
    if state is not None and state.get("failed") and state.get("message"):
        parts.append(str(state["message"]))
    return ParameterRow(key, value, _format_value(value, unit), age,
                        _status(value, history, spec, state, age),
                        "; ".join(parts) or "\u2014", len(history), _format_spec(spec, unit))


def _format_spec(spec: dict | None, unit: tuple[str, float, bool]) -> str:
    if not spec:
        return "\u2014"
    low, high = spec.get("min"), spec.get("max")
    parts = []
    if low is not None and high is not None:
        parts.append(f"{_format_value(low, unit)} \u2013 {_format_value(high, unit)}")
    elif low is not None:
        parts.append(f"\u2265 {_format_value(low, unit)}")
    elif high is not None:
        parts.append(f"\u2264 {_format_value(high, unit)}")
    if spec.get("timeout_s") is not None:
        parts.append(f"every {format_age(float(spec['timeout_s']))}")
    return ", ".join(parts)


def spec_from_graph(ions: Sequence[str] = ("a", "b")) -> dict[str, dict]:
    """``{param: {"min", "max", "timeout_s", "node"}}`` from the calibration graph's node
    definitions (bounds and timeout of the node owning each parameter, and its name)."""
    from ionlink.calgraph.iontrap import NODE_DEFS

    spec: dict[str, dict] = {}
    for node in NODE_DEFS:
        for ion in ions:
            for param in node.params:
                entry: dict[str, Any] = {"timeout_s": float(node.timeout_s),
                                         "node": node.name.format(ion=ion)}
                bounds = node.bounds.get(param)
                if bounds is not None:
                    entry["min"], entry["max"] = (float(b) for b in bounds)
                spec[param.format(ion=ion)] = entry
    return spec


def compute_rows(value: dict, metadata: dict, spec: Any = None, state: Any = None,
                 now_s: float | None = None) -> list[ParameterRow]:
    """Rows, sorted by name, for every scalar ``calib.<name>`` dataset and every parameter
    with a ``provenance.calib.<name>`` history (never stored: value None).

    :param spec: ``{param: {"min", "max", "timeout_s", "node"}}`` (dict or JSON text).
    :param state: the calibration graph's ``calgraph.state`` (dict or JSON text): per
        node ``last_ok``, ``last_calibrated`` (s since the epoch), ``failed``, ``message``.
    :param now_s: the time ages count to (default: see the module documentation).
    """
    specs = {} if spec is None else _json(spec, "the spec dataset")
    if not isinstance(specs, dict):
        raise ValueError("the spec must map parameter names to {min, max, timeout_s}")
    states = {} if state is None else _json(state, "the graph state dataset")
    if not isinstance(states, dict):
        raise ValueError("the graph state must map node names to their state")
    keys = {k for k in value if PARAMETER.match(k) and _scalar(value[k])}
    keys |= {k[len(PROVENANCE_PREFIX):] for k in value if k.startswith(PROVENANCE_PREFIX)
             and PARAMETER.match(k[len(PROVENANCE_PREFIX):])}
    if not keys:
        raise MissingData("no calibrated parameters (calib.<name> datasets) yet")
    histories: dict[str, list[dict]] = {}
    for key in keys:
        raw = value.get(PROVENANCE_PREFIX + key)
        history = [] if raw is None else _json(raw, PROVENANCE_PREFIX + key)
        if not isinstance(history, list):
            raise ValueError(f"{PROVENANCE_PREFIX + key} must be a list of entries")
        histories[key] = history
    if now_s is None:
        times = [float(e["time"]) for h in histories.values() for e in h
                 if e.get("time") is not None]
        times += [float(st[k]) for st in states.values() if isinstance(st, dict)
                  for k in ("last_ok", "last_calibrated") if st.get(k) is not None]
        now_s = max([time.time()] + times)
    rows = []
    for key in sorted(keys):
        param_spec = specs.get(key)
        node_state = states.get(param_spec.get("node")) if param_spec else None
        rows.append(parameter_row(key, value.get(key), metadata.get(key) or {},
                                  histories[key], param_spec, now_s, node_state))
    return rows


class CalibrationBoardWidget(AppletWidget):
    """A table: parameter, value, age, status (coloured), last change."""

    name = "Calibration status"

    def __init__(self, args, req=None) -> None:
        super().__init__(args, req)
        self.table = QtWidgets.QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setFocusPolicy(pg.QtCore.Qt.FocusPolicy.NoFocus)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.NoSelection)
        self.content.addWidget(self.table)
        self._graph_spec: dict | None = None

    def compute(self, value: dict, metadata: dict) -> list[ParameterRow]:
        spec = dataset(value, self.args, "spec", required=False)
        if spec is None:
            if self._graph_spec is None:
                self._graph_spec = spec_from_graph()
            spec = self._graph_spec
        return compute_rows(value, metadata, spec,
                            dataset(value, self.args, "state", required=False))

    def show_view(self, rows: list[ParameterRow]) -> None:
        self.table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            age = format_age(row.age_s)
            texts = (row.key[len(PARAMETER_PREFIX):],
                     row.value_text, row.spec, age, row.status, row.last_change)
            for j, text in enumerate(texts):
                item = QtWidgets.QTableWidgetItem(text)
                if j == COLUMNS.index("status"):
                    item.setBackground(QtGui.QColor(*STATUS_COLOURS.get(row.status,
                                                                        (255, 255, 255))))
                self.table.setItem(i, j, item)
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setStretchLastSection(True)
        counts = {}
        for row in rows:
            counts[row.status] = counts.get(row.status, 0) + 1
        self.status.setText(f"{len(rows)} parameters: " + ", ".join(
            f"{n} {status}" for status, n in sorted(counts.items())))


def main(argv: Sequence[str] | None = None) -> None:
    """Run the applet (see the module documentation for the command line)."""
    _launch.run(CalibrationBoardWidget, DATASETS, __doc__, argv,
                prefixes=PREFIXES)


if __name__ == "__main__":
    main()
