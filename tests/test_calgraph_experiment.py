"""Experiment-backed graph nodes (no simulation needed: the experiments are host-only) and
the ion-trap graph's structure."""

from __future__ import annotations

import textwrap

import pytest

from ionlink.calgraph import CalGraph, GraphState, Maintainer, ParamStore, Verdict
from ionlink.calgraph.experiment_node import (
    ExperimentNode,
    ExperimentSpec,
    GraphContext,
    RateCheckNode,
)
from ionlink.calgraph.iontrap import NODE_DEFS, iontrap_graph
from ionlink.runner.arguments import ProcessArgumentManager
from ionlink.runner.datasets import DatasetDB, DatasetManager

FAKE = textwrap.dedent('''
    from artiq.experiment import *


    class FakeCalibration(EnvExperiment):
        """Measures 'value' (argument 'true'); stores it when 'good'; reads the stored value."""

        def build(self):
            self.setattr_argument("true", NumberValue(1.0))
            self.setattr_argument("good", BooleanValue(True))

        def prepare(self):
            self.seen = self.get_dataset("calib.x", None)

        def run(self):
            self.set_dataset("fake.data", [self.true, self.true])
            self.set_dataset("fake.seen", -1.0 if self.seen is None else self.seen)
            self.set_dataset("fake.data_again", self.get_dataset("fake.data")[0])

        def analyze(self):
            if self.good:
                self.set_dataset("calib.x", self.true, persist=True)
                self.set_dataset("calib.x_fidelity", 0.99, persist=True)
                self.set_dataset("calib.owned_by_other", 5.0, persist=True)


    class FakeRate(EnvExperiment):
        def build(self):
            self.setattr_argument("p", NumberValue(0.01))

        def run(self):
            self.set_dataset("rate.trials", 10000)
            self.set_dataset("rate.expected", 0.01)
            self.set_dataset("rate.observed", self.p)
''')


class Parent:
    """Stands in for the overnight experiment: the managers as HasEnvironment keeps them."""

    def __init__(self, db):
        self.mgr = DatasetManager(db)
        self._HasEnvironment__device_mgr = None
        self._HasEnvironment__dataset_mgr = self.mgr

    def get_dataset(self, key, default=None, archive=True):
        try:
            return self.mgr.get(key, archive)
        except KeyError:
            if default is None:
                raise
            return default


@pytest.fixture
def setup(tmp_path):
    (tmp_path / "cal").mkdir()
    (tmp_path / "cal" / "fake.py").write_text(FAKE)
    db = DatasetDB(tmp_path / "db.pyon")
    parent = Parent(db)
    ctx = GraphContext(parent, tmp_path, "2026/rid.h5")
    node = ExperimentNode("x", ExperimentSpec("cal/fake.py", "FakeCalibration",
                                              {"true": 2.0}, {"true": 2.1}, {}),
                          params=("calib.x",), tolerance={"calib.x": 0.5})
    node.foreign = frozenset({"calib.owned_by_other"})
    return db, parent, ctx, node


def test_a_check_captures_values_without_writing_anything(setup):
    db, parent, ctx, node = setup
    db.set("calib.x", 1.0, persist=True)
    result = node.check_data(ctx)
    assert result.verdict is Verdict.OUT_OF_SPEC and result.measured == {"calib.x": 2.1}
    assert db.get("calib.x") == 1.0
    assert "calib.x_fidelity" not in db and "calib.owned_by_other" not in db
    # raw data archived under the step's prefix, readable by the child itself
    local = parent.mgr.local
    assert local["calgraph.001.x.check.fake.data"] == [2.1, 2.1]
    assert local["calgraph.001.x.check.fake.data_again"] == 2.1
    assert local["calgraph.001.x.check.fake.seen"] == 1.0
    assert result.data == "2026/rid.h5#calgraph.001.x.check.*"


def test_a_calibration_passes_by_products_but_not_owned_or_foreign_values(setup):
    db, parent, ctx, node = setup
    result = node.calibrate(ctx)
    assert result.ok and result.values == {"calib.x": 2.0}
    assert "calib.x" not in db  # the graph stores it, with provenance
    assert db.get("calib.x_fidelity") == 0.99
    assert "calib.owned_by_other" not in db


def test_a_verification_sees_the_proposed_values_only(setup):
    db, parent, ctx, node = setup
    db.set("calib.x", 1.0, persist=True)
    result = node.check_data(ctx, proposed={"calib.x": 2.05})
    assert result.verdict is Verdict.IN_SPEC
    assert parent.mgr.local["calgraph.001.x.verify.fake.seen"] == 2.05
    assert db.get("calib.x") == 1.0


