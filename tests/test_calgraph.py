"""The calibration-graph framework on synthetic nodes: order, timeouts, dependency-triggered
recalibration, diagnosis of bad data, refusal of bad calibrations, provenance and rollback,
and the morning report."""

from __future__ import annotations

import json

import pytest

from ionlink.calgraph import (
    CalGraph,
    FunctionNode,
    GraphError,
    GraphState,
    Maintainer,
    MeasurementError,
    ParamStore,
    ProvenanceError,
)
from ionlink.calgraph.report import build_report, render_html


class Lab:
    """Synthetic lab: true values that the test moves by hand, a clock, a dataset dict,
    and a count of every measurement."""

    def __init__(self):
        self.now = 1.0e9
        self.truth = {"p.a": 10.0, "p.b": 5.0, "p.c": 1.0}
        self.broken: set[str] = set()
        self.datasets: dict = {}
        self.calls: list[tuple[str, str]] = []
        self.store = ParamStore(self.datasets.__getitem__, self.datasets.__setitem__)

    def clock(self):
        return self.now

    def get_param(self, key):
        return self.store.value(key)

    def measure(self, node, key, kind, deps=()):
        """A measurement of ``key``: bad data when the node or a dependency's stored value is
        far from the truth (its measurement uses that value), else the true value."""
        def f(ctx):
            self.calls.append((node, kind))
            if node in self.broken:
                raise MeasurementError(f"{node} broken")
            for d in deps:
                stored = self.store.value(d)
                if stored is None or abs(stored - self.truth[d]) > 1.0:
                    raise MeasurementError(f"{node} sees no signal ({d} wrong)")
            return {key: self.truth[key]}
        return f


def make_graph(lab, timeout=100.0):
    a = FunctionNode("a", lab.measure("a", "p.a", "check"), lab.measure("a", "p.a", "cal"),
                     params=("p.a",), timeout_s=timeout, tolerance={"p.a": 0.5},
                     bounds={"p.a": (0.0, 100.0)})
    b = FunctionNode("b", lab.measure("b", "p.b", "check", ["p.a"]),
                     lab.measure("b", "p.b", "cal", ["p.a"]), params=("p.b",),
                     dependencies=("a",), timeout_s=timeout, tolerance={"p.b": 0.2})
    c = FunctionNode("c", lab.measure("c", "p.c", "check", ["p.b"]),
                     lab.measure("c", "p.c", "cal", ["p.b"]), params=("p.c",),
                     dependencies=("b",), timeout_s=timeout, tolerance={"p.c": 0.1})
    # given out of order on purpose
    return CalGraph([c, a, b])


def maintainer(lab, graph, rid=1, verify=True):
    return Maintainer(graph, lab.store, lab.state, lab, clock=lab.clock, rid=rid,
                      data=f"rid{rid}.h5", verify=verify)


@pytest.fixture
def lab():
    lab = Lab()
    lab.state = GraphState()
    return lab


def test_order_puts_dependencies_first(lab):
    g = make_graph(lab)
    assert g.order() == ["a", "b", "c"]
    assert g.dependents("a") == ["b"]
    assert g.ancestors("c") == ["a", "b"]
    assert g.subgraph_order(["b"]) == ["a", "b"]


def test_malformed_graphs_are_refused(lab):
    def node(name, deps=(), params=()):
        return FunctionNode(name, dict, dict, params=params, dependencies=deps)

    with pytest.raises(GraphError, match="cycle: x -> y -> x"):
        CalGraph([node("x", ("y",)), node("y", ("x",))])
    with pytest.raises(GraphError, match="unknown node 'z'"):
        CalGraph([node("x", ("z",))])
    with pytest.raises(GraphError, match="owned by both"):
        CalGraph([node("x", params=("k",)), node("y", params=("k",))])
    with pytest.raises(ValueError, match="timeout_s"):
        FunctionNode("x", dict, dict, timeout_s=0)


def test_first_pass_calibrates_in_order_then_timeouts_decide(lab):
    g = make_graph(lab)
    m = maintainer(lab, g)
    assert m.run() == {"a": True, "b": True, "c": True}
    # never calibrated: each is checked (no stored value: out of spec), then calibrated
    assert [c for c in lab.calls if c[1] == "cal"] == [("a", "cal"), ("b", "cal"), ("c", "cal")]
    assert lab.datasets["p.c"] == 1.0
    lab.calls.clear()
    lab.now += 50.0  # within the timeout: nothing is measured
    assert maintainer(lab, g).run() == {"a": True, "b": True, "c": True}
    assert lab.calls == []
    lab.now += 60.0  # 110 s > 100 s: every node is checked once, nothing recalibrated
    m = maintainer(lab, g)
    m.run()
    assert lab.calls == [("a", "check"), ("b", "check"), ("c", "check")]
    assert all("timed out" in e["message"] for e in m.log if e["step"] == "check_state")


