"""Fit models with automatic starting guesses.

Each `Model` bundles a model function y = f(x, *params), the parameter names, a function
returning several candidate starting points from the data (the fitter keeps the best), the
bounds handed to the optimiser, and the physically meaningful ranges checked afterwards.

Units: x in seconds (decays, Rabi, Ramsey) or Hz (lines) or any unit (sinusoid); frequencies
are ordinary frequencies in 1/[x] (Hz when x is in seconds), phases in radians.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

INF = np.inf
FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


@dataclass(frozen=True)
class Model:
    """A fit model: function, parameter names, starting guesses, bounds and physical ranges."""

    name: str
    function: Callable[..., np.ndarray]
    param_names: tuple[str, ...]
    guesses: Callable[[np.ndarray, np.ndarray], list[list[float]]]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    physical: dict[str, tuple[float, float]] = field(default_factory=dict)


# ----------------------------------------------------------------------------- helpers

def _edge_level(x: np.ndarray, y: np.ndarray, fraction: float = 0.15) -> float:
    """Mean of y over the last `fraction` of the x range (the asymptote of a decay)."""
    order = np.argsort(x)
    n_tail = max(1, int(round(fraction * x.size)))
    return float(np.mean(y[order][-n_tail:]))


def _head_level(x: np.ndarray, y: np.ndarray, fraction: float = 0.1) -> float:
    order = np.argsort(x)
    n_head = max(1, int(round(fraction * x.size)))
    return float(np.mean(y[order][:n_head]))


def dominant_frequencies(x: np.ndarray, y: np.ndarray, count: int = 3) -> list[float]:
    """Frequencies (1/[x]) of the `count` largest peaks of the zero-padded power spectrum.

    Non-uniform x is first interpolated onto a uniform grid with the same number of points.
    """
    order = np.argsort(x)
    xs, ys = x[order], y[order]
    span = xs[-1] - xs[0]
    if span <= 0 or xs.size < 4:
        return []
    grid = np.linspace(xs[0], xs[-1], xs.size)
    yg = np.interp(grid, xs, ys)
    yg = (yg - yg.mean()) * np.hanning(grid.size)
    n_pad = 16 * grid.size
    power = np.abs(np.fft.rfft(yg, n_pad)) ** 2
    freqs = np.fft.rfftfreq(n_pad, grid[1] - grid[0])
    peaks = [i for i in range(1, power.size - 1)
             if power[i] >= power[i - 1] and power[i] >= power[i + 1]]
    peaks.sort(key=lambda i: power[i], reverse=True)
    return [float(freqs[i]) for i in peaks[:count] if freqs[i] > 0]


def _frequency_candidates(x: np.ndarray, y: np.ndarray) -> list[float]:
    span = float(np.ptp(x))
    found = dominant_frequencies(x, y, 3)
    return found if found else [1.0 / span]


# ----------------------------------------------------------------------------- decays

def exponential_decay(t, amplitude, tau, offset):
    """amplitude * exp(-t / tau) + offset; tau in the unit of t."""
    return amplitude * np.exp(-t / tau) + offset


def exponential_to_zero(t, amplitude, tau):
    """amplitude * exp(-t / tau): a decay to zero (e.g. a coherence contrast); tau in the
    unit of t."""
    return amplitude * np.exp(-t / tau)


def stretched_decay(t, amplitude, tau, exponent, offset):
    """amplitude * exp(-(t / tau)**exponent) + offset (exponent 1: exponential, 2: Gaussian)."""
    return amplitude * np.exp(-(np.abs(t) / tau) ** exponent) + offset


def gaussian_decay(t, amplitude, tau, offset):
    """amplitude * exp(-(t / tau)**2) + offset."""
    return amplitude * np.exp(-((t / tau) ** 2)) + offset


def _decay_guesses(exponents: Sequence[float] | None):
    def guesses(t, y):
        offset = _edge_level(t, y)
        amplitude = _head_level(t, y) - offset
        if amplitude == 0:
            amplitude = float(np.ptp(y)) or 1.0
        span = float(np.max(t) - max(0.0, float(np.min(t)))) or float(np.ptp(t))
        starts = []
        for factor in (0.05, 0.15, 0.4, 1.0, 3.0):
            tau = factor * span
            if exponents is None:
                starts.append([amplitude, tau, offset])
            else:
                starts.extend([amplitude, tau, n, offset] for n in exponents)
        return starts
    return guesses


EXPONENTIAL_DECAY = Model(
    "exponential_decay", exponential_decay, ("amplitude", "tau", "offset"),
    _decay_guesses(None), (-INF, 0.0, -INF), (INF, INF, INF), {"tau": (0.0, INF)})

EXPONENTIAL_TO_ZERO = Model(
    "exponential_to_zero", exponential_to_zero, ("amplitude", "tau"),
    lambda t, y: [[_head_level(t, y) or 1.0, g[1]] for g in _decay_guesses(None)(t, y)],
    (-INF, 0.0), (INF, INF), {"tau": (0.0, INF)})

GAUSSIAN_DECAY = Model(
    "gaussian_decay", gaussian_decay, ("amplitude", "tau", "offset"),
    _decay_guesses(None), (-INF, 0.0, -INF), (INF, INF, INF), {"tau": (0.0, INF)})

STRETCHED_DECAY = Model(
    "stretched_decay", stretched_decay, ("amplitude", "tau", "exponent", "offset"),
    _decay_guesses((1.0, 2.0)), (-INF, 0.0, 0.1, -INF), (INF, INF, 10.0, INF),
    {"tau": (0.0, INF), "exponent": (0.1, 10.0)})


# ----------------------------------------------------------------------------- oscillations

def rabi_flop(t, rabi_frequency, contrast, offset, tau):
    """Excitation probability offset + contrast/2 * (1 - exp(-t/tau) cos(2 pi f t)).

    rabi_frequency f in Hz (full population cycle; the pi time is 1 / (2 f)), tau the
    damping time in s (np.inf for no damping). At t = 0 the probability is `offset`.
    """
    return offset + 0.5 * contrast * (1.0 - np.exp(-t / tau) * np.cos(2 * np.pi * rabi_frequency
                                                                        * t))


def _rabi_guesses(t, y):
    offset = max(0.0, float(np.min(y)))
    contrast = float(np.ptp(y)) or 1.0
    span = float(np.ptp(t))
    return [[f, contrast, offset, tau] for f in _frequency_candidates(t, y)
            for tau in (0.5 * span, 5 * span)]


RABI = Model(
    "rabi", rabi_flop, ("rabi_frequency", "contrast", "offset", "tau"), _rabi_guesses,
    (0.0, 0.0, -0.5, 0.0), (INF, 2.0, 1.5, INF),
    {"rabi_frequency": (0.0, INF), "contrast": (0.0, 1.0), "offset": (0.0, 1.0)})


def rabi_flop_undamped(t, rabi_frequency, contrast, offset):
    """rabi_flop with no damping (tau = infinity)."""
    return offset + 0.5 * contrast * (1.0 - np.cos(2 * np.pi * rabi_frequency * t))


RABI_UNDAMPED = Model(
    "rabi_undamped", rabi_flop_undamped, ("rabi_frequency", "contrast", "offset"),
    lambda t, y: [g[:3] for g in _rabi_guesses(t, y)[::2]],
    (0.0, 0.0, -0.5), (INF, 2.0, 1.5),
    {"rabi_frequency": (0.0, INF), "contrast": (0.0, 1.0), "offset": (0.0, 1.0)})


def rabi_flop_thermal(t, rabi_frequency, spread, contrast, offset):
    """Rabi flopping of a thermal ion: offset + contrast/2 * (1 - Re[exp(2 pi i f t) /
    (1 + 2 pi i s t)]).

    The carrier Rabi frequency of motional state n is f (1 - eta^2 n) to first order in the
    Lamb-Dicke parameter; over a thermal (geometric, nbar >> 1) distribution the reduction is
    exponentially distributed with mean `spread` s = eta^2 nbar f. f in Hz is the n = 0 Rabi
    frequency (full population cycle), s in Hz; the mean Rabi frequency is f - s.
    """
    a = 2 * np.pi * spread * t
    phi = 2 * np.pi * rabi_frequency * t
    return offset + 0.5 * contrast * (1.0 - (np.cos(phi) + a * np.sin(phi)) / (1.0 + a * a))


def _rabi_thermal_guesses(t, y):
    offset = max(0.0, float(np.min(y)))
    contrast = float(np.ptp(y)) or 1.0
    return [[f, k * f, contrast, offset] for f in _frequency_candidates(t, y)
            for k in (0.0, 0.03, 0.1)]


RABI_THERMAL = Model(
    "rabi_thermal", rabi_flop_thermal, ("rabi_frequency", "spread", "contrast", "offset"),
    _rabi_thermal_guesses, (0.0, -INF, 0.0, -0.5), (INF, INF, 2.0, 1.5),
    {"rabi_frequency": (0.0, INF), "spread": (0.0, INF), "contrast": (0.0, 1.0),
     "offset": (0.0, 1.0)})


def rabi_line(x, center, rabi_frequency, area, contrast, offset):
    """Excitation spectrum of a rectangular pulse of area theta = `area` (rad) on resonance:
    offset + contrast * sin^2(theta/2 sqrt(1 + u^2)) / (1 + u^2), u = (x - center) /
    rabi_frequency; center and rabi_frequency in the unit of x (rabi_frequency is the
    detuning, in x, equal to the Rabi frequency)."""
    u2 = ((x - center) / rabi_frequency) ** 2
    return offset + contrast * np.sin(0.5 * area * np.sqrt(1.0 + u2)) ** 2 / (1.0 + u2)


def _rabi_line_guesses(x, y):
    starts = []
    for center, fwhm, amplitude, offset in _line_guesses(x, y):
        if amplitude <= 0:
            continue
        for area in (np.pi, 0.6 * np.pi):
            contrast = amplitude / np.sin(0.5 * area) ** 2
            # a pi pulse's line has a full width at half maximum of 1.6 Rabi frequencies
            starts.append([center, fwhm / 1.6, area, contrast, offset])
    return starts or [[float(np.mean(x)), float(np.ptp(x)) / 4, np.pi, 1.0, 0.0]]


RABI_LINE = Model(
    "rabi_line", rabi_line, ("center", "rabi_frequency", "area", "contrast", "offset"),
    _rabi_line_guesses, (-INF, 0.0, 0.0, 0.0, -0.5), (INF, INF, 4 * np.pi, 2.0, 1.5),
    {"rabi_frequency": (0.0, INF), "contrast": (0.0, 1.0), "offset": (0.0, 1.0)})


def ramsey_fringe(t, detuning, phase, contrast, offset, t2):
    """offset + contrast/2 * exp(-(t/t2)**2) * cos(2 pi detuning t + phase).

    detuning in Hz (>= 0; its sign is absorbed in the phase), phase in rad, t2 (T2*) in s
    with the Gaussian decay of quasi-static frequency noise.
    """
    return offset + 0.5 * contrast * np.exp(-((t / t2) ** 2)) * np.cos(
        2 * np.pi * detuning * t + phase)


def _ramsey_guesses(t, y):
    offset = float(np.mean(y))
    contrast = float(np.ptp(y)) or 1.0
    span = float(np.ptp(t))
    starts = []
    for f in _frequency_candidates(t, y):
        for phase in (0.0, np.pi / 2, np.pi, -np.pi / 2):
            for t2 in (0.5 * span, 3 * span):
                starts.append([f, phase, contrast, offset, t2])
    return starts


RAMSEY = Model(
    "ramsey", ramsey_fringe, ("detuning", "phase", "contrast", "offset", "t2"), _ramsey_guesses,
    (0.0, -2 * np.pi, 0.0, -0.5, 0.0), (INF, 2 * np.pi, 2.0, 1.5, INF),
    {"contrast": (0.0, 1.0), "offset": (0.0, 1.0), "t2": (0.0, INF)})


def sinusoid(x, frequency, phase, amplitude, offset):
    """offset + amplitude * sin(2 pi frequency x + phase); frequency in 1/[x], phase in rad."""
    return offset + amplitude * np.sin(2 * np.pi * frequency * x + phase)


def _sinusoid_guesses(x, y):
    offset = float(np.mean(y))
    amplitude = 0.5 * float(np.ptp(y)) or 1.0
    return [[f, phase, amplitude, offset] for f in _frequency_candidates(x, y)
            for phase in (0.0, np.pi / 2, np.pi, -np.pi / 2)]


SINUSOID = Model(
    "sinusoid", sinusoid, ("frequency", "phase", "amplitude", "offset"), _sinusoid_guesses,
    (0.0, -2 * np.pi, 0.0, -INF), (INF, 2 * np.pi, INF, INF), {"amplitude": (0.0, INF)})


# ----------------------------------------------------------------------------- lines

def lorentzian_line(x, center, fwhm, amplitude, offset):
    """offset + amplitude / (1 + (2 (x - center) / fwhm)**2); fwhm is the full width."""
    return offset + amplitude / (1.0 + (2.0 * (x - center) / fwhm) ** 2)


def gaussian_line(x, center, fwhm, amplitude, offset):
    """offset + amplitude * exp(-4 ln2 ((x - center) / fwhm)**2); fwhm is the full width."""
    return offset + amplitude * np.exp(-4.0 * np.log(2.0) * ((x - center) / fwhm) ** 2)


def _line_guesses(x, y):
    order = np.argsort(x)
    xs, ys = x[order], y[order]
    offset = float(np.median(ys))
    kernel = np.ones(3) / 3.0
    smooth = np.convolve(ys, kernel, mode="same") if ys.size >= 5 else ys
    starts = []
    span = float(np.ptp(xs))
    for extremum in (int(np.argmax(smooth)), int(np.argmin(smooth))):
        amplitude = float(smooth[extremum] - offset)
        if amplitude == 0:
            continue
        beyond_half = np.abs(smooth - offset) >= 0.5 * abs(amplitude)
        width = max(float(np.count_nonzero(beyond_half)) * span / max(xs.size - 1, 1),
                    span / xs.size)
        for factor in (0.5, 1.0, 2.0):
            starts.append([float(xs[extremum]), factor * width, amplitude, offset])
    return starts or [[float(np.mean(xs)), span / 4, float(np.ptp(ys)) or 1.0, offset]]


LORENTZIAN = Model(
    "lorentzian", lorentzian_line, ("center", "fwhm", "amplitude", "offset"), _line_guesses,
    (-INF, 0.0, -INF, -INF), (INF, INF, INF, INF), {"fwhm": (0.0, INF)})

GAUSSIAN_LINE = Model(
    "gaussian_line", gaussian_line, ("center", "fwhm", "amplitude", "offset"), _line_guesses,
    (-INF, 0.0, -INF, -INF), (INF, INF, INF, INF), {"fwhm": (0.0, INF)})

def exponential_onset(t, amplitude, t0, tau, offset):
    """Counts per histogram bin of photons arriving at t0 + Exp(tau) (exponential wavepacket
    starting at the onset t0) over a flat background: offset + amplitude * P(bin), where
    P(bin) is the probability of an arrival in the bin [t - w/2, t + w/2). The bins are
    equal-width with centres t (w = the smallest spacing of t; one point: w = tau). The
    bin-integrated form keeps the model continuous in t0 inside a bin. amplitude: photons
    (area), offset: background counts per bin, t0 and tau in the unit of t."""
    t = np.asarray(t, dtype=float)
    spacing = np.diff(np.unique(t))
    width = float(np.min(spacing)) if spacing.size else float(tau)
    lo = np.maximum(t - 0.5 * width - t0, 0.0)
    hi = np.maximum(t + 0.5 * width - t0, 0.0)
    return offset + amplitude * (np.exp(-lo / tau) - np.exp(-hi / tau))


def _onset_guesses(t, y):
    order = np.argsort(t)
    ts, ys = t[order], y[order]
    offset = float(np.median(ys[: max(1, ys.size // 10)]))
    peak = int(np.argmax(ys))
    rising = np.nonzero(ys[: peak + 1] > offset + 0.5 * (ys[peak] - offset))[0]
    t0 = float(ts[rising[0]]) if rising.size else float(ts[peak])
    width = float(np.min(np.diff(np.unique(ts)))) if ts.size > 1 else 1.0
    area = float(np.sum(np.clip(ys - offset, 0.0, None)))
    after = ys[peak:] - offset
    tail = float(np.sum(np.clip(after, 0.0, None)) * width / max(after[0], 1e-12))
    starts = []
    for tau in (tail, 3 * width, 0.1 * float(np.ptp(ts)) or width):
        for shift in (-1.0, -0.5, 0.0):
            starts.append([area, t0 + shift * width, max(tau, 0.1 * width), offset])
    return starts


EXPONENTIAL_ONSET = Model(
    "exponential_onset", exponential_onset, ("amplitude", "t0", "tau", "offset"),
    _onset_guesses, (0.0, -INF, 0.0, -INF), (INF, INF, INF, INF),
    {"amplitude": (0.0, INF), "tau": (0.0, INF), "offset": (0.0, INF)})


MODELS: dict[str, Model] = {m.name: m for m in (
    EXPONENTIAL_DECAY, GAUSSIAN_DECAY, STRETCHED_DECAY, RABI, RABI_UNDAMPED, RAMSEY, SINUSOID,
    LORENTZIAN, GAUSSIAN_LINE, RABI_THERMAL, RABI_LINE, EXPONENTIAL_ONSET, EXPONENTIAL_TO_ZERO)}
