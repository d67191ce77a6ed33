"""Link budget closed forms and published figures.

Published-figure tests predict a published probability, rate or fidelity from the published
component figures of a real experiment; tolerances follow the quoted precision (a figure
quoted as "0.86(3)" or "(6.5 +- 1.6) x 10^-4" is compared within its stated uncertainty,
a figure quoted without uncertainty within half a unit of its last digit). Full texts used
(``read_file`` ids of the stored copies):

- Nadlinger et al., Nature 607, 682 (2022), arXiv:2109.14600, with supplement: 59466089263.
- Krutyanskiy et al., npj Quantum Inf. 5, 72 (2019), arXiv:1901.06317, reproduced with an
  extended discussion and the later 100 km results as chapter 5 of M. Meraner, PhD thesis,
  Univ. Innsbruck (2022), "A photonic quantum interface between trapped ions and the telecom
  C-band": 59305113813.
- Krutyanskiy et al., PRX Quantum 5, 020308 (2024), arXiv:2308.08891 ("Multimode ion-photon
  entanglement over 101 kilometers"): 59564137444.
- Cui et al., arXiv:2503.13898 (2025) ("A metropolitan-scale trapped-ion quantum network node
  with hybrid multiplexing enhancements"): 59535301568.
"""

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
    with pytest.raises(ValueError, match="source_fidelity"):
        lb.LinkParameters(source_fidelity=1.2)
    with pytest.raises(ValueError, match="herald_return_fraction"):
        lb.LinkParameters(herald_return_fraction=-0.5)
    with pytest.raises(ValueError, match="recool_interval_s"):
        lb.LinkParameters(recool_interval_s=0.0)
    with pytest.raises(ValueError, match="recool_time_s"):
        lb.LinkParameters(recool_time_s=float("nan"))
    with pytest.raises(ValueError, match="ion_photon"):
        lb.chain_estimate(lb.LinkParameters(protocol="ion_photon"), 100.0, 2)
    with pytest.raises(ValueError, match="probabilities"):
        lb.multimode_success([0.1, 1.5])
    with pytest.raises(ValueError, match="probabilities"):
        lb.multimode_success([])
    with pytest.raises(ValueError, match="noise_probability"):
        lb.noisy_fidelity(0.1, -0.1)


# ----------------------------------------------------------------------------- closed forms

def test_ion_photon_protocol_closed_forms():
    p = lb.LinkParameters(protocol="ion_photon", length_km=30.0, collection_efficiency=0.5,
                          conversion_efficiency=0.3, filter_transmission=0.8,
                          detector_efficiency=0.9, fibre_attenuation_db_per_km=0.2,
                          dark_count_rate_hz=20.0, detection_window_s=10e-6,
                          source_fidelity=0.95, preparation_time_s=100e-6)
    eta = 0.5 * 0.3 * 0.8 * 0.9 * 10 ** (-0.2 * 30 / 10)     # the full 30 km: 6 dB
    pd = 1 - np.exp(-20.0 * 10e-6)
    budget = lb.link_budget(p)
    assert lb.photon_path_km(p) == 30.0
    assert budget.arm_efficiency == pytest.approx(eta)
    assert budget.signal_probability == pytest.approx(eta)
    assert budget.dark_probability == pytest.approx(2 * pd * (1 - eta))
    assert budget.fidelity == pytest.approx(
        (eta * 0.95 + 2 * pd * (1 - eta) * 0.25) / (eta + 2 * pd * (1 - eta)))
    # deployed fibre: photon out and herald back, 2 L / v; spool beside the node: L / v
    assert budget.herald_delay_s == pytest.approx(2 * 30e3 / 2e8)
    spool = dataclasses.replace(p, herald_return_fraction=0.0)
    assert lb.herald_delay_s(spool) == pytest.approx(30e3 / 2e8)
    # without dark counts the herald rate is direct transmission's eta / period
    clean = dataclasses.replace(p, dark_count_rate_hz=0.0)
    assert lb.link_budget(clean).herald_rate_hz == pytest.approx(
        lb.direct_transmission_rate(clean, 30.0))
    # the two-node protocols still put the station in the middle
    assert lb.photon_path_km(dataclasses.replace(p, protocol="two_photon")) == 15.0


