"""Two-qubit state tomography by maximum likelihood (iterative R rho R algorithm).

Data layout: counts of shape (3, 3, 4) indexed [basis_1, basis_2, outcome] with bases
0 = X, 1 = Y, 2 = Z for qubit 1 and qubit 2, and outcome = 2 * a + b where a (b) = 0 means
qubit 1 (2) was found in the +1 eigenstate of its Pauli operator (for Z: |0>) and 1 the -1
eigenstate. Density matrices are 4x4 in the basis |00>, |01>, |10>, |11> (qubit 1 first).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PAULI = {
    "I": np.eye(2, dtype=complex),
    "X": np.array([[0, 1], [1, 0]], dtype=complex),
    "Y": np.array([[0, -1j], [1j, 0]], dtype=complex),
    "Z": np.array([[1, 0], [0, -1]], dtype=complex),
}
BASES = ("X", "Y", "Z")

_S = 1.0 / np.sqrt(2.0)
BELL_STATES = {
    "phi+": np.array([_S, 0, 0, _S], dtype=complex),
    "phi-": np.array([_S, 0, 0, -_S], dtype=complex),
    "psi+": np.array([0, _S, _S, 0], dtype=complex),
    "psi-": np.array([0, _S, -_S, 0], dtype=complex),
}


def _single_projector(basis: str, outcome: int) -> np.ndarray:
    return 0.5 * (PAULI["I"] + (1 - 2 * outcome) * PAULI[basis])


def measurement_projectors() -> np.ndarray:
    """Projectors of shape (3, 3, 4, 4, 4) [basis_1, basis_2, outcome, row, column]."""
    out = np.empty((3, 3, 4, 4, 4), dtype=complex)
    for i, b1 in enumerate(BASES):
        for j, b2 in enumerate(BASES):
            for a in (0, 1):
                for b in (0, 1):
                    out[i, j, 2 * a + b] = np.kron(_single_projector(b1, a),
                                                   _single_projector(b2, b))
    return out


_PROJECTORS = measurement_projectors()


def outcome_probabilities(rho) -> np.ndarray:
    """Probabilities of shape (3, 3, 4) of each outcome in each Pauli setting for state rho."""
    rho = _check_density_matrix(rho)
    return np.real(np.einsum("ijkab,ba->ijk", _PROJECTORS, rho))


@dataclass(frozen=True)
class TomographyResult:
    """Reconstructed density matrix, fidelities to the four Bell states, and fit diagnostics."""

    rho: np.ndarray
    bell_fidelities: dict[str, float]
    log_likelihood: float
    iterations: int
    converged: bool

    def to_dict(self) -> dict:
        return {"rho_real": np.real(self.rho).tolist(), "rho_imag": np.imag(self.rho).tolist(),
                "bell_fidelities": self.bell_fidelities, "log_likelihood": self.log_likelihood,
                "iterations": self.iterations, "converged": self.converged,
                "purity": purity(self.rho)}


def fidelity_to_pure(rho, state) -> float:
    """<state| rho |state> for a normalised pure state vector."""
    psi = np.asarray(state, dtype=complex)
    return float(np.real(np.conj(psi) @ np.asarray(rho) @ psi))


def bell_fidelities(rho) -> dict[str, float]:
    """Fidelity of rho to each Bell state, keyed 'phi+', 'phi-', 'psi+', 'psi-'."""
    return {name: fidelity_to_pure(rho, psi) for name, psi in BELL_STATES.items()}


def purity(rho) -> float:
    """tr(rho^2)."""
    rho = np.asarray(rho)
    return float(np.real(np.trace(rho @ rho)))


def _check_density_matrix(rho) -> np.ndarray:
    rho = np.asarray(rho, dtype=complex)
    if rho.shape != (4, 4):
        raise ValueError(f"two-qubit density matrix must be 4x4, got shape {rho.shape}")
    return rho


def _check_counts(counts) -> np.ndarray:
    c = np.asarray(counts)
    if c.shape != (3, 3, 4):
        raise ValueError(f"counts must have shape (3, 3, 4) [basis_1, basis_2, outcome], got "
                         f"{c.shape}")
    c = c.astype(float)
    if np.any(~np.isfinite(c)) or np.any(c < 0):
        raise ValueError("counts must be finite and non-negative")
    totals = c.sum(axis=2)
    if np.any(totals == 0):
        raise ValueError("every one of the 9 measurement settings needs at least one count")
    return c


def linear_inversion(counts) -> np.ndarray:
    """Unconstrained linear-inversion estimate (Hermitian, trace 1, possibly not positive)."""
    c = _check_counts(counts)
    freq = c / c.sum(axis=2, keepdims=True)
    rho = 0.25 * np.eye(4, dtype=complex)
    names = ("I",) + BASES
    for p1 in names:
        for p2 in names:
            if p1 == "I" and p2 == "I":
                continue
            # average the expectation over all settings that measure this Pauli product
            s1 = range(3) if p1 == "I" else [BASES.index(p1)]
            s2 = range(3) if p2 == "I" else [BASES.index(p2)]
            signs = np.array([(1 if p1 == "I" else (1 - 2 * a)) * (1 if p2 == "I" else (1 - 2 * b))
                              for a in (0, 1) for b in (0, 1)], dtype=float)
            expectation = np.mean([freq[i, j] @ signs for i in s1 for j in s2])
            rho += 0.25 * expectation * np.kron(PAULI[p1], PAULI[p2])
    return rho


def maximum_likelihood(counts, max_iterations: int = 20000,
                       tolerance: float = 1e-10) -> TomographyResult:
    """Maximum-likelihood density matrix from Pauli-basis counts (shape (3, 3, 4)).

    Iterates rho <- R rho R / tr(R rho R) with R = sum_k (n_k / p_k) Pi_k (Hradil/Lvovsky),
    starting from the maximally mixed state; stops when the log-likelihood changes by less
    than `tolerance` (relative to the number of counts) over one iteration.
    """
    c = _check_counts(counts).ravel()
    projectors = _PROJECTORS.reshape(36, 4, 4)
    rho = 0.25 * np.eye(4, dtype=complex)
    total = c.sum()
    previous = -np.inf
    converged = False
    iterations = 0
    log_l = -np.inf
    while iterations < max_iterations:
        iterations += 1
        p = np.clip(np.real(np.einsum("kab,ba->k", projectors, rho)), 1e-300, None)
        log_l = float(np.sum(c * np.log(p)))
        r = np.einsum("k,kab->ab", c / p, projectors) / total
        rho = r @ rho @ r
        rho = 0.5 * (rho + rho.conj().T)
        rho /= np.real(np.trace(rho))
        if abs(log_l - previous) < tolerance * total:
            converged = True
            break
        previous = log_l
    return TomographyResult(rho, bell_fidelities(rho), log_l, iterations, converged)


def bell_fidelity_errors(counts, draws: int = 100, seed: int = 0,
                         max_iterations: int = 5000) -> dict[str, float]:
    """Standard errors of the maximum-likelihood Bell-state fidelities (bootstrap).

    Each of `draws` resamples redraws every setting's counts from a multinomial with the
    observed frequencies and the same total, and is reconstructed by `maximum_likelihood`
    (at most `max_iterations` iterations); the standard error of each fidelity is the
    standard deviation over the resamples. Same keys as `bell_fidelities`.
    """
    c = _check_counts(counts)
    if int(draws) < 2:
        raise ValueError(f"draws must be >= 2 for a standard deviation, got {draws!r}")
    totals = c.sum(axis=2)
    if np.any(totals != np.round(totals)):
        raise ValueError("counts must be whole numbers to be resampled")
    frequencies = c / totals[:, :, None]
    rng = np.random.default_rng(seed)
    samples = {name: np.empty(int(draws)) for name in BELL_STATES}
    for k in range(int(draws)):
        resampled = rng.multinomial(totals.astype(np.int64), frequencies)
        rho = maximum_likelihood(resampled, max_iterations=max_iterations).rho
        for name, value in bell_fidelities(rho).items():
            samples[name][k] = value
    return {name: float(np.std(values, ddof=1)) for name, values in samples.items()}