def test_recalibrating_a_dependency_forces_dependents_to_be_checked(lab):
    g = make_graph(lab, timeout=100.0)
    maintainer(lab, g).run()
    lab.now += 10.0
    lab.state["a"].last_ok = lab.now - 1000.0  # only a has timed out
    lab.truth["p.a"] = 10.3  # a drifted, within a's tolerance of 0.5 -> in spec
    lab.calls.clear()
    maintainer(lab, g).run()
    assert lab.calls == [("a", "check")]  # b, c trusted: a was not recalibrated
    lab.state["a"].last_ok = lab.now - 1000.0
    lab.truth["p.a"] = 11.0  # out of spec -> a recalibrated -> b must be checked; b is in
    # spec (not recalibrated), so c stays trusted
    lab.calls.clear()
    m = maintainer(lab, g)
    m.run()
    assert lab.calls == [("a", "check"), ("a", "cal"), ("a", "check"), ("b", "check")]
    assert any("dependency a recalibrated" in e["message"] for e in m.log)


def test_bad_data_is_diagnosed_upstream_and_repaired(lab):
    g = make_graph(lab)
    maintainer(lab, g).run()
    lab.now += 1000.0
    lab.truth["p.a"] = 13.0  # a is far off: b's measurement sees no signal
    lab.state["a"].last_ok = lab.now  # a still trusted by check_state
    lab.calls.clear()
    m = maintainer(lab, g)
    assert m.run() == {"a": True, "b": True, "c": True}
    assert lab.datasets["p.a"] == 13.0
    steps = [(e["node"], e["step"], e["result"]) for e in m.log]
    assert ("b", "check_data", "bad_data") in steps
    assert ("a", "diagnose", "out_of_spec") in steps
    i_diag = steps.index(("a", "diagnose", "out_of_spec"))
    assert steps[i_diag + 1] == ("a", "calibrate", "ok")
    assert m.faults == {}


def test_a_broken_node_is_the_diagnosis_and_blocks_dependents(lab):
    g = make_graph(lab)
    maintainer(lab, g).run()
    good = dict(lab.datasets)
    lab.now += 1000.0
    lab.broken.add("a")
    m = maintainer(lab, g, rid=2)
    assert m.run() == {"a": False, "b": False, "c": False}
    assert set(m.faults) == {"a"} and "a broken" in m.faults["a"]
    assert [e["result"] for e in m.log if e["node"] == "c"] == ["blocked"]
    for key in ("p.a", "p.b", "p.c"):
        assert lab.datasets[key] == good[key]  # nothing overwritten
    # repaired: the next run recalibrates and clears the failure
    lab.broken.clear()
    lab.now += 10.0
    assert maintainer(lab, g, rid=3).run() == {"a": True, "b": True, "c": True}
    assert not lab.state["a"].failed


def test_bad_data_from_a_dependency_found_by_diagnosis(lab):
    g = make_graph(lab)
    maintainer(lab, g).run()
    lab.now += 1000.0
    lab.broken.add("a")
    lab.state["a"].last_ok = lab.now  # a trusted, so maintain(b) meets bad data first
    lab.truth["p.a"] = 20.0
    m = maintainer(lab, g)
    m.run()
    assert set(m.faults) == {"a"}
    assert ("a", "diagnose", "bad_data") in [(e["node"], e["step"], e["result"]) for e in m.log]
    assert lab.datasets["p.a"] == 10.0


def test_implausible_or_unverified_calibrations_never_overwrite(lab):
    g = make_graph(lab)
    maintainer(lab, g, rid=1).run()
    lab.now += 1000.0
    lab.truth["p.a"] = 150.0  # outside a's plausible range [0, 100]
    m = maintainer(lab, g, rid=2)
    m.run()
    assert lab.datasets["p.a"] == 10.0
    assert "plausible range" in m.faults["a"]
    hist = lab.store.history("p.a")
    assert hist[-1]["action"] == "rejected" and hist[-1]["value"] == 150.0
    assert hist[-1]["previous"] == 10.0 and hist[-1]["rid"] == 2

    # a calibration whose value the verification check does not confirm is not stored
    lab2 = Lab()
    lab2.state = GraphState()
    flaky = iter([{"p.a": 10.0}, {"p.a": 12.0}])
    node = FunctionNode("a", lambda ctx: {"p.a": lab2.truth["p.a"]}, lambda ctx: next(flaky),
                        params=("p.a",), tolerance={"p.a": 0.5})
    g2 = CalGraph([node])
    maintainer(lab2, g2, rid=1).run()
    lab2.now += 1e4
    lab2.truth["p.a"] = 11.0  # out of spec; the calibration proposes 12 -> verify fails
    m2 = maintainer(lab2, g2, rid=2)
    assert m2.run() == {"a": False}
    assert lab2.datasets["p.a"] == 10.0
    assert [e["action"] for e in lab2.store.history("p.a")] == ["calibrated", "rejected"]


