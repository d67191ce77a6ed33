"""The photon batch's shortcuts agree with the full outcome computation."""

import numpy as np

from ionlink.node.ion import LEVELS, D, E, S
from ionlink.node.network import _no_click_map
from ionlink.node.photons import PhotonBatch, outcome_kraus


def emission(alpha, level, phase):
    k0 = np.eye(LEVELS, dtype=complex)
    k0[S, S] = np.sqrt(1 - alpha)
    k1 = np.zeros((LEVELS, LEVELS), dtype=complex)
    k1[level, S] = np.sqrt(alpha) * np.exp(-1j * phase)
    return k0, k1


def test_classical_no_click_equals_kraus_sum_and_outcome_probability():
    rng = np.random.default_rng(0)
    pops = [rng.dirichlet(np.ones(LEVELS)) for _ in range(2)]
    batch = PhotonBatch.start(None, [p.copy() for p in pops])
    for i, alpha in ((0, 0.3), (1, 0.2)):
        k0, k1 = emission(alpha, D, 0.4 + i)
        batch.emit(i, k0, [(k1, 100)], ((D, alpha),))
    batch.apply_unitary(0, np.diag(np.exp(1j * rng.uniform(0, 6, LEVELS))), diagonal=True)
    # a second, two-photon style emission on node B (total probability 0.25)
    k1d = emission(0.25, D, 1.0)[1]
    k0 = np.eye(LEVELS, dtype=complex)
    k1e = emission(0.25, E, 2.0)[1]
    k0[S, S] = np.sqrt(0.75)
    batch.emit(1, k0, [(k1d * np.sqrt(0.5), 300), (k1e * np.sqrt(0.5), 5300)],
               ((D, 0.125), (E, 0.125)))
    assert batch.monomial
    eta = (0.6, 0.35)
    fast = batch.no_click_populations(eta)
    for i in range(2):
        full = _no_click_map(batch.branches[i], np.diag(pops[i]).astype(complex), eta[i])
        assert np.allclose(np.diag(full).real, fast[i], atol=1e-14)
        assert np.allclose(full - np.diag(np.diag(full)), 0, atol=1e-14)
    batch.rho0 = np.einsum("ik,jl->ijkl", *batch.marginals)
    kraus, clicks = outcome_kraus(batch, eta, 0.7, 0.9)
    rho = batch.rho0.reshape(LEVELS**2, LEVELS**2)
    p_none = sum(np.trace(k @ rho @ k.conj().T).real for k, c in zip(kraus, clicks,
                                                                     strict=True) if not c)
    assert abs(p_none - fast[0].sum() * fast[1].sum()) < 1e-12
    total = sum(np.trace(k @ rho @ k.conj().T).real for k in kraus)
    assert abs(total - 1) < 1e-12


def test_a_coherent_pulse_disables_the_classical_shortcut():
    batch = PhotonBatch.start(None, [np.eye(LEVELS)[S], np.eye(LEVELS)[S]])
    k0, k1 = emission(0.1, D, 0.0)
    batch.emit(0, k0, [(k1, 0)], ((D, 0.1),))
    u = np.eye(LEVELS, dtype=complex)
    u[[S, D], [D, S]] = 1j
    u[S, S] = u[D, D] = 0
    batch.apply_unitary(0, u)
    assert not batch.monomial
