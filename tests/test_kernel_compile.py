"""Every experiment in ``repository/`` compiles with ARTIQ's own compiler for the Kasli.

Runs only where the real ARTIQ (with its compiler, llvmlite 0.45 and ``ld.lld`` on PATH) is
importable; elsewhere the module is skipped. Run it from the repository root with the
Python of an environment that has ARTIQ (ARTIQ master, sipyco and m-labs' pythonparser,
llvmlite 0.45, ionlink installed with ``pip install -e .``)::

    /path/to/artiq-env/bin/python -m pytest -q tests/test_kernel_compile.py

How kernels are reached: each experiment is built with the lab's ``device_db.py`` (core
``host`` set to None, so ARTIQ's ``Core`` has no connection) and its host code runs
(``prepare`` then ``run``) with the core's ``run`` replaced by a compile-only one. Every
kernel call from host code is thereby compiled with the real types of its real arguments
(as ``artiq_run`` would compile it) and not executed; the kernel call returns a zero of
its annotated return type so host code can go on. Kernels that host code never reached
and that take no arguments besides ``self`` are compiled afterwards as entry points.
Kernels called from other kernels are compiled as part of their caller's call graph.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import pytest

artiq = pytest.importorskip("artiq")
if getattr(artiq, "__ionlink_stand_in__", False):
    pytest.skip("real ARTIQ is not installed (ionlink's stand-in is serving artiq)",
                allow_module_level=True)
try:
    from artiq.compiler import import_cache
    from artiq.coredevice.core import CompileError
    from artiq.frontend.artiq_run import DummyCCB, DummyScheduler
    from artiq.language.environment import EnvExperiment, ProcessArgumentManager
    from artiq.master.worker_db import DeviceManager
    from artiq.tools import file_import
except ImportError as e:  # an ARTIQ without its compiler (llvmlite, pythonparser)
    pytest.skip(f"ARTIQ's compiler is not importable: {e}", allow_module_level=True)

ROOT = Path(__file__).resolve().parent.parent
REPOSITORY = ROOT / "repository"

# As artiq_run does: the compiler reads kernel source as it was when the module was
# imported (not as edited since), so its diagnostics point at the right lines.
if not getattr(import_cache, "im_exec_module", None):
    import_cache.install_hook()

# ARTIQ's compiler runs ``ld.lld`` from PATH; BUILD.sh links it into the venv's bin.
_bin = os.path.dirname(sys.executable)
if _bin not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _bin + os.pathsep + os.environ.get("PATH", "")

#: Calls of one kernel with the same argument types after which host code is stopped (a
#: host loop around a kernel, e.g. until ``scheduler.check_pause()``, would not end).
MAX_REPEATS = 50


class _HostLoopStopped(Exception):
    """Host code kept calling already-compiled kernels; everything reachable is compiled."""


def _experiment_files() -> list[Path]:
    return sorted(p for p in REPOSITORY.rglob("*.py") if not p.name.startswith("_"))


def _compile_db(path: Path | None = None) -> dict:
    """The lab's device_db with the core device unconnected (``host`` None); for experiments
    under ``repository/repeater/`` the chain's ``device_db_repeater.py`` (a superset)."""
    from ionlink.runner.devices import load_device_db

    repeater = path is not None and "repeater" in Path(path).parts
    ddb = load_device_db(ROOT / ("device_db_repeater.py" if repeater else "device_db.py"))
    core = dict(ddb["core"])
    core["arguments"] = {**core.get("arguments", {}), "host": None}
    ddb["core"] = core
    return ddb


class _DictDeviceDB:
    """The part of ``artiq.master.databases.DeviceDB`` that ``DeviceManager`` uses."""

    def __init__(self, ddb: dict):
        self._ddb = ddb

    def get_device_db(self) -> dict:
        return self._ddb

    def get(self, key, resolve_alias=False):
        desc = self._ddb[key]
        while resolve_alias and isinstance(desc, str):
            desc = self._ddb[desc]
        return desc


