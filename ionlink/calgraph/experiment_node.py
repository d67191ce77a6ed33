"""Graph nodes that run the lab's calibration experiments as child experiments.

How the graph runs a calibration: in-process, inside the overnight experiment's run, on the
overnight experiment's device and dataset managers, with its own arguments (as if submitted
with that expid): ``cls((device_mgr, dataset_mgr, ChildArguments(args), {}))``, then
``prepare``, ``run``, ``analyze``. (A plain ``cls(parent)`` child would share the parent's
arguments, so two calibrations could not get different ``node`` or ``shots`` values.) The
alternative, submitting each calibration to the scheduler, gives each its own rid and results
file but makes the graph wait for runs it cannot see finish (a pause per measurement, results
read back from the dataset database) and lets any user experiment slip between a check and
the calibration that follows it. As a child, a measurement returns its values to the graph
at once, and the graph still yields to higher-priority experiments between steps
(``scheduler.pause()``).

The child's own rules still apply (it stores a value only when its fit is good); the node
gives the child (and its blocks) a dataset manager that routes its datasets:

- persistent ``set_dataset`` of a parameter the node owns is captured, not written: the graph
  decides whether to store it (with provenance), so a check never changes a parameter;
- other non-persistent datasets of the child are archived under a per-step prefix
  (``calgraph.<nnn>.<node>.<step>.<key>``) in the overnight run's results file, so the raw
  data of every check and calibration of the night are kept apart and can be cited;
- a persistent write of a parameter another node of the graph owns is dropped (e.g. the
  Ramsey experiment also refines the 729 frequency; in the graph that parameter belongs to
  the spectroscopy node, whose values carry provenance);
- during a check, all other persistent writes are dropped too (a check has no side effects);
  during a calibration, persistent by-products (e.g. the readout fidelity) are written.
"""

from __future__ import annotations

import ast
import importlib.util
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ionlink.calgraph.node import CalibrationResult, CalNode, CheckResult, Verdict

__all__ = ["ChildArguments", "ExperimentNode", "ExperimentSpec", "GraphContext", "PhaseNode",
           "RateCheckNode"]


@dataclass(frozen=True)
class ExperimentSpec:
    """Which experiment a node runs, and with which argument values.

    :param file: experiment file, relative to the repository root
        (e.g. ``calibrations/readout_histogram.py``).
    :param class_name: the experiment class in that file.
    :param arguments: argument values of the experiment for both steps (e.g. ``node``).
    :param check_arguments: argument values for a check (typically fewer shots or points
        than a calibration).
    :param calibrate_arguments: argument values for a calibration.
    """

    file: str
    class_name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    check_arguments: Mapping[str, Any] = field(default_factory=dict)
    calibrate_arguments: Mapping[str, Any] = field(default_factory=dict)


class GraphContext:
    """What experiment nodes need from the overnight experiment.

    :param experiment: the parent ``HasEnvironment`` (the overnight experiment).
    :param repository: the repository root holding the calibration experiment files.
    :param results: the results file of this run (cited as the data of each step).
    """

    def __init__(self, experiment: Any, repository: str | Path, results: str = "") -> None:
        self.experiment = experiment
        self.repository = Path(repository)
        self.results = results
        self._classes: dict[tuple[str, str], type] = {}
        self._step = 0

    def get_param(self, key: str) -> Any:
        """Stored value of a calibrated parameter, or None."""
        try:
            return self.experiment.get_dataset(key, archive=False)
        except KeyError:
            return None

    def get_error(self, key: str) -> float | None:
        """Standard error recorded in the provenance of the stored value of ``key``, or
        None."""
        from ionlink.calgraph.provenance import ParamStore, ProvenanceError

        store = ParamStore(lambda k: self.experiment.get_dataset(k, archive=False),
                           lambda k, v: None)
        try:
            return store.error(key)
        except ProvenanceError:
            return None

    def has_file(self, spec: ExperimentSpec) -> bool:
        """Whether the experiment file of ``spec`` exists in the repository."""
        return (self.repository / spec.file).is_file()

    def experiment_class(self, spec: ExperimentSpec) -> type:
        """Import the experiment file of ``spec`` (once) and return its class."""
        key = (spec.file, spec.class_name)
        if key not in self._classes:
            path = self.repository / spec.file
            if not path.is_file():
                raise FileNotFoundError(f"calibration experiment {path} does not exist")
            name = "calgraph_exp_" + "".join(c if c.isalnum() else "_" for c in spec.file)
            module_spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module
            module_spec.loader.exec_module(module)
            cls = getattr(module, spec.class_name, None)
            if cls is None:
                raise AttributeError(f"{path} has no class {spec.class_name}")
            self._classes[key] = cls
        return self._classes[key]

    def next_prefix(self, node: str, step: str) -> str:
        """Dataset prefix for the raw data of the next step."""
        self._step += 1
        return f"calgraph.{self._step:03d}.{node}.{step}."


