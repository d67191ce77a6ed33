"""ionlink's stand-in for ARTIQ's environment and scans: processors, scans, HasEnvironment."""

import random

import pytest

from ionlink.artiq_api.language.environment import (
    BooleanValue,
    CancelledArgsError,
    DefaultMissing,
    EnumerationValue,
    EnvExperiment,
    Experiment,
    HasEnvironment,
    NoDefault,
    NumberValue,
    PYONValue,
    StringValue,
    is_public_experiment,
)
from ionlink.artiq_api.language.scan import (
    CenterScan,
    ExplicitScan,
    MultiScanManager,
    NoScan,
    RangeScan,
    Scannable,
)

# --- argument processors -----------------------------------------------------------------


def test_number_value_is_int_only_with_precision_0_integer_step_and_scale_1():
    assert type(NumberValue(5, precision=0, step=1).default()) is int
    assert type(NumberValue(5, precision=0, step=1).process("7")) is int
    assert type(NumberValue(5).default()) is float  # precision 2
    assert type(NumberValue(5, precision=0).default()) is float  # step 0.1
    assert type(NumberValue(5, precision=0, step=1, unit="ms").default()) is float  # scale
    assert type(NumberValue(5, precision=0, step=1, type="float").default()) is float
    assert type(NumberValue(5.7, precision=0, step=2, type="int").default()) is int


def test_number_value_rejects_bad_type_settings():
    with pytest.raises(ValueError, match="not compatible"):
        NumberValue(5, type="int")
    with pytest.raises(TypeError, match="type must be"):
        NumberValue(5, type="complex")


def test_number_value_scale_from_unit():
    assert NumberValue(1.0, unit="ms").scale == 1e-3
    assert NumberValue(1.0, unit="MHz").scale == 1e6
    assert NumberValue(1.0).scale == 1.0
    assert NumberValue(1.0, unit="xyz", scale=0.5).scale == 0.5
    with pytest.raises(KeyError, match="Unit xyz is unknown"):
        NumberValue(1.0, unit="xyz")
    assert NumberValue(1.0, unit="us").step == pytest.approx(1e-7)


def test_number_value_min_max_and_ndecimals():
    processor = NumberValue(1.0, min=0.0, max=2.0)
    assert processor.process(2.0) == 2.0
    with pytest.raises(ValueError, match="below its minimum"):
        processor.process(-1)
    with pytest.raises(ValueError, match="above its maximum"):
        processor.process(3)
    with pytest.warns(DeprecationWarning, match="ndecimals"):
        assert NumberValue(1.0, ndecimals=4).precision == 4


def test_number_value_describe():
    assert NumberValue(2, "us", step=1e-6, min=0, max=None, precision=1).describe() == {
        "ty": "NumberValue", "default": 2.0, "unit": "us", "scale": 1e-6, "step": 1e-6,
        "min": 0, "max": None, "precision": 1, "type": "auto"}
    assert "default" not in NumberValue().describe()


def test_simple_processors():
    with pytest.raises(DefaultMissing):
        BooleanValue().default()
    assert BooleanValue(True).describe() == {"ty": "BooleanValue", "default": True}
    with pytest.raises(ValueError, match="BooleanValue"):
        BooleanValue().process(1)
    choice = EnumerationValue(["a", "b"], "b")
    assert choice.default() == "b"
    assert choice.describe() == {"ty": "EnumerationValue", "default": "b",
                                 "choices": ["a", "b"], "quickstyle": False}
    with pytest.raises(ValueError, match="EnumerationValue"):
        choice.process("c")
    assert StringValue("x").describe() == {"ty": "StringValue", "default": "x"}
    with pytest.raises(NotImplementedError):
        StringValue(["x", "y"])


def test_pyon_value_decodes_text_and_describes_default_as_text():
    processor = PYONValue([1, (2, 3)])
    assert processor.default() == [1, (2, 3)]
    assert processor.describe() == {"ty": "PYONValue", "default": "[1, (2, 3)]"}
    assert processor.process('{"a": null, "b": nparray((2,), "<i8", b"AQAAAAAAAAACAAAAAAAAAA==")}'
                             )["b"].tolist() == [1, 2]


# --- scans -------------------------------------------------------------------------------


def test_range_scan_values_len_and_describe():
    scan = RangeScan(0.0, 1.0, 5)
    assert list(scan) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert list(scan) == list(scan) and len(scan) == 5
    assert scan.describe() == {"ty": "RangeScan", "start": 0.0, "stop": 1.0, "npoints": 5,
                               "randomize": False, "seed": None}
    assert list(RangeScan(3.0, 9.0, 1)) == [3.0]
    assert list(RangeScan(3.0, 9.0, 0)) == []


