"""CHSH Bell tests: correlators, S with its statistical error, Werner-state relations.

Conventions (DESIGN.md section 1): settings x, y in {0, 1}, outcomes a, b in {0, 1};
E_xy = P(a = b | x, y) - P(a != b | x, y); S = E00 + E01 + E10 - E11.
Probability and count arrays have shape (2, 2, 2, 2) indexed [x, y, a, b].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TSIRELSON = 2.0 * np.sqrt(2.0)
CHSH_SIGNS = np.array([[1.0, 1.0], [1.0, -1.0]])
_SAME_MINUS_DIFFERENT = np.array([[1.0, -1.0], [-1.0, 1.0]])


@dataclass(frozen=True)
class ChshResult:
    """S, its standard error, and the four correlators E[x, y] with their standard errors."""

    value: float
    stderr: float
    correlators: np.ndarray
    correlator_errors: np.ndarray
    rounds_per_setting: np.ndarray

    def to_dict(self) -> dict:
        return {"chsh": self.value, "chsh_stderr": self.stderr,
                "correlators": self.correlators.tolist(),
                "correlator_errors": self.correlator_errors.tolist(),
                "rounds_per_setting": self.rounds_per_setting.tolist()}


def correlators(probabilities) -> np.ndarray:
    """E[x, y] = P(same) - P(different) from P(a, b | x, y) of shape (2, 2, 2, 2)."""
    p = np.asarray(probabilities, dtype=float)
    if p.shape != (2, 2, 2, 2):
        raise ValueError(f"probabilities must have shape (2, 2, 2, 2) [x, y, a, b], got {p.shape}")
    return np.einsum("xyab,ab->xy", p, _SAME_MINUS_DIFFERENT)


def chsh_value(table, rounds_per_setting=None) -> ChshResult:
    """CHSH S from a (2, 2, 2, 2) table indexed [x, y, a, b].

    An integer table is read as counts: each setting's counts are normalised and the standard
    error follows from multinomial statistics, Var(E_xy) = (1 - E_xy^2) / N_xy (E is the mean
    of a +-1 variable), settings independent. A float table is read as probabilities
    P(a, b | x, y); give `rounds_per_setting` (scalar or (2, 2)) for a standard error,
    otherwise it is NaN.
    """
    t = np.asarray(table)
    if t.shape != (2, 2, 2, 2):
        raise ValueError(f"table must have shape (2, 2, 2, 2) [x, y, a, b], got {t.shape}")
    if np.any(~np.isfinite(t.astype(float))) or np.any(t < 0):
        raise ValueError("table entries must be finite and non-negative")
    if np.issubdtype(t.dtype, np.integer):
        n = t.sum(axis=(2, 3)).astype(float)
        if np.any(n == 0):
            empty = [(int(x), int(y)) for x, y in zip(*np.nonzero(n == 0), strict=True)]
            raise ValueError(f"no rounds recorded for setting(s) (x, y) = {empty}")
        p = t / n[:, :, None, None]
    else:
        p = t.astype(float)
        sums = p.sum(axis=(2, 3))
        if not np.allclose(sums, 1.0, atol=1e-9):
            raise ValueError(f"probabilities must sum to 1 for each setting, got {sums.tolist()}")
        n = (np.full((2, 2), np.nan) if rounds_per_setting is None
             else np.broadcast_to(np.asarray(rounds_per_setting, dtype=float), (2, 2)).copy())
    e = correlators(p)
    e_err = np.sqrt(np.clip(1.0 - e**2, 0.0, None) / n)
    s = float(np.sum(CHSH_SIGNS * e))
    s_err = float(np.sqrt(np.sum(e_err**2)))
    return ChshResult(s, s_err, e, e_err, n)


def counts_from_rounds(x, y, a, b) -> np.ndarray:
    """(2, 2, 2, 2) integer count table [x, y, a, b] from per-round arrays of 0/1 values."""
    arrays = [np.asarray(v).ravel() for v in (x, y, a, b)]
    size = arrays[0].size
    for name, v in zip("xyab", arrays, strict=True):
        if v.size != size:
            raise ValueError(f"per-round arrays must have equal length: {name} has {v.size}, "
                             f"x has {size}")
        if v.size and not np.all((v == 0) | (v == 1)):
            raise ValueError(f"{name} must contain only 0 and 1")
    index = ((arrays[0].astype(np.int64) * 2 + arrays[1]) * 2 + arrays[2]) * 2 + arrays[3]
    return np.bincount(index, minlength=16).reshape(2, 2, 2, 2)


def chsh_from_rounds(x, y, a, b) -> ChshResult:
    """CHSH S and its standard error from per-round settings (x, y) and outcomes (a, b)."""
    return chsh_value(counts_from_rounds(x, y, a, b))


def werner_chsh(fidelity: float) -> float:
    """Maximal CHSH value of a Werner state with Bell-state fidelity F: 2 sqrt2 (4F - 1) / 3."""
    if not 0.0 <= fidelity <= 1.0:
        raise ValueError(f"fidelity must lie in [0, 1], got {fidelity!r}")
    return TSIRELSON * (4.0 * fidelity - 1.0) / 3.0


def werner_fidelity(chsh: float) -> float:
    """Fidelity of the Werner state whose maximal CHSH value is `chsh` (inverse of werner_chsh)."""
    _check_chsh(chsh)
    return (3.0 * chsh / TSIRELSON + 1.0) / 4.0


def fidelity_lower_bound(chsh: float) -> float:
    """Lower bound on the fidelity to the closest maximally entangled state of any two-qubit
    state showing CHSH value S (qubit assumption, not device independent).

    For S > 2: F >= (1 + sqrt(S^2/4 - 1)) / 2 (1/2 at S = 2, 1 at S = 2 sqrt2); for S <= 2
    only the trivial F >= 1/4 holds. Derivation: twirling to a Bell-diagonal state with correlation
    eigenvalues t1, t2, t3 keeps S = 2 sqrt(t1^2 + t2^2) and the fidelity
    (1 + |t1| + |t2| + |t3|) / 4 with |t3| >= |t1| + |t2| - 1 (positivity), and
    |t1| + |t2| >= 1 + sqrt(S^2/4 - 1) because |ti| <= 1 (for S > 2 the positivity constraint
    fixes the favourable sign of t3).
    """
    _check_chsh(chsh)
    s = abs(chsh)
    if s <= 2.0:
        return 0.25
    return 0.5 * (1.0 + np.sqrt(s * s / 4.0 - 1.0))


def _check_chsh(chsh: float) -> None:
    if not np.isfinite(chsh) or abs(chsh) > TSIRELSON + 1e-12:
        raise ValueError(f"CHSH value must satisfy |S| <= 2 sqrt(2) = {TSIRELSON:.6f}, got "
                         f"{chsh!r}")
