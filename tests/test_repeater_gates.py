"""MS gate and carrier rotations of the repeater (ionlink.node.gates) against independent
numerics: the spin-motion Hamiltonian integrated step by step in a truncated Fock space."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.linalg import expm

from ionlink.node import gates
from ionlink.node.ion import carrier_rotation

TWO_PI = 2 * math.pi


def _brute_force_ms(rho_spin: np.ndarray, nbar: float, rabi: float, delta: float,
                    duration: float, phases=(0.0, 0.0), n_max: int = 16,
                    steps: int = 300) -> np.ndarray:
    """Integrate H = (rabi/2) S_phi (a e^{-i delta t} + h.c.) on 2 qubits x n_max Fock states
    from a thermal motional state; returns the spin state with the motion traced out."""
    a = np.diag(np.sqrt(np.arange(1, n_max)), 1)
    # coupling exp(-i phi)|D><S| + h.c. (the convention of carrier pulses), written out
    s = sum(np.kron(np.kron(np.eye(2 ** k), np.array([[0, np.exp(1j * p)],
                                                      [np.exp(-1j * p), 0]])),
                    np.eye(2 ** (1 - k)))
            for k, p in enumerate(phases))
    dt = duration / steps
    u = np.eye(4 * n_max, dtype=complex)
    for k in range(steps):
        t = (k + 0.5) * dt
        field = a * np.exp(-1j * delta * t)
        h = 0.5 * rabi * np.kron(s, field + field.conj().T)
        u = expm(-1j * h * dt) @ u
    if nbar > 0:
        w = (nbar / (1 + nbar)) ** np.arange(n_max) / (1 + nbar)
    else:
        w = np.zeros(n_max)
        w[0] = 1.0
    rho = np.kron(rho_spin, np.diag(w / w.sum()))
    out = (u @ rho @ u.conj().T).reshape(4, n_max, 4, n_max)
    return np.einsum("anbn->ab", out)


def _ket_state(*bits) -> np.ndarray:
    v = np.zeros(4, dtype=complex)
    v[2 * bits[0] + bits[1]] = 1.0
    return np.outer(v, v.conj())


@pytest.mark.parametrize("detuning_factor,nbar,phases", [(1.0, 0.0, (0.0, 0.0)),
                                                         (1.15, 0.0, (0.3, -0.2)),
                                                         (0.9, 0.4, (0.0, 0.5))])
def test_ms_channel_matches_spin_motion_integration(detuning_factor, nbar, phases):
    rabi = TWO_PI * 10e3
    delta = gates.ms_entangling_detuning(rabi) * detuning_factor
    tau = gates.ms_gate_time(gates.ms_entangling_detuning(rabi))
    rho0 = _ket_state(0, 0)
    closed = gates.ms_channel(rho0, (0, 1), 2, rabi, delta, tau, phases, nbar)
    numeric = _brute_force_ms(rho0, nbar, rabi, delta, tau, phases)
    # the step (tau / 300, midpoint rule) bounds the integration error to ~1e-4
    assert np.allclose(closed, numeric, atol=2e-3)


def test_ideal_ms_gate_makes_a_bell_state_and_two_gates_flip_both():
    rabi = TWO_PI * 10e3
    delta = gates.ms_entangling_detuning(rabi)
    tau = gates.ms_gate_time(delta)
    rho = gates.ms_channel(_ket_state(0, 0), (0, 1), 2, rabi, delta, tau, (0.0, 0.0), 5.0)
    # (|SS> + i|DD>)/sqrt2 whatever the motional occupation (alpha = 0 at tau)
    bell = np.array([1, 0, 0, 1j]) / math.sqrt(2)
    assert np.real(bell.conj() @ rho @ bell) == pytest.approx(1.0, abs=1e-12)
    twice = gates.ms_channel(rho, (0, 1), 2, rabi, delta, tau, (0.0, 0.0), 5.0)
    assert np.real(twice[3, 3]) == pytest.approx(1.0, abs=1e-12)


def test_residual_displacement_error_grows_with_occupation():
    rabi = TWO_PI * 10e3
    delta = gates.ms_entangling_detuning(rabi) * 1.1
    tau = gates.ms_gate_time(gates.ms_entangling_detuning(rabi))
    fids = []
    for nbar in (0.0, 2.0, 10.0):
        rho = gates.ms_channel(_ket_state(0, 0), (0, 1), 2, rabi, delta, tau, (0.0, 0.0),
                               nbar)
        purity = float(np.real(np.trace(rho @ rho)))
        fids.append(purity)
    assert fids[0] > fids[1] > fids[2]


def test_ms_channel_on_a_register_leaves_other_qubits_alone():
    rabi = TWO_PI * 10e3
    delta = gates.ms_entangling_detuning(rabi)
    tau = gates.ms_gate_time(delta)
    rho = np.zeros((16, 16), dtype=complex)
    rho[0b1000, 0b1000] = 1.0       # qubit 0 in D, others in S
    out = gates.ms_channel(rho, (1, 2), 4, rabi, delta, tau, (0.0, 0.0), 0.0)
    assert np.real(out[0b1000, 0b1000]) == pytest.approx(0.5)
    assert np.real(out[0b1110, 0b1110]) == pytest.approx(0.5)
    assert np.real(np.trace(out)) == pytest.approx(1.0)


def test_depolarising_pair_gives_the_werner_mixture():
    bell = np.array([1, 0, 0, 1]) / math.sqrt(2)
    rho = np.outer(bell, bell.conj()).astype(complex)
    p = 0.2
    out = gates.depolarise_pair(rho, (0, 1), 2, p)
    assert np.real(bell @ out @ bell) == pytest.approx(1 - p + p / 4)
    with pytest.raises(ValueError, match="probability"):
        gates.depolarise_pair(rho, (0, 1), 2, 1.5)


def test_carrier_rotation_pi_pulse_and_detuned_population():
    omega = math.pi / 6e-6
    u = carrier_rotation(omega, 0.0, 6e-6, 0.0, 0.0)
    assert abs(u[1, 0]) ** 2 == pytest.approx(1.0)
    det = omega
    u = carrier_rotation(omega, det, 6e-6, 0.0, 0.0)
    w = math.hypot(omega, det)
    expected = (omega / w) ** 2 * math.sin(w * 6e-6 / 2) ** 2
    assert abs(u[1, 0]) ** 2 == pytest.approx(expected)
    assert np.allclose(u @ u.conj().T, np.eye(2))


def test_bad_gate_arguments_are_named():
    with pytest.raises(ValueError, match="detuning"):
        gates.ms_gate_time(0.0)
    with pytest.raises(ValueError, match="nbar"):
        gates.ms_channel(_ket_state(0, 0), (0, 1), 2, 1.0, 1.0, 1.0, (0.0, 0.0), -1.0)
    with pytest.raises(ValueError, match="qubits"):
        gates.embed(np.eye(4), (0,), 2)