def test_randomized_scans_use_seeded_random_shuffle():
    scan = RangeScan(0.0, 9.0, 10, randomize=True, seed=4)
    expected = [float(i) for i in range(10)]
    random.Random(4).shuffle(expected)
    assert list(scan) == expected
    assert sorted(scan) == [float(i) for i in range(10)]


def test_center_scan_order_is_center_then_alternating():
    scan = CenterScan(10.0, 4.0, 1.0)
    assert list(scan) == [10.0, 9.0, 11.0, 8.0, 12.0]
    assert len(scan) == 5
    assert list(CenterScan(10.0, 4.0, 0.0)) == []
    assert CenterScan(1.0, 2.0, 0.5, seed=3).describe() == {
        "ty": "CenterScan", "center": 1.0, "step": 0.5, "span": 2.0, "randomize": False,
        "seed": 3}


def test_no_scan_and_explicit_scan():
    assert list(NoScan(2.5, 3)) == [2.5, 2.5, 2.5] and len(NoScan(2.5, 3)) == 3
    assert NoScan(1.0).describe() == {"ty": "NoScan", "value": 1.0, "repetitions": 1}
    scan = ExplicitScan([3, 1, 2])
    assert list(scan) == [3, 1, 2] and len(scan) == 3
    assert scan.describe() == {"ty": "ExplicitScan", "sequence": [3, 1, 2]}


def test_scannable_process_accepts_dashboard_dict_and_ignores_extra_keys():
    scannable = Scannable(default=NoScan(1.0), unit="us")
    scan = scannable.process({"ty": "RangeScan", "start": 0, "stop": 1e-6, "npoints": 11,
                              "unit": "ignored"})
    assert isinstance(scan, RangeScan) and len(scan) == 11
    assert scannable.process(scan.describe()).describe() == scan.describe()
    center = scannable.process({"ty": "CenterScan", "center": 1.0, "span": 2.0, "step": 1.0})
    assert list(center) == [1.0, 0.0, 2.0]
    with pytest.raises(ValueError, match="unknown scan type 'Spiral'"):
        scannable.process({"ty": "Spiral"})
    with pytest.raises(ValueError, match="invalid RangeScan"):
        scannable.process({"ty": "RangeScan", "start": 0})
    with pytest.raises(ValueError, match="not a scan description"):
        scannable.process(3.0)


def test_scannable_default_and_describe():
    scannable = Scannable([RangeScan(0, 1, 3), NoScan(5)], unit="MHz", global_min=0)
    assert isinstance(scannable.default(), RangeScan)
    assert scannable.describe() == {
        "ty": "Scannable",
        "default": [RangeScan(0, 1, 3).describe(), NoScan(5).describe()],
        "unit": "MHz", "scale": 1e6, "global_step": 1e5, "global_min": 0,
        "global_max": None, "precision": 2}
    with pytest.raises(DefaultMissing):
        Scannable().default()


def test_multi_scan_manager_iterates_the_product():
    points = list(MultiScanManager(("a", ExplicitScan([1, 2])), ("b", NoScan(7, 2))))
    assert [(p.a, p.b) for p in points] == [(1, 7), (1, 7), (2, 7), (2, 7)]
    assert points[0].attr == {"a", "b"}


# --- HasEnvironment ----------------------------------------------------------------------


class FakeDeviceManager:
    def __init__(self):
        self.requested = []

    def get(self, key):
        self.requested.append(key)
        return f"device:{key}"

    def get_device_db(self):
        return {"core": {"type": "local"}}


class FakeDatasetManager:
    def __init__(self):
        self.calls = []
        self.values = {"known": 42}

    def set(self, key, value, metadata, broadcast, persist, archive):
        self.calls.append(("set", key, value, metadata, broadcast, persist, archive))

    def mutate(self, key, index, value):
        self.calls.append(("mutate", key, index, value))

    def append_to(self, key, value):
        self.calls.append(("append_to", key, value))

    def get(self, key, archive=False):
        self.calls.append(("get", key, archive))
        return self.values[key]

    def get_metadata(self, key):
        if key != "known":
            raise KeyError(key)
        return {"unit": "us"}


class FakeArgumentManager:
    def __init__(self, values=None, interactive_reply=None):
        self.calls = []
        self.values = values or {}
        self.interactive_reply = interactive_reply

    def get(self, key, processor, group, tooltip):
        self.calls.append((key, processor, group, tooltip))
        if key in self.values:
            return processor.process(self.values[key])
        return processor.default()

    def get_interactive(self, arglist, title):
        self.calls.append(("interactive", [entry[0] for entry in arglist], title))
        return self.interactive_reply


def make_managers(**argument_values):
    return (FakeDeviceManager(), FakeDatasetManager(), FakeArgumentManager(argument_values),
            {})


