"""Least-squares fits with automatic starting guesses and a verdict on fit quality.

Uncertainties:
- `sigma` given: absolute standard errors of y; covariance is not rescaled and the reduced
  chi2 tests the model.
- `n_shots` given (y are measured probabilities from n_shots binary shots each): binomial
  weights sigma_i = sqrt(p_i (1 - p_i) / n) with p_i the *model* prediction (clipped to
  [1/(2n), 1 - 1/(2n)]), iterated once after a first fit, so points at p = 0 or 1 keep a
  finite weight; absolute errors as above.
- neither: unit weights; the covariance is scaled by the residual variance (the usual
  curve_fit convention) and the reduced chi2 cannot judge the fit.

`FitResult.good` is True when the optimiser converged, all standard errors are finite and
non-zero and the covariance is not singular (data determine every parameter),
parameters lie within their physical ranges (within 3 standard errors), no parameter sits on
an optimiser bound, and (for absolute errors) the reduced chi2 is plausible at the 1e-4 level.
`FitResult.reason` says which check failed.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize
from scipy import stats as _stats

from analysis import fit_models
from analysis.fit_models import Model

CHI2_TAIL = 1e-4
DEGENERATE_EIGENVALUE = 1e-10  # smallest eigenvalue of the parameter correlation matrix


@dataclass(frozen=True)
class FitResult:
    """Outcome of a fit: values and standard errors by name, goodness of fit and verdict."""

    model: str
    values: dict[str, float]
    errors: dict[str, float]
    covariance: np.ndarray
    chi2_reduced: float
    dof: int
    errors_absolute: bool
    good: bool
    reason: str
    derived: dict[str, tuple[float, float]] = field(default_factory=dict)

    def __getitem__(self, name: str) -> float:
        return self.values[name]

    def predict(self, x) -> np.ndarray:
        """Model evaluated at x with the fitted parameters."""
        model = fit_models.MODELS[self.model]
        return model.function(np.asarray(x, dtype=float), *self.values.values())

    def to_dict(self) -> dict:
        """JSON-friendly summary (no covariance matrix)."""
        return {"model": self.model, "values": self.values, "errors": self.errors,
                "chi2_reduced": self.chi2_reduced, "dof": self.dof, "good": self.good,
                "reason": self.reason,
                "derived": {k: {"value": v, "error": e} for k, (v, e) in self.derived.items()}}


def _validate(x, y, sigma, n_shots, n_params: int):
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y must have equal length, got {x.size} and {y.size}")
    if x.size <= n_params:
        raise ValueError(f"need more than {n_params} data points to fit {n_params} parameters, "
                         f"got {x.size}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("x and y must be finite (no NaN or inf)")
    if sigma is not None and n_shots is not None:
        raise ValueError("give either sigma or n_shots, not both")
    if sigma is not None:
        sigma = np.broadcast_to(np.asarray(sigma, dtype=float), x.shape).copy()
        if not (np.all(np.isfinite(sigma)) and np.all(sigma > 0)):
            raise ValueError("sigma must be finite and > 0 for every point")
    if n_shots is not None:
        n_shots = np.broadcast_to(np.asarray(n_shots, dtype=float), x.shape).copy()
        if np.any(n_shots < 1):
            raise ValueError("n_shots must be >= 1 for every point")
        if np.any(y < 0) or np.any(y > 1):
            raise ValueError("with n_shots, y must be probabilities in [0, 1]")
    return x, y, sigma, n_shots


def _least_squares(model: Model, x, y, sigma, starts):
    """Best curve_fit over the candidate starts; returns (popt, pcov, chi2) or None."""
    best = None
    weights = 1.0 / sigma
    lower, upper = np.array(model.lower), np.array(model.upper)
    for p0 in starts:
        p0 = np.clip(np.asarray(p0, dtype=float), np.nextafter(lower, upper),
                     np.nextafter(upper, lower))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                popt, pcov = optimize.curve_fit(model.function, x, y, p0=p0, sigma=sigma,
                                                absolute_sigma=True, bounds=(lower, upper),
                                                maxfev=4000)
            except (RuntimeError, ValueError, optimize.OptimizeWarning):
                continue
        chi2 = float(np.sum(((model.function(x, *popt) - y) * weights) ** 2))
        if np.isfinite(chi2) and (best is None or chi2 < best[2]):
            best = (popt, pcov, chi2)
    return best


def _binomial_sigma(p, n_shots):
    p = np.clip(p, 0.5 / n_shots, 1.0 - 0.5 / n_shots)
    return np.sqrt(p * (1.0 - p) / n_shots)


def fit(model: Model | str, x, y, sigma=None, n_shots=None) -> FitResult:
    """Fit `model` (a Model or its name in fit_models.MODELS) to data y(x).

    sigma: absolute standard errors of y; n_shots: number of binary shots behind each
    probability y (binomial weights). See the module docstring for the error conventions.
    """
    if isinstance(model, str):
        if model not in fit_models.MODELS:
            raise ValueError(f"unknown fit model {model!r}; known: {sorted(fit_models.MODELS)}")
        model = fit_models.MODELS[model]
    n_params = len(model.param_names)
    x, y, sigma, n_shots = _validate(x, y, sigma, n_shots, n_params)
    errors_absolute = sigma is not None or n_shots is not None
    starts = model.guesses(x, y)
    if n_shots is not None:
        working_sigma = _binomial_sigma(np.full_like(y, np.mean(y)), n_shots)
    else:
        working_sigma = sigma if sigma is not None else np.ones_like(y)
    best = _least_squares(model, x, y, working_sigma, starts)
    if best is not None and n_shots is not None:
        working_sigma = _binomial_sigma(model.function(x, *best[0]), n_shots)
        refined = _least_squares(model, x, y, working_sigma, [best[0]] + starts[:2])
        best = refined if refined is not None else best
    dof = x.size - n_params
    nan = np.full(n_params, np.nan)
    if best is None:
        return FitResult(model.name, dict(zip(model.param_names, nan.tolist(), strict=True)),
                         dict(zip(model.param_names, nan.tolist(), strict=True)),
                         np.full((n_params, n_params), np.nan), float("nan"), dof,
                         errors_absolute, False, "fit did not converge from any starting guess")
    popt, pcov, chi2 = best
    chi2_reduced = chi2 / dof
    if not errors_absolute:
        pcov = pcov * chi2_reduced
    popt = _canonical(model, popt)
    perr = np.sqrt(np.abs(np.diag(pcov)))
    values = dict(zip(model.param_names, (float(v) for v in popt), strict=True))
    errors = dict(zip(model.param_names, (float(e) for e in perr), strict=True))
    good, reason = _judge(model, popt, pcov, perr, chi2_reduced, dof, errors_absolute)
    return FitResult(model.name, values, errors, pcov, float(chi2_reduced), dof, errors_absolute,
                     good, reason, _derived(model.name, values, errors))


def _canonical(model: Model, popt: np.ndarray) -> np.ndarray:
    """Wrap phases into (-pi, pi]."""
    popt = popt.copy()
    if "phase" in model.param_names:
        i = model.param_names.index("phase")
        popt[i] = np.pi - np.mod(np.pi - popt[i], 2 * np.pi)
    return popt


def _undetermined(model: Model, pcov: np.ndarray, perr: np.ndarray) -> str:
    """Why the covariance cannot be trusted, or "" if it can.

    The optimiser's covariance is a pseudo-inverse that drops directions in which the data
    do not constrain the parameters: a parameter along such a direction gets a standard
    error of exactly 0, and a combination of parameters a correlation of exactly +-1, where
    the truth is an unbounded error.
    """
    zero = [name for name, error in zip(model.param_names, perr, strict=True) if error == 0]
    if zero:
        return (f"{', '.join(zero)} not determined by the data (zero standard error from a "
                f"singular covariance)")
    correlation = pcov / np.outer(perr, perr)
    if np.min(np.linalg.eigvalsh(0.5 * (correlation + correlation.T))) < DEGENERATE_EIGENVALUE:
        return "parameters not separately determined by the data (singular covariance)"
    return ""


def _judge(model, popt, pcov, perr, chi2_reduced, dof, errors_absolute) -> tuple[bool, str]:
    if not np.all(np.isfinite(perr)):
        return False, "standard errors are not finite (parameters not determined by the data)"
    degenerate = _undetermined(model, pcov, perr)
    if degenerate:
        return False, degenerate
    for name, value, error in zip(model.param_names, popt, perr, strict=True):
        lo, hi = model.physical.get(name, (-np.inf, np.inf))
        if value + 3 * error < lo or value - 3 * error > hi:
            return False, f"{name} = {value:.4g} +- {error:.2g} outside physical range [{lo}, {hi}]"
    for name, value, lo, hi in zip(model.param_names, popt, model.lower, model.upper, strict=True):
        scale = max(abs(value), 1e-300)
        if (np.isfinite(lo) and abs(value - lo) <= 1e-9 * scale) or (
                np.isfinite(hi) and abs(value - hi) <= 1e-9 * scale):
            return False, f"{name} = {value:.4g} is pinned at an optimiser bound"
    if errors_absolute and dof > 0:
        if _stats.chi2.sf(chi2_reduced * dof, dof) < CHI2_TAIL:
            return False, f"reduced chi2 {chi2_reduced:.3g} too large for {dof} dof"
        if _stats.chi2.cdf(chi2_reduced * dof, dof) < CHI2_TAIL:
            return False, f"reduced chi2 {chi2_reduced:.3g} too small: errors overestimated"
        return True, "ok"
    return True, "ok (unit weights: reduced chi2 not assessed)"


def _derived(name: str, values: dict, errors: dict) -> dict[str, tuple[float, float]]:
    if name in ("rabi", "rabi_undamped"):
        f, df = values["rabi_frequency"], errors["rabi_frequency"]
        if f > 0:
            return {"pi_time": (0.5 / f, 0.5 * df / f**2)}
    return {}


def fit_exponential_decay(t, y, sigma=None, n_shots=None) -> FitResult:
    """amplitude * exp(-t / tau) + offset; t in s."""
    return fit(fit_models.EXPONENTIAL_DECAY, t, y, sigma, n_shots)


def fit_gaussian_decay(t, y, sigma=None, n_shots=None) -> FitResult:
    """amplitude * exp(-(t / tau)**2) + offset; t in s."""
    return fit(fit_models.GAUSSIAN_DECAY, t, y, sigma, n_shots)


def fit_stretched_decay(t, y, sigma=None, n_shots=None) -> FitResult:
    """amplitude * exp(-(t / tau)**exponent) + offset with free exponent; t in s."""
    return fit(fit_models.STRETCHED_DECAY, t, y, sigma, n_shots)


def fit_rabi(t, p, sigma=None, n_shots=None, damped: bool = True) -> FitResult:
    """Resonant Rabi flopping P(t) = offset + contrast/2 (1 - exp(-t/tau) cos(2 pi f t)).

    t in s; result has `rabi_frequency` (Hz) and derived `pi_time` (s). With damped=False the
    damping time tau is omitted (infinite).
    """
    model = fit_models.RABI if damped else fit_models.RABI_UNDAMPED
    return fit(model, t, p, sigma, n_shots)


def fit_ramsey(t, p, sigma=None, n_shots=None) -> FitResult:
    """Ramsey fringe offset + contrast/2 exp(-(t/t2)^2) cos(2 pi detuning t + phase); t in s."""
    return fit(fit_models.RAMSEY, t, p, sigma, n_shots)


def fit_sinusoid(x, y, sigma=None, n_shots=None) -> FitResult:
    """offset + amplitude sin(2 pi frequency x + phase); FFT-based frequency guess."""
    return fit(fit_models.SINUSOID, x, y, sigma, n_shots)


def fit_lorentzian(x, y, sigma=None, n_shots=None) -> FitResult:
    """Lorentzian line: center, fwhm (full width at half maximum), amplitude, offset."""
    return fit(fit_models.LORENTZIAN, x, y, sigma, n_shots)


def fit_gaussian_line(x, y, sigma=None, n_shots=None) -> FitResult:
    """Gaussian line: center, fwhm (full width at half maximum), amplitude, offset."""
    return fit(fit_models.GAUSSIAN_LINE, x, y, sigma, n_shots)
