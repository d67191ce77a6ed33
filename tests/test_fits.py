"""Fits recover randomised true parameters from noisy data without user guesses.

Criterion: every fitted parameter within 5 standard errors of the truth (a 5-sigma
deviation has probability ~6e-7 per parameter for a correct fit, so with ~150 checks a
failure signals a real problem, not bad luck), and the fit flagged good.
"""

import numpy as np
import pytest

from analysis import fit_models, fits, readout, stats

TRIALS = 6


def _assert_recovered(result, truth):
    assert result.good, result.reason
    for name, value in truth.items():
        deviation = abs(result.values[name] - value) / result.errors[name]
        assert deviation < 5, (name, result.values[name], value, result.errors[name])


def test_exponential_and_stretched_decay_recover_truth():
    rng = np.random.default_rng(11)
    for _ in range(TRIALS):
        tau, amp, off = 10 ** rng.uniform(-6, -3), rng.uniform(0.3, 1), rng.uniform(0, 0.3)
        t = np.linspace(0, tau * rng.uniform(2, 6), 40)
        y = fit_models.exponential_decay(t, amp, tau, off) + rng.normal(0, 0.02, t.size)
        _assert_recovered(fits.fit_exponential_decay(t, y, sigma=0.02),
                          {"amplitude": amp, "tau": tau, "offset": off})
        n = rng.uniform(1, 2.5)
        y = fit_models.stretched_decay(t, amp, tau, n, off) + rng.normal(0, 0.02, t.size)
        _assert_recovered(fits.fit_stretched_decay(t, y, sigma=0.02),
                          {"amplitude": amp, "tau": tau, "exponent": n, "offset": off})
        y = fit_models.gaussian_decay(t, amp, tau, off) + rng.normal(0, 0.02, t.size)
        _assert_recovered(fits.fit_gaussian_decay(t, y, sigma=0.02),
                          {"amplitude": amp, "tau": tau, "offset": off})


def test_rabi_with_binomial_shots_recovers_pi_time():
    rng = np.random.default_rng(12)
    shots = 100
    for _ in range(TRIALS):
        f, contrast = 10 ** rng.uniform(4, 6), rng.uniform(0.8, 1.0)
        offset, tau = rng.uniform(0, 0.05), rng.uniform(3, 20) / f
        t = np.linspace(0, rng.uniform(2, 5) / f, 41)
        p = fit_models.rabi_flop(t, f, contrast, offset, tau)
        y = rng.binomial(shots, p) / shots
        result = fits.fit_rabi(t, y, n_shots=shots)
        _assert_recovered(result, {"rabi_frequency": f, "contrast": contrast, "offset": offset})
        pi_time, pi_err = result.derived["pi_time"]
        assert abs(pi_time - 0.5 / f) < 5 * pi_err


def test_ramsey_recovers_detuning_phase_and_t2():
    rng = np.random.default_rng(13)
    shots = 100
    for _ in range(TRIALS):
        detuning, phase = rng.uniform(2, 8) / 1e-4, rng.uniform(-3, 3)
        t2 = rng.uniform(0.5, 2) * 1e-4
        t = np.linspace(0, 1e-4, 51)
        y = rng.binomial(shots, fit_models.ramsey_fringe(t, detuning, phase, 0.95, 0.5, t2))
        _assert_recovered(fits.fit_ramsey(t, y / shots, n_shots=shots),
                          {"detuning": detuning, "phase": phase, "t2": t2})


def test_lines_and_sinusoid_recover_truth():
    rng = np.random.default_rng(14)
    for _ in range(TRIALS):
        x = np.linspace(-1e6, 1e6, 61)
        center, fwhm = rng.uniform(-4e5, 4e5), rng.uniform(5e4, 4e5)
        amp = rng.choice([-1, 1]) * rng.uniform(0.5, 1)
        for model, fitter in ((fit_models.lorentzian_line, fits.fit_lorentzian),
                              (fit_models.gaussian_line, fits.fit_gaussian_line)):
            y = model(x, center, fwhm, amp, 0.1) + rng.normal(0, 0.03, x.size)
            _assert_recovered(fitter(x, y, sigma=0.03),
                              {"center": center, "fwhm": fwhm, "amplitude": amp})
        xs = np.sort(rng.uniform(0, 1, 60))       # non-uniform sampling
        freq, phase = rng.uniform(1.5, 12), rng.uniform(-3, 3)
        y = fit_models.sinusoid(xs, freq, phase, 1.0, 0.2) + rng.normal(0, 0.1, xs.size)
        _assert_recovered(fits.fit_sinusoid(xs, y, sigma=0.1),
                          {"frequency": freq, "phase": phase, "amplitude": 1.0})


def test_unit_weights_scale_errors_by_residuals():
    rng = np.random.default_rng(15)
    t = np.linspace(0, 5e-3, 200)
    y = fit_models.exponential_decay(t, 1.0, 1e-3, 0.0) + rng.normal(0, 0.05, t.size)
    result = fits.fit_exponential_decay(t, y)
    assert not result.errors_absolute and result.good
    # residual variance estimates sigma^2 = 0.0025 to within ~4 x sqrt(2/dof) relative
    assert abs(result.chi2_reduced / 0.0025 - 1) < 4 * np.sqrt(2 / result.dof)