def test_a_refused_fit_is_bad_data_and_a_failed_calibration(setup, tmp_path):
    db, parent, ctx, node = setup
    bad = ExperimentNode("x", ExperimentSpec("cal/fake.py", "FakeCalibration", {"good": False}),
                         params=("calib.x",))
    assert bad.check_data(ctx).verdict is Verdict.BAD_DATA
    assert not bad.calibrate(ctx).ok
    typo = ExperimentNode("x", ExperimentSpec("cal/fake.py", "FakeCalibration", {"shots": 3}),
                          params=("calib.x",))
    with pytest.raises(ValueError, match="FakeCalibration has no argument.*shots"):
        typo.check_data(ctx)
    gone = ExperimentNode("y", ExperimentSpec("cal/none.py", "X"), params=("calib.y",))
    assert not ctx.has_file(gone.spec)
    with pytest.raises(FileNotFoundError):
        gone.check_data(ctx)


def test_the_graph_stores_an_experiment_calibration_with_provenance(setup):
    db, parent, ctx, node = setup
    store = ParamStore(db.get, lambda k, v: db.set(k, v, persist=True))
    state = GraphState()
    m = Maintainer(CalGraph([node]), store, state, ctx, clock=lambda: 100.0, rid=7,
                   data="2026/rid.h5")
    assert m.run() == {"x": True}
    assert db.get("calib.x") == 2.0
    (entry,) = store.history("calib.x")
    assert entry["rid"] == 7 and entry["previous"] is None
    assert entry["data"] == "2026/rid.h5#calgraph.002.x.calibrate.*"


@pytest.mark.parametrize("p, verdict", [(0.01, Verdict.IN_SPEC), (0.0089, Verdict.IN_SPEC),
                                        (0.005, Verdict.OUT_OF_SPEC),
                                        (0.0015, Verdict.BAD_DATA), (0.0, Verdict.BAD_DATA)])
def test_rate_check(setup, p, verdict):
    db, parent, ctx, node = setup
    rate = RateCheckNode("rate", ExperimentSpec("cal/fake.py", "FakeRate", {"p": p}),
                         "rate.observed", "rate.expected", "rate.trials")
    assert rate.check_data(ctx).verdict is verdict
    # sigma = sqrt(0.01 * 0.99 / 1e4) ~ 1e-3: tolerance max(30 % of 0.01, 4 sigma) = 4e-3;
    # below 20 % of the expected rate the data point upstream
    assert rate.calibrate(ctx).ok is (verdict is Verdict.IN_SPEC)


def test_iontrap_graph_edges_follow_the_physics():
    graph, missing = iontrap_graph(("a", "b"))
    order = graph.order()
    for name, node in graph.nodes.items():
        for dep in node.dependencies:
            assert order.index(dep) < order.index(name)
    assert graph["readout_a"].dependencies == ("lines_a",)
    assert set(graph["pitime_a"].dependencies) == {"freq729_a", "readout_a"}
    assert set(graph.ancestors("heralding")) >= {"photon_eff_a", "photon_eff_b",
                                                  "fibre_delay_a", "lines_b"}
    assert "memory_t2_a" not in graph.nodes  # optional: only when asked for
    assert "memory_t2_a" in iontrap_graph(("a",), targets=["memory_t2_a"])[0].nodes
    # every parameter has one owner; each node knows the others' parameters
    assert "calib.frequency_729_a" in graph["t2star_a"].foreign
    # single ion: no heralding; absent experiments are left out with their edges
    g1, m1 = iontrap_graph(("a",), available=lambda s: "rabi" not in s.file)
    assert "heralding" in m1 and "pitime_a" in m1
    assert "pitime_a" not in g1["t2star_a"].dependencies
    with pytest.raises(ValueError, match="ion must be"):
        iontrap_graph(("c",))
    assert len({d.name for d in NODE_DEFS}) == len(NODE_DEFS)


def test_child_arguments_manager_matches_artiq_interface():
    # the runner's own argument manager and ours answer the same way for defaults
    from artiq.experiment import NumberValue

    from ionlink.calgraph.experiment_node import ChildArguments

    assert ChildArguments({}).get("n", NumberValue(3), None, None) == \
        ProcessArgumentManager({}).get("n", NumberValue(3), None, None)
    assert ChildArguments({"n": 5}).get("n", NumberValue(3)) == 5
