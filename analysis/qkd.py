"""Device-independent QKD from CHSH rounds: asymptotic and finite-size key rates.

Asymptotic rate (Pironio et al., NJP 11, 045021 (2009), Eq. (12); one-way error correction,
collective attacks): r = 1 - h(Q) - h((1 + sqrt((S/2)^2 - 1)) / 2), clipped at 0.

Finite size, for the CHSH protocol in which each of n rounds is a test round with probability
gamma (uniform inputs, CHSH game scored) and a key round otherwise (key inputs, Q the error
rate of the key bits), by entropy accumulation: method "renyi_eat" (default; Renyi EAT with
the second-order term of Dupuis & Fawzi 2019 and the crossover min-tradeoff function of Tan
et al. 2022, the analysis family used by Nadlinger et al., Nature 607, 682 (2022)) or
"af2018" (Arnon-Friedman, Dupuis, Fawzi, Renner & Vidick, Nat. Commun. 9, 459 (2018)). Every
term is written out in `finite_key_length`; see its docstring.

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

    key_length: extractable secure key (bits, >= 0); entropy_rate: min-entropy per round after
    all finite-size corrections of the entropy bound (bits/round); first_order_rate: the
    min-tradeoff function at the abort threshold (bits/round); second_order_term: the EAT
    correction per round; chain_rule_term: smoothing / conditioning term (bits, <= 0 added);
    leak_ec: error-correction leakage (bits); omega_threshold: CHSH winning probability below
    which the protocol aborts; tradeoff_point: winning probability at which the min-tradeoff
    function is linearised; alpha: Renyi order of the "renyi_eat" bound (NaN for "af2018").
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
    method: str = "renyi_eat"
    alpha: float = float("nan")

    def to_dict(self) -> dict:
        return asdict(self)


FINITE_KEY_METHODS = ("renyi_eat", "af2018")
OMEGA_MIN = 0.5 - TSIRELSON / 8.0


def _check_finite_args(n_rounds, test_fraction, chsh, qber, eps: dict, method: str) -> None:
    if int(n_rounds) != n_rounds or n_rounds < 1:
        raise ValueError(f"n_rounds must be a positive integer, got {n_rounds!r}")
    if not 0.0 < test_fraction <= 1.0:
        raise ValueError(f"test_fraction (gamma) must lie in (0, 1], got {test_fraction!r}")
    _check_chsh(chsh)
    _check_qber(qber)
    for name, value in eps.items():
        if not 0.0 < value < 1.0:
            raise ValueError(f"{name} must lie in (0, 1), got {value!r}")
    if method not in FINITE_KEY_METHODS:
        raise ValueError(f"unknown finite-key method {method!r}; choose one of "
                         f"{', '.join(FINITE_KEY_METHODS)}")


def _ec_leakage(n: float, gamma: float, qber: float, omega: float, eps_smooth: float,
                eps_ec: float) -> float:
    """AF2018 error-correction leakage: n [(1 - gamma) h(Q) + gamma h(omega)] plus the
    smoothing correction sqrt(n) 2 log2(5) sqrt(1 - 2 log2 eps_s) and log2(1/eps_ec)."""
    return float(n * ((1.0 - gamma) * binary_entropy(qber) + gamma * binary_entropy(omega))
                 + np.sqrt(n) * 2.0 * np.log2(5.0) * np.sqrt(1.0 - 2.0 * np.log2(eps_smooth))
                 + np.log2(1.0 / eps_ec))


def finite_key_length(n_rounds: int, test_fraction: float, chsh: float, qber: float,
                      eps_smooth: float = 1e-10, eps_ea: float = 1e-10, eps_pa: float = 1e-10,
                      eps_ec: float = 1e-10, eps_completeness: float = 1e-2,
                      output_alphabet: int | None = None,
                      method: str = "renyi_eat") -> FiniteKey:
    """Secure key length (bits) after n_rounds CHSH rounds by entropy accumulation.

    Parameters: n_rounds n; test_fraction gamma (probability that a round is a test round);
    chsh, qber: expected (honest) CHSH value S and key-round error rate Q; eps_smooth (eps_s),
    eps_ea (probability below which a passing run need not be secure), eps_pa (privacy
    amplification), eps_ec (error correction): soundness parts, total soundness about
    eps_ec + eps_pa + eps_ea + 2 eps_smooth; eps_completeness: allowed probability that
    honest devices abort in parameter estimation; output_alphabet d_O of one round
    (default 6 for "af2018" as in AF2018, 4 = |A x B| for "renyi_eat").

    Common terms: omega = 1/2 + S/8; delta = sqrt(ln(1/eps_completeness) / (2 n)) (Hoeffding
    margin on the win count); the protocol aborts below omega_thr = omega - delta / gamma;
    eta(w) = chsh_entropy_bound(w); the min-tradeoff function is the tangent
    g_t(w) = eta(t) + eta'(t) (w - t) (valid because eta is convex), maximised over t;
    leak_EC = n [(1 - gamma) h(Q) + gamma h(omega)] + sqrt(n) 2 log2 5 sqrt(1 - 2 log2 eps_s)
    + log2(1/eps_ec); key = n * entropy_rate - leak_EC + chain_rule_term - 2 log2(1/eps_pa).

    method "af2018": the original EAT of Arnon-Friedman et al., Nat. Commun. 9, 459 (2018):
      entropy_rate = g_t(omega_thr) - v / sqrt(n),
      v = 2 (log2(1 + 2 d_O) + ceil(g_t'/gamma)) sqrt(1 - 2 log2(eps_s eps_ea)),
      chain_rule_term = 3 log2(1 - sqrt(1 - (eps_s/4)^2)).
      Its second-order term grows like 1/gamma and needs n >~ 1e7 at S = 2.68, Q = 1.4 %.

    method "renyi_eat" (default): the Renyi form of the EAT with the improved second-order
    term of Dupuis & Fawzi, IEEE Trans. Inf. Theory 65, 7596 (2019), applied to the
    "crossover" min-tradeoff function of Tan et al., Quantum 6, 880 (2022)
    (f(lost test) = g_t(0)/gamma + (1 - 1/gamma) g_t(1), f(won test) = f(key round) = g_t(1),
    so that E[f] = g_t(omega)), optimised over the Renyi order alpha in (1, 2):
      H_alpha >= n g_t(omega_thr) - n (alpha - 1) (ln 2 / 2) V^2 - n (alpha - 1)^2 K_alpha,
      V = log2(2 d_O^2 + 1) + sqrt(2 + Var_max f),  Var_max f = (2 + sqrt 2)/(4 gamma) Dg^2,
      Dg = g_t(1) - g_t(0),  D = log2 d_O + g_t(1) - g_t(omega_min),
      K_alpha = 2^((alpha - 1) D) ln^3(2^D + e^2) / (6 (2 - alpha)^3 ln 2),
      chain_rule_term = -(log2(2/eps_s^2) + alpha log2(1/eps_ea)) / (alpha - 1)
      (smooth min-entropy from H_alpha, and conditioning on not aborting).
    """
    eps = dict(eps_smooth=eps_smooth, eps_ea=eps_ea, eps_pa=eps_pa, eps_ec=eps_ec,
               eps_completeness=eps_completeness)
    _check_finite_args(n_rounds, test_fraction, chsh, qber, eps, method)
    if output_alphabet is None:
        output_alphabet = 6 if method == "af2018" else 4
    if int(output_alphabet) != output_alphabet or output_alphabet < 2:
        raise ValueError(f"output_alphabet must be an integer >= 2, got {output_alphabet!r}")
    n = float(n_rounds)
    gamma = float(test_fraction)
    omega = chsh_to_winning_probability(chsh)
    omega_thr = omega - np.sqrt(np.log(1.0 / eps_completeness) / (2.0 * n)) / gamma
    leak_ec = _ec_leakage(n, gamma, qber, omega, eps_smooth, eps_ec)
    pa = 2.0 * np.log2(eps_pa)
    if omega_thr <= OMEGA_CLASSICAL:
        terms = (0.0, 0.0, 0.0, 0.0, omega_thr, float("nan"))
        length = -np.inf
    elif method == "af2018":
        terms = _af2018_terms(n, gamma, omega_thr, eps_smooth, eps_ea, output_alphabet)
        length = n * terms[0] + terms[3] - leak_ec + pa
    else:
        terms = _renyi_eat_terms(n, gamma, omega_thr, eps_smooth, eps_ea, output_alphabet)
        length = n * terms[0] + terms[3] - leak_ec + pa
    rate, first, second, chain, point, alpha = terms
    key = int(max(0.0, np.floor(length))) if np.isfinite(length) else 0
    return FiniteKey(key, int(n_rounds), gamma, float(rate), float(first), float(second),
                     float(leak_ec), float(chain), float(pa), float(omega), float(omega_thr),
                     float(point), method, float(alpha))


def _af2018_terms(n, gamma, omega_thr, eps_smooth, eps_ea, output_alphabet):
    """(entropy_rate, first_order, second_order, chain_rule_term, t, nan) of AF2018."""
    smoothing = np.sqrt(1.0 - 2.0 * np.log2(eps_smooth * eps_ea))
    log_alphabet = np.log2(1.0 + 2.0 * output_alphabet)
    best = (-np.inf, 0.0, 0.0, omega_thr)
    for w_t in np.linspace(OMEGA_CLASSICAL + 1e-6, omega_thr, 400):
        slope = _chsh_entropy_slope(w_t) / gamma      # d g / d p with p = gamma * omega
        first = chsh_entropy_bound(w_t) + slope * gamma * (omega_thr - w_t)
        second = 2.0 * (log_alphabet + np.ceil(slope)) * smoothing / np.sqrt(n)
        if first - second > best[0]:
            best = (first - second, first, second, w_t)
    x = eps_smooth / 4.0
    chain = 3.0 * np.log2(x * x / (1.0 + np.sqrt(1.0 - x * x)))  # = 3 log2(1 - sqrt(1 - x^2))
    return best[0], best[1], best[2], chain, best[3], float("nan")


def _renyi_eat_rate(n, gamma, omega_thr, eps_smooth, eps_ea, d_o, t, beta):
    """Vectorised renyi_eat bound per round on arrays t (tangent point) and beta = alpha-1.

    Returns (entropy_rate incl. chain term / n, first order, second order, chain term)."""
    eta_t = _entropy_bound_array(t)
    slope = _entropy_slope_array(t)
    g = lambda w: eta_t + slope * (w - t)  # noqa: E731
    first = g(omega_thr)
    var_max = (2.0 + np.sqrt(2.0)) / (4.0 * gamma) * (g(1.0) - g(0.0)) ** 2
    v2 = (np.log2(2.0 * d_o ** 2 + 1.0) + np.sqrt(2.0 + var_max)) ** 2
    span = np.log2(d_o) + g(1.0) - g(OMEGA_MIN)
    alpha = 1.0 + beta
    k_alpha = (2.0 ** (beta * span) * np.log(2.0 ** span + np.e ** 2) ** 3
               / (6.0 * (2.0 - alpha) ** 3 * np.log(2.0)))
    second = beta * np.log(2.0) / 2.0 * v2 + beta ** 2 * k_alpha
    chain = -(np.log2(2.0 / eps_smooth ** 2) + alpha * np.log2(1.0 / eps_ea)) / beta
    total = first - second + chain / n
    return total, *np.broadcast_arrays(first, second, chain, total)[:3]


def _renyi_eat_terms(n, gamma, omega_thr, eps_smooth, eps_ea, d_o):
    """(entropy_rate, first_order, second_order, chain_rule_term, t, alpha) of renyi_eat,
    maximised over t in (3/4, omega_max) and alpha = 1 + beta in (1, 2)."""
    t = np.linspace(OMEGA_CLASSICAL + 1e-6, OMEGA_MAX - 1e-6, 121)[:, None]
    beta = np.geomspace(1e-8, 0.5, 161)[None, :]
    total = _renyi_eat_rate(n, gamma, omega_thr, eps_smooth, eps_ea, d_o, t, beta)[0]
    i, j = np.unravel_index(np.argmax(total), total.shape)
    # refine on a finer local grid around the coarse optimum
    t_fine = np.linspace(t[max(i - 1, 0), 0], t[min(i + 1, t.shape[0] - 1), 0], 81)[:, None]
    b_fine = np.geomspace(beta[0, max(j - 1, 0)], beta[0, min(j + 1, beta.shape[1] - 1)],
                          81)[None, :]
    total, first, second, chain = _renyi_eat_rate(n, gamma, omega_thr, eps_smooth, eps_ea,
                                                  d_o, t_fine, b_fine)
    i, j = np.unravel_index(np.argmax(total), total.shape)
    rate = float(total[i, j]) - float(chain[i, j]) / n
    return (rate, float(first[i, j]), float(second[i, j]), float(chain[i, j]),
            float(t_fine[i, 0]), 1.0 + float(b_fine[0, j]))


def _entropy_bound_array(w):
    w = np.clip(w, OMEGA_CLASSICAL, OMEGA_MAX)
    x = 0.5 + 0.5 * np.sqrt(np.maximum(0.0, 16.0 * w * (w - 1.0) + 3.0))
    x = np.clip(x, 0.5, 1.0 - 1e-16)
    return 1.0 + x * np.log2(x) + (1.0 - x) * np.log2(1.0 - x)


def _entropy_slope_array(w):
    w = np.clip(w, OMEGA_CLASSICAL + 1e-12, OMEGA_MAX - 1e-12)
    root = np.sqrt(16.0 * w * (w - 1.0) + 3.0)
    x = 0.5 + 0.5 * root
    return np.log2(x / (1.0 - x)) * (32.0 * w - 16.0) / (4.0 * root)


def best_test_fraction(n_rounds: int, chsh: float, qber: float, **kwargs) -> FiniteKey:
    """finite_key_length at the test fraction (log grid 1e-4..0.9, 60 points) giving the
    longest key; keyword arguments are those of finite_key_length (eps_*, method)."""
    candidates = [finite_key_length(n_rounds, float(g), chsh, qber, **kwargs)
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
