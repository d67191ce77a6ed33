"""Device-independent QKD from CHSH rounds: asymptotic and finite-size key rates.

Asymptotic rate (Pironio et al., NJP 11, 045021 (2009), Eq. (12); one-way error correction,
collective attacks): r = 1 - h(Q) - h((1 + sqrt((S/2)^2 - 1)) / 2), clipped at 0.

Finite size: `finite_key_length` (re-exported from :mod:`analysis.finite_key`) gives the key
length of the protocol of Nadlinger et al., Nature 607, 682 (2022), by entropy accumulation
(their Supplementary Proposition 2), or the original bound of Arnon-Friedman et al. (2018).

Conventions: S is the CHSH value (E00 + E01 + E10 - E11), the CHSH winning probability is
omega = 1/2 + S/8; logarithms are base 2 (bits).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.chsh_entropy import (
    OMEGA_CLASSICAL,
    OMEGA_MAX,
    OMEGA_MIN,
    TSIRELSON,
    binary_entropy,
    check_chsh,
    check_qber,
    chsh_entropy_bound,
    chsh_entropy_slope,
    chsh_to_winning_probability,
)
from analysis.finite_key import (
    FINITE_KEY_METHODS,
    FiniteKey,
    abort_threshold,
    best_test_fraction,
    finite_key_length,
    syndrome_length,
)

__all__ = [
    "FINITE_KEY_METHODS", "OMEGA_CLASSICAL", "OMEGA_MAX", "OMEGA_MIN", "TSIRELSON",
    "FiniteKey", "RunningEstimate", "abort_threshold", "asymptotic_key_rate",
    "best_test_fraction", "binary_entropy", "chsh_entropy_bound", "chsh_entropy_slope",
    "chsh_to_winning_probability", "eve_information", "finite_key_length",
    "running_qber_and_chsh", "syndrome_length",
]


def eve_information(chsh: float) -> float:
    """Pironio et al. (2009) bound on Eve's information h((1 + sqrt((S/2)^2 - 1)) / 2) (bits);
    1 for S <= 2."""
    check_chsh(chsh)
    if chsh <= 2.0:
        return 1.0
    s = min(chsh, TSIRELSON)
    return binary_entropy(0.5 * (1.0 + np.sqrt((s / 2.0) ** 2 - 1.0)))


def asymptotic_key_rate(chsh: float, qber: float) -> float:
    """Secret bits per key round: max(0, 1 - h(Q) - h((1 + sqrt((S/2)^2 - 1)) / 2))."""
    check_chsh(chsh)
    check_qber(qber)
    return max(0.0, 1.0 - binary_entropy(qber) - eve_information(chsh))


# ----------------------------------------------------------------------------- streamed rounds

@dataclass(frozen=True)
class RunningEstimate:
    """Cumulative estimates after each chunk of streamed rounds.

    Arrays have one entry per chunk: rounds seen so far, test rounds, CHSH S (from test rounds,
    NaN until every setting has been seen), and QBER over key rounds so far (NaN before the
    first key round).
    """

    rounds: np.ndarray
    test_rounds: np.ndarray
    chsh: np.ndarray
    qber: np.ndarray


def running_qber_and_chsh(rounds, chunk: int = 1000, key_setting: tuple[int, int] | None = None
                          ) -> RunningEstimate:
    """Cumulative CHSH and QBER over a stream of rounds.

    rounds: iterable of per-round tuples or of arrays (x, y, a, b[, is_test]); with 5 columns
    the last marks test rounds (1) versus key rounds (0); with 4 columns all rounds are test
    rounds and, if `key_setting` = (x, y) is given, rounds with that setting also count
    towards the QBER (error = a != b). Chunk is the number of rounds between reports.
    """
    data = np.asarray(list(rounds) if not isinstance(rounds, np.ndarray) else rounds)
    if data.ndim != 2 or data.shape[1] not in (4, 5):
        raise ValueError("rounds must be a sequence of (x, y, a, b) or (x, y, a, b, is_test) "
                         f"rows; got array of shape {data.shape}")
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    data = data.astype(np.int64)
    if np.any((data < 0) | (data > 1)):
        raise ValueError("settings, outcomes and test flags must be 0 or 1")
    x, y, a, b = data[:, 0], data[:, 1], data[:, 2], data[:, 3]
    is_test = data[:, 4].astype(bool) if data.shape[1] == 5 else np.ones(len(data), bool)
    is_key = ~is_test
    if data.shape[1] == 4 and key_setting is not None:
        is_key = (x == key_setting[0]) & (y == key_setting[1])
    ends = np.unique(np.append(np.arange(chunk, len(data), chunk), len(data)))
    sign = np.where(a == b, 1.0, -1.0)
    chsh_sign = np.where((x == 1) & (y == 1), -1.0, 1.0)
    setting = x * 2 + y
    out_chsh, out_qber, out_tests = [], [], []
    for end in ends:
        test = is_test[:end]
        n_setting = np.bincount(setting[:end][test], minlength=4)
        sums = np.bincount(setting[:end][test], weights=(sign * chsh_sign)[:end][test],
                           minlength=4)
        out_chsh.append(float(np.sum(sums / n_setting)) if np.all(n_setting > 0) else np.nan)
        key = is_key[:end]
        n_key = int(np.count_nonzero(key))
        out_qber.append(float(np.mean(a[:end][key] != b[:end][key])) if n_key else np.nan)
        out_tests.append(int(np.count_nonzero(test)))
    return RunningEstimate(ends, np.array(out_tests), np.array(out_chsh), np.array(out_qber))
