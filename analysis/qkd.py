"""Device-independent QKD from CHSH rounds: asymptotic and finite-size key rates.

Asymptotic rate (Pironio et al., NJP 11, 045021 (2009), Eq. (12); one-way error correction,
collective attacks): r = 1 - h(Q) - h((1 + sqrt((S/2)^2 - 1)) / 2), clipped at 0.

Finite size: entropy accumulation theorem (EAT) bound of Arnon-Friedman, Dupuis, Fawzi,
Renner & Vidick, Nat. Commun. 9, 459 (2018) ("AF2018"), for the CHSH protocol in which each
of n rounds is a test round with probability gamma (uniform inputs, CHSH game scored) and a
key round otherwise (key inputs, Q the error rate of the key bits). Every term is written out
in `finite_key_length`; see its docstring.

Conventions: S is the CHSH value (E00 + E01 + E10 - E11), the CHSH winning probability is
omega = 1/2 + S/8; logarithms are base 2 (bits).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

TSIRELSON = 2.0 * np.sqrt(2.0)
OMEGA_MAX = 0.5 + TSIRELSON / 8.0
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


def _check_chsh(chsh: float) -> None:
    if not np.isfinite(chsh) or not 0.0 <= chsh <= TSIRELSON + 1e-12:
        raise ValueError(f"CHSH value S must lie in [0, 2 sqrt(2) = {TSIRELSON:.6f}], got "
                         f"{chsh!r}")


def _check_qber(qber: float) -> None:
    if not np.isfinite(qber) or not 0.0 <= qber <= 0.5:
        raise ValueError(f"QBER must lie in [0, 0.5], got {qber!r}")


def chsh_to_winning_probability(chsh: float) -> float:
    """CHSH game winning probability omega = 1/2 + S/8."""
    _check_chsh(chsh)
    return 0.5 + chsh / 8.0


def eve_information(chsh: float) -> float:
    """Pironio et al. (2009) bound on Eve's information h((1 + sqrt((S/2)^2 - 1)) / 2) (bits);
    1 for S <= 2."""
    _check_chsh(chsh)
    if chsh <= 2.0:
        return 1.0
    s = min(chsh, TSIRELSON)
    return binary_entropy(0.5 * (1.0 + np.sqrt((s / 2.0) ** 2 - 1.0)))


def asymptotic_key_rate(chsh: float, qber: float) -> float:
    """Secret bits per key round: max(0, 1 - h(Q) - h((1 + sqrt((S/2)^2 - 1)) / 2))."""
    _check_chsh(chsh)
    _check_qber(qber)
    return max(0.0, 1.0 - binary_entropy(qber) - eve_information(chsh))


# ----------------------------------------------------------------------------- finite size

def chsh_entropy_bound(omega: float) -> float:
    """Von Neumann entropy bound H(A|XE) >= 1 - h(1/2 + 1/2 sqrt(16 w (w - 1) + 3)) for CHSH
    winning probability w in [3/4, OMEGA_MAX] (AF2018 Eq. (5)); 0 below 3/4."""
    if omega <= OMEGA_CLASSICAL:
        return 0.0
    w = min(omega, OMEGA_MAX)
    return 1.0 - binary_entropy(0.5 + 0.5 * np.sqrt(max(0.0, 16.0 * w * (w - 1.0) + 3.0)))


def _chsh_entropy_slope(omega: float) -> float:
    """d/d omega of chsh_entropy_bound (bits per unit winning probability)."""
    w = min(max(omega, OMEGA_CLASSICAL + 1e-12), OMEGA_MAX - 1e-12)
    root = np.sqrt(16.0 * w * (w - 1.0) + 3.0)
    x = 0.5 + 0.5 * root
    dx_dw = 0.5 * (32.0 * w - 16.0) / (2.0 * root)
    return float(np.log2(x / (1.0 - x)) * dx_dw)


@dataclass(frozen=True)
class FiniteKey:
    """Finite-size key length and the terms it is made of (bits unless noted).

    key_length: extractable secure key (bits, >= 0); entropy_rate: EAT min-entropy per round
    eta_opt (bits/round); leak_ec: error-correction leakage (bits); omega_threshold: CHSH
    winning probability below which the protocol aborts; tradeoff_point: winning probability
    at which the min-tradeoff function is linearised.
    """

    key_length: int
    n_rounds: int
    test_fraction: float
    entropy_rate: float
    first_order_rate: float
    second_order_term: float
    leak_ec: float
    chain_rule_term: float
    privacy_amplification_term: float
    omega_expected: float
    omega_threshold: float
    tradeoff_point: float

    def to_dict(self) -> dict:
        return asdict(self)


def finite_key_length(n_rounds: int, test_fraction: float, chsh: float, qber: float,
                      eps_smooth: float = 1e-10, eps_ea: float = 1e-10, eps_pa: float = 1e-10,
                      eps_ec: float = 1e-10, eps_completeness: float = 1e-2,
                      output_alphabet: int = 6) -> FiniteKey:
    """Secure key length after n_rounds by the EAT bound of AF2018 (Methods, "key rate").

    Parameters: n_rounds n; test_fraction gamma (probability that a round is a test round);
    chsh, qber: expected (honest) CHSH value S and key-round error rate Q; eps_smooth (eps_s),
    eps_ea (EAT), eps_pa (privacy amplification), eps_ec (error correction): soundness parts,
    total soundness about eps_ec + eps_pa + eps_ea + 2 eps_smooth; eps_completeness: allowed
    probability that honest devices abort in parameter estimation; output_alphabet d_O of one
    round (AF2018 use log(1 + 2 d_O) = log 13).

    Terms:
      delta = sqrt(ln(1/eps_completeness) / (2 n))       Hoeffding margin on the win count
      omega_thr = omega_exp - delta / gamma              abort below gamma*omega_thr*n wins
      g(p) = chsh_entropy_bound(p / gamma)               entropy vs P(test won) = p
      f_t(p) = g(p_t) + g'(p_t) (p - p_t)                min-tradeoff (tangent, valid: g convex)
      v(p_t) = 2 (log2(1 + 2 d_O) + ceil(g'(p_t))) sqrt(1 - 2 log2(eps_s eps_ea))
      eta_opt = max_{p_t} f_t(gamma omega_thr) - v(p_t)/sqrt(n)
      leak_EC = n [(1 - gamma) h(Q) + gamma h(omega_exp)]
                + sqrt(n) 2 log2(5) sqrt(1 - 2 log2 eps_s) + log2(1/eps_ec)
      key = n eta_opt - leak_EC + 3 log2(1 - sqrt(1 - (eps_s/4)^2)) + 2 log2(eps_pa)
    """
    if int(n_rounds) != n_rounds or n_rounds < 1:
        raise ValueError(f"n_rounds must be a positive integer, got {n_rounds!r}")
    if not 0.0 < test_fraction <= 1.0:
        raise ValueError(f"test_fraction (gamma) must lie in (0, 1], got {test_fraction!r}")
    _check_chsh(chsh)
    _check_qber(qber)
    for name, eps in (("eps_smooth", eps_smooth), ("eps_ea", eps_ea), ("eps_pa", eps_pa),
                      ("eps_ec", eps_ec), ("eps_completeness", eps_completeness)):
        if not 0.0 < eps < 1.0:
            raise ValueError(f"{name} must lie in (0, 1), got {eps!r}")
    n = float(n_rounds)
    gamma = float(test_fraction)
    omega = chsh_to_winning_probability(chsh)
    delta = np.sqrt(np.log(1.0 / eps_completeness) / (2.0 * n))
    omega_thr = omega - delta / gamma
    smoothing = np.sqrt(1.0 - 2.0 * np.log2(eps_smooth * eps_ea))
    log_alphabet = np.log2(1.0 + 2.0 * output_alphabet)

    best_rate, best_point, best_first, best_second = -np.inf, omega_thr, 0.0, 0.0
    if omega_thr > OMEGA_CLASSICAL:
        for w_t in np.linspace(OMEGA_CLASSICAL + 1e-6, omega_thr, 400):
            slope = _chsh_entropy_slope(w_t) / gamma      # d g / d p with p = gamma * omega
            first = chsh_entropy_bound(w_t) + slope * gamma * (omega_thr - w_t)
            second = 2.0 * (log_alphabet + np.ceil(slope)) * smoothing / np.sqrt(n)
            if first - second > best_rate:
                best_rate, best_point, best_first, best_second = first - second, w_t, first, second
    else:
        best_rate = 0.0
    leak_ec = (n * ((1.0 - gamma) * binary_entropy(qber) + gamma * binary_entropy(omega))
               + np.sqrt(n) * 2.0 * np.log2(5.0) * np.sqrt(1.0 - 2.0 * np.log2(eps_smooth))
               + np.log2(1.0 / eps_ec))
    x = eps_smooth / 4.0
    chain = 3.0 * np.log2(x * x / (1.0 + np.sqrt(1.0 - x * x)))  # = 3 log2(1 - sqrt(1 - x^2))
    pa = 2.0 * np.log2(eps_pa)
    length = n * best_rate - leak_ec + chain + pa
    return FiniteKey(int(max(0.0, np.floor(length))), int(n_rounds), gamma, float(best_rate),
                     float(best_first), float(best_second), float(leak_ec), float(chain),
                     float(pa), float(omega), float(omega_thr), float(best_point))


def best_test_fraction(n_rounds: int, chsh: float, qber: float, **eps) -> FiniteKey:
    """finite_key_length at the test fraction (from a log grid 1e-4..0.9, 60 points) giving
    the longest key; keyword arguments are the eps_* of finite_key_length."""
    candidates = [finite_key_length(n_rounds, float(g), chsh, qber, **eps)
                  for g in np.geomspace(1e-4, 0.9, 60)]
    return max(candidates, key=lambda k: (k.key_length, k.entropy_rate))


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
