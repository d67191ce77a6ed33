"""Link budget closed forms and published figures."""

import dataclasses

import numpy as np
import pytest

from analysis import linkbudget as lb


def test_arm_efficiency_and_success_probabilities():
    p = lb.LinkParameters(length_km=20.0, collection_efficiency=0.5, conversion_efficiency=0.3,
                          filter_transmission=0.8, detector_efficiency=0.9,
                          fibre_attenuation_db_per_km=0.2, dark_count_rate_hz=0.0,
                          excitation_probability=0.1)
    eta = 0.5 * 0.3 * 0.8 * 0.9 * 10 ** (-0.2 * 10 / 10)   # 10 km per arm: 2 dB
    budget = lb.link_budget(p)
    assert budget.arm_efficiency == pytest.approx(eta)
    assert budget.success_probability == pytest.approx(2 * 0.1 * eta)
    assert budget.fidelity == pytest.approx(1 - 0.1)         # double-excitation limit
    two = lb.link_budget(dataclasses.replace(p, protocol="two_photon", hom_visibility=0.9))
    assert two.success_probability == pytest.approx(eta**2 / 2)
    assert two.fidelity == pytest.approx(0.95)


def test_herald_delay_uses_design_light_speed():
    # DESIGN.md: 10 km of fibre is 50 us one way; station in the middle of a 10 km link:
    # 5 km there (25 us) and 5 km back (25 us)
    p = lb.LinkParameters(length_km=10.0)
    assert lb.herald_delay_s(p) == pytest.approx(50e-6)
    assert lb.attempt_period_s(p) == pytest.approx(50e-6 + p.preparation_time_s
                                                   + p.detection_window_s)


def test_rates_and_figure_of_merit():
    p = lb.LinkParameters(length_km=0.0, memory_t2_s=0.5)
    budget = lb.link_budget(p)
    assert budget.herald_rate_hz == pytest.approx(budget.success_probability
                                                  / budget.attempt_period_s)
    assert budget.mean_generation_time_s == pytest.approx(1 / budget.herald_rate_hz)
    assert budget.rate_over_decoherence == pytest.approx(budget.herald_rate_hz * 0.5)


def test_dark_counts_and_phase_noise_reduce_fidelity():
    base = lb.LinkParameters(length_km=50.0, dark_count_rate_hz=0.0, phase_noise_rad=0.0)
    clean = lb.link_budget(base).fidelity
    assert lb.link_budget(dataclasses.replace(base, dark_count_rate_hz=1e3)).fidelity < clean
    noisy = lb.link_budget(dataclasses.replace(base, phase_noise_rad=0.3)).fidelity
    assert noisy == pytest.approx((1 - base.excitation_probability)
                                  * (1 + np.exp(-0.3**2 / 2)) / 2)


def test_multiplexing():
    assert lb.multiplexed_success(0.01, 1) == pytest.approx(0.01)
    assert lb.multiplexed_success(0.01, 10) == pytest.approx(1 - 0.99**10)
    assert lb.multiplexed_success(1e-9, 1000) == pytest.approx(1e-6, rel=1e-3)


def test_chain_waiting_time_closed_forms():
    for p in (0.5, 0.1, 1e-3):
        assert lb.expected_attempts_all_links(p, 1) == pytest.approx(1 / p)
        assert lb.expected_attempts_all_links(p, 2) == pytest.approx((3 - 2 * p) / (p * (2 - p)))
    assert lb.expected_attempts_all_links(1e-4, 2) * 1e-4 == pytest.approx(1.5, rel=1e-3)
    # N links, small p: H_N / p (harmonic number)
    assert lb.expected_attempts_all_links(1e-5, 4) * 1e-5 == pytest.approx(
        1 + 1 / 2 + 1 / 3 + 1 / 4, rel=1e-3)


def test_waiting_coherence_matches_monte_carlo():
    rng = np.random.default_rng(9)
    p, tau, t2 = 0.05, 1e-4, 2e-3
    g1, g2 = rng.geometric(p, (2, 200000))
    sample = np.exp(-np.abs(g1 - g2) * tau / t2)
    exact = lb.expected_waiting_coherence(p, tau, t2)
    assert exact == pytest.approx(sample.mean(), abs=5 * sample.std() / np.sqrt(sample.size))
    gauss = lb.expected_waiting_coherence(p, tau, t2, exponent=2.0)
    sample2 = np.exp(-(np.abs(g1 - g2) * tau / t2) ** 2)
    assert gauss == pytest.approx(sample2.mean(), abs=5 * sample2.std() / np.sqrt(sample2.size))