class _LocalDatasets:
    """A dataset manager with no stored datasets: experiments get their defaults."""

    def __init__(self):
        self.local = {}

    def set(self, key, value, metadata=None, broadcast=False, persist=False, archive=True):
        self.local[key] = value

    def get(self, key, archive=False):
        if key in self.local:
            return self.local[key]
        raise KeyError(key)

    def get_metadata(self, key):
        raise KeyError(key)

    def append_to(self, key, value):
        self.local[key].append(value)

    def mutate(self, key, index, value):
        self.local[key][index] = value


def _zero_of(function):
    """A zero of a kernel's annotated return type (None when unannotated or a list)."""
    import numpy as np

    embedded = getattr(function, "artiq_embedded", None)
    body = embedded.function if embedded is not None else function
    ret = str(getattr(body, "__annotations__", {}).get("return"))
    return {"numpy.int32": np.int32(0), "numpy.int64": np.int64(0), "float": 0.0,
            "bool": False, "str": ""}.get(ret)


class CompileOnly:
    """Replaces ``Core.run``: compiles each kernel call, returns a zero, records errors."""

    def __init__(self, core):
        self.core = core
        self.compiled: list[str] = []
        self.errors: dict[str, str] = {}
        #: Exception that stopped the experiment's host code early, if any.
        self.host_error: str | None = None
        #: Kernels with arguments that host code did not call (compiled only if another
        #: kernel calls them).
        self.unreached: list[str] = []
        self._repeats: dict[tuple, int] = {}

    @staticmethod
    def name_of(function) -> str:
        embedded = getattr(function, "artiq_embedded", None)
        body = embedded.function if embedded is not None else function
        return getattr(body, "__qualname__", repr(body))

    def compile(self, function, args, kwargs) -> None:
        name = self.name_of(function)
        key = (name, tuple(type(a).__name__ for a in args[1:]),
               tuple(sorted((k, type(v).__name__) for k, v in kwargs.items())))
        seen = self._repeats.get(key, 0)
        self._repeats[key] = seen + 1
        if seen:
            if seen >= MAX_REPEATS:
                raise _HostLoopStopped(name)
            return
        try:
            self.core.compile(function, args, kwargs)
        except CompileError as e:
            self.errors[name] = str(e)
        except Exception as e:  # the compiler itself failed on this kernel
            self.errors[name] = f"compiler raised {type(e).__name__}: {e}"
        else:
            self.compiled.append(name)

    def run(self, function, args, kwargs):
        self.compile(function, args, kwargs)
        return _zero_of(function)


def _kernels_of(exp) -> dict[str, object]:
    """Unbound kernel functions of the experiment's class, by qualified name."""
    found = {}
    for cls in type(exp).__mro__:
        for attr, value in vars(cls).items():
            embedded = getattr(value, "artiq_embedded", None)
            if embedded is not None and embedded.core_name is not None \
                    and embedded.function is not None:
                found.setdefault(attr, value)
    return found


def _source(function) -> str:
    import inspect

    try:
        return inspect.getsource(function.artiq_embedded.function)
    except (OSError, TypeError):
        return ""


def _experiment_classes(module) -> list[type]:
    return [v for v in vars(module).values()
            if isinstance(v, type) and issubclass(v, EnvExperiment) and v is not EnvExperiment
            and v.__module__ == module.__name__]


