"""Finite-size key length of the CHSH DI-QKD protocol by entropy accumulation.

Protocol (Nadlinger et al., Nature 607, 682 (2022), arXiv:2109.14600, Suppl. S4): n heralded
rounds; Bob picks a Bell-test round with probability gamma (then both choose inputs uniformly
from {0, 1} and play the CHSH game) or a key round (inputs X = 0, Y = 2, QBER Q); Alice sends a
syndrome of m bits; Bob aborts if more than n gamma (1 - omega_thr) test rounds lose the game.
Protocol parameters are fixed before the run from the expected (honest) S and Q:
- omega_thr, Suppl. Eqs. (24)-(25): q = gamma (1 - omega), q_thr = q + k sqrt(q (1 - q) / n),
  omega_thr = 1 - q_thr / gamma (k = 3 standard deviations: completeness error <~ 1 %);
- m, Suppl. Eq. (23): m = n [(1 - gamma) h(Q) + gamma h((4 - S) / 8)] + 50 sqrt(n), the
  SC-LDPC syndrome length that decoded in >= 99.9 % of their simulations.

Methods:
- "nadlinger2022" (default): the secure key length of Suppl. Proposition 2, Eq. (73): EAT with
  the improved second order of Dupuis & Fawzi (Theorem 3 of Tan et al.) for H_min(AB'|XYE),
  an EAT-type bound n gamma + ... on H_max(B'|XYE), Trevisan extraction (Prop. 1), VHASH tags
  (collision 2^-61) and 258 bits of public tags. Every term is written out in
  `_nadlinger_bits`. Soundness eps_sound = max(eps_EA, eps_PA + 2 eps_s) + 4 eps_h; the free
  parameters (tangent point t, Renyi orders alpha', alpha'', the split of eps) are optimised
  numerically, as the authors did. With their parameters (n = 1.5e6, gamma = 13/256, S = 2.64,
  Q = 1.8 %, eps_sound = 1e-10) it gives their 95 884 bits (tests/test_qkd.py).
- "af2018": the original EAT of Arnon-Friedman, Dupuis, Fawzi, Renner & Vidick, Nat. Commun. 9,
  459 (2018), with its own error-correction leakage, for comparison (it needs n >~ 1e7 here).

Units: bits; logarithms base 2.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import optimize

from analysis.chsh_entropy import (
    OMEGA_CLASSICAL,
    OMEGA_MAX,
    OMEGA_MIN,
    binary_entropy,
    check_chsh,
    check_qber,
    chsh_entropy_bound,
    chsh_entropy_slope,
    chsh_to_winning_probability,
)

FINITE_KEY_METHODS = ("nadlinger2022", "af2018")
VHASH_COLLISION = 2.0 ** -61      # eps_h of the 64-bit VHASH tags (Suppl. S9 A)
PUBLIC_TAG_BITS = 258             # |G_EC| + |G_B| + |C| + |G_A| + |F| + |G_F|, Suppl. Eq. (93)
EXTRACTOR_BITS = 6                # Trevisan extractor overhead, Suppl. Eq. (88)
ONE_TIME_PAD_BITS = 256           # key consumed from K0 per run (main text, Table I)
LOG2_33 = float(np.log2(33.0))    # log2(2 d^2 + 1) for d = |A_i B'_i| = 4
LOG2_D = 2.0                      # log2 d
BOB_SLOPE = float(np.log2(5.0)) ** 2  # (V'/2)^2 with V' = 2 log2(1 + 2 |B'_i|), Eq. (110)
OMEGA_GRID = np.linspace(OMEGA_MIN, OMEGA_MAX, 801)
ETA_GRID = chsh_entropy_bound(OMEGA_GRID)


@dataclass(frozen=True)
class FiniteKey:
    """Finite-size key and the terms it is made of (bits unless noted).

    key_length: secure key extracted (Prop. 2 ell); net_key_length: key_length minus the
    ONE_TIME_PAD_BITS consumed from the initial key (the published "extends the key by");
    min_entropy_bits: bound on the smooth min-entropy of Alice's outputs given Eve before any
    public message; first_order_bits: n g_t(omega_thr); bob_max_entropy_bits: bound on
    H_max(B'|XYE) subtracted in the chain rule (NaN for af2018); syndrome_length: error
    correction bits revealed; tradeoff_point t; alpha, alpha_bob: Renyi orders (NaN where not
    used); omega_expected / omega_threshold: honest and abort CHSH winning probabilities;
    surplus_bits: entropy left after every public message, privacy amplification and
    extractor cost (the argument of Upsilon in Eq. (73); negative when there is no key).
    """

    key_length: int
    net_key_length: int
    n_rounds: int
    test_fraction: float
    omega_expected: float
    omega_threshold: float
    syndrome_length: int
    min_entropy_bits: float
    first_order_bits: float
    bob_max_entropy_bits: float
    tradeoff_point: float
    alpha: float
    alpha_bob: float
    eps_sound: float
    method: str
    surplus_bits: float

    def to_dict(self) -> dict:
        return asdict(self)


def _check_rounds(n_rounds, test_fraction) -> None:
    if isinstance(n_rounds, bool) or int(n_rounds) != n_rounds or n_rounds < 1:
        raise ValueError(f"n_rounds must be a positive integer, got {n_rounds!r}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction (gamma) must lie in (0, 1), got {test_fraction!r}")


def abort_threshold(n_rounds: int, test_fraction: float, chsh: float,
                    sigmas: float = 3.0) -> float:
    """omega_thr of Suppl. Eqs. (24)-(25): Bob accepts at most n q_thr lost test rounds,
    q_thr = q + sigmas sqrt(q (1 - q) / n) with q = gamma (1 - omega), omega = (4 + S) / 8."""
    _check_rounds(n_rounds, test_fraction)
    if not sigmas >= 0.0:
        raise ValueError(f"sigmas must be >= 0, got {sigmas!r}")
    q = test_fraction * (1.0 - chsh_to_winning_probability(chsh))
    q_thr = q + sigmas * np.sqrt(q * (1.0 - q) / n_rounds)
    return float(1.0 - q_thr / test_fraction)


def syndrome_length(n_rounds: int, test_fraction: float, chsh: float, qber: float,
                    margin: float = 50.0) -> int:
    """Error-correction syndrome length m of Suppl. Eq. (23), bits:
    floor(n [(1 - gamma) h(Q) + gamma h((4 - S) / 8)] + margin sqrt(n))."""
    _check_rounds(n_rounds, test_fraction)
    check_chsh(chsh)
    check_qber(qber)
    gamma = test_fraction
    rate = (1.0 - gamma) * binary_entropy(qber) + gamma * binary_entropy((4.0 - chsh) / 8.0)
    return int(np.floor(n_rounds * rate + margin * np.sqrt(n_rounds)))


def _theta(eps):
    """theta_eps = log2(1 / (1 - sqrt(1 - eps^2))), Suppl. Eq. (66), written stably."""
    eps = np.asarray(eps, dtype=float)
    return np.log2((1.0 + np.sqrt(1.0 - eps * eps)) / (eps * eps))


def _upsilon(x: float) -> float:
    """Upsilon_b(x) for b = 4 / ln 2 (Suppl. Eq. (52)): the y >= 1 with y + 4 log2(y) = x."""
    if x < 1.0:
        return 0.0
    y = max(1.0, x - 4.0 * np.log2(x))
    for _ in range(50):
        step = (y + 4.0 * np.log2(y) - x) / (1.0 + 4.0 / (y * np.log(2.0)))
        y -= step
        if abs(step) < 1e-9:
            break
    return float(y)


def _tangent(t):
    """(g_t(0), g_t(1), g_t(omega_min), eta(t), eta'(t)) of the tangent g_t(w) = eta(t) +
    eta'(t) (w - t), Suppl. Eq. (61)."""
    if np.ndim(t) == 0:  # scalar fast path: the optimiser calls this thousands of times
        t = float(min(max(t, OMEGA_CLASSICAL + 1e-12), OMEGA_MAX - 1e-12))
        root = math.sqrt(16.0 * t * (t - 1.0) + 3.0)
        x = 0.5 + 0.5 * root
        eta_t = 1.0 + x * math.log2(x) + (1.0 - x) * math.log2(1.0 - x)
        slope = math.log2(x / (1.0 - x)) * (32.0 * t - 16.0) / (4.0 * root)
    else:
        eta_t, slope = chsh_entropy_bound(t), chsh_entropy_slope(t)
    return (eta_t - slope * t, eta_t + slope * (1.0 - t), eta_t + slope * (OMEGA_MIN - t),
            eta_t, slope)


def _alice_terms(t, beta, gamma, omega=OMEGA_GRID):
    """Delta(f_t, omega) - (alpha' - 1) V(f_t, q(omega)), Suppl. Eqs. (67)-(69), at each
    omega (last axis); Var_{q(omega)} f_t = (g_t(1) - g_t(0))^2 (1 - omega)
    (1 - gamma (1 - omega)) / gamma. Vectorised over t and beta (broadcast against omega)."""
    g0, g1, _, eta_t, slope = _tangent(t)
    spread = g1 - g0
    variance = spread ** 2 * (1.0 - omega) * (1.0 - gamma * (1.0 - omega)) / gamma
    v = np.log(2.0) / 2.0 * (LOG2_33 + np.sqrt(2.0 + variance)) ** 2
    eta = ETA_GRID if omega is OMEGA_GRID else chsh_entropy_bound(omega)
    gap = eta - (eta_t + slope * (omega - t))
    return gap - beta * v


def _alice_second_order(t, beta, gamma):
    """The infimum over omega of :func:`_alice_terms` on OMEGA_GRID."""
    return np.min(_alice_terms(t, beta, gamma), axis=-1)


def _alice_second_order_exact(t: float, beta: float, gamma: float) -> float:
    """The same infimum, refined by a bounded minimisation around the grid minimum (a grid
    alone would overestimate an infimum, hence the key)."""
    values = _alice_terms(t, beta, gamma)
    i = int(np.argmin(values))
    lo, hi = OMEGA_GRID[max(i - 1, 0)], OMEGA_GRID[min(i + 1, len(OMEGA_GRID) - 1)]
    refined = optimize.minimize_scalar(
        lambda w: float(_alice_terms(t, beta, gamma, np.array([w]))[0]), bounds=(lo, hi),
        method="bounded", options=dict(xatol=1e-12))
    return min(float(values[i]), float(refined.fun))


def _nadlinger_bits(n, gamma, omega_thr, m, eps_budget, t, beta, f_pa, f_s1, f_s2,
                    second=None):
    """Terms of Suppl. Prop. 2, Eq. (73), for t, beta = alpha' - 1 and the eps split
    eps_EA = eps_PA + 2 eps_s = eps_budget, eps_PA = f_pa eps_budget, eps_s' = f_s1 eps_s,
    eps_s'' = f_s2 (eps_s - eps_s') / 2; alpha'' - 1 is set to its optimum in closed form.
    Returns (argument of Upsilon, min-entropy bound, first order, Bob's H_max bound, alpha'').
    """
    g0, g1, gmin, eta_t, slope = _tangent(t)
    first = n * (eta_t + slope * (omega_thr - t))
    if second is None:
        second = _alice_second_order(t, beta, gamma)
    span = LOG2_D + g1 - gmin
    k_alpha = (2.0 ** (beta * span) * np.log(2.0 ** span + np.e ** 2) ** 3
               / (6.0 * (1.0 - beta) ** 3 * np.log(2.0)))
    log_ea = np.log2(1.0 / eps_budget)
    eps_pa = f_pa * eps_budget
    eps_s = (1.0 - f_pa) * eps_budget / 2.0
    eps_s1 = f_s1 * eps_s
    eps_s2 = f_s2 * (eps_s - eps_s1) / 2.0
    eps_rest = eps_s - eps_s1 - 2.0 * eps_s2
    alice = (first + n * second - n * beta ** 2 * k_alpha
             - (_theta(eps_s1) + (1.0 + beta) * log_ea) / beta)
    # Bob: n gamma + n b2 log2(5)^2 + (theta + (1 + b2) log(1/eps_EA)) / b2, Suppl. Eq. (112),
    # minimised over b2 = alpha'' - 1 < 1 / log2(5)
    c = _theta(eps_s2) + log_ea
    b2 = np.minimum(np.sqrt(c / (n * BOB_SLOPE)), (1.0 - 1e-9) / np.log2(5.0))
    bob = n * gamma + n * b2 * BOB_SLOPE + c / b2 + log_ea
    min_entropy = alice - bob - 3.0 * _theta(eps_rest)
    x = min_entropy - 5.0 * np.log2(1.0 / eps_pa) - m - PUBLIC_TAG_BITS - EXTRACTOR_BITS
    return x, min_entropy, first, bob, 1.0 + b2


def _logit(p):
    return np.log(p / (1.0 - p))


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _optimise_nadlinger(n, gamma, omega_thr, m, eps_budget, restarts=4):
    """Maximise Eq. (73) over (t, alpha', eps split): coarse grid, then Nelder-Mead."""
    split = (0.002, 0.85, 0.98)
    t = np.linspace(OMEGA_CLASSICAL + 1e-4, OMEGA_MAX - 1e-4, 48)[:, None, None]
    beta = np.geomspace(1e-6, 0.3, 48)[None, :, None]
    x = _nadlinger_bits(n, gamma, omega_thr, m, eps_budget, t, beta, *split)[0][..., 0]
    i, j = np.unravel_index(np.argmax(x), x.shape)
    start = np.array([t[i, 0, 0], np.log(beta[0, j, 0]), *(_logit(s) for s in split)])

    def negative(p):
        t_, log_b, *z = p
        b = np.exp(log_b)
        fractions = _sigmoid(np.array(z))
        if (not (OMEGA_CLASSICAL < t_ < OMEGA_MAX) or not 0.0 < b < 1.0
                or not np.all((fractions > 1e-12) & (fractions < 1.0 - 1e-12))):
            return np.inf
        return -float(_nadlinger_bits(n, gamma, omega_thr, m, eps_budget, t_, b,
                                      *fractions)[0])

    point, value = start, negative(start)
    # restarts: Nelder-Mead stalls on this badly scaled 5-d problem; a single quick run (to
    # about half a bit) serves the search over gamma in best_test_fraction
    tolerance = dict(xatol=1e-8, fatol=1e-4) if restarts > 1 else dict(xatol=1e-5, fatol=0.5)
    for _ in range(restarts):
        result = optimize.minimize(negative, point, method="Nelder-Mead",
                                   options=dict(maxiter=4000, **tolerance))
        if result.fun > value - 0.01:
            break
        point, value = result.x, result.fun
    t_, log_b, *z = point
    beta_ = float(np.exp(log_b))
    fractions = _sigmoid(np.array(z))
    second = _alice_second_order_exact(float(t_), beta_, gamma)
    terms = _nadlinger_bits(n, gamma, omega_thr, m, eps_budget, float(t_), beta_, *fractions,
                            second=second)
    return terms, float(t_), 1.0 + beta_


def _af2018_bits(n, gamma, omega, omega_thr, qber, eps):
    """AF2018 (Nat. Commun. 9, 459): entropy n [g_t(omega_thr) - v / sqrt(n)] + 3 log2(1 -
    sqrt(1 - (eps_s/4)^2)), v = 2 (log2 13 + ceil(g'/gamma)) sqrt(1 - 2 log2(eps_s eps_EA)),
    output alphabet 6; leakage n [(1 - gamma) h(Q) + gamma h(omega)] + sqrt(n) 2 log2 5
    sqrt(1 - 2 log2 eps_s) + log2(1/eps_EC); privacy amplification 2 log2(1/eps_PA).
    Each eps is eps_sound / 5. Returns (key before flooring, min-entropy, first order, leak, t).
    """
    smoothing = np.sqrt(1.0 - 2.0 * np.log2(eps * eps))
    best = (-np.inf, 0.0, OMEGA_CLASSICAL)
    for t in np.linspace(OMEGA_CLASSICAL + 1e-6, max(omega_thr, OMEGA_CLASSICAL + 2e-6), 400):
        slope = chsh_entropy_slope(t)
        first = chsh_entropy_bound(t) + slope * (omega_thr - t)
        rate = first - 2.0 * (np.log2(13.0) + np.ceil(slope / gamma)) * smoothing / np.sqrt(n)
        if rate > best[0]:
            best = (rate, first, t)
    rate, first, t = best
    x = eps / 4.0
    chain = 3.0 * np.log2(x * x / (1.0 + np.sqrt(1.0 - x * x)))
    leak = (n * ((1.0 - gamma) * binary_entropy(qber) + gamma * binary_entropy(omega))
            + np.sqrt(n) * 2.0 * np.log2(5.0) * np.sqrt(1.0 - 2.0 * np.log2(eps))
            + np.log2(1.0 / eps))
    min_entropy = n * rate + chain
    return min_entropy - leak - 2.0 * np.log2(1.0 / eps), min_entropy, n * first, leak, t


def finite_key_length(n_rounds: int, test_fraction: float, chsh: float, qber: float,
                      eps_sound: float = 1e-10, *, omega_threshold: float | None = None,
                      syndrome_bits: int | None = None, sigmas: float = 3.0,
                      method: str = "nadlinger2022") -> FiniteKey:
    """Secure key length (bits) after n_rounds rounds of the CHSH DI-QKD protocol.

    chsh, qber: the expected honest S and Q the protocol is designed for; they set the abort
    threshold omega_thr (Suppl. Eqs. (24)-(25), `sigmas` standard deviations of allowance)
    and the syndrome length m (Suppl. Eq. (23)) unless `omega_threshold` / `syndrome_bits`
    are given. eps_sound: total soundness error. method: see the module docstring.
    """
    return _key_length(n_rounds, test_fraction, chsh, qber, eps_sound, omega_threshold,
                       syndrome_bits, sigmas, method, restarts=4)


def _key_length(n_rounds, test_fraction, chsh, qber, eps_sound, omega_threshold,
                syndrome_bits, sigmas, method, restarts) -> FiniteKey:
    """finite_key_length with the number of optimiser restarts as a parameter."""
    _check_rounds(n_rounds, test_fraction)
    check_chsh(chsh)
    check_qber(qber)
    if not 0.0 < eps_sound < 1.0:
        raise ValueError(f"eps_sound must lie in (0, 1), got {eps_sound!r}")
    if method not in FINITE_KEY_METHODS:
        raise ValueError(f"unknown finite-key method {method!r}; choose one of "
                         f"{', '.join(FINITE_KEY_METHODS)}")
    n, gamma = float(n_rounds), float(test_fraction)
    omega = chsh_to_winning_probability(chsh)
    if omega_threshold is None:
        omega_threshold = abort_threshold(n_rounds, gamma, chsh, sigmas)
    elif not OMEGA_MIN <= omega_threshold <= OMEGA_MAX:
        raise ValueError(f"omega_threshold must lie in [{OMEGA_MIN:.6f}, {OMEGA_MAX:.6f}], got "
                         f"{omega_threshold!r}")
    common = dict(n_rounds=int(n_rounds), test_fraction=gamma, omega_expected=omega,
                  omega_threshold=float(omega_threshold), eps_sound=float(eps_sound),
                  method=method)
    if method == "af2018":
        x, min_entropy, first, leak, t = _af2018_bits(n, gamma, omega, omega_threshold, qber,
                                                      eps_sound / 5.0)
        x = x if omega_threshold > OMEGA_CLASSICAL else -np.inf
        key = int(np.floor(x)) if x > 0 else 0
        return FiniteKey(key_length=key, net_key_length=key, syndrome_length=int(np.ceil(leak)),
                         surplus_bits=float(x),
                         min_entropy_bits=float(min_entropy), first_order_bits=float(first),
                         bob_max_entropy_bits=float("nan"), tradeoff_point=float(t),
                         alpha=float("nan"), alpha_bob=float("nan"), **common)
    m = syndrome_length(n_rounds, gamma, chsh, qber) if syndrome_bits is None else syndrome_bits
    if isinstance(m, bool) or int(m) != m or m < 0:
        raise ValueError(f"syndrome_bits must be a non-negative integer, got {syndrome_bits!r}")
    eps_budget = eps_sound - 4.0 * VHASH_COLLISION
    if omega_threshold <= OMEGA_CLASSICAL or eps_budget <= 0.0:
        return FiniteKey(key_length=0, net_key_length=0, syndrome_length=int(m),
                         surplus_bits=float("-inf"),
                         min_entropy_bits=0.0, first_order_bits=0.0,
                         bob_max_entropy_bits=float("nan"), tradeoff_point=float("nan"),
                         alpha=float("nan"), alpha_bob=float("nan"), **common)
    (x, min_entropy, first, bob, alpha_bob), t, alpha = _optimise_nadlinger(
        n, gamma, float(omega_threshold), float(m), eps_budget, restarts)
    key = int(np.floor(_upsilon(float(x))))
    return FiniteKey(key_length=key, net_key_length=max(0, key - ONE_TIME_PAD_BITS),
                     syndrome_length=int(m), surplus_bits=float(x),
                     min_entropy_bits=float(min_entropy),
                     first_order_bits=float(first), bob_max_entropy_bits=float(bob),
                     tradeoff_point=t, alpha=alpha, alpha_bob=float(alpha_bob), **common)


def best_test_fraction(n_rounds: int, chsh: float, qber: float, **kwargs) -> FiniteKey:
    """finite_key_length at the test fraction giving the longest key: the entropy surplus
    (smooth, and defined where there is no key yet) is maximised on a log grid over
    [1e-5, 0.5], then by a bounded search on log(gamma); keyword arguments are those of
    finite_key_length."""
    options = dict(eps_sound=1e-10, omega_threshold=None, syndrome_bits=None, sigmas=3.0,
                   method="nadlinger2022")
    unknown = set(kwargs) - set(options)
    if unknown:
        raise TypeError(f"best_test_fraction got unexpected arguments {sorted(unknown)}")
    options.update(kwargs)

    def key(log_gamma: float, restarts: int = 1) -> FiniteKey:
        return _key_length(n_rounds, float(np.exp(log_gamma)), chsh, qber, restarts=restarts,
                           **options)
    grid = np.log(np.geomspace(1e-5, 0.5, 14))
    surplus = [key(g).surplus_bits for g in grid]
    i = int(np.argmax(surplus))
    if not np.isfinite(surplus[i]):
        return key(grid[i])
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    refined = optimize.minimize_scalar(lambda g: -key(g).surplus_bits, bounds=(lo, hi),
                                       method="bounded", options=dict(xatol=0.01))
    best = refined.x if -refined.fun >= surplus[i] else grid[i]
    return key(float(best), restarts=4)