class Child(HasEnvironment):
    def build(self, label):
        self.label = label
        self.setattr_device("ttl1")
        self.prepared = False

    def prepare(self):
        self.prepared = True


class Measurement(EnvExperiment):
    """Measure something."""

    def build(self, extra=None):
        self.extra = extra
        self.setattr_device("core")
        self.setattr_argument("n", NumberValue(10, precision=0, step=1), group="Shots",
                              tooltip="number of shots")
        self.setattr_argument("scan", Scannable(NoScan(1.0)))
        self.set_default_scheduling(priority=2, pipeline_name="fast", flush=True)
        self.child = Child(self, "c1")

    def run(self):
        pass


def test_build_gets_arguments_devices_and_scheduling_defaults():
    managers = make_managers(n=25)
    device_mgr, _, argument_mgr, scheduler_defaults = managers
    experiment = Measurement(managers, extra="x")
    assert experiment.extra == "x"
    assert experiment.n == 25 and isinstance(experiment.n, int)
    assert isinstance(experiment.scan, NoScan)
    assert experiment.core == "device:core"
    assert experiment.kernel_invariants == {"core", "n", "scan"}
    key, processor, group, tooltip = argument_mgr.calls[0]
    assert (key, group, tooltip) == ("n", "Shots", "number of shots")
    assert isinstance(processor, NumberValue)
    assert scheduler_defaults == {"priority": 2, "pipeline_name": "fast", "flush": True}
    assert device_mgr.requested == ["core", "ttl1"]
    assert experiment.get_device_db() == {"core": {"type": "local"}}


def test_child_shares_managers_and_is_called_by_parent():
    experiment = Measurement(make_managers())
    assert experiment.children == [experiment.child]
    assert experiment.child.label == "c1" and experiment.child.ttl1 == "device:ttl1"
    experiment.prepare()
    assert experiment.child.prepared is True
    experiment.call_child_method("no_such_method")


def test_argument_and_scheduling_calls_outside_build_are_refused():
    experiment = Measurement(make_managers())
    with pytest.raises(TypeError, match="only be called from build"):
        experiment.get_argument("m", NumberValue(1))
    with pytest.raises(TypeError, match="only be called from build"):
        experiment.set_default_scheduling(priority=1)


def test_bad_managers_give_clear_errors():
    with pytest.raises(TypeError, match="tuple of managers or a parent"):
        Measurement(object())
    with pytest.raises(TypeError, match="tuple of 2 items"):
        Measurement((1, 2))


def test_dataset_calls_reach_dataset_manager_with_artiq_arguments():
    managers = make_managers()
    dataset_mgr = managers[1]
    experiment = Measurement(managers)
    experiment.set_dataset("a.b", [1], unit="us", precision=3, broadcast=True)
    experiment.set_dataset("plain", 1.0)
    experiment.mutate_dataset("a.b", 0, 5)
    experiment.append_to_dataset("a.b", 6)
    assert dataset_mgr.calls == [
        ("set", "a.b", [1], {"unit": "us", "precision": 3}, True, False, True),
        ("set", "plain", 1.0, {}, False, False, True),
        ("mutate", "a.b", 0, 5),
        ("append_to", "a.b", 6)]
    assert experiment.get_dataset("known") == 42
    assert dataset_mgr.calls[-1] == ("get", "known", True)
    assert experiment.get_dataset("missing", default=None, archive=False) is None
    assert dataset_mgr.calls[-1] == ("get", "missing", False)
    with pytest.raises(KeyError):
        experiment.get_dataset("missing")
    experiment.setattr_dataset("known")
    assert experiment.known == 42
    assert experiment.get_dataset_metadata("known") == {"unit": "us"}
    assert experiment.get_dataset_metadata("missing", default={}) == {}
    assert Measurement.set_dataset.artiq_embedded.flags == {"async"}


def test_interactive_sets_namespace_or_raises_when_cancelled():
    managers = make_managers()
    experiment = Measurement(managers)
    argument_mgr = managers[2]
    argument_mgr.interactive_reply = {"gain": 3.0}
    with experiment.interactive("Gain?") as namespace:
        namespace.setattr_argument("gain", NumberValue(1.0))
    assert namespace.gain == 3.0
    assert argument_mgr.calls[-1] == ("interactive", ["gain"], "Gain?")
    argument_mgr.interactive_reply = None
    with pytest.raises(CancelledArgsError):
        with experiment.interactive() as namespace:
            namespace.setattr_argument("gain", NumberValue(1.0))


def test_is_public_experiment():
    class _Private(EnvExperiment):
        pass

    assert is_public_experiment(Measurement)
    assert not is_public_experiment(_Private)
    assert not is_public_experiment(EnvExperiment)
    assert not is_public_experiment(Experiment)
    assert not is_public_experiment(Child)
    assert not is_public_experiment(NoDefault)