def test_provenance_and_rollback(lab):
    store = lab.store
    store.update("k", 1.0, rid=10, time_s=1.0, data="f10.h5", node="n")
    store.update("k", 2.0, rid=11, time_s=2.0, data="f11.h5", node="n")
    store.update("k", 3.0, rid=12, time_s=3.0, data="f12.h5", node="n")
    h = store.history("k")
    assert [(e["value"], e["previous"], e["rid"], e["data"]) for e in h] == [
        (1.0, None, 10, "f10.h5"), (2.0, 1.0, 11, "f11.h5"), (3.0, 2.0, 12, "f12.h5")]
    store.rollback("k", time_s=4.0)
    assert lab.datasets["k"] == 2.0
    store.rollback("k", to_rid=10, time_s=5.0)
    assert lab.datasets["k"] == 1.0
    assert store.history("k")[-1]["action"] == "rollback"
    with pytest.raises(ProvenanceError, match="rid 99 never set k .*10, 11, 12"):
        store.rollback("k", to_rid=99, time_s=6.0)
    with pytest.raises(ProvenanceError, match="no recorded history"):
        store.rollback("other", time_s=6.0)
    json.loads(lab.datasets["provenance.k"])


def test_state_survives_a_json_round_trip(lab):
    g = make_graph(lab)
    maintainer(lab, g).run()
    restored = GraphState.from_json(lab.state.to_json())
    assert restored.nodes == lab.state.nodes
    assert GraphState.from_json(None).nodes == {}


def test_morning_report(lab):
    g = make_graph(lab)
    start = lab.now
    logs = []
    for i in range(6):
        lab.truth["p.a"] = 10.0 + 0.4 * i
        m = maintainer(lab, g, rid=i + 1)
        m.run()
        logs += m.log
        lab.now += 150.0
    lab.broken.add("c")
    m = maintainer(lab, g, rid=7)
    m.run()
    logs += m.log
    faults = [{"node": n, "message": msg, "rid": 7, "time": lab.now}
              for n, msg in m.faults.items()]
    hist = {k: lab.store.history(k) for k in ("p.a", "p.b", "p.c")}
    ref = {"p.a": [(start + 150.0 * i, 10.0 + 0.4 * i) for i in range(6)]}
    rep = build_report(logs, hist, start, lab.now, reference=ref,
                       tolerances={"p.a": 0.5}, faults=faults, notes=["test night"])
    assert rep["runs"] == [1, 2, 3, 4, 5, 6, 7]
    assert [f["node"] for f in rep["faults"]] == ["c"]
    pa = rep["parameters"]["p.a"]
    assert pa["changes"] >= 2
    assert pa["max_abs_error"] <= 0.5 + 1e-12
    assert pa["fraction_within_tolerance"] == 1.0
    json.dumps(rep)
    page = render_html(rep)
    assert page.count("data:image/png;base64,") == 3
    assert "c broken" in page and "test night" in page


def test_a_refused_fit_is_retried_once_before_it_counts_as_a_fault(lab):
    outcomes = iter([MeasurementError("too uncertain"), {"p.a": 10.0},
                     MeasurementError("too uncertain"), MeasurementError("too uncertain")])

    def calibrate(ctx):
        out = next(outcomes)
        if isinstance(out, Exception):
            raise out
        return out

    node = FunctionNode("a", lambda ctx: {"p.a": lab.truth["p.a"]}, calibrate,
                        params=("p.a",), tolerance={"p.a": 0.5})
    m = maintainer(lab, CalGraph([node]))
    assert m.run() == {"a": True} and m.faults == {}
    assert [e["result"] for e in m.log if e["step"] == "calibrate"] == ["failed", "ok"]
    lab.now += 1e4
    lab.truth["p.a"] = 12.0
    m2 = maintainer(lab, CalGraph([node]), rid=2)
    assert m2.run() == {"a": False} and "too uncertain" in m2.faults["a"]
    assert lab.datasets["p.a"] == 10.0


def test_termination_is_not_mistaken_for_bad_data(lab):
    from artiq.experiment import TerminationRequested

    def stop(ctx):
        raise TerminationRequested

    node = FunctionNode("a", stop, stop, params=("p.a",))
    with pytest.raises(TerminationRequested):
        maintainer(lab, CalGraph([node])).run()