def test_swapped_fidelity_and_crossover():
    assert lb.swapped_fidelity([1.0, 1.0]) == pytest.approx(1.0)
    assert lb.swapped_fidelity([0.9, 0.9]) == pytest.approx((1 + 3 * (2.6 / 3) ** 2) / 4)
    p = lb.LinkParameters()
    crossover = lb.crossover_length_km(p, 2)
    assert np.isfinite(crossover)
    assert lb.chain_estimate(p, crossover * 1.5, 2).rate_hz > lb.direct_transmission_rate(
        p, crossover * 1.5)
    assert lb.chain_estimate(p, crossover / 1.5, 2).rate_hz < lb.direct_transmission_rate(
        p, crossover / 1.5)


def test_krutyanskiy_2023_two_photon_link():
    """Krutyanskiy et al., PRL 130, 213601 (2023): ions 230 m apart, 520 m of fibre, two-photon
    heralding with success probability 4e-5 per attempt (zenodo record 7031041 abstract).
    With p = eta^2/2, 4e-5 implies an end-to-end efficiency per photon of sqrt(8e-5) ~ 0.9 %;
    a budget with that arm efficiency reproduces the published probability, and 0.52 km of
    854 nm fibre at ~3 dB/km (DESIGN.md) costs ~0.8 dB (their photons were not converted).
    """
    fibre = lb.fibre_transmission(0.26, 3.0)
    eta_target = np.sqrt(2 * 4e-5)
    p = lb.LinkParameters(length_km=0.52, fibre_attenuation_db_per_km=3.0, protocol="two_photon",
                          collection_efficiency=eta_target / fibre, conversion_efficiency=1.0,
                          filter_transmission=1.0, detector_efficiency=1.0,
                          dark_count_rate_hz=0.0)
    assert lb.link_budget(p).success_probability == pytest.approx(4e-5, rel=1e-9)
    assert 10 * np.log10(1 / lb.fibre_transmission(0.52, 3.0)) == pytest.approx(1.56)


def test_krutyanskiy_2019_fibre_and_node_figures():
    """Krutyanskiy et al., npj Quantum Inf. 5, 72 (2019), arXiv:1901.06317 ("Light-matter
    entanglement over 50 km of optical fibre"), introduction: 854 nm photons suffer ~3 dB/km,
    so "transmission over 50 km of fibre would be 1e-15"; at 1550 nm "~0.18 dB per km,
    yielding 10% transmission over 50 km". Abstract: "0.5 probability on-demand fibre-coupled
    photon from the ion" and a converter of "0.25 device efficiency" (our defaults).
    Tolerances: the 1e-15 is exact arithmetic (150 dB); "10%" is quoted to one significant
    figure, so anything that rounds to 0.1 (0.05 <= T < 0.15) agrees."""
    assert lb.fibre_transmission(50.0, 3.0) == pytest.approx(1e-15, rel=1e-12)
    assert 0.05 <= lb.fibre_transmission(50.0, 0.18) < 0.15
    # their two measured node figures, times 50 km at 0.18 dB/km and ideal filter/detector:
    # the photon leaving the 50 km spool carries 0.5 * 0.25 * 10^-0.9 = 1.6 %
    p = lb.LinkParameters(length_km=100.0, fibre_attenuation_db_per_km=0.18,
                          collection_efficiency=0.5, conversion_efficiency=0.25,
                          filter_transmission=1.0, detector_efficiency=1.0,
                          protocol="two_photon", dark_count_rate_hz=0.0)
    assert lb.arm_efficiency(p) == pytest.approx(0.5 * 0.25 * 10 ** -0.9, rel=1e-9)
    # defaults record the same node figures
    default = lb.LinkParameters()
    assert default.collection_efficiency == 0.5 and default.conversion_efficiency == 0.25


def test_bad_parameters():
    with pytest.raises(ValueError, match="detector_efficiency"):
        lb.LinkParameters(detector_efficiency=1.5)
    with pytest.raises(ValueError, match="protocol"):
        lb.LinkParameters(protocol="teleport")
    with pytest.raises(ValueError, match="modes_per_attempt"):
        lb.LinkParameters(modes_per_attempt=0)