def compile_experiments_in(path: Path) -> dict[str, CompileOnly]:
    """Build every experiment class in ``path`` and compile its kernels; by class name."""
    module = file_import(str(path), prefix="ionlink_compile_check_")
    results = {}
    ddb = _compile_db(path)
    for cls in _experiment_classes(module):
        dmgr = DeviceManager(_DictDeviceDB(ddb), virtual_devices={
            "scheduler": DummyScheduler(), "ccb": DummyCCB()})
        try:
            exp = cls((dmgr, _LocalDatasets(), ProcessArgumentManager({}), {}))
            core = dmgr.get("core")
            if not hasattr(core.comm, "close"):  # ARTIQ's CommKernelDummy lacks close()
                core.comm.close = lambda: None
            checker = CompileOnly(core)
            exp.core.run = checker.run
            try:
                exp.prepare()
                exp.run()
            except _HostLoopStopped:
                pass
            except Exception as e:
                # Host code may trip over the zeros compile-only kernels return; what it
                # reached is compiled, the rest is compiled as entry points below.
                checker.host_error = f"{type(e).__name__}: {e}"
            reached = {key[0].rsplit(".", 1)[-1] for key in checker._repeats}
            kernels = _kernels_of(exp)
            sources = {attr: _source(f) for attr, f in kernels.items()}
            for attr, function in kernels.items():
                if any(f".{attr}(" in src for other, src in sources.items() if other != attr):
                    continue  # called from another kernel: compiled in its call graph
                body = function.artiq_embedded.function
                n_args = body.__code__.co_argcount - len(body.__defaults__ or ())
                if attr not in reached:
                    if n_args == 1:
                        checker.compile(function, (exp,), {})
                    else:
                        checker.unreached.append(attr)
            results[cls.__name__] = checker
        finally:
            dmgr.close_devices()
    return results


def _report(results: dict[str, CompileOnly]) -> str:
    lines = []
    for cls_name, checker in results.items():
        for kernel_name, message in checker.errors.items():
            lines.append(f"{cls_name}: kernel {kernel_name} does not compile:\n{message}")
    return "\n\n".join(lines)


@pytest.mark.parametrize("path", _experiment_files(),
                         ids=lambda p: str(p.relative_to(REPOSITORY)))
def test_experiment_kernels_compile_for_kasli(path):
    results = compile_experiments_in(path)
    assert results, f"{path} defines no experiment class"
    for cls_name, checker in results.items():
        if checker.host_error:
            warnings.warn(f"{path.name}: {cls_name}: host code stopped early: "
                          f"{checker.host_error}", stacklevel=1)
        if checker.unreached:
            warnings.warn(f"{path.name}: {cls_name}: kernels taking arguments that host "
                          f"code did not call (checked only as called from other kernels): "
                          f"{', '.join(checker.unreached)}", stacklevel=1)
    report = _report(results)
    assert not report, report
    assert any(checker.compiled for checker in results.values()), \
        f"no kernel of {path} was reached"


def test_compile_check_catches_a_type_error(tmp_path):
    """The check fails on a kernel the compiler rejects (a dict inside a kernel)."""
    bad = tmp_path / "bad_experiment.py"
    bad.write_text(
        "from artiq.experiment import *\n\n"
        "class Bad(EnvExperiment):\n"
        "    def build(self):\n"
        "        self.setattr_device('core')\n"
        "        self.setattr_device('ttl4')\n\n"
        "    @kernel\n"
        "    def pulse(self, t):\n"
        "        self.ttl4.pulse(t)\n\n"
        "    @kernel\n"
        "    def run(self):\n"
        "        d = {'a': 1}\n"
        "        self.pulse(d['a'])\n")
    results = compile_experiments_in(bad)
    assert "Bad.run" in results["Bad"].errors


def test_compile_check_uses_host_argument_types(tmp_path):
    """A kernel taking an argument is compiled with the type host code passes."""
    good = tmp_path / "good_experiment.py"
    good.write_text(
        "from artiq.experiment import *\n\n"
        "class Good(EnvExperiment):\n"
        "    def build(self):\n"
        "        self.setattr_device('core')\n"
        "        self.setattr_device('ttl4')\n\n"
        "    @kernel\n"
        "    def pulses(self, n, t) -> TInt32:\n"
        "        self.core.break_realtime()\n"
        "        for i in range(n):\n"
        "            self.ttl4.pulse(t)\n"
        "            delay(t)\n"
        "        return n\n\n"
        "    def run(self):\n"
        "        for i in range(1000):\n"
        "            assert self.pulses(3, 1e-6) == 0\n")
    results = compile_experiments_in(good)
    assert results["Good"].compiled == ["Good.pulses"]
    assert not results["Good"].errors
