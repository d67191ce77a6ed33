"""CHSH, Werner relations and maximum-likelihood tomography."""

import numpy as np
import pytest

from analysis import bell, tomography


def _werner_probabilities(visibility: float) -> np.ndarray:
    """P(a, b | x, y) of a Werner state measured at the optimal CHSH angles.

    Correlator E_xy = V cos(theta_x - phi_y) with theta = (0, pi/2), phi = (pi/4, -pi/4).
    """
    theta, phi = (0.0, np.pi / 2), (np.pi / 4, -np.pi / 4)
    p = np.zeros((2, 2, 2, 2))
    for x in range(2):
        for y in range(2):
            e = visibility * np.cos(theta[x] - phi[y])
            p[x, y] = [[(1 + e) / 4, (1 - e) / 4], [(1 - e) / 4, (1 + e) / 4]]
    return p


def test_chsh_from_probabilities_reaches_tsirelson_and_werner_value():
    assert bell.chsh_value(_werner_probabilities(1.0)).value == pytest.approx(2 * np.sqrt(2))
    fidelity = 0.9
    visibility = (4 * fidelity - 1) / 3
    s = bell.chsh_value(_werner_probabilities(visibility)).value
    assert s == pytest.approx(bell.werner_chsh(fidelity))
    assert bell.werner_fidelity(s) == pytest.approx(fidelity)


def test_chsh_standard_error_matches_spread_of_repeated_experiments():
    rng = np.random.default_rng(3)
    p = _werner_probabilities(0.9)
    n_per_setting, repeats = 2000, 200
    values, errors = [], []
    for _ in range(repeats):
        counts = np.array([[rng.multinomial(n_per_setting, p[x, y].ravel()).reshape(2, 2)
                            for y in range(2)] for x in range(2)])
        result = bell.chsh_value(counts)
        values.append(result.value)
        errors.append(result.stderr)
    spread = np.std(values, ddof=1)
    # the sample std of 200 values has relative standard error 1/sqrt(2*199) = 5 %: allow 20 %
    assert np.mean(errors) == pytest.approx(spread, rel=0.2)
    assert abs(np.mean(values) - bell.chsh_value(p).value) < 5 * spread / np.sqrt(repeats)


def test_chsh_from_rounds_equals_count_table():
    rng = np.random.default_rng(4)
    n = 5000
    x, y, a = rng.integers(0, 2, (3, n))
    b = np.where(rng.random(n) < 0.85, a ^ (x & y), 1 - (a ^ (x & y)))
    from_rounds = bell.chsh_from_rounds(x, y, a, b)
    table = bell.counts_from_rounds(x, y, a, b)
    assert table.sum() == n
    assert from_rounds.value == pytest.approx(bell.chsh_value(table).value)
    # b = a xor (x and y) with prob 0.85: E00=E01=E10=0.7, E11=-0.7, S = 4 * 0.7
    assert abs(from_rounds.value - 2.8) < 5 * from_rounds.stderr


def test_fidelity_lower_bound_is_valid_for_bell_diagonal_states():
    rng = np.random.default_rng(5)
    for _ in range(2000):
        weights = rng.dirichlet(np.full(4, 0.3))
        # Bell-diagonal state: correlations t = sum_i w_i v_i, v the Bell-state vertices
        vertices = np.array([[1, -1, 1], [-1, 1, 1], [1, 1, -1], [-1, -1, -1]])
        t = weights @ vertices
        top_two = np.sort(np.abs(t))[-2:]
        s = 2 * np.sqrt(np.sum(top_two**2))          # Horodecki maximal CHSH
        assert bell.fidelity_lower_bound(s) <= weights.max() + 1e-12
    assert bell.fidelity_lower_bound(2 * np.sqrt(2)) == pytest.approx(1.0)


def test_bad_inputs():
    with pytest.raises(ValueError, match="shape"):
        bell.chsh_value(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="setting"):
        bell.chsh_value(np.zeros((2, 2, 2, 2), dtype=int))
    with pytest.raises(ValueError, match="0 and 1"):
        bell.chsh_from_rounds([0, 2], [0, 1], [0, 1], [0, 1])
    with pytest.raises(ValueError, match="2 sqrt"):
        bell.fidelity_lower_bound(3.0)


def _sample_counts(rho, shots, rng):
    p = tomography.outcome_probabilities(rho)
    return np.array([[rng.multinomial(shots, p[i, j] / p[i, j].sum()) for j in range(3)]
                     for i in range(3)])


@pytest.mark.parametrize("name", ["phi+", "phi-", "psi+", "psi-"])
def test_tomography_reconstructs_noisy_bell_states(name):
    rng = np.random.default_rng(6)
    psi = tomography.BELL_STATES[name]
    rho = 0.88 * np.outer(psi, psi.conj()) + 0.12 * np.eye(4) / 4
    shots = 2000
    result = tomography.maximum_likelihood(_sample_counts(rho, shots, rng))
    assert result.converged
    eigenvalues = np.linalg.eigvalsh(result.rho)
    assert eigenvalues.min() > -1e-12 and np.trace(result.rho).real == pytest.approx(1.0)
    true_fidelity = 0.88 + 0.03
    # F = (1 +- <XX> -+ <YY> +- <ZZ>)/4, each correlator with variance (1 - E^2)/shots:
    sigma = np.sqrt(3 * (1 - (true_fidelity * 4 / 3 - 1 / 3) ** 2) / shots) / 4
    assert abs(result.bell_fidelities[name] - true_fidelity) < 5 * sigma
    assert sum(result.bell_fidelities.values()) == pytest.approx(1.0)


def test_tomography_of_product_state_and_bad_counts():
    rng = np.random.default_rng(7)
    up = np.array([1, 0, 0, 0], dtype=complex)        # |00>
    result = tomography.maximum_likelihood(_sample_counts(np.outer(up, up), 1000, rng))
    assert tomography.fidelity_to_pure(result.rho, up) > 0.99
    assert result.bell_fidelities["phi+"] == pytest.approx(0.5, abs=0.03)
    with pytest.raises(ValueError, match="shape"):
        tomography.maximum_likelihood(np.ones((3, 4)))
    with pytest.raises(ValueError, match="at least one count"):
        tomography.maximum_likelihood(np.zeros((3, 3, 4)))


def test_bootstrap_fidelity_error_matches_spread_of_repeated_tomographies():
    rng = np.random.default_rng(8)
    psi = tomography.BELL_STATES["psi-"]
    rho = 0.8 * np.outer(psi, psi.conj()) + 0.2 * np.eye(4) / 4
    shots, repeats = 30, 60
    experiments = [_sample_counts(rho, shots, rng) for _ in range(repeats)]
    spread = np.std([tomography.maximum_likelihood(c).bell_fidelities["psi-"]
                     for c in experiments], ddof=1)
    draws, used = 100, 4
    estimates = [tomography.bell_fidelity_errors(c, draws=draws, seed=k)["psi-"]
                 for k, c in enumerate(experiments[:used])]
    # relative standard error of a sample standard deviation from m values: 1/sqrt(2(m-1));
    # the spread over `repeats` experiments and the mean of `used` bootstrap estimates
    # (each from `draws` resamples, and varying between experiments by about as much)
    relative = np.sqrt(1 / (2 * (repeats - 1)) + 2 / (2 * (draws - 1)) / used)
    assert abs(np.mean(estimates) / spread - 1) < 4 * relative
    assert set(tomography.bell_fidelity_errors(experiments[0], draws=10)) == set(
        tomography.BELL_STATES)
    with pytest.raises(ValueError, match="draws"):
        tomography.bell_fidelity_errors(experiments[0], draws=1)