def test_source_fidelity_multiplies_werner_parameters():
    base = lb.LinkParameters(dark_count_rate_hz=0.0, source_fidelity=0.9)
    w = (4 * 0.9 - 1) / 3
    assert lb.link_budget(dataclasses.replace(base, protocol="ion_photon")).fidelity == \
        pytest.approx(0.9)
    two = lb.link_budget(dataclasses.replace(base, protocol="two_photon", hom_visibility=1.0))
    assert two.fidelity == pytest.approx((1 + 3 * w * w) / 4)
    one = lb.link_budget(dataclasses.replace(base, excitation_probability=0.1))
    assert one.fidelity == pytest.approx((1 + 3 * w * w * (4 * 0.9 - 1) / 3) / 4)
    # a perfect source leaves the protocol fidelities as before
    assert lb.link_budget(dataclasses.replace(base, source_fidelity=1.0, protocol="two_photon",
                                              hom_visibility=0.9)).fidelity == \
        pytest.approx(0.95)


def test_noisy_fidelity_closed_form():
    assert lb.noisy_fidelity(3e-4, 1e-4) == pytest.approx((3e-4 + 0.25e-4) / 4e-4)
    assert lb.noisy_fidelity(1e-3, 0.0, 0.97) == pytest.approx(0.97)
    assert lb.noisy_fidelity(0.0, 1e-4) == pytest.approx(0.25)
    assert lb.noisy_fidelity(0.0, 0.0) == 0.0


def test_recooling_duty_cycle():
    p = lb.LinkParameters(length_km=2.0, recool_time_s=300e-6, recool_interval_s=500e-6)
    budget = lb.link_budget(p)
    assert lb.duty_cycle(p) == pytest.approx(500 / 800)
    assert budget.duty_cycle == pytest.approx(500 / 800)
    assert budget.herald_rate_hz == pytest.approx(
        budget.success_probability / budget.attempt_period_s * 500 / 800)
    assert budget.mean_generation_time_s == pytest.approx(1 / budget.herald_rate_hz)
    assert budget.rate_over_decoherence == pytest.approx(budget.herald_rate_hz * p.memory_t2_s)
    # a one-link "chain" is the link itself, recooling included
    assert lb.chain_estimate(p, 2.0, 1).rate_hz == pytest.approx(budget.herald_rate_hz)
    # no recooling by default, or with a zero pause
    assert lb.duty_cycle(lb.LinkParameters()) == 1.0
    assert lb.duty_cycle(dataclasses.replace(p, recool_time_s=0.0)) == 1.0


def test_multimode_success_closed_forms():
    assert lb.multimode_success([0.01] * 7) == pytest.approx(lb.multiplexed_success(0.01, 7))
    assert lb.multimode_success([0.1, 0.2, 0.3]) == pytest.approx(1 - 0.9 * 0.8 * 0.7)
    assert lb.multimode_success([1e-12, 2e-12]) == pytest.approx(3e-12, rel=1e-6)
    assert lb.multimode_success([0.3, 1.0]) == 1.0


def test_cui_2025_multiplexing_enhancement_closed_form():
    """Cui et al., arXiv:2503.13898, Sec. II A, Eqs. (1)-(2): N time-bin modes spaced by dt
    after an overhead T_ovh and the round trip 2L/c cost T_N = 2L/c + T_ovh + N dt per round;
    with equal small success probabilities the enhancement over one mode is
    M = T_0 / T_eff = N T_0 / T_N, T_0 = 2L/c + T_ovh + dt, and at
    N_0 = (2L/c + T_ovh) / dt (50 % duty cycle of attempts) M = (N_0 + 1) / 2. Our attempt
    period maps onto it with preparation + detection window = T_ovh + dt, mode spacing = dt,
    herald delay = 2L/c ("ion_photon", herald back along the fibre). Also Sec. I/II C: "for a
    10 km fiber ... at least 2L/c = 100 us" and "3 m ... 2L/c = 30 ns" (c: light in fibre,
    2e8 m/s as in DESIGN.md)."""
    def herald(length_km):
        return lb.herald_delay_s(lb.LinkParameters(protocol="ion_photon", length_km=length_km))
    assert herald(10.0) == pytest.approx(100e-6)
    assert herald(0.003) == pytest.approx(30e-9)
    assert herald(12.0) == pytest.approx(120e-6)

    t_ovh, dt = 50e-6, 10e-6                 # Fig. 10(c) assumes T_ovh = 50 us
    n0 = round((120e-6 + t_ovh) / dt)        # 17
    base = lb.LinkParameters(protocol="ion_photon", length_km=12.0, collection_efficiency=1e-7,
                             conversion_efficiency=1.0, filter_transmission=1.0,
                             detector_efficiency=1.0, fibre_attenuation_db_per_km=0.0,
                             dark_count_rate_hz=0.0, preparation_time_s=t_ovh + dt - 1e-6,
                             detection_window_s=1e-6, mode_spacing_s=dt)
    single = lb.link_budget(base)
    assert single.attempt_period_s == pytest.approx(120e-6 + t_ovh + dt)
    for n in (2, 5, n0, 40):
        multi = lb.link_budget(dataclasses.replace(base, modes_per_attempt=n))
        assert multi.attempt_period_s == pytest.approx(120e-6 + t_ovh + n * dt)
        enhancement = multi.herald_rate_hz / single.herald_rate_hz
        assert enhancement == pytest.approx(n * (120e-6 + t_ovh + dt) / (120e-6 + t_ovh + n * dt),
                                            rel=1e-5)
        if n == n0:
            assert enhancement == pytest.approx((n0 + 1) / 2, rel=1e-5)


