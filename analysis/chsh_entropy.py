"""CHSH game primitives shared by the DI-QKD key-rate bounds.

Conventions: S is the CHSH value (E00 + E01 + E10 - E11) and omega = 1/2 + S/8 = (4 + S)/8 the
winning probability of the CHSH game; logarithms are base 2 (bits).
"""

from __future__ import annotations

import numpy as np

TSIRELSON = 2.0 * np.sqrt(2.0)
OMEGA_MAX = 0.5 + TSIRELSON / 8.0   # (1 + 1/sqrt2) / 2, best quantum winning probability
OMEGA_MIN = 0.5 - TSIRELSON / 8.0   # (1 - 1/sqrt2) / 2, worst quantum winning probability
OMEGA_CLASSICAL = 0.75


def binary_entropy(p):
    """h(p) = -p log2 p - (1 - p) log2(1 - p) in bits, with h(0) = h(1) = 0."""
    p = np.asarray(p, dtype=float)
    if np.any((p < 0) | (p > 1)):
        raise ValueError(f"binary entropy needs p in [0, 1], got {p!r}")
    q = np.clip(p, 1e-300, 1.0)
    r = np.clip(1.0 - p, 1e-300, 1.0)
    out = -p * np.log2(q) - (1.0 - p) * np.log2(r)
    return float(out) if out.ndim == 0 else out


def check_chsh(chsh: float) -> None:
    """Raise ValueError unless 0 <= S <= 2 sqrt2."""
    if not np.isfinite(chsh) or not 0.0 <= chsh <= TSIRELSON + 1e-12:
        raise ValueError(f"CHSH value S must lie in [0, 2 sqrt(2) = {TSIRELSON:.6f}], got "
                         f"{chsh!r}")


def check_qber(qber: float) -> None:
    """Raise ValueError unless 0 <= Q <= 1/2."""
    if not np.isfinite(qber) or not 0.0 <= qber <= 0.5:
        raise ValueError(f"QBER must lie in [0, 0.5], got {qber!r}")


def chsh_to_winning_probability(chsh: float) -> float:
    """CHSH game winning probability omega = 1/2 + S/8."""
    check_chsh(chsh)
    return 0.5 + chsh / 8.0


def chsh_entropy_bound(omega):
    """eta(omega) = 1 - h(1/2 + 1/2 sqrt(16 omega (omega - 1) + 3)): the von Neumann entropy of
    one party's output given Eve, for CHSH winning probability omega (Pironio et al. 2009;
    AF2018 Eq. (5); Nadlinger et al. 2022 Suppl. Eq. (62)); 0 for omega <= 3/4. Accepts
    arrays."""
    w = np.clip(np.asarray(omega, dtype=float), OMEGA_CLASSICAL, OMEGA_MAX)
    x = 0.5 + 0.5 * np.sqrt(np.maximum(0.0, 16.0 * w * (w - 1.0) + 3.0))
    x = np.clip(x, 0.5, 1.0 - 1e-16)
    out = 1.0 + x * np.log2(x) + (1.0 - x) * np.log2(1.0 - x)
    return float(out) if out.ndim == 0 else out


def chsh_entropy_slope(omega):
    """d eta / d omega (bits per unit winning probability), for 3/4 < omega < OMEGA_MAX."""
    w = np.clip(np.asarray(omega, dtype=float), OMEGA_CLASSICAL + 1e-12, OMEGA_MAX - 1e-12)
    root = np.sqrt(16.0 * w * (w - 1.0) + 3.0)
    x = 0.5 + 0.5 * root
    out = np.log2(x / (1.0 - x)) * (32.0 * w - 16.0) / (4.0 * root)
    return float(out) if out.ndim == 0 else out
