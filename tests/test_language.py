"""ionlink's stand-in for ARTIQ's language core: decorators, time-manager dispatch, units."""

import pytest

from ionlink.artiq_api import experiment, language
from ionlink.artiq_api.language import core, types, units
from ionlink.artiq_api.language.core import (
    at_mu,
    delay,
    delay_mu,
    host_only,
    interleave,
    kernel,
    kernel_from_string,
    now_mu,
    parallel,
    portable,
    rpc,
    sequential,
    subkernel,
    syscall,
    watchdog,
)


class RecordingCore:
    """Fake core device: records run() calls and runs the undecorated function."""

    def __init__(self):
        self.calls = []

    def run(self, function, args, kwargs):
        self.calls.append((function, args, kwargs))
        return function.artiq_embedded.function(*args, **kwargs)


class Device:
    def __init__(self):
        self.core = RecordingCore()
        self.other_core = RecordingCore()

    @kernel
    def add(self, a, b=0):
        return a + b

    @kernel("other_core")
    def on_other(self):
        return "other"

    @kernel(flags={"fast-math"})
    def flagged(self):
        return 1


def test_kernel_call_goes_through_core_run_with_wrapper_and_arguments():
    device = Device()
    assert device.add(2, b=3) == 5
    function, args, kwargs = device.core.calls[0]
    assert function is Device.add
    assert args == (device, 2)
    assert kwargs == {"b": 3}


def test_kernel_embedded_info_matches_artiq_structure():
    info = Device.add.artiq_embedded
    assert info._fields == ("core_name", "portable", "function", "syscall", "forbidden",
                            "destination", "flags")
    assert info.core_name == "core"
    assert info.portable is False and info.forbidden is False
    assert info.function.__name__ == "add" and not hasattr(info.function, "artiq_embedded")
    assert Device.add.__name__ == "add"
    assert Device.flagged.artiq_embedded.flags == {"fast-math"}


def test_kernel_with_named_core_uses_that_attribute():
    device = Device()
    assert device.on_other() == "other"
    assert device.core.calls == [] and len(device.other_core.calls) == 1
    assert Device.on_other.artiq_embedded.core_name == "other_core"


def test_portable_rpc_syscall_host_only_leave_function_callable_on_host():
    @portable
    def twice(x):
        return 2 * x

    @rpc(flags={"async"})
    def report(x):
        return x

    @syscall
    def rtio_output(target, data):
        return (target, data)

    @host_only
    def only_here():
        return "host"

    assert twice(4) == 8 and twice.artiq_embedded.portable is True
    assert twice.artiq_embedded.function is twice
    assert report(1) == 1 and report.artiq_embedded.flags == {"async"}
    assert report.artiq_embedded.portable is False
    assert rtio_output(1, 2) == (1, 2)
    assert rtio_output.artiq_embedded.syscall == "rtio_output"
    assert only_here() == "host" and only_here.artiq_embedded.forbidden is True


def test_subkernel_asks_core_to_prepare_and_run():
    class Core:
        def __init__(self):
            self.log = []

        def prepare_subkernel(self, destination, function, args, kwargs):
            self.log.append(("prepare", destination, args))
            return 7

        def run_subkernel(self, sid):
            self.log.append(("run", sid))

    class Satellite:
        def __init__(self):
            self.core = Core()

        @subkernel(destination=2)
        def remote(self, x):
            return x

    satellite = Satellite()
    satellite.remote(5)
    assert satellite.core.log == [("prepare", 2, (satellite, 5)), ("run", 7)]
    assert Satellite.remote.artiq_embedded.destination == 2


def test_kernel_from_string_builds_function_and_keeps_source():
    fn = kernel_from_string(["a", ("b", "int")], "return a * b", portable)
    assert fn(3, 4) == 12
    assert "def kernel_from_string_fn(a,b: int,)" in fn.artiq_embedded.function
    with pytest.raises(SyntaxError, match="Error parsing kernel function"):
        kernel_from_string(["a"], "return a +", portable)


class RecordingTimeManager:
    def __init__(self):
        self.log = []
        self.now = 0

    def enter_sequential(self):
        self.log.append("enter_sequential")

    def enter_parallel(self):
        self.log.append("enter_parallel")

    def exit(self):
        self.log.append("exit")

    def take_time_mu(self, mu):
        self.log.append(("take_time_mu", mu))
        self.now += mu

    def take_time(self, seconds):
        self.log.append(("take_time", seconds))

    def get_time_mu(self):
        return self.now

    def set_time_mu(self, mu):
        self.log.append(("set_time_mu", mu))
        self.now = mu