# ----------------------------------------------------------------------------- published

def test_nadlinger_2022_two_photon_probability_and_recooled_rate():
    """Oxford, 88Sr+, Nadlinger et al. Nature 607, 682 (2022) (read_file 59466089263).

    Taken from the paper: Suppl. S2 A: 2 x 1.75 m fibres to the station, "a 50 : 50 beam
    splitter and two polarising beam splitters", four APDs, "attempted at a rate of 1 MHz";
    Fig. S3 caption: "180 000 successful heralds ... 1 133 526 525 entanglement attempts ...
    average success probability of 1.6 x 10^-4. With an attempt rate of 1 MHz, interrupted by
    300 us of cooling every 500 us, this results in a heralding rate of 100 s^-1"; main text:
    "overall detection efficiency for each spontaneous decay photon is ~2 %"; Suppl. S2 D:
    "~25 % coupling loss and ~70 % quantum efficiency" of the detectors.

    Predicted: (1) the two published efficiency figures, p = 1.6e-4 and eta ~ 2 %, agree only
    through the 2-of-4 Bell-state analyser, p = eta^2 / 2: the implied eta = sqrt(2p) = 1.78 %
    rounds to 2 % (one significant figure: [1.5, 2.5) %), whereas 1 of 4 states (eta^2 / 4)
    would need 2.5 % and 4 of 4 (eta^2) 1.3 %; equivalently the quoted ~2 % range predicts
    p in [1.1, 3.1) x 10^-4. (2) With that efficiency, 1 us attempts and the recooling duty
    cycle 500 / 800, the herald rate is 99.2 s^-1: the published 100 s^-1 within half a unit
    of its last digit plus 3 binomial sigma of 180 000 heralds (0.24 % each); without the
    duty cycle the model would say 159 s^-1. Not predicted: the fidelity 96.0(1) %, for which the
    paper has no error budget ("a detailed model ... has yet to be established"). The
    free-space collection (3.4 % = 1.78 % / (0.75 x 0.70)) is inferred, not published.
    """
    heralds, attempts = 180_000, 1_133_526_525
    p_measured = heralds / attempts
    assert p_measured == pytest.approx(1.6e-4, abs=0.05e-4)
    eta = np.sqrt(2 * p_measured)
    assert 0.015 <= eta < 0.025
    assert not 0.015 <= np.sqrt(4 * p_measured) < 0.025     # 1 of 4 Bell states
    assert not 0.015 <= np.sqrt(p_measured) < 0.025         # all 4 Bell states
    for eta_quoted in (0.015, 0.025):
        bound = lb.link_budget(lb.LinkParameters(
            protocol="two_photon", length_km=0.0035, collection_efficiency=eta_quoted,
            conversion_efficiency=1.0, filter_transmission=1.0, detector_efficiency=1.0,
            dark_count_rate_hz=0.0)).success_probability
        assert (bound < p_measured) if eta_quoted == 0.015 else (bound > p_measured)

    fibre = lb.LinkParameters(protocol="two_photon", length_km=2 * 1.75e-3,
                              fibre_attenuation_db_per_km=0.0, detection_window_s=0.0,
                              preparation_time_s=0.0, dark_count_rate_hz=0.0)
    period_fill = 1e-6 - lb.herald_delay_s(fibre)           # the 1 MHz attempt rate
    oxford = dataclasses.replace(
        fibre, collection_efficiency=eta / (0.75 * 0.70), conversion_efficiency=1.0,
        filter_transmission=0.75, detector_efficiency=0.70, preparation_time_s=period_fill,
        recool_time_s=300e-6, recool_interval_s=500e-6)
    budget = lb.link_budget(oxford)
    assert budget.attempt_period_s == pytest.approx(1e-6)
    assert budget.success_probability == pytest.approx(p_measured)
    assert budget.herald_rate_hz == pytest.approx(100.0, abs=0.5 + 100 * 3 / np.sqrt(heralds))
    no_recool = lb.link_budget(dataclasses.replace(oxford, recool_time_s=0.0))
    assert no_recool.herald_rate_hz > 150.0


