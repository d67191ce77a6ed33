"""Slow, seeded drifts of the node's true parameters as functions of lab time (seconds).

Each drift is ``walk(t) + amplitude * sin(2 pi t / period + phase)``: a Gaussian random walk
sampled on a fixed grid (``grid_step_s``), linearly interpolated, plus a sinusoid of random
phase. The grid is generated in fixed blocks from one generator, so a value depends only on the
seed and on ``t``, not on the order of queries.
"""

from __future__ import annotations

import math

import numpy as np

_BLOCK = 4096


class Drift:
    """One drifting quantity (an offset, same unit as the amplitudes).

    :param rng: generator owned by this drift.
    :param step_s: grid spacing in seconds.
    :param walk_per_sqrt_s: rms random-walk increment per sqrt(second).
    :param sine_amplitude: amplitude of the sinusoid.
    :param period_s: period of the sinusoid in seconds.
    """

    def __init__(self, rng: np.random.Generator, step_s: float, walk_per_sqrt_s: float,
                 sine_amplitude: float, period_s: float):
        self._rng = rng
        self.step_s = step_s
        self._sigma = walk_per_sqrt_s * math.sqrt(step_s)
        self.amplitude = sine_amplitude
        self.omega = 2 * math.pi / period_s
        self.phase = float(rng.uniform(0, 2 * math.pi))
        self._grid = np.zeros(1)
        self._cum = np.zeros(0)
        # the same values as Python floats (indexing them is cheaper than numpy scalars)
        self._grid_list: list[float] = [0.0]
        self._cum_list: list[float] = []
        self._memo_t = math.nan
        self._memo_v = 0.0

    def _extend(self, index: int) -> None:
        if index + 1 < len(self._grid_list):
            return
        while self._grid.size <= index + 1:
            steps = self._rng.normal(0.0, self._sigma, _BLOCK)
            self._grid = np.concatenate([self._grid, self._grid[-1] + np.cumsum(steps)])
        self._grid_list = self._grid.tolist()

    def integral(self, t0_s: float, t1_s: float) -> float:
        """Exact integral of the drift over ``[t0_s, t1_s]`` (value x seconds)."""
        a0 = self._antiderivative(t0_s)     # first: it is usually the memo of the last call
        return self._antiderivative(t1_s) - a0

    def _antiderivative(self, t_s: float) -> float:
        if t_s == self._memo_t:
            return self._memo_v      # consecutive integrals share their end points
        v = self._antiderivative_at(t_s)
        self._memo_t, self._memo_v = t_s, v
        return v

    def _antiderivative_at(self, t_s: float) -> float:
        t = max(t_s, 0.0)
        x = t / self.step_s
        i = int(x)
        self._extend(i)
        g = self._grid_list
        if len(self._cum_list) != len(g):
            # trapezoids of the piecewise-linear walk, cumulated per grid cell
            a = self._grid
            self._cum = np.concatenate([[0.0], np.cumsum((a[1:] + a[:-1]) * 0.5)])
            self._cum_list = self._cum.tolist()
        frac = x - i
        walk = self.step_s * (self._cum_list[i] + g[i] * frac
                              + (g[i + 1] - g[i]) * frac * frac / 2)
        if self.amplitude:
            walk -= self.amplitude / self.omega * (math.cos(self.omega * t + self.phase)
                                                   - math.cos(self.phase))
        return float(walk)

    def __call__(self, t_s: float) -> float:
        t = max(t_s, 0.0)
        x = t / self.step_s
        i = int(x)
        g = self._grid_list
        if i + 1 >= len(g):
            self._extend(i)
            g = self._grid_list
        frac = x - i
        walk = g[i] * (1 - frac) + g[i + 1] * frac
        return float(walk + self.amplitude * math.sin(self.omega * t + self.phase))


class OrnsteinUhlenbeck:
    """A stationary Gaussian process x(t) with rms ``sigma`` and correlation time ``tau``,
    advanced exactly between (increasing) query times, together with its time integral.

    :meth:`advance` returns ``(x_end, integral)`` of x over ``[t, t + dt]``, sampled jointly
    from their exact bivariate Gaussian law given x(t).
    """

    def __init__(self, rng: np.random.Generator, sigma: float, tau_s: float):
        self._rng = rng
        self.sigma = sigma
        self.tau = tau_s
        self.x = float(rng.normal(0.0, sigma)) if sigma > 0 else 0.0
        self._cache: dict[float, tuple[float, float, float, float, float]] = {}

    def _constants(self, dt_s: float) -> tuple[float, float, float, float, float]:
        """(e, 1 - e, sx, cov / sx, sqrt(cond_var)) of a step ``dt_s`` (cached: loops
        repeat the same steps)."""
        c = self._cache.get(dt_s)
        if c is None:
            tau, s2 = self.tau, self.sigma ** 2
            e = math.exp(-dt_s / tau)
            var_x = s2 * (1 - e * e)
            var_i = s2 * tau * tau * (2 * dt_s / tau - 3 + 4 * e - e * e)
            cov = s2 * tau * (1 - e) ** 2
            sx = math.sqrt(max(var_x, 0.0))
            if sx > 0:
                c = (e, 1 - e, sx, cov / sx,
                     math.sqrt(max(var_i - cov * cov / var_x, 0.0)))
            else:
                c = (e, 1 - e, 0.0, 0.0, 0.0)
            if len(self._cache) > 256:
                self._cache.clear()
            self._cache[dt_s] = c
        return c

    def advance(self, dt_s: float) -> tuple[float, float]:
        if self.sigma == 0 or dt_s <= 0:
            return self.x, self.x * max(dt_s, 0.0)
        e, one_e, sx, cov_sx, cond_sd = self._constants(dt_s)
        x = self.x
        mean_x = x * e
        mean_i = x * self.tau * one_e
        z1, z2 = self._rng.standard_normal(2).tolist()
        if sx > 0:
            x_new = mean_x + sx * z1
            integral = mean_i + cov_sx * z1 + cond_sd * z2
        else:
            x_new, integral = mean_x, mean_i
        self.x = x_new
        return x_new, integral
