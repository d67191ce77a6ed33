"""Gate physics of the repeater's two-ion crystal: 729 nm carrier rotations and the
Molmer-Sorensen (MS) gate, as pure functions on qubit density matrices.

Qubit convention: index 0 = S1/2(m=-1/2) (``S``), 1 = the D5/2 qubit sublevel (``D``).
A register of ``n`` qubits is a ``2**n x 2**n`` density matrix, qubit 0 most significant.

MS gate (Sorensen and Molmer, PRA 62, 022311 (2000); Roos, NJP 10, 013002 (2008)): a
bichromatic 729 nm beam with tones detuned by ``+-(nu + delta)`` from the carrier drives, in
the Lamb-Dicke regime and the interaction picture,

    H = (eta Omega / 2) S_phi (a e^{-i delta t} + a^dag e^{i delta t}),
    S_phi = sum_k (cos phi_k sigma_x^(k) - sin phi_k sigma_y^(k))

(``phi_k`` the tones' mean phase relative to ion k; the sign makes the coupling
``exp(-i phi)|D><S|``, as for carrier pulses and photon emission),

(``eta Omega`` the sideband Rabi frequency of each tone, rad/s). A rectangular pulse of length
``tau`` gives exactly (Magnus expansion, which terminates) ``U = D(alpha S_phi)
exp(i Phi S_phi^2)`` with

    alpha = -(eta Omega / 2) (e^{i delta tau} - 1) / delta,
    Phi   = (eta Omega / 2)^2 (tau / delta - sin(delta tau) / delta^2).

Traced over a thermal motional state of mean occupation ``nbar``, the spin density matrix in
the eigenbasis of ``S_phi`` (eigenvalues s) maps as

    rho_ss' -> rho_ss' exp(i Phi (s^2 - s'^2)) exp(-|alpha|^2 (s - s')^2 (nbar + 1/2)).

At ``delta tau = 2 pi K`` the motion disentangles (alpha = 0) and ``eta Omega = delta /
(2 sqrt K)`` gives ``Phi = pi/8``: the maximally entangling ``exp(i pi/4 sigma_phi sigma_phi)``
(up to a global phase). Neglected (documented limits): Debye-Waller reduction of the
sideband coupling, off-resonant carrier excitation and its light shift, other motional modes;
a carrier (centre) detuning enters only through the spin phase, which the caller evaluates at
the middle of the pulse (first order in detuning x duration). Errors not captured by this
Hamiltonian (laser phase noise, spontaneous scattering, intensity noise) are lumped into a
two-qubit depolarising ``gate_error`` applied per complete gate.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

S, D = 0, 1
SIGMA_X = np.array([[0, 1], [1, 0]], dtype=complex)
SIGMA_Y = np.array([[0, -1j], [1j, 0]], dtype=complex)
SIGMA_Z = np.array([[1, 0], [0, -1]], dtype=complex)
PAULIS = (np.eye(2, dtype=complex), SIGMA_X, SIGMA_Y, SIGMA_Z)


def embed(op: np.ndarray, targets: tuple[int, ...], n_qubits: int) -> np.ndarray:
    """The ``2**n x 2**n`` operator acting as ``op`` (on ``len(targets)`` qubits, in the
    order given) on qubits ``targets`` of an ``n_qubits`` register and as identity on the
    others."""
    k = len(targets)
    if op.shape != (2 ** k, 2 ** k):
        raise ValueError(f"operator of shape {op.shape} does not act on {k} qubits")
    if len(set(targets)) != k or any(not 0 <= t < n_qubits for t in targets):
        raise ValueError(f"bad target qubits {targets} for a {n_qubits}-qubit register")
    rest = [q for q in range(n_qubits) if q not in targets]
    full = np.kron(op, np.eye(2 ** len(rest), dtype=complex))
    # full acts on qubit order targets + rest; permute to the register order
    order = list(targets) + rest
    perm = [order.index(q) for q in range(n_qubits)]
    t = full.reshape((2,) * (2 * n_qubits))
    t = t.transpose(perm + [n_qubits + p for p in perm])
    return t.reshape(2 ** n_qubits, 2 ** n_qubits)




def ms_parameters(sideband_rabi: float, detuning: float, duration: float
                  ) -> tuple[float, complex]:
    """``(Phi, alpha)`` of a rectangular MS pulse: sideband Rabi frequency ``eta Omega`` and
    gate detuning ``delta`` in rad/s, ``duration`` in s (module docstring)."""
    g = 0.5 * sideband_rabi
    if detuning == 0.0:
        # resonant sidebands: pure displacement growing linearly, Phi = 0
        return 0.0, complex(0.0, -g * duration)
    x = detuning * duration
    phi = g * g * (duration / detuning - math.sin(x) / (detuning * detuning))
    alpha = -g * (complex(math.cos(x), math.sin(x)) - 1.0) / detuning
    return phi, alpha


def spin_operator(phase: float) -> np.ndarray:
    """``sigma_phi = exp(-i phi)|D><S| + exp(i phi)|S><D| = cos(phi) sigma_x -
    sin(phi) sigma_y``: the coupling of a laser of phase ``phi`` (relative to the atom), in
    the convention of :func:`ionlink.node.ion.carrier_rotation` and of the photon emission."""
    return math.cos(phase) * SIGMA_X - math.sin(phase) * SIGMA_Y


@lru_cache(maxsize=64)
def _s_eigen(phase_1: float, phase_2: float) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues and eigenvectors (columns) of ``S_phi`` on two qubits."""
    s1 = spin_operator(phase_1)
    s2 = spin_operator(phase_2)
    op = np.kron(s1, np.eye(2)) + np.kron(np.eye(2), s2)
    w, v = np.linalg.eigh(op)
    return np.round(w).astype(float), v