def _innsbruck_50km(**changes) -> lb.LinkParameters:
    """The 2019 50 km ion-photon set-up of Meraner thesis Table 5.1 / Fig. 5.1 (spool in the
    lab, so the herald does not travel back: herald_return_fraction = 0)."""
    params = dict(protocol="ion_photon", length_km=50.47,
                  collection_efficiency=0.5 * 0.5,          # P_out x 1st fibre coupling
                  conversion_efficiency=0.25,               # conversion stage incl. filtering
                  filter_transmission=1.0,
                  fibre_attenuation_db_per_km=-10 * np.log10(0.104) / 50.47,  # measured 10.4 %
                  detector_efficiency=0.10, dark_count_rate_hz=2.0, detection_window_s=30e-6,
                  fibre_light_speed_m_per_s=100.8e3 / 494e-6,   # PRX Quantum 5, 020308
                  herald_return_fraction=0.0, preparation_time_s=110e-6)
    params.update(changes)
    return lb.LinkParameters(**params)


def test_krutyanskiy_2019_50km_success_probability():
    """Innsbruck, 40Ca+, 854 -> 1550 nm, npj Quantum Inf. 5, 72 (2019) = Meraner thesis
    Sec. 5.3.1 and Table 5.1 (read_file 59305113813). Components: P_out 0.5(1), first
    single-mode fibre coupling 0.5(1), conversion incl. filtering 0.25(2), 50 km spool
    0.104(5) (measured; 50.47 km of SMF-28 at 0.181 dB/km alone would give 0.122, the
    remaining 0.7 dB are the fibre joiners), telecom detector 0.10(1); background 2 cps
    (Sec. 5.3.2) in the 30 us window. Published: expected (6.5 +- 1.6) x 10^-4 (Table 5.1;
    the text says +- 1.5), measured 5.3 x 10^-4 "after summing up the outcomes of all
    polarisation projections".

    The model reproduces the expected 6.5e-4 (to its two digits) and the measured value lies
    within the quoted 1.6e-4 of it. Including the background clicks the model predicts
    7.7e-4 for the summed click probability (two projections, two background slots); that is
    1.5 sigma (quoted) / 1.2 sigma (components in quadrature, 2.0e-4) above the measured
    value: the paper compares signal only, so we assert agreement within 2 sigma for the
    total, not forced into 1 sigma."""
    budget = lb.link_budget(_innsbruck_50km())
    assert lb.fibre_transmission(50.47, 0.181) == pytest.approx(0.122, abs=0.0005)
    assert budget.signal_probability == pytest.approx(6.5e-4, abs=0.05e-4)
    assert abs(budget.signal_probability - 5.3e-4) < 1.6e-4
    rel = np.sqrt(0.2**2 + 0.2**2 + (0.02 / 0.25)**2 + (0.005 / 0.104)**2 + 0.1**2)
    sigma = budget.signal_probability * rel
    assert sigma == pytest.approx(2.0e-4, abs=0.05e-4)
    assert budget.dark_probability == pytest.approx(2 * 2.0 * 30e-6, rel=1e-3)
    assert abs(budget.success_probability - 5.3e-4) < 2 * 1.6e-4


