"""DI-QKD key rates: Pironio et al. (2009) asymptotic rate and the AF2018 EAT finite-size bound."""

import numpy as np
import pytest

from analysis import qkd


def test_asymptotic_rate_closed_form_values():
    # Tsirelson bound and no errors: Eve knows nothing, one secret bit per round
    assert qkd.asymptotic_key_rate(2 * np.sqrt(2), 0.0) == pytest.approx(1.0)
    # classical S = 2: h(1/2) = 1, no key
    assert qkd.asymptotic_key_rate(2.0, 0.0) == 0.0
    # hand value: S = 2.7, Q = 0.02
    s, q = 2.7, 0.02
    expected = 1 - qkd.binary_entropy(q) - qkd.binary_entropy(
        (1 + np.sqrt((s / 2) ** 2 - 1)) / 2)
    assert qkd.asymptotic_key_rate(s, q) == pytest.approx(expected)
    assert 0.5 < expected < 0.6
    # Werner state with visibility V: S = 2 sqrt2 V, Q = (1 - V)/2; Pironio et al. (2009)
    # report the rate vanishing at Q ~ 7.1 % for this family
    qs = np.linspace(0.05, 0.09, 4001)
    rates = [qkd.asymptotic_key_rate(2 * np.sqrt(2) * (1 - 2 * q), q) for q in qs]
    threshold = qs[np.argmax(np.array(rates) == 0)]
    assert threshold == pytest.approx(0.071, abs=0.001)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="CHSH"):
        qkd.asymptotic_key_rate(2.9, 0.01)
    with pytest.raises(ValueError, match="CHSH"):
        qkd.asymptotic_key_rate(-0.1, 0.01)
    with pytest.raises(ValueError, match="QBER"):
        qkd.asymptotic_key_rate(2.7, 0.6)
    with pytest.raises(ValueError, match="test_fraction"):
        qkd.finite_key_length(1000, 0.0, 2.7, 0.01)
    with pytest.raises(ValueError, match="n_rounds"):
        qkd.finite_key_length(0, 0.1, 2.7, 0.01)


def test_entropy_slope_matches_numerical_derivative():
    for w in (0.78, 0.8, 0.83):
        h = 1e-6
        numeric = (qkd.chsh_entropy_bound(w + h) - qkd.chsh_entropy_bound(w - h)) / (2 * h)
        assert qkd._chsh_entropy_slope(w) == pytest.approx(numeric, rel=1e-5)


def test_finite_key_grows_with_rounds_and_approaches_asymptotic_rate():
    s, q = 2.677, 0.0144
    asymptotic = qkd.asymptotic_key_rate(s, q)
    rates = [qkd.best_test_fraction(int(n), s, q).key_length / n for n in (1e8, 1e10, 1e13)]
    assert rates[0] < rates[1] < rates[2] < asymptotic
    assert rates[2] > 0.97 * asymptotic


def test_nadlinger_2022_parameters():
    """Nadlinger et al., Nature 607, 682 (2022): ~1.5e6 Bell pairs in 8 h, observed
    S = 2.677(6), QBER 1.44(2) %, eps_sec 1e-10 and eps_comp 1e-2 (values as we recall them;
    the search tool returned the paper's abstract only with its numbers stripped). They report
    95 628 key bits (the brief quotes ~95 884; not verified here).

    Our bound is the *original* AF2018 EAT (first-order CHSH min-tradeoff function, second
    order v/sqrt(n) with v ~ 2 (log 13 + ceil(g'/gamma)) sqrt(1 - 2 log eps^2)). It does NOT
    reproduce their number: for n = 1.5e6 it yields no key at any test fraction; Nadlinger et
    al. used a refined finite-size analysis (Tan et al.'s improved EAT-based bound with
    tighter second-order terms), which we have not been able to obtain. The test pins this
    documented discrepancy, and checks the AF2018 bound turns positive between 1e6 and 1e7
    rounds at these parameters (AF2018, Fig. 3, shows positive rates from ~1e6-1e7 rounds at
    comparable S and Q).
    """
    s, q, n = 2.677, 0.0144, 1_500_000
    eps = dict(eps_smooth=2e-11, eps_ea=2e-11, eps_pa=2e-11, eps_ec=2e-11,
               eps_completeness=1e-2)
    assert qkd.best_test_fraction(n, s, q, **eps).key_length == 0
    ten_million = qkd.best_test_fraction(10_000_000, s, q, **eps)
    assert ten_million.key_length > 0
    assert ten_million.key_length < 95_628 * 10_000_000 / n * 2


def test_running_qber_and_chsh():
    rng = np.random.default_rng(8)
    n = 20000
    x, y, a = rng.integers(0, 2, (3, n))
    is_test = (rng.random(n) < 0.5).astype(int)
    correct = rng.random(n) < 0.9
    ideal = np.where(is_test == 1, a ^ (x & y), a)         # key rounds: b should equal a
    b = np.where(correct, ideal, 1 - ideal)
    rounds = np.column_stack([x, y, a, b, is_test])
    est = qkd.running_qber_and_chsh(rounds, chunk=5000)
    assert list(est.rounds) == [5000, 10000, 15000, 20000]
    # final QBER 0.1 +- sqrt(0.09/10000) = 0.003; S = 4 * 0.8 = 3.2 (PR-box-like toy data)
    assert abs(est.qber[-1] - 0.1) < 5 * 0.003
    assert abs(est.chsh[-1] - 3.2) < 5 * 4 * np.sqrt((1 - 0.64) / 2500)
    with pytest.raises(ValueError, match="rows"):
        qkd.running_qber_and_chsh(np.zeros((3, 3)))