def ms_channel(rho: np.ndarray, qubits: tuple[int, int], n_qubits: int, sideband_rabi: float,
               detuning: float, duration: float, phases: tuple[float, float],
               nbar: float) -> np.ndarray:
    """Apply a rectangular MS pulse to qubits ``qubits`` of an ``n_qubits`` register state
    ``rho`` (spin phases ``phases`` in rad, thermal gate mode of mean occupation ``nbar``).
    Returns the new density matrix (the motion traced out; module docstring)."""
    if nbar < 0:
        raise ValueError(f"nbar must be >= 0, got {nbar!r}")
    phi, alpha = ms_parameters(sideband_rabi, detuning, duration)
    w, v = _s_eigen(float(phases[0]), float(phases[1]))
    factor = (np.exp(1j * phi * (w[:, None] ** 2 - w[None, :] ** 2))
              * np.exp(-abs(alpha) ** 2 * (w[:, None] - w[None, :]) ** 2 * (nbar + 0.5)))
    # rotate the two gate qubits into the S_phi eigenbasis, scale, rotate back
    big_v = embed(v, qubits, n_qubits)
    r = big_v.conj().T @ rho @ big_v
    dim = 2 ** n_qubits
    other = dim // 4
    idx = _pair_index(qubits, n_qubits)
    r4 = r.reshape(dim, dim)[np.ix_(idx.ravel(), idx.ravel())].reshape(4, other, 4, other)
    r4 = r4 * factor[:, None, :, None]
    out = np.empty_like(r)
    out[np.ix_(idx.ravel(), idx.ravel())] = r4.reshape(dim, dim)
    return big_v @ out @ big_v.conj().T


@lru_cache(maxsize=16)
def _pair_index(qubits: tuple[int, int], n_qubits: int) -> np.ndarray:
    """Register indices arranged as [pair state (4), rest (2**(n-2))]."""
    rest = [q for q in range(n_qubits) if q not in qubits]
    idx = np.zeros((4, 2 ** (n_qubits - 2)), dtype=np.intp)
    for p in range(4):
        bits = {qubits[0]: p >> 1, qubits[1]: p & 1}
        for r in range(2 ** len(rest)):
            for k, q in enumerate(rest):
                bits[q] = (r >> (len(rest) - 1 - k)) & 1
            idx[p, r] = sum(bits[q] << (n_qubits - 1 - q) for q in range(n_qubits))
    return idx


def depolarise_pair(rho: np.ndarray, qubits: tuple[int, int], n_qubits: int,
                    probability: float) -> np.ndarray:
    """Two-qubit depolarising channel ``(1 - p) rho + p (I/4 x Tr_pair rho)`` on ``qubits``."""
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"depolarising probability must be in [0, 1], got {probability!r}")
    if probability == 0.0:
        return rho
    twirl = np.zeros_like(rho)
    for p1 in PAULIS:
        for p2 in PAULIS:
            op = embed(np.kron(p1, p2), qubits, n_qubits)
            twirl += op @ rho @ op.conj().T
    return (1.0 - probability) * rho + probability * twirl / 16.0


def ms_gate_time(detuning: float, loops: int = 1) -> float:
    """Duration (s) after which the motion of an MS pulse with gate detuning ``detuning``
    (rad/s) has closed ``loops`` times: ``2 pi K / |delta|``."""
    if detuning == 0:
        raise ValueError("an MS gate needs a non-zero gate detuning")
    if loops < 1:
        raise ValueError(f"loops must be >= 1, got {loops!r}")
    return 2 * math.pi * loops / abs(detuning)


def ms_entangling_detuning(sideband_rabi: float, loops: int = 1) -> float:
    """Gate detuning (rad/s) at which a pulse of ``ms_gate_time`` is maximally entangling:
    ``delta = 2 sqrt(K) eta Omega``."""
    return 2.0 * math.sqrt(loops) * sideband_rabi