def test_timeline_functions_dispatch_to_installed_time_manager(monkeypatch):
    manager = RecordingTimeManager()
    monkeypatch.setattr(core, "_time_manager", core._time_manager)
    core.set_time_manager(manager)
    with parallel:
        delay(1e-6)
        with sequential:
            delay_mu(8)
    with interleave:
        at_mu(100)
    assert now_mu() == 100
    assert manager.log == ["enter_parallel", ("take_time", 1e-6), "enter_sequential",
                           ("take_time_mu", 8), "exit", "exit",
                           "enter_parallel", ("set_time_mu", 100), "exit"]


def test_without_time_manager_timeline_raises_not_implemented(monkeypatch):
    monkeypatch.setattr(core, "_time_manager", core._NoTimeManager())
    for call in (lambda: delay(1.0), lambda: delay_mu(1), now_mu, lambda: at_mu(0),
                 parallel.__enter__):
        with pytest.raises(NotImplementedError,
                           match="Attempted to interpret kernel without a time manager"):
            call()


def test_watchdog_uses_installed_factory(monkeypatch):
    made = []

    class Guard:
        def __init__(self, timeout):
            made.append(timeout)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(core, "_watchdog_factory", core._watchdog_factory)
    with watchdog(1.0):
        pass
    core.set_watchdog_factory(Guard)
    with watchdog(0.5):
        pass
    assert made == [0.5]


def test_units_have_artiq_values():
    expected = {"ps": 1e-12, "ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "mHz": 1e-3,
                "Hz": 1.0, "kHz": 1e3, "MHz": 1e6, "GHz": 1e9, "dB": 1.0, "uV": 1e-6,
                "mV": 1e-3, "V": 1.0, "kV": 1e3, "uA": 1e-6, "mA": 1e-3, "A": 1.0,
                "nW": 1e-9, "uW": 1e-6, "mW": 1e-3, "W": 1.0}
    assert units.__all__ == list(expected)
    assert {name: getattr(units, name) for name in units.__all__} == expected
    assert 10 * units.us == pytest.approx(1e-5)


def test_types_compare_by_structure():
    assert types.TList(types.TInt32) == types.TList(types.TInt32)
    assert types.TList(types.TInt32) != types.TList(types.TInt64)
    assert types.TArray(types.TFloat, 2) != types.TArray(types.TFloat, 1)
    assert types.TTuple([types.TBool, types.TStr]) == types.TTuple([types.TBool, types.TStr])
    assert types.TInt32 != types.TInt64 and types.TRange32 != types.TRange64
    variable = types.TVar()
    assert variable == variable and variable != types.TVar()
    assert len({types.TInt32, types.TInt32, types.TFloat}) == 2

    def annotated(x: types.TInt32) -> types.TNone:
        return None

    assert annotated.__annotations__["x"] is types.TInt32


def test_module_namespaces_match_artiq():
    assert core.__all__ == ["kernel", "portable", "rpc", "subkernel", "syscall", "host_only",
                            "kernel_from_string", "set_time_manager", "set_watchdog_factory",
                            "TerminationRequested", "sequential", "parallel", "interleave",
                            "delay_mu", "now_mu", "at_mu", "delay", "watchdog"]
    assert set(experiment.__all__) == set(language.__all__) | {"RTIOUnderflow", "RTIOOverflow"}
    namespace = {}
    exec("from ionlink.artiq_api.experiment import *", namespace)
    for name in ("kernel", "EnvExperiment", "NumberValue", "RangeScan", "MHz", "TInt64",
                 "RTIOUnderflow", "TerminationRequested", "delay", "parallel"):
        assert name in namespace
    assert sorted(language.__all__) == sorted(ARTIQ_LANGUAGE_NAMES)


# artiq.language.__all__ of ARTIQ 9 (shared/reference/artiq-language-api.txt).
ARTIQ_LANGUAGE_NAMES = [
    "A", "BooleanValue", "CancelledArgsError", "CenterScan", "DefaultMissing",
    "EnumerationValue", "EnvExperiment", "Experiment", "ExplicitScan", "GHz", "HasEnvironment",
    "Hz", "MHz", "MultiScanManager", "NoDefault", "NoScan", "NumberValue", "PYONValue",
    "RangeScan", "ScanObject", "Scannable", "StringValue", "TArray", "TBool", "TByteArray",
    "TBytes", "TFloat", "TInt32", "TInt64", "TList", "TNone", "TRange32", "TRange64", "TStr",
    "TTuple", "TVar", "TerminationRequested", "V", "W", "at_mu", "dB", "delay", "delay_mu",
    "host_only", "interleave", "kHz", "kV", "kernel", "kernel_from_string", "mA", "mHz", "mV",
    "mW", "ms", "nW", "now_mu", "ns", "parallel", "portable", "ps", "rpc", "s", "sequential",
    "set_time_manager", "set_watchdog_factory", "subkernel", "syscall", "uA", "uV", "uW", "us",
    "watchdog"]
