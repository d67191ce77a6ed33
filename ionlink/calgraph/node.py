"""Calibration graph nodes (Kelly et al., arXiv:1803.03226): what one node knows and does.

A node owns some calibrated parameters (persistent dataset keys) and offers two
measurements:

- :meth:`CalNode.check_data`: a cheap measurement that says whether the stored values are
  still good: :attr:`Verdict.IN_SPEC`, :attr:`Verdict.OUT_OF_SPEC` (the measurement worked and
  the parameter moved beyond its tolerance) or :attr:`Verdict.BAD_DATA` (the measurement itself
  failed, which points at a dependency: a node upstream is broken).
- :meth:`CalNode.calibrate`: the full measurement; it proposes new values, and the graph
  (not the node) decides whether to store them.

Nodes never write parameters themselves; this keeps the rule "a failed or bad calibration
never overwrites a good value" in one place (:mod:`ionlink.calgraph.maintain`).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CalNode", "CalibrationResult", "CheckResult", "FunctionNode", "Verdict"]


class Verdict(enum.Enum):
    """Outcome of :meth:`CalNode.check_data`."""

    IN_SPEC = "in_spec"
    OUT_OF_SPEC = "out_of_spec"
    BAD_DATA = "bad_data"


@dataclass
class CheckResult:
    """What a check measured.

    :param verdict: in spec / out of spec / bad data.
    :param measured: the parameter values the check measured (same keys as the node's
        parameters; may be empty for bad data).
    :param message: one line for the log and the morning report.
    :param data: where the raw data are (e.g. dataset names in the results file).
    :param errors: standard error of each measured value (same unit), where the
        measurement gives one.
    """

    verdict: Verdict
    measured: dict[str, float] = field(default_factory=dict)
    message: str = ""
    data: str = ""
    errors: dict[str, float] = field(default_factory=dict)


@dataclass
class CalibrationResult:
    """What a calibration proposes.

    :param ok: the measurement and its fit succeeded (else ``values`` is ignored).
    :param values: proposed new value for each parameter the node owns.
    :param message: one line for the log.
    :param data: where the raw data are.
    :param errors: standard error of each proposed value, where the fit gives one.
    """

    ok: bool
    values: dict[str, float] = field(default_factory=dict)
    message: str = ""
    data: str = ""
    errors: dict[str, float] = field(default_factory=dict)


class CalNode:
    """One node of the calibration graph.

    :param name: unique name in the graph.
    :param params: persistent dataset keys this node calibrates.
    :param dependencies: names of the nodes whose parameters this node's measurements use.
    :param timeout_s: seconds after a passing check or calibration before the node must be
        checked again (Kelly's ``check_state`` timeout).
    :param tolerance: per parameter, the largest |measured - stored| still in spec, in the
        parameter's unit (seconds, Hz, counts...).
    :param rel_tolerance: per parameter, a tolerance relative to the stored value (the
        larger of the absolute and relative tolerance applies).
    :param bounds: per parameter, (low, high) physically plausible range; a calibration
        proposing a value outside it is rejected.

    Statistical tolerance: when the measured value has a standard error ``se_m`` (and the
    value it is compared with one, ``se_s``; 0 when unknown), a deviation counts only when it
    exceeds ``max(spec, NOISE_K * sqrt(se_m**2 + se_s**2))``: beyond the spec *and*
    significant. ``NOISE_K = 4`` (two-sided Gaussian false alarm 6e-5 per comparison, so a
    night of a few hundred comparisons raises a false alarm with ~1 % probability); a
    measurement cannot resolve a spec tighter than its own noise, and a verification of a
    value against a second measurement must not fail on the noise of either.
    """

    #: Standard errors of the difference a deviation must exceed to count (see above).
    NOISE_K = 4.0

    def __init__(self, name: str, params: tuple[str, ...] = (),
                 dependencies: tuple[str, ...] = (), timeout_s: float = 3600.0,
                 tolerance: Mapping[str, float] | None = None,
                 rel_tolerance: Mapping[str, float] | None = None,
                 bounds: Mapping[str, tuple[float, float]] | None = None) -> None:
        if not name or not isinstance(name, str):
            raise ValueError(f"node name must be a non-empty str, not {name!r}")
        if not (isinstance(timeout_s, (int, float)) and timeout_s > 0):
            raise ValueError(f"node {name}: timeout_s must be > 0 s, not {timeout_s!r}")
        self.name = name
        self.params = tuple(params)
        self.dependencies = tuple(dependencies)
        self.timeout_s = float(timeout_s)
        self.tolerance = dict(tolerance or {})
        self.rel_tolerance = dict(rel_tolerance or {})
        self.bounds = dict(bounds or {})
        unknown = (set(self.tolerance) | set(self.rel_tolerance) | set(self.bounds)) - set(
            self.params)
        if unknown:
            raise ValueError(f"node {name}: tolerance/bounds for parameters it does not own: "
                             f"{', '.join(sorted(unknown))}")

    def check_data(self, ctx: Any, proposed: Mapping[str, float] | None = None,
                   proposed_errors: Mapping[str, float] | None = None) -> CheckResult:
        """Run the cheap check measurement (override). With ``proposed``, measure and judge
        as if those values were stored (used to verify a calibration before storing it);
        ``proposed_errors``: their standard errors (from the calibration's fit)."""
        raise NotImplementedError(f"node {self.name} has no check_data")

    def calibrate(self, ctx: Any) -> CalibrationResult:
        """Run the full calibration (override)."""
        raise NotImplementedError(f"node {self.name} has no calibrate")

    def compare(self, measured: Mapping[str, float], stored: Mapping[str, float | None],
                errors: Mapping[str, float] | None = None,
                stored_errors: Mapping[str, float | None] | None = None) -> CheckResult:
        """Verdict for measured values against stored ones, parameter by parameter, using
        :attr:`tolerance` widened to the noise of the difference (``errors``: standard
        errors of the measured values, ``stored_errors``: of the stored ones; see the class
        docstring). A parameter without a tolerance only needs to be measurable and
        stored."""
        errors = dict(errors or {})
        stored_errors = dict(stored_errors or {})
        worst = []
        for key in self.params:
            if key not in measured or not _finite(measured[key]):
                return CheckResult(Verdict.BAD_DATA, dict(measured),
                                   f"{key} could not be measured")
            old = stored.get(key)
            if old is None:
                worst.append(f"{key} has no stored value")
                continue
            tol = self.tolerance_for(key, old)
            if tol is None:
                continue
            noise = self.noise_of_difference(errors.get(key), stored_errors.get(key))
            if noise is not None and self.NOISE_K * noise > tol:
                tol = self.NOISE_K * noise
            dev = self.deviation(key, float(measured[key]), float(old))
            if abs(dev) > tol:
                worst.append(f"{key} off by {dev:.4g} (tolerance {tol:.4g})")
        clean = {k: float(v) for k, v in errors.items() if _finite(v)}
        if worst:
            return CheckResult(Verdict.OUT_OF_SPEC, dict(measured), "; ".join(worst),
                               errors=clean)
        return CheckResult(Verdict.IN_SPEC, dict(measured), "within tolerance", errors=clean)

    def deviation(self, key: str, measured: float, stored: float) -> float:
        """measured - stored in the parameter's unit (override for periodic parameters)."""
        return measured - stored

    @staticmethod
    def noise_of_difference(se_measured: Any, se_stored: Any) -> float | None:
        """Standard error of measured - stored (None: the measurement gave none)."""
        if not (_finite(se_measured) and float(se_measured) >= 0):
            return None
        se_s = float(se_stored) if _finite(se_stored) and float(se_stored) >= 0 else 0.0
        return math.hypot(float(se_measured), se_s)

    def tolerance_for(self, key: str, stored: float | None) -> float | None:
        """The tolerance of ``key`` around the stored value (None: no tolerance set)."""
        absolute = self.tolerance.get(key)
        rel = self.rel_tolerance.get(key)
        if rel is not None and stored is not None and _finite(stored):
            relative = rel * abs(float(stored))
            return relative if absolute is None else max(absolute, relative)
        return absolute

    def plausible(self, values: Mapping[str, float]) -> str | None:
        """None when every proposed value is finite and within :attr:`bounds`, else why not."""
        for key in self.params:
            if key not in values:
                return f"calibration gave no value for {key}"
            v = values[key]
            if not _finite(v):
                return f"calibration gave a non-finite {key} = {v!r}"
            lo, hi = self.bounds.get(key, (-math.inf, math.inf))
            if not lo <= float(v) <= hi:
                return f"{key} = {v:.6g} outside the plausible range [{lo:.6g}, {hi:.6g}]"
        return None


class FunctionNode(CalNode):
    """A node whose measurements are plain functions of a context.

    :param measure_check: ``ctx -> dict param -> value`` (raise or return non-finite
        values for bad data); compared with the stored values by :meth:`CalNode.compare`.
    :param measure_calibrate: ``ctx -> dict param -> value`` (raise for a failed fit).
    Other parameters as :class:`CalNode`.
    """

    def __init__(self, name: str, measure_check: Callable[[Any], Mapping[str, float]],
                 measure_calibrate: Callable[[Any], Mapping[str, float]], **kwargs: Any):
        super().__init__(name, **kwargs)
        self._check = measure_check
        self._calibrate = measure_calibrate

    def check_data(self, ctx: Any, proposed: Mapping[str, float] | None = None,
                   proposed_errors: Mapping[str, float] | None = None) -> CheckResult:
        try:
            measured = dict(self._check(ctx))
        except MeasurementError as e:
            return CheckResult(Verdict.BAD_DATA, {}, str(e))
        stored = {k: ctx.get_param(k) for k in self.params}
        stored.update(proposed or {})
        return self.compare(measured, stored)

    def calibrate(self, ctx: Any) -> CalibrationResult:
        try:
            values = dict(self._calibrate(ctx))
        except MeasurementError as e:
            return CalibrationResult(False, {}, str(e))
        return CalibrationResult(True, values, "fit converged")


class MeasurementError(Exception):
    """A measurement gave no usable result (bad data); the message says why."""


__all__.append("MeasurementError")


def _finite(x: Any) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False
