"""Host-side checks of block settings, run in ``prepare()`` (never in ``build()``).

While ARTIQ's master examines the repository every argument is None, so blocks keep the
settings they are built with as given and check and convert them in ``prepare()``; a bad
value is then one ``ValueError`` line naming the setting, its unit and the value.
"""

from __future__ import annotations

import math
import numbers


def _describe(name: str, constraint: str, unit: str, value) -> str:
    unit = f" {unit}" if unit else ""
    return f"{name} must be {constraint}{unit}, got {value!r}"


def check_real(name: str, value, *, minimum: float | None = None,
               maximum: float | None = None, min_open: bool = False, max_open: bool = False,
               unit: str = "") -> float:
    """Return ``value`` as a float if it is a finite real number within the bounds
    (``minimum``/``maximum`` inclusive unless ``min_open``/``max_open``), else raise
    ValueError naming ``name`` (with ``unit``, e.g. "s" or "km")."""
    parts = []
    if minimum is not None:
        parts.append(f"{'>' if min_open else '>='} {minimum:g}")
    if maximum is not None:
        parts.append(f"{'<' if max_open else '<='} {maximum:g}")
    constraint = "a number" + (" " + " and ".join(parts) if parts else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(_describe(name, constraint, unit, value))
    x = float(value)
    ok = math.isfinite(x)
    if ok and minimum is not None:
        ok = x > minimum if min_open else x >= minimum
    if ok and maximum is not None:
        ok = x < maximum if max_open else x <= maximum
    if not ok:
        raise ValueError(_describe(name, constraint, unit, value))
    return x


def check_integer(name: str, value, *, minimum: int | None = None,
                  maximum: int | None = None) -> int:
    """Return ``value`` as an int if it is an integer (an integral float such as 4096.0
    too) within ``[minimum, maximum]``, else raise ValueError naming ``name``."""
    parts = []
    if minimum is not None:
        parts.append(f">= {minimum}")
    if maximum is not None:
        parts.append(f"<= {maximum}")
    constraint = "an integer" + (" " + " and ".join(parts) if parts else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(_describe(name, constraint, "", value))
    x = float(value)
    if not math.isfinite(x) or x != math.floor(x):
        raise ValueError(_describe(name, constraint, "", value))
    n = int(x) if not isinstance(value, numbers.Integral) else int(value)
    if (minimum is not None and n < minimum) or (maximum is not None and n > maximum):
        raise ValueError(_describe(name, constraint, "", value))
    return n