class ExperimentNode(CalNode):
    """A node measured by a calibration experiment of the repository.

    :param spec: the experiment and its check/calibration arguments.
    :param errors: parameter -> where the experiment writes its standard error: a
        non-persistent dataset key (``fibre_delay.delay_error``) or a fit-result dataset
        (``str`` of a dict) and a path into it (``line_397.fit:errors.center``). Checks and
        verifications then compare within the noise of the difference
        (:class:`CalNode`); the error of a stored value comes from its provenance.
    Other parameters as :class:`CalNode`.
    """

    def __init__(self, name: str, spec: ExperimentSpec,
                 errors: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        unknown = set(errors or {}) - set(self.params)
        if unknown:
            raise ValueError(f"node {name}: error sources for parameters it does not own: "
                             f"{', '.join(sorted(unknown))}")
        self.spec = spec
        self.error_keys = dict(errors or {})
        #: Parameters owned by other nodes of the graph (set when the graph is built).
        self.foreign: frozenset[str] = frozenset()
        #: Non-persistent datasets of the last step (key without prefix -> value).
        self.last_datasets: dict[str, Any] = {}

    def run_child(self, ctx: GraphContext, step: str, arguments: Mapping[str, Any],
                  overlay: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], str]:
        """Run the experiment once on the overnight experiment's managers; return the owned
        parameter values it tried to store and where its data went (its other datasets are
        in :attr:`last_datasets`). ``overlay``: parameter values the child reads instead of
        the stored ones."""
        cls = ctx.experiment_class(self.spec)
        prefix = ctx.next_prefix(self.name, step)
        args = ChildArguments({**self.spec.arguments, **arguments})
        parent = ctx.experiment
        captured: dict[str, Any] = {}
        datasets = _StepDatasets(parent._HasEnvironment__dataset_mgr, prefix, set(self.params),
                                 captured, pass_persistent=step == "calibrate",
                                 foreign=self.foreign, overlay=overlay)
        child = cls((parent._HasEnvironment__device_mgr, datasets, args, {}))
        args.check_used(self.spec.class_name)
        self.last_datasets = {}
        child.prepare()
        child.run()
        child.analyze()
        self.last_datasets = {k: datasets.get(k) for k in datasets.own}
        return captured, f"{ctx.results}#{prefix}*"

    def measured_errors(self) -> dict[str, float]:
        """Standard errors of the last step's values, from :attr:`error_keys`."""
        out = {}
        for param, source in self.error_keys.items():
            key, _, path = source.partition(":")
            value: Any = self.last_datasets.get(key)
            if path and value is not None:
                try:
                    value = ast.literal_eval(value) if isinstance(value, str) else value
                    for part in path.split("."):
                        value = value[part]
                except (ValueError, SyntaxError, KeyError, TypeError, IndexError):
                    value = None
            try:
                err = float(value)
            except (TypeError, ValueError):
                continue
            if math.isfinite(err) and err >= 0:
                out[param] = err
        return out

    def stored_errors(self, ctx: Any) -> dict[str, float | None]:
        """Standard errors of the stored values (from provenance; None when unknown)."""
        get = getattr(ctx, "get_error", None)
        return {p: (get(p) if get is not None else None) for p in self.error_keys}

    def check_data(self, ctx: GraphContext, proposed: Mapping[str, float] | None = None,
                   proposed_errors: Mapping[str, float] | None = None) -> CheckResult:
        step = "check" if proposed is None else "verify"
        measured, data = self.run_child(ctx, step, self.spec.check_arguments, proposed)
        missing = [p for p in self.params if p not in measured]
        if missing:
            return CheckResult(Verdict.BAD_DATA, _floats(measured),
                               f"{self.spec.class_name} did not accept a value for "
                               f"{', '.join(missing)} (its fit failed)", data,
                               self.measured_errors())
        stored = {p: ctx.get_param(p) for p in self.params}
        stored.update(proposed or {})
        if proposed is None:
            stored_errors = self.stored_errors(ctx)
        else:
            stored_errors = {p: (proposed_errors or {}).get(p) for p in self.params}
        result = self.compare(_floats(measured), stored, self.measured_errors(), stored_errors)
        result.data = data
        return result

    def calibrate(self, ctx: GraphContext) -> CalibrationResult:
        values, data = self.run_child(ctx, "calibrate", self.spec.calibrate_arguments)
        errors = self.measured_errors()
        missing = [p for p in self.params if p not in values]
        if missing:
            return CalibrationResult(False, _floats(values),
                                     f"{self.spec.class_name} did not accept a value for "
                                     f"{', '.join(missing)} (its fit failed)", data, errors)
        return CalibrationResult(True, _floats(values), f"{self.spec.class_name} fit", data,
                                 errors)