def test_krutyanskiy_2019_50km_fidelity_from_background_counts():
    """Meraner thesis Sec. 5.3.2, Table 5.2 (read_file 59305113813): at 50 km the ion-photon
    fidelity is Fm = 86(3) %, explained by the 2 cps background ("Model 1", an ideal Bell
    state plus background, gives 86 %; "Model 2", the measured 854 nm ion-photon state of
    fidelity 96.7(6) % plus background, gives 83 %). Our model takes the component-predicted
    signal (6.5e-4) and the background (2 x 2 cps x 30 us) as white noise: 88.3 % with an
    ideal source, 85.5 % with the 96.7 % source; both within the measured 3 % of 86 %."""
    ideal = lb.link_budget(_innsbruck_50km()).fidelity
    source = lb.link_budget(_innsbruck_50km(source_fidelity=0.967)).fidelity
    assert ideal == pytest.approx(0.883, abs=0.001)
    assert source == pytest.approx(0.855, abs=0.001)
    for fidelity in (ideal, source):
        assert abs(fidelity - 0.86) <= 0.03


def test_krutyanskiy_50km_and_100km_timing():
    """Flight times and attempt rates. PRX Quantum 5, 020308 (2024) (read_file 59564137444),
    Sec. II and Appendix C: 101 km spool = two 50.4 km SMF-28 spools, "calculated photon
    travel time of 494 us". With that group velocity (100.8 km / 494 us = 2.04e8 m/s) the
    model predicts the 2019 spool's (50.47 km) "247 us travel time" (thesis Fig. 5.1, Sec.
    5.2.2) to the microsecond, and the thesis' statements that this "limits the maximum
    attempt rate ... to 4 kHz (2 kHz if the fibre was stretched out ... for the classical
    signal to return)". Thesis Sec. 5.5: over 100 km of deployed fibre "the total wait time
    increases ... from 494 us to 988 us", and with fibre loss alone at 0.16 dB/km "the
    maximal possible distribution rate, for a single ion in the trap, [is] 25 per second".

    The 2019 attempt loop (thesis Sec. 5.2.2: 50 us cooling, 60 us optical pumping, 30 us
    Raman pulse, wait to 247 us after its start, 30 us window) sums to 387 us (2.6 kHz),
    whereas the paper states photon generation "every 453 us, yielding an attempt rate of
    2.2 kHz": 66 us of the loop are not itemised, so the model period is a lower bound there.
    With the published rate, 5.3e-4 x 2.2 kHz = 1.2 clicks/s, the quoted "~1 cps"."""
    spool = _innsbruck_50km(preparation_time_s=0.0, detection_window_s=0.0)
    assert lb.herald_delay_s(spool) == pytest.approx(247e-6, abs=0.5e-6)
    assert 1 / lb.attempt_period_s(spool) == pytest.approx(4e3, abs=0.5e3)
    stretched = dataclasses.replace(spool, herald_return_fraction=1.0)
    assert 1 / lb.attempt_period_s(stretched) == pytest.approx(2e3, abs=0.5e3)

    loop = lb.attempt_period_s(_innsbruck_50km())
    assert loop == pytest.approx(50e-6 + 60e-6 + 247e-6 + 30e-6, abs=0.5e-6)
    assert loop < 453e-6
    assert 0.5 <= 5.3e-4 * 2.2e3 < 1.5

    deployed = lb.LinkParameters(protocol="ion_photon", length_km=100.0,
                                 fibre_light_speed_m_per_s=100e3 / 494e-6,
                                 fibre_attenuation_db_per_km=0.16, collection_efficiency=1.0,
                                 conversion_efficiency=1.0, filter_transmission=1.0,
                                 detector_efficiency=1.0, dark_count_rate_hz=0.0,
                                 preparation_time_s=0.0, detection_window_s=0.0)
    budget = lb.link_budget(deployed)
    assert budget.herald_delay_s == pytest.approx(988e-6)
    assert 24.5 <= budget.herald_rate_hz < 25.5


