"""A software laser lock: PI control of an actuator on the wavemeter error.

Per update, with error ``e = f_measured - f_target`` (Hz) and ``dt`` (s) since the last
update, the actuator value is ``u = u_ref - (kp * e + ki * sum(e * dt)) / hz_per_unit``,
clipped to the actuator limits (the integral is not accumulated while clipped: anti-windup).
``hz_per_unit`` is the lab's estimate of the laser's tuning (Hz per volt or per DDS Hz).

States: ``"unlocked"`` (not regulating), ``"acquiring"`` (regulating, not yet within the
tolerance), ``"locked"`` (``|e| <= tolerance_hz`` for ``settle_updates`` updates in a row),
``"out_of_range"`` (``|e| > capture_range_hz``: the actuator is held and an alarm raised),
``"railed"`` (the actuator sits at a limit: alarm), ``"no_reading"`` (the wavemeter gave no
value: actuator held, alarm).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

STATES = ("unlocked", "acquiring", "locked", "out_of_range", "railed", "no_reading")
ALARM_STATES = ("out_of_range", "railed", "no_reading")


@dataclass
class LockSettings:
    """Parameters of one lock.

    :param target_hz: lock point (optical Hz).
    :param kp: proportional gain (dimensionless; 1 = cancel the error in one step).
    :param ki: integral gain (1/s).
    :param hz_per_unit: tuning estimate (Hz per actuator unit, sign included).
    :param capture_range_hz: largest |error| the lock acts on.
    :param tolerance_hz: |error| counted as in lock.
    :param settle_updates: updates within tolerance before ``locked``.
    :param limits: actuator (min, max).
    """

    target_hz: float
    kp: float = 0.5
    ki: float = 5.0
    hz_per_unit: float = 1.0e8
    capture_range_hz: float = 500.0e6
    tolerance_hz: float = 1.0e6
    settle_updates: int = 3
    limits: tuple[float, float] = (-10.0, 10.0)

    def __post_init__(self) -> None:
        for name in ("target_hz", "kp", "ki", "hz_per_unit", "capture_range_hz",
                     "tolerance_hz"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"lock {name} must be a finite number, got {v!r}")
        if self.target_hz <= 0:
            raise ValueError(f"lock target must be > 0 Hz, got {self.target_hz!r}")
        if self.kp < 0 or self.ki < 0 or self.kp + self.ki == 0:
            raise ValueError(f"lock gains must be >= 0 and not both 0, got kp={self.kp}, "
                             f"ki={self.ki}")
        if self.hz_per_unit == 0:
            raise ValueError("lock hz_per_unit must not be 0")
        if not self.capture_range_hz > 0 or not self.tolerance_hz > 0:
            raise ValueError("lock capture range and tolerance must be > 0 Hz")
        if int(self.settle_updates) < 1:
            raise ValueError(f"settle_updates must be >= 1, got {self.settle_updates!r}")
        lo, hi = self.limits
        if not lo < hi:
            raise ValueError(f"actuator limits must be (min, max) with min < max, got "
                             f"{self.limits!r}")


class LaserLock:
    """PI lock of one laser.

    :param settings: :class:`LockSettings`.
    :param actuator_set: writes the actuator value.
    :param reference: actuator value when the lock starts (the integral's zero).
    :param history: number of (time, error) samples kept.
    """

    def __init__(self, settings: LockSettings, actuator_set: Callable[[float], None],
                 reference: float = 0.0, history: int = 1000):
        self.settings = settings
        self._set = actuator_set
        self.reference = float(reference)
        self.output = float(reference)
        self.integral = 0.0
        self.state = "acquiring"
        self.alarm = ""
        self._in_tol = 0
        self._last_t: float | None = None
        self.history: deque[tuple[float, float]] = deque(maxlen=history)

    def update(self, t_s: float, measured_hz: float | None) -> str:
        """One control step at time ``t_s`` (s) with a reading (None: no reading); returns
        the state."""
        s = self.settings
        dt = 0.0 if self._last_t is None else max(t_s - self._last_t, 0.0)
        self._last_t = t_s
        if measured_hz is None or not math.isfinite(measured_hz):
            return self._alarm("no_reading", "the wavemeter gave no frequency for this laser")
        e = measured_hz - s.target_hz
        self.history.append((t_s, e))
        if abs(e) > s.capture_range_hz:
            return self._alarm("out_of_range", f"error {e / 1e6:+.3f} MHz is outside the "
                               f"capture range +-{s.capture_range_hz / 1e6:.3f} MHz")
        integral = self.integral + e * dt
        u = self.reference - (s.kp * e + s.ki * integral) / s.hz_per_unit
        lo, hi = s.limits
        clipped = min(max(u, lo), hi)
        if clipped == u:
            self.integral = integral
        self.output = clipped
        self._set(clipped)
        if clipped != u:
            return self._alarm("railed", f"actuator at its limit {clipped:g} (wanted {u:g})")
        self.alarm = ""
        self._in_tol = self._in_tol + 1 if abs(e) <= s.tolerance_hz else 0
        self.state = "locked" if self._in_tol >= s.settle_updates else "acquiring"
        return self.state

    def _alarm(self, state: str, text: str) -> str:
        self.state, self.alarm, self._in_tol = state, text, 0
        return state

    def status(self) -> dict:
        """State, alarm text, last error (Hz), actuator output and target."""
        last = self.history[-1][1] if self.history else float("nan")
        return {"state": self.state, "alarm": self.alarm, "error_hz": last,
                "output": self.output, "target_hz": self.settings.target_hz}
