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
    PhaseNode,
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


    class FakeNoisy(EnvExperiment):
        """Measures 'true' with standard error 'err' (a fit dict, as the calibrations write)."""

        def build(self):
            self.setattr_argument("true", NumberValue(1.0))
            self.setattr_argument("err", NumberValue(0.1))

        def run(self):
            pass

        def analyze(self):
            self.set_dataset("fake.fit", str({"values": {"x": self.true},
                                              "errors": {"x": self.err}}))
            self.set_dataset("calib.x", self.true, persist=True)


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


def noisy_node(check_true, cal_true, err, **kwargs):
    spec = ExperimentSpec("cal/fake.py", "FakeNoisy", {"err": err}, {"true": check_true},
                          {"true": cal_true})
    return ExperimentNode("x", spec, params=("calib.x",), tolerance={"calib.x": 0.5},
                          errors={"calib.x": "fake.fit:errors.x"}, **kwargs)


@pytest.mark.parametrize("err, verdict", [(0.05, Verdict.OUT_OF_SPEC),
                                          (0.5, Verdict.IN_SPEC)])
def test_a_check_counts_a_deviation_only_beyond_its_own_noise(setup, err, verdict):
    db, parent, ctx, _ = setup
    db.set("calib.x", 1.0, persist=True)  # set by hand: no recorded standard error
    result = noisy_node(2.1, 2.0, err).check_data(ctx)
    # deviation 1.1 vs tolerance max(0.5, 4 * err): 0.5 at err 0.05, 2.0 at err 0.5
    assert result.verdict is verdict and result.errors == {"calib.x": err}


@pytest.mark.parametrize("err, stored", [(0.02, False), (0.2, True)])
def test_verification_tolerance_combines_both_standard_errors(setup, err, stored):
    db, parent, ctx, _ = setup
    store = ParamStore(db.get, lambda k, v: db.set(k, v, persist=True))
    # calibration proposes 2.0, the verifying check measures 2.6: 0.6 beyond the 0.5 spec;
    # it counts at err 0.02 (4 sqrt(2) err = 0.11) but not at err 0.2 (1.13)
    node = noisy_node(2.6, 2.0, err)
    m = Maintainer(CalGraph([node]), store, GraphState(), ctx, clock=lambda: 100.0, rid=3,
                   attempts=1)
    assert m.run() == {"x": stored}
    steps = [(e["step"], e["result"]) for e in m.log]
    assert ("verify", "in_spec" if stored else "out_of_spec") in steps
    if stored:
        assert db.get("calib.x") == 2.0
        assert store.history("calib.x")[-1]["error"] == pytest.approx(err)
        assert ctx.get_error("calib.x") == pytest.approx(err)
        # a later check compares within the stored value's error as well
        assert node.stored_errors(ctx) == {"calib.x": pytest.approx(err)}
    else:
        assert "calib.x" not in db and store.history("calib.x")[-1]["action"] == "rejected"


def test_a_phase_node_compares_modulo_its_period(setup):
    db, parent, ctx, _ = setup
    db.set("calib.x", 0.49, persist=True)
    spec = ExperimentSpec("cal/fake.py", "FakeNoisy", {"err": 0.001}, {"true": -0.49})
    args = dict(params=("calib.x",), tolerance={"calib.x": 0.03},
                errors={"calib.x": "fake.fit:errors.x"})
    phase = PhaseNode("p", spec, period=1.0, noise_k=3.0, **args)
    assert phase.NOISE_K == 3.0 and ExperimentNode.NOISE_K == 4.0
    assert phase.check_data(ctx).verdict is Verdict.IN_SPEC  # 0.02 turns apart
    assert ExperimentNode("p", spec, **args).check_data(ctx).verdict is Verdict.OUT_OF_SPEC
    db.set("calib.x", 0.2, persist=True)
    result = phase.check_data(ctx)
    assert result.verdict is Verdict.OUT_OF_SPEC and "off by 0.31" in result.message
    with pytest.raises(ValueError, match="period must be > 0"):
        PhaseNode("p", spec, period=0.0, **args)
    with pytest.raises(ValueError, match="error sources for parameters it does not own"):
        ExperimentNode("p", spec, params=("calib.x",), errors={"calib.y": "fake.fit"})


def test_link_phase_node_needs_both_ions_heralding_and_both_729_calibrations():
    graph, _ = iontrap_graph(("a", "b"))
    node = graph["link_phase"]
    assert isinstance(node, PhaseNode) and node.period == 1.0
    assert set(node.dependencies) == {"heralding", "fibre_delay_a", "fibre_delay_b",
                                      "photon_eff_a", "photon_eff_b", "freq729_a",
                                      "freq729_b", "pitime_a", "pitime_b"}
    order = graph.order()
    assert order[-1] == "link_phase" and order.index("heralding") < order.index("link_phase")
    # the fibre phase drifts ~0.085 rad rms per minute: checked within minutes
    assert node.timeout_s <= 300.0
    # its check is cheaper than its calibration, and is not refused for that
    check, cal = node.spec.check_arguments, node.spec.calibrate_arguments
    assert check["rounds"] < cal["rounds"] and check["max_phase_error"] > 0.02
    assert node.params == ("calib.link_phase",) and node.bounds["calib.link_phase"] == (
        -0.5, 0.5)
    for ions in (("a",), ("b",)):
        g, missing = iontrap_graph(ions)
        assert "link_phase" not in g.nodes and "both ions" in missing["link_phase"]
    # a recalibrated 729 forces a link-phase check (dependency recalibrated since)
    assert "link_phase" in graph.dependents("freq729_b")


def test_every_node_passes_only_arguments_its_experiment_has():
    """Each node's arguments and error datasets name what its experiment really has (a typo
    would only show at night)."""
    from pathlib import Path

    from ionlink.runner.devices import load_device_db
    from ionlink.runner.examine import examine_file

    root = Path(__file__).resolve().parent.parent
    ddb = load_device_db(root / "device_db.py")
    graph, missing = iontrap_graph(("a", "b"), targets=["memory_t2_a"])
    assert missing == {}
    args: dict = {}
    for node in graph.nodes.values():
        key = (node.spec.file, node.spec.class_name)
        if key not in args:
            (desc,) = [d for d in examine_file(root / "repository" / node.spec.file, ddb)
                       if d.class_name == node.spec.class_name]
            args[key] = set(desc.arginfo)
        used = {**node.spec.arguments, **node.spec.check_arguments,
                **node.spec.calibrate_arguments}
        assert set(used) <= args[key], (node.name, set(used) - args[key])
        text = (root / "repository" / node.spec.file).read_text()
        for source in node.error_keys.values():
            dataset = source.partition(":")[0]
            assert f'"{dataset}"' in text or f"'{dataset}'" in text or (
                dataset.split(".", 1)[1] in text), (node.name, dataset)