def test_krutyanskiy_100km_thesis_budget():
    """Meraner thesis Sec. 5.4 and Table 5.4 (read_file 59305113813), improved set-up:
    P_out 0.64(3), first fibre coupling 0.82(5), conversion 0.22(2), 100 km transmission
    0.0136(4), second single-mode coupling (to the detectors) 0.70(5), SNSPD 0.74(5);
    background 1.3(2) cps summed over both detectors in the 30 us window. Published:
    expected 0 km 6.0(9) x 10^-2 vs measured 5.9(1) x 10^-2; expected 100 km
    8.1(1.3) x 10^-4 vs measured 7.4(3) x 10^-4 total, 7.0(3) x 10^-4 after subtracting the
    3.9 x 10^-5 background. The model reproduces both expectations to their digits, and each
    measured value lies within the combined 1 sigma (quoted uncertainties in quadrature), also
    for the total including the model's own background term. Not predicted: the 100 km
    fidelity 0.85(4) (background alone gives 0.95; the thesis traces the rest to a 66 Hz
    laser-frequency mistake)."""
    params = lb.LinkParameters(protocol="ion_photon", length_km=100.8,
                               collection_efficiency=0.64 * 0.82, conversion_efficiency=0.22,
                               filter_transmission=0.70,
                               fibre_attenuation_db_per_km=-10 * np.log10(0.0136) / 100.8,
                               detector_efficiency=0.74, dark_count_rate_hz=1.3 / 2,
                               detection_window_s=30e-6, herald_return_fraction=0.0)
    rel = np.sqrt((0.03 / 0.64)**2 + (0.05 / 0.82)**2 + (0.02 / 0.22)**2
                  + (0.0004 / 0.0136)**2 + (0.05 / 0.70)**2 + (0.05 / 0.74)**2)
    zero_km = lb.arm_efficiency(dataclasses.replace(params, length_km=0.0))
    assert zero_km == pytest.approx(6.0e-2, abs=0.05e-2)
    assert zero_km * rel == pytest.approx(0.9e-2, abs=0.05e-2)
    assert abs(zero_km - 5.9e-2) < np.hypot(zero_km * rel, 0.1e-2)

    budget = lb.link_budget(params)
    assert budget.signal_probability == pytest.approx(8.1e-4, abs=0.05e-4)
    assert budget.signal_probability * rel == pytest.approx(1.3e-4, abs=0.05e-4)
    sigma = np.hypot(budget.signal_probability * rel, 0.3e-4)
    assert abs(budget.signal_probability - 7.0e-4) < sigma
    assert budget.dark_probability == pytest.approx(3.9e-5, rel=1e-3)
    assert abs(budget.success_probability - 7.4e-4) < sigma