def test_bad_model_is_flagged_by_chi2():
    rng = np.random.default_rng(16)
    t = np.linspace(0, 5e-3, 60)
    y = fit_models.gaussian_decay(t, 1.0, 2e-3, 0.0) + rng.normal(0, 0.005, t.size)
    result = fits.fit_exponential_decay(t, y, sigma=0.005)
    assert not result.good and "chi2" in result.reason


def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match="equal length"):
        fits.fit_sinusoid([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="more than 4"):
        fits.fit_sinusoid([1, 2, 3], [1, 2, 3])
    with pytest.raises(ValueError, match="probabilities"):
        fits.fit_rabi(np.arange(10.0), np.full(10, 2.0), n_shots=10)
    with pytest.raises(ValueError, match="unknown fit model"):
        fits.fit("nonsense", [1, 2], [1, 2])


def test_threshold_matches_exact_optimum_for_poisson_counts():
    from scipy import stats as sps
    rng = np.random.default_rng(17)
    n = 20000
    bright, dark = rng.poisson(12.0, n), rng.poisson(0.5, n)
    result = readout.optimize_threshold(bright, dark)
    thresholds = np.arange(0, 30)
    exact = 1 - 0.5 * (sps.poisson.cdf(thresholds, 12.0) + sps.poisson.sf(thresholds, 0.5))
    assert result.threshold in (thresholds[np.argmax(exact)] - 1, thresholds[np.argmax(exact)],
                                thresholds[np.argmax(exact)] + 1)
    # fidelity: binomial error of each error rate ~ sqrt(e/n); allow 5 sigma
    assert abs(result.fidelity - exact.max()) < 5 * np.sqrt(exact.max() * 2 / n) + 1e-3
    assert np.all(readout.classify_bright([result.threshold, result.threshold + 1],
                                          result.threshold) == [False, True])
    with pytest.raises(ValueError, match="negative"):
        readout.optimize_threshold([-1, 2], [0])


def test_binomial_intervals():
    # Clopper-Pearson, 0 of 10 at 95 %: upper = 1 - 0.025**(1/10)
    low, high = stats.clopper_pearson_interval(0, 10, 0.95)
    assert low == 0 and high == pytest.approx(1 - 0.025 ** 0.1, rel=1e-9)
    # Wilson 95 % for 5/10 (z = 1.959964): 0.5 +- 0.2762 approx (closed form)
    z = 1.959963984540054
    low, high = stats.wilson_interval(5, 10, 0.95)
    half = z * np.sqrt(0.025 + z * z / 400) / (1 + z * z / 10)
    assert (low, high) == pytest.approx((0.5 - half, 0.5 + half), rel=1e-12)
    # coverage of the exact interval is at least nominal (checked on the exact distribution)
    from scipy import stats as sps
    p, n = 0.3, 40
    covered = sum(sps.binom.pmf(k, n, p) for k in range(n + 1)
                  if stats.clopper_pearson_interval(k, n, 0.9)[0] <= p
                  <= stats.clopper_pearson_interval(k, n, 0.9)[1])
    assert covered >= 0.9
    with pytest.raises(ValueError, match="successes"):
        stats.wilson_interval(11, 10)


def test_weighted_mean():
    result = stats.weighted_mean([1.0, 3.0], [1.0, 1.0])
    assert result.mean == 2.0 and result.stderr == pytest.approx(1 / np.sqrt(2))
    assert result.chi2_reduced == pytest.approx(2.0)
    with pytest.raises(ValueError, match="errors"):
        stats.weighted_mean([1.0], [0.0])


def test_threshold_ties_choose_the_middle_of_the_gap():
    # disjoint histograms: every threshold from 4 to 19 separates them perfectly; the middle
    # (11) is farthest from both, while the first (4) sits on the dark histogram's edge
    dark = np.array([0, 0, 1, 2, 4] * 20)
    bright = np.array([20, 24, 30] * 30)
    result = readout.optimize_threshold(bright, dark)
    assert result.threshold == 11
    assert (result.fidelity, result.bright_error, result.dark_error) == (1.0, 0.0, 0.0)
    # a plateau below the best fidelity does not attract the choice: the optimum is unique
    dark_with_tail = np.concatenate([dark, [25]])
    best = readout.optimize_threshold(bright, dark_with_tail)
    brute = [1 - 0.5 * (np.mean(bright <= t) + np.mean(dark_with_tail > t)) for t in range(40)]
    assert best.fidelity == pytest.approx(max(brute))
    assert brute[best.threshold] == pytest.approx(max(brute))


def _degenerate_model(name, function):
    # finite bounds: the bounded optimiser's covariance is a pseudo-inverse that drops the
    # undetermined directions (zero error / perfect correlation instead of infinite errors)
    return fit_models.Model(name, function, ("a", "b"), lambda x, y: [[1.0, 1.0]],
                            (-10.0, -10.0), (10.0, 10.0))


@pytest.mark.parametrize("name, function, reason", [
    # b has no effect: zero Jacobian column, reported error of b exactly 0
    ("ignores_b", lambda x, a, b: a * x, "b not determined by the data"),
    # only a + b is determined: finite errors but a singular covariance
    ("sum_only", lambda x, a, b: (a + b) * x, "singular covariance"),
])
def test_parameters_the_data_cannot_determine_make_the_fit_not_good(name, function, reason):
    x = np.linspace(0.0, 1.0, 20)
    y = 2.0 * x + np.random.default_rng(18).normal(0, 0.01, x.size)
    result = fits.fit(_degenerate_model(name, function), x, y, sigma=0.01)
    assert not result.good
    assert reason in result.reason

