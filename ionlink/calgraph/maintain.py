"""Kelly et al.'s ``maintain``/``diagnose`` traversal (arXiv:1803.03226, section IV).

``maintain(node)`` first maintains the node's dependencies, then:

1. ``check_state``: passes (nothing to measure) when the node passed a check or calibration
   less than ``timeout_s`` ago, has not failed since, and no dependency was recalibrated after
   that pass;
2. else ``check_data``: in spec -> done; out of spec -> calibrate; bad data -> ``diagnose``
   each dependency (a bad measurement means something upstream is wrong), then calibrate.

``diagnose(node)`` re-measures a node with ``check_data``: in spec -> nothing to do; out of
spec or bad data -> calibrate. It differs from Kelly's in two ways, both so that a fault is
found where it is and not papered over downstream: (1) it diagnoses the node's dependencies
*before* measuring the node (Kelly walks upstream only on bad data; but when a laser has
unlocked, a downstream node's check can come out "out of spec" rather than "bad data", and
calibrating it on top of the broken dependency would store a wrong value); a node with a
failed dependency is not measured; (2) where Kelly returns without calibrating a bad-data
node whose dependencies were all fine, this one calibrates it: it is then the deepest node
whose data are bad, so either its calibration repairs it or its failure is the diagnosis
(reported as the root cause).

A node whose dependency failed is *blocked*: it is not measured (its measurement would use
a broken parameter), and it keeps its stored values. A calibration stores values only when
its fit succeeded, every value is plausible (:meth:`CalNode.plausible`) and, with ``verify``,
a fresh ``check_data`` measured with the proposed values (seen by that check only, nothing is
written before) is in spec (within the node's spec or, if wider, ``NOISE_K`` standard errors
of the difference of the two measurements: :class:`~ionlink.calgraph.node.CalNode`);
otherwise the old values stay and the attempt is recorded as rejected in the parameters'
provenance.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from artiq.experiment import TerminationRequested

from ionlink.calgraph.graph import CalGraph
from ionlink.calgraph.node import CalibrationResult, CheckResult, Verdict
from ionlink.calgraph.provenance import ParamStore

__all__ = ["STATE_KEY", "GraphState", "Maintainer", "NodeState"]

#: Persistent dataset holding the graph's node states (JSON).
STATE_KEY = "calgraph.state"


@dataclass
class NodeState:
    """What the graph remembers of a node between runs (times: seconds since the epoch)."""

    last_ok: float | None = None
    last_calibrated: float | None = None
    failed: bool = False
    message: str = ""

    def to_dict(self) -> dict:
        return {"last_ok": self.last_ok, "last_calibrated": self.last_calibrated,
                "failed": self.failed, "message": self.message}


@dataclass
class GraphState:
    """Node states of a graph, kept as JSON in the persistent dataset :data:`STATE_KEY`."""

    nodes: dict[str, NodeState] = field(default_factory=dict)

    def __getitem__(self, name: str) -> NodeState:
        return self.nodes.setdefault(name, NodeState())

    def to_json(self) -> str:
        return json.dumps({k: v.to_dict() for k, v in self.nodes.items()})

    @classmethod
    def from_json(cls, text: str | None) -> GraphState:
        """Parse :meth:`to_json` output (None or empty gives an empty state)."""
        if not text:
            return cls()
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError(f"{STATE_KEY} does not hold a JSON object")
        return cls({k: NodeState(v.get("last_ok"), v.get("last_calibrated"),
                                 bool(v.get("failed", False)), v.get("message", ""))
                    for k, v in raw.items()})


class Maintainer:
    """Runs the traversal on a graph and logs every step.

    :param graph: the calibration graph.
    :param store: calibrated values with provenance.
    :param state: node states (changed in place; the caller persists them).
    :param ctx: passed to the nodes' measurements; must offer ``get_param(key)``.
    :param clock: seconds since the epoch (``time.time`` on a real lab PC).
    :param rid: the run id recorded as the setter of new values.
    :param data: where this run's data are (results file), prefixed to each node's own.
    :param between_steps: called before each measurement (the experiment lets the scheduler
        run higher-priority experiments there; it may raise to end the traversal).
    :param verify: check a node with its proposed values before storing them; store only
        when that check is in spec.
    :param attempts: calibrations tried before a node is declared failed (a fit refused for
        its statistics alone should not raise a fault; a real fault fails every attempt).
    """

    def __init__(self, graph: CalGraph, store: ParamStore, state: GraphState, ctx: Any,
                 clock: Callable[[], float] = time.time, rid: int | None = None,
                 data: str = "", between_steps: Callable[[], None] | None = None,
                 verify: bool = True, attempts: int = 2) -> None:
        if attempts < 1:
            raise ValueError(f"attempts must be >= 1, not {attempts}")
        self.graph = graph
        self.store = store
        self.state = state
        self.ctx = ctx
        self.clock = clock
        self.rid = rid
        self.data = data
        self.between_steps = between_steps
        self.verify = verify
        self.attempts = attempts
        #: One dict per step: time, node, step, result, message, values.
        self.log: list[dict] = []
        #: Root causes found by diagnosis: node -> message.
        self.faults: dict[str, str] = {}
        self._done: dict[str, bool] = {}

    # ------------------------------------------------------------------ public
    def run(self, targets: list[str] | None = None) -> dict[str, bool]:
        """Maintain ``targets`` (default: every node), returning node -> ok for each node
        visited in this pass."""
        self._done = {}
        names = self.graph.order() if targets is None else self.graph.subgraph_order(targets)
        for name in names:
            self.maintain(name)
        return dict(self._done)

    def maintain(self, name: str) -> bool:
        """Kelly's ``maintain``: True when the node ends in a good state."""
        if name in self._done:
            return self._done[name]
        node = self.graph[name]
        deps_ok = [self.maintain(d) and not self.state[d].failed for d in node.dependencies]
        if not all(deps_ok):
            return self._block(name)
        passed, why = self.check_state(name)
        self._record(name, "check_state", "pass" if passed else "fail", why)
        if passed:
            return self._finish(name, True)
        result = self._check_data(name)
        if result.verdict is Verdict.IN_SPEC:
            self._mark_ok(name)
            return self._finish(name, True)
        if result.verdict is Verdict.BAD_DATA:
            memo: dict[str, bool] = {}
            for d in node.dependencies:
                self.diagnose(d, memo)
            if any(self.state[d].failed for d in node.dependencies):
                return self._block(name)
        ok = self._calibrate(name)
        if not ok and result.verdict is Verdict.BAD_DATA:
            self.faults[name] = (f"bad data ({result.message}) and calibration failed "
                                 f"({self.state[name].message})")
        return self._finish(name, ok)

    def diagnose(self, name: str, memo: dict[str, bool] | None = None) -> bool:
        """``diagnose`` (upstream first): True when the node was recalibrated."""
        memo = {} if memo is None else memo
        if name in memo:
            return memo[name]
        node = self.graph[name]
        for d in node.dependencies:
            self.diagnose(d, memo)
        failed = [d for d in node.dependencies if self.state[d].failed]
        if failed:
            self._record(name, "blocked", "blocked",
                         f"not measured: dependency {', '.join(failed)} failed")
            self._fail(name, f"blocked by failed {', '.join(failed)}", root=False)
            memo[name] = False
            return False
        result = self._check_data(name, step="diagnose")
        if result.verdict is Verdict.IN_SPEC:
            self._mark_ok(name)
            memo[name] = False
            return False
        ok = self._calibrate(name)
        if not ok and result.verdict is Verdict.BAD_DATA:
            self.faults[name] = (f"bad data ({result.message}) and calibration failed "
                                 f"({self.state[name].message})")
        memo[name] = ok
        return ok

    def check_state(self, name: str) -> tuple[bool, str]:
        """Whether the node can be trusted without measuring, and why (not)."""
        node = self.graph[name]
        st = self.state[name]
        if st.failed:
            return False, f"failed earlier: {st.message}"
        if st.last_ok is None:
            return False, "never checked"
        now = self.clock()
        age = now - st.last_ok
        if age > node.timeout_s:
            return False, f"timed out ({age:.0f} s > {node.timeout_s:.0f} s)"
        for d in node.dependencies:
            dep = self.state[d]
            if dep.last_calibrated is not None and dep.last_calibrated > st.last_ok:
                return False, f"dependency {d} recalibrated since"
        return True, f"checked {age:.0f} s ago"

    # ------------------------------------------------------------------ steps
    def _check_data(self, name: str, step: str = "check_data", proposed: dict | None = None,
                    proposed_errors: dict | None = None) -> CheckResult:
        self._pause()
        node = self.graph[name]
        try:
            result = node.check_data(self.ctx) if proposed is None else node.check_data(
                self.ctx, proposed, proposed_errors=proposed_errors)
        except TerminationRequested:
            raise
        except Exception as e:  # a crashing measurement is bad data, logged with its cause
            result = CheckResult(Verdict.BAD_DATA, {}, f"{type(e).__name__}: {e}")
        self._record(name, step, result.verdict.value, result.message, result.measured,
                     result.data)
        return result

    def _calibrate(self, name: str) -> bool:
        for _ in range(self.attempts):
            if self._calibrate_once(name):
                self.faults.pop(name, None)
                return True
        return False

    def _calibrate_once(self, name: str) -> bool:
        self._pause()
        node = self.graph[name]
        try:
            result = node.calibrate(self.ctx)
        except TerminationRequested:
            raise
        except Exception as e:
            result = CalibrationResult(False, {}, f"{type(e).__name__}: {e}")
        self._record(name, "calibrate", "ok" if result.ok else "failed", result.message,
                     result.values, result.data)
        if not result.ok:
            return self._fail(name, f"calibration failed: {result.message}")
        why = node.plausible(result.values)
        if why is not None:
            self._reject(name, result, why)
            return self._fail(name, f"calibration rejected: {why}")
        if self.verify and node.params and getattr(node, "verify_after_calibrate", True):
            proposed = {p: result.values[p] for p in node.params}
            check = self._check_data(name, step="verify", proposed=proposed,
                                     proposed_errors=dict(result.errors))
            if check.verdict is not Verdict.IN_SPEC:
                why = f"verification after calibration: {check.verdict.value} ({check.message})"
                self._reject(name, result, why)
                return self._fail(name, why)
        now = self.clock()
        data = self._data_ref(result.data)
        for p in node.params:
            self.store.update(p, result.values[p], rid=self.rid, time_s=now, data=data,
                              node=name, note=result.message, error=result.errors.get(p))
        st = self.state[name]
        st.last_calibrated = st.last_ok = self.clock()
        st.failed, st.message = False, result.message
        return True

    def _reject(self, name: str, result: CalibrationResult, why: str) -> None:
        node = self.graph[name]
        now = self.clock()
        for p in node.params:
            if p in result.values:
                self.store.record_rejection(p, result.values[p], rid=self.rid, time_s=now,
                                            data=self._data_ref(result.data), node=name,
                                            note=why)
        self._record(name, "reject", "rejected", why, result.values)

    # ------------------------------------------------------------------ bookkeeping
    def _pause(self) -> None:
        if self.between_steps is not None:
            self.between_steps()

    def _data_ref(self, own: str) -> str:
        if not own or not self.data:
            return self.data or own
        return own if own.startswith(self.data) else f"{self.data}:{own}"

    def _mark_ok(self, name: str) -> None:
        st = self.state[name]
        st.last_ok = self.clock()
        st.failed, st.message = False, "in spec"

    def _fail(self, name: str, message: str, root: bool = True) -> bool:
        st = self.state[name]
        st.failed, st.message = True, message
        if root:
            self.faults[name] = message
        return False

    def _block(self, name: str) -> bool:
        bad = [d for d in self.graph[name].dependencies
               if self.state[d].failed or not self._done.get(d, True)]
        self._record(name, "blocked", "blocked",
                     f"not measured: dependency {', '.join(bad)} failed or blocked")
        return self._finish(name, False)

    def _finish(self, name: str, ok: bool) -> bool:
        self._done[name] = ok
        return ok

    def _record(self, name: str, step: str, result: str, message: str = "",
                values: dict | None = None, data: str = "") -> None:
        clean = {}
        for k, v in (values or {}).items():
            try:
                f = float(v)
                clean[k] = f if math.isfinite(f) else None
            except (TypeError, ValueError):
                clean[k] = None
        self.log.append({"time": self.clock(), "node": name, "step": step, "result": result,
                         "message": message, "values": clean, "data": data,
                         "rid": self.rid})
