"""Single-ion physics of a 40Ca+ node: levels, rates, channels and 729 nm rotations.

Each ion is modelled on four levels: ``S`` = S1/2(m=-1/2), ``D`` = the D5/2 qubit sublevel,
``X`` = D3/2 (dark, reached from P1/2 when 866 is off) and ``E`` = a second D5/2 Zeeman
sublevel (reached by the two-photon scheme's photon generation and by 729 pulses tuned to the
S-E line; it decays and is quenched like ``D``). P levels are transient (rates). The two ions
share one joint density matrix stored as a 4-tensor ``rho[a, b, a', b']`` (a: ion A level,
b: ion B level); the helpers here act on one ion of it.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy.special import eval_laguerre

S, D, X, E = 0, 1, 2, 3
LEVELS = 4
_DIAG = np.arange(LEVELS) * (LEVELS + 1)      # (a, a) in the flattened (a, a') index
_PERM = ((0, 2, 1, 3), (1, 3, 0, 2))           # rho[a, b, a', b'] -> target (x, x') first
_INV_PERM = ((0, 2, 1, 3), (2, 0, 3, 1))


def _target_first(rho: np.ndarray, ion: int) -> np.ndarray:
    return rho if ion == 0 else rho.transpose(1, 0, 3, 2)


def apply_unitary(rho: np.ndarray, u: np.ndarray, ion: int) -> np.ndarray:
    """``U rho U^dagger`` with the 3x3 ``u`` acting on ion 0 (A) or 1 (B)."""
    if ion == 0:
        return np.einsum("ai,ijkl,bk->ajbl", u, rho, u.conj(), optimize=False)
    return np.einsum("bj,ijkl,cl->ibkc", u, rho, u.conj(), optimize=False)


def apply_kraus(rho: np.ndarray, kraus: np.ndarray, ion: int) -> np.ndarray:
    """Sum over ``K rho K^dagger`` for a stack ``kraus`` of shape (m, LEVELS, LEVELS) on one ion."""
    if ion == 0:
        return np.einsum("mai,ijkl,mbk->ajbl", kraus, rho, kraus.conj(), optimize=False)
    return np.einsum("mbj,ijkl,mcl->ibkc", kraus, rho, kraus.conj(), optimize=False)


def apply_incoherent(rho: np.ndarray, transfer: np.ndarray, coherence: np.ndarray,
                     ion: int) -> np.ndarray:
    """Classical population transfer plus coherence factors on one ion.

    :param transfer: column-stochastic 3x3 matrix ``P[to, from]``.
    :param coherence: 3x3 factors multiplying the ion's off-diagonal elements ``rho[a, a']``
        (``|c[a, a']| <= sqrt(P[a, a] P[a', a'])`` keeps the map completely positive).
    """
    n = LEVELS
    # rows: the target ion's (a, a'); columns: the other ion's (b, b')
    perm = _PERM[ion]
    x = rho.transpose(perm).reshape(n * n, n * n)
    y = x * coherence.reshape(n * n, 1)
    y[_DIAG] = transfer @ x[_DIAG]
    return y.reshape(n, n, n, n).transpose(_INV_PERM[ion])


def reduced_populations(rho: np.ndarray, ion: int) -> np.ndarray:
    """Level populations (S, D, X, E) of one ion."""
    t = _target_first(rho, ion)
    return np.real(np.einsum("ijij->i", t))


def project(rho: np.ndarray, ion: int, level: int, new_level: int) -> np.ndarray:
    """Project one ion on ``level`` (normalised) and move it to ``new_level``."""
    t = _target_first(rho, ion)
    block = t[level, :, level, :]
    p = float(np.real(np.trace(block)))
    out = np.zeros_like(t)
    out[new_level, :, new_level, :] = block / p
    return out if ion == 0 else out.transpose(1, 0, 3, 2)


class RateMatrix:
    """Generator ``Q`` (dp/dt = Q p) of the classical level dynamics; ``transfer(t)`` = exp(Qt).

    Eigen-decomposed once; ``transfer`` is then a few small products, cached per duration
    (attempt loops repeat the same durations). Levels without exit (absorbing columns) keep
    their population exactly.
    """

    def __init__(self, q: np.ndarray):
        self.q = q
        w, v = np.linalg.eig(q)
        self._w = w
        self._v = v
        self._vinv = np.linalg.inv(v)
        self.exit_rates = -np.diag(q)
        self._absorbing = np.flatnonzero(self.exit_rates == 0)
        self._cache: dict[float, np.ndarray] = {}

    def transfer(self, t: float) -> np.ndarray:
        p = self._cache.get(t)
        if p is not None:
            return p
        p = np.real((self._v * np.exp(self._w * t)) @ self._vinv)
        np.clip(p, 0.0, 1.0, out=p)
        p /= p.sum(axis=0, keepdims=True)
        for a in self._absorbing:
            p[:, a] = 0.0
            p[a, a] = 1.0
        if len(self._cache) > 512:
            self._cache.clear()
        self._cache[t] = p
        return p


def rate_matrix(d_to_s: float, d_to_x: float, x_to_s: float, s_to_x: float) -> np.ndarray:
    """Generator from the four transition rates (1/s); ``E`` leaves like ``D``."""
    q = np.zeros((LEVELS, LEVELS))
    for d in (D, E):
        q[S, d] += d_to_s
        q[X, d] += d_to_x
    q[S, X] += x_to_s
    q[X, S] += s_to_x
    q -= np.diag(q.sum(axis=0))
    return q


def scattering_rate(gamma: float, saturation: float, detuning: float) -> float:
    """Two-level scattering rate (1/s): ``(Gamma/2) s / (1 + s + (2 Delta/Gamma)^2)``;
    ``gamma`` and ``detuning`` in rad/s."""
    return 0.5 * gamma * saturation / (1 + saturation + (2 * detuning / gamma) ** 2)


def doppler_nbar(gamma: float, trap_omega: float, saturation: float, detuning: float) -> float:
    """1D Doppler-limited mean phonon number ``Gamma (1 + s + d^2) / (4 w (-d))``, d = 2D/G
    (k_B T = hbar Gamma (1 + s + d^2) / (4 (-d)); minimum hbar Gamma / 2)."""
    d = 2 * detuning / gamma
    if d >= 0:
        return math.inf
    return gamma * (1 + saturation + d * d) / (4 * trap_omega * (-d))


def cooling_rate(saturation: float, detuning: float, gamma: float, tau_ref: float) -> float:
    """Energy damping rate (1/s), ``-d s / (1 + s + d^2)^2`` scaled so that d = -1, s = 1 gives
    ``1/tau_ref``; negative (heating) for blue detuning."""
    d = 2 * detuning / gamma
    g = -d * saturation / (1 + saturation + d * d) ** 2
    return g / (1.0 / 9.0) / tau_ref


@lru_cache(maxsize=4096)
def debye_waller(n: int, eta: float) -> float:
    """Carrier Rabi frequency ratio Omega_n/Omega = exp(-eta^2/2) L_n(eta^2)."""
    e2 = eta * eta
    return math.exp(-e2 / 2) * float(eval_laguerre(n, e2))


def carrier_rotation(omega: float, detuning: float, duration: float, phase_start: float,
                     phase_end: float) -> np.ndarray:
    """2x2 unitary (basis S, excited level) of a rectangular 729 nm carrier pulse in the
    atom frame.

    Coupling ``(Omega/2)(exp(-i phi)|D><S| + h.c.)`` with ``phi(t)`` the laser phase relative
    to the atom (rad), ``omega`` the Rabi frequency and ``detuning`` = laser - atom (rad/s),
    ``duration`` in s: ``U = V(t2)^dag exp(-i H T) V(t1)`` with ``V = diag(1, exp(i phi))``
    and ``H = (Omega/2) sigma_x - detuning |D><D|`` in the laser frame.
    """
    w = math.hypot(omega, detuning)
    half = 0.5 * w * duration
    c = math.cos(half)
    s = math.sin(half) / w if w > 0 else 0.5 * duration
    # exp(-i H T) with H = -(det/2) I + (Omega/2) sx + (det/2) sz
    glob = complex(math.cos(detuning * duration / 2), math.sin(detuning * duration / 2))
    m00 = glob * complex(c, -s * detuning)
    m11 = glob * complex(c, s * detuning)
    m01 = glob * complex(0.0, -s * omega)
    e1 = complex(math.cos(phase_start), math.sin(phase_start))
    e2 = complex(math.cos(phase_end), -math.sin(phase_end))
    return np.array([[m00, m01 * e1], [e2 * m01, e2 * m11 * e1]], dtype=complex)


def rotation(omega: float, detuning: float, duration: float, phase_start: float,
             phase_end: float, level: int = D) -> np.ndarray:
    """Unitary (LEVELS x LEVELS) of a rectangular 729 pulse on the S-``level`` line in the
    atom frame: :func:`carrier_rotation` on (S, ``level``), identity elsewhere."""
    m = carrier_rotation(omega, detuning, duration, phase_start, phase_end)
    u = np.eye(LEVELS, dtype=complex)
    u[S, S] = m[0, 0]
    u[S, level] = m[0, 1]
    u[level, S] = m[1, 0]
    u[level, level] = m[1, 1]
    return u