class ChildArguments:
    """An argument manager (ARTIQ's interface) answering from a dict, else with defaults."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values = dict(values)
        self.used: set[str] = set()

    def get(self, key: str, processor: Any, group: Any = None, tooltip: Any = None) -> Any:
        if key in self.values:
            self.used.add(key)
            return processor.process(self.values[key])
        return processor.default()

    def check_used(self, class_name: str) -> None:
        """Raise ValueError naming any given argument the experiment does not have."""
        unknown = sorted(set(self.values) - self.used)
        if unknown:
            raise ValueError(f"{class_name} has no argument(s) {', '.join(unknown)}")


def _floats(values: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for k, v in values.items():
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            out[k] = math.nan
    return out


class _StepDatasets:
    """The dataset manager a child experiment (and its blocks) sees during one step."""

    def __init__(self, inner: Any, prefix: str, owned: set[str], captured: dict[str, Any],
                 pass_persistent: bool, foreign: frozenset[str] = frozenset(),
                 overlay: Mapping[str, Any] | None = None) -> None:
        self.inner = inner
        self.overlay = dict(overlay or {})
        self.prefix = prefix
        self.owned = owned
        self.foreign = foreign
        self.captured = captured
        self.pass_persistent = pass_persistent
        self.own: set[str] = set()

    def _key(self, key: str) -> str:
        return self.prefix + key if key in self.own else key

    def set(self, key: str, value: Any, metadata: dict, broadcast: bool, persist: bool,
            archive: bool) -> None:
        if persist:
            if key in self.owned:
                self.captured[key] = value
            elif self.pass_persistent and key not in self.foreign:
                self.inner.set(key, value, metadata, broadcast, persist, archive)
            return
        self.own.add(key)
        self.inner.set(self.prefix + key, value, metadata, False, False, True)

    def get(self, key: str, archive: bool = False) -> Any:
        if key in self.overlay and key not in self.own:
            return self.overlay[key]
        return self.inner.get(self._key(key), archive)

    def get_metadata(self, key: str) -> dict:
        return self.inner.get_metadata(self._key(key))

    def mutate(self, key: str, index: Any, value: Any) -> None:
        self.inner.mutate(self._key(key), index, value)

    def append_to(self, key: str, value: Any) -> None:
        self.inner.append_to(self._key(key), value)


class RateCheckNode(ExperimentNode):
    """A check-only node: runs an experiment and compares a measured probability with the
    one its own analysis expects from the calibrated parameters.

    The experiment must write the non-persistent datasets ``observed_key`` (successes /
    trials), ``expected_key`` and ``trials_key``. In spec when
    ``|observed - expected| <= max(rel_tolerance * expected, 4 sigma)`` with the binomial
    ``sigma = sqrt(expected (1 - expected) / trials)``; *bad data* when less than
    ``dead_fraction`` of the expected rate was observed although at least
    ``min_expected_events`` were expected (something upstream is dead: only dark counts are
    left), so the graph looks upstream.
    It owns no parameter: its "calibration" measures again, which passes once its
    dependencies were repaired and otherwise reports the fault.
    """

    verify_after_calibrate = False

    def __init__(self, name: str, spec: ExperimentSpec, observed_key: str, expected_key: str,
                 trials_key: str, rate_tolerance: float = 0.3, min_expected_events: float = 10.0,
                 dead_fraction: float = 0.2, **kwargs: Any) -> None:
        super().__init__(name, spec, **kwargs)
        self.observed_key = observed_key
        self.expected_key = expected_key
        self.trials_key = trials_key
        self.rate_tolerance = rate_tolerance
        self.min_expected_events = min_expected_events
        self.dead_fraction = dead_fraction

    def _measure(self, ctx: GraphContext, step: str,
                 arguments: Mapping[str, Any]) -> CheckResult:
        _, data = self.run_child(ctx, step, arguments)
        try:
            observed = float(self.last_datasets[self.observed_key])
            expected = float(self.last_datasets[self.expected_key])
            trials = float(self.last_datasets[self.trials_key])
        except (KeyError, TypeError, ValueError) as e:
            return CheckResult(Verdict.BAD_DATA, {}, f"{self.spec.class_name} gave no "
                               f"{e} dataset", data)
        values = {self.observed_key: observed, self.expected_key: expected}
        if not (trials > 0 and 0 < expected < 1):
            return CheckResult(Verdict.BAD_DATA, values, f"expected probability {expected!r} "
                               f"over {trials!r} trials cannot be checked", data)
        sigma = math.sqrt(expected * (1 - expected) / trials)
        tol = max(self.rate_tolerance * expected, 4 * sigma)
        line = (f"observed {observed:.3g} vs expected {expected:.3g} per trial "
                f"({trials:.0f} trials, tolerance {tol:.2g})")
        if (observed < self.dead_fraction * expected
                and expected * trials >= self.min_expected_events):
            return CheckResult(Verdict.BAD_DATA, values, "almost no events: " + line, data)
        verdict = Verdict.IN_SPEC if abs(observed - expected) <= tol else Verdict.OUT_OF_SPEC
        return CheckResult(verdict, values, line, data)

    def check_data(self, ctx: GraphContext, proposed: Mapping[str, float] | None = None,
                   proposed_errors: Mapping[str, float] | None = None) -> CheckResult:
        return self._measure(ctx, "check", self.spec.check_arguments)

    def calibrate(self, ctx: GraphContext) -> CalibrationResult:
        result = self._measure(ctx, "calibrate", self.spec.calibrate_arguments)
        if result.verdict is Verdict.IN_SPEC:
            return CalibrationResult(True, {}, "in spec again: " + result.message, result.data)
        return CalibrationResult(False, {}, f"still {result.verdict.value} after its "
                                 f"dependencies were checked: {result.message}", result.data)


class PhaseNode(ExperimentNode):
    """An experiment node whose parameters are phases, periodic with ``period`` (e.g. 1 for
    a phase in turns): a measured phase is compared with the stored one modulo the period
    (-0.49 and 0.49 turns are 0.02 turns apart).

    :param noise_k: standard errors of the difference a deviation must exceed to count (its
        class default :attr:`CalNode.NOISE_K` when None).
    Other parameters as :class:`ExperimentNode`.
    """

    def __init__(self, name: str, spec: ExperimentSpec, period: float = 1.0,
                 noise_k: float | None = None, **kwargs: Any) -> None:
        super().__init__(name, spec, **kwargs)
        if not (isinstance(period, (int, float)) and period > 0):
            raise ValueError(f"node {name}: period must be > 0, not {period!r}")
        self.period = float(period)
        if noise_k is not None:
            if not noise_k > 0:
                raise ValueError(f"node {name}: noise_k must be > 0, not {noise_k!r}")
            self.NOISE_K = float(noise_k)

    def deviation(self, key: str, measured: float, stored: float) -> float:
        half = 0.5 * self.period
        return (measured - stored + half) % self.period - half