def test_krutyanskiy_2024_multimode_detection_and_rates():
    """Three-ion multimode node, PRX Quantum 5, 020308 (2024) (read_file 59564137444).

    854 nm (Sec. III, Appendix B/C): detection path 0.78(2) x 0.96(1) x 0.81(3) x 0.87(2)
    = "0.53(3)"; simulated emission probabilities 0.575, 0.664, 0.575 predict per-ion
    detection 0.303(17), 0.350(20), 0.303(17) against the measured 0.315(3), 0.347(3),
    0.320(3) (within 1 sigma of the published path uncertainty, the third ion at 0.96);
    from the measured per-ion probabilities the three-mode closed forms give
    P(at least one) = 0.696 (published 0.693(4)) and the mean number 0.982 (0.981(5)).

    101 km (Sec. III, Fig. 3(c)): per-ion 572, 693, 643 counts in A = 882 982 attempts;
    published P(at least one) = 2.16(5) x 10^-3; one attempt takes 757 us with three ions and
    633 us with one; rates 2.85(7) Hz (three ions), 1.23(5) Hz (the central ion alone), gain
    2.3(1), and 1.59(7) Hz if an attempt took only the 494 us flight. The model's mode train
    (50 us Raman pulse + 12 us to switch the focus = 62 us per extra mode) predicts the
    124 us difference of the two attempt times exactly; their absolute values are
    preparation 70 us + last pulse 50 us + 503 us wait + 10 us not itemised, so the model's
    preparation holds 80 us and its window the 503 us wait. The 101 km path budget
    (Appendix C) is 1.46e-3, the published "15(1.2) x 10^-4", but emission x path = 9.7e-4
    overestimates the central ion's 7.8(3) x 10^-4 by 25 %: the paper ascribes this to a 7 %
    lower Rabi frequency, a 1.4 um string displacement and the fibre coupling being an upper
    bound (its wavepacket model uses 1.26e-3), none given as a number we could use, so that
    comparison is not asserted."""
    path_854 = 0.78 * 0.96 * 0.81 * 0.87
    rel_854 = np.sqrt((0.02 / 0.78)**2 + (0.01 / 0.96)**2 + (0.03 / 0.81)**2 + (0.02 / 0.87)**2)
    assert path_854 == pytest.approx(0.53, abs=0.005)
    assert path_854 * rel_854 == pytest.approx(0.03, abs=0.005)
    emission = np.array([0.575, 0.664, 0.575])
    measured_854 = np.array([13127, 14465, 13326]) / 41645
    assert measured_854 == pytest.approx([0.315, 0.347, 0.320], abs=0.0005)
    # the published path uncertainty (0.03) is a little wider than the listed items in
    # quadrature (0.027); with it the outer ions sit at 0.7 and 0.96 sigma, the central one
    # at 0.2 sigma (both outer ions come out higher than their simulated emission predicts)
    sigma = np.hypot(emission * 0.03, 0.003)
    deviation = np.abs(emission * path_854 - measured_854) / sigma
    assert np.all(deviation < 1.0)
    assert abs(lb.multimode_success(measured_854) - 0.693) < 0.004
    assert abs(measured_854.sum() - 0.981) < 0.005

    path_1550 = 0.78 * 0.96 * 0.81 * 0.30 * 0.0136 * 0.95 * 0.83 * 0.75
    assert path_1550 == pytest.approx(15e-4, abs=0.5e-4)

    per_ion = np.array([572, 693, 643]) / 882_982
    assert per_ion * 1e4 == pytest.approx([6.5, 7.8, 7.3], abs=0.05)
    p_any = lb.multimode_success(per_ion)
    assert abs(p_any - 2.16e-3) < 0.05e-3

    def node(modes: int, p_mode: float) -> lb.LinkParameters:
        return lb.LinkParameters(protocol="ion_photon", length_km=100.8,
                                 fibre_light_speed_m_per_s=100.8e3 / 494e-6,
                                 herald_return_fraction=0.0, collection_efficiency=p_mode,
                                 conversion_efficiency=1.0, filter_transmission=1.0,
                                 fibre_attenuation_db_per_km=0.0, detector_efficiency=1.0,
                                 dark_count_rate_hz=0.0, preparation_time_s=80e-6,
                                 detection_window_s=503e-6 - 494e-6 + 50e-6,
                                 modes_per_attempt=modes, mode_spacing_s=50e-6 + 12e-6)

    one = lb.link_budget(node(1, per_ion[1]))
    three = lb.link_budget(node(3, per_ion.mean()))
    assert three.attempt_period_s - one.attempt_period_s == pytest.approx(124e-6)
    assert one.attempt_period_s == pytest.approx(633e-6)
    assert three.attempt_period_s == pytest.approx(757e-6)
    # equal-mode approximation of the three modes vs the exact unequal-mode product
    assert three.success_probability == pytest.approx(p_any, rel=1e-3)
    assert abs(three.herald_rate_hz - 2.85) < 0.07
    assert abs(one.herald_rate_hz - 1.23) < 0.05
    assert abs(three.herald_rate_hz / one.herald_rate_hz - 2.3) < 0.1
    flight_only = lb.link_budget(dataclasses.replace(node(1, per_ion[1]),
                                                     preparation_time_s=0.0,
                                                     detection_window_s=0.0))
    assert abs(flight_only.herald_rate_hz - 1.59) < 0.07


def test_krutyanskiy_2024_fidelity_from_background_counts():
    """PRX Quantum 5, 020308 (2024), Appendix D (read_file 59564137444): background
    "summing the contributions from both detectors, giving 2.0(1) cps" in 50 us windows;
    adding it to a perfect Bell state gives "maximum observable fidelities" 0.88, 0.90, 0.90
    for the three ion-photon pairs, measured 0.85(4), 0.88(3), 0.90(3). With the measured
    per-ion click probabilities (Sec. III) minus the background as signal, the white-noise
    fidelity of the model is 0.884, 0.904, 0.897: equal to the published model values to
    their two decimals (the published values come from a maximum-likelihood reconstruction,
    which for a physical state is the same mixture), and within 1 sigma of the measurements."""
    per_ion = np.array([572, 693, 643]) / 882_982
    params = lb.LinkParameters(protocol="ion_photon", dark_count_rate_hz=2.0 / 2,
                               detection_window_s=50e-6)
    noise = lb.link_budget(dataclasses.replace(params, collection_efficiency=0.0)
                           ).dark_probability
    assert noise == pytest.approx(1.0e-4, rel=1e-3)
    model = [lb.noisy_fidelity(p - noise, noise) for p in per_ion]
    assert model == pytest.approx([0.88, 0.90, 0.90], abs=0.005)
    for fidelity, measured, sigma in zip(model, (0.85, 0.88, 0.90), (0.04, 0.03, 0.03),
                                         strict=True):
        assert abs(fidelity - measured) <= sigma
