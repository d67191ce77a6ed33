"""The repeater experiment (repository/repeater/repeater_chain.py) on the simulated chain:
records, end-to-end fidelity, rates against analysis.repeater and direct transmission."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from analysis import linkbudget as lb
from analysis import repeater as rep
from tests.repeater_driver import quiet_chain
from tests.repeater_rig import chain_calibrations, run_chain

FAST_READOUT = {f"calib.detection_time_{n}": 300e-6 for n in ("a", "b", "r")}


def _lengths(total_km: float) -> dict:
    q = total_km / 4
    return {"length_a_km": q, "length_ra_km": q, "length_rb_km": q, "length_b_km": q}


def test_repeater_run_records_a_swap_per_pair_and_the_expected_fidelity(tmp_path):
    cfg = quiet_chain(chain=_lengths(2.0))
    cal = {**chain_calibrations(cfg), **FAST_READOUT}
    out = run_chain(tmp_path, cfg, {"pairs": 120, "batch_pairs": 60, "alpha": 0.1,
                                    "link_length_ar": 1.0, "link_length_rb": 1.0,
                                    "cutoff": 2e-3, "seed": 3, "measurement": "fidelity"},
                    calibrations=cal)
    assert not out.rtio_errors
    ds = out.datasets
    n = ds["repeater.pairs"]
    assert n == 120
    for key in ("herald_time_ar_mu", "herald_time_rb_mu", "swap_outcome", "wait_s",
                "storage_ar_s", "frame_x", "end_basis_a", "end_outcome_b_corrected"):
        assert len(ds["repeater." + key]) == n, key
    wait = ds["repeater.wait_s"]
    assert np.all(wait <= 2e-3 + 1e-4)
    # the held link waits |learn_ar - learn_rb|: storage covers it
    assert np.all(np.maximum(ds["repeater.storage_ar_s"], ds["repeater.storage_rb_s"])
                  >= wait - 1e-9)
    # prediction: the ideal swap of two heralded link states of the closed form (no
    # decoherence, perfect gate in this truth); alpha as played (pulse rounded to 1 ns)
    a = ds["repeater.alpha"]
    eta = cal["calib.photon_detection_efficiency_a"]
    f_link = (1 - a) / ((1 - a) + a * (1 - eta / 2))
    psi = np.zeros((4, 4))
    psi[1, 1] = psi[2, 2] = psi[1, 2] = psi[2, 1] = 0.5
    dd = np.zeros((4, 4))
    dd[3, 3] = 1.0
    link = f_link * psi + (1 - f_link) * dd
    predicted = rep.swapped_state_fidelity(link, link)
    f, se = ds["repeater.fidelity"], ds["repeater.fidelity_stderr"]
    assert abs(f - predicted) < 4 * se, (f, se, predicted)
    assert se < 0.08
    # Z-basis rounds: after the frame, A and B are anticorrelated with the predicted
    # probability (populations of the ideal swap), a tighter binomial check
    zz = (ds["repeater.end_basis_a"] == 2) & (ds["repeater.end_basis_b"] == 2)
    anti = ds["repeater.end_outcome_a"][zz] != ds["repeater.end_outcome_b_corrected"][zz]
    p_anti = float(sum(p * np.real(r[1, 1] + r[2, 2]) for p, r, _ in rep.ideal_swap(link, link)))
    k = int(zz.sum())
    assert k >= 3
    assert abs(anti.sum() - k * p_anti) <= 4 * math.sqrt(k * p_anti * (1 - p_anti)) + 1
    # the analysis of the records: model rate and fidelity for what was measured
    summary = rep.summarize_run(ds)
    assert abs(summary.rate_hz - summary.model_rate_hz) < 4 * summary.rate_stderr_hz
    assert summary.model_fidelity == pytest.approx(predicted, abs=0.01)
    assert summary.direct_rate_hz > 0 and summary.no_repeater_rate_hz > 0
    # the results file as `ionlink analyze` reads it has the same section
    from analysis import results
    from analysis.analyze import analyze_results

    section = analyze_results(results.load(out.results_file))["repeater"]
    assert section["pairs"] == 120
    assert section["model_rate_hz"] == pytest.approx(summary.model_rate_hz)


def _run_at(tmp_path, total_km: float, pairs: int):
    # 854 nm-like loss (3 dB/km) puts the crossover at a few km, where the simulation is fast
    cfg = quiet_chain(chain=_lengths(total_km), node={"fibre": {"loss_db_per_km": 3.0}})
    cal = {**chain_calibrations(cfg), **FAST_READOUT}
    path = tmp_path / f"run_{total_km}"
    path.mkdir()
    out = run_chain(path, cfg, {"pairs": pairs, "batch_pairs": pairs, "alpha": 0.2,
                                "link_length_ar": total_km / 2,
                                "link_length_rb": total_km / 2, "cutoff": 1.0,
                                "measurement": "z", "seed": 1}, calibrations=cal)
    assert not out.rtio_errors
    return cfg, out.datasets


def test_repeater_beats_direct_transmission_beyond_the_model_crossover(tmp_path):
    """Measured end-to-end rates at a short and a long total length fall on the sides of
    the crossover with direct transmission that the model predicts, and agree with the
    two-link model for the measured success probabilities and periods."""
    short_km, long_km = 3.0, 12.0
    measured = {}
    for total, pairs in ((short_km, 25), (long_km, 25)):
        cfg, ds = _run_at(tmp_path, total, pairs)
        rate = ds["repeater.pairs"] / ds["repeater.duration_s"]
        # rate error: the pair count of a fixed number of pairs in a random duration
        measured[total] = (rate, rate / math.sqrt(ds["repeater.pairs"]), ds, cfg)
        model = rep.two_link_rate(ds["repeater.p_ar"], ds["repeater.p_rb"],
                                  ds["repeater.attempt_period_s"]
                                  + ds["repeater.cooling_per_slot_s"],
                                  ds["repeater.cutoff_s"], ds["repeater.swap_time_s"])
        assert abs(rate - model) < 4 * measured[total][1], (total, rate, model)
    cfg = measured[short_km][3]
    node = cfg.node
    ds = measured[short_km][2]
    # the model's link: this truth's photon path, attempt overhead and swap time
    quench = 10e-6 + 0.5e-6
    pulse = -node.laser_393.generation_time_constant_s * math.log1p(-0.2)
    params = lb.LinkParameters(
        collection_efficiency=node.photon.collection_efficiency,
        conversion_efficiency=node.photon.conversion_efficiency,
        filter_transmission=node.photon.filter_transmission,
        fibre_attenuation_db_per_km=node.fibre.loss_db_per_km,
        detector_efficiency=node.station.detector_efficiency, dark_count_rate_hz=0.0,
        detection_window_s=3e-6, excitation_probability=0.2,
        preparation_time_s=quench + pulse + 1e-6,
        fibre_light_speed_m_per_s=299_792_458.0 / node.fibre.refractive_index,
        memory_t2_s=1.0)
    swap = ds["repeater.swap_time_s"]
    x = rep.crossover_km(params, swap_time_s=swap)
    assert short_km < x < long_km, x
    for total, side in ((short_km, -1), (long_km, 1)):
        rate, err, ds, _ = measured[total]
        direct = lb.direct_transmission_rate(replace(params), total)
        assert side * (rate - direct) > 3 * err, (total, rate, direct)
        # and the model's own prediction at this length agrees with the simulation
        model = rep.compare_at_length(params, total, np.inf, swap)
        assert model.repeater_rate_hz == pytest.approx(rate, rel=0.5)


def test_ionlink_run_puts_the_chain_behind_the_repeater_device_db(tmp_path, capsys):
    from ionlink.cli import main
    from tests.repeater_driver import DEVICE_DB, ROOT

    node = tmp_path / "short_chain.toml"
    node.write_text("[chain]\nlength_a_km = 0.5\nlength_ra_km = 0.5\nlength_rb_km = 0.5\n"
                    "length_b_km = 0.5\n")
    experiment = ROOT / "repository" / "repeater" / "repeater_chain.py"
    code = main(["run", "--device-db", str(DEVICE_DB), "--node", str(node), "-o",
                 str(tmp_path / "r"), str(experiment), "pairs=3", "batch_pairs=3",
                 "alpha=0.2", "link_length_ar=1.0", "link_length_rb=1.0",
                 "measurement=\"z\""])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "3 end-to-end pairs" in out
    # a chain node file with the two-node device_db is refused, naming the mismatch
    code = main(["run", "--device-db", str(ROOT / "device_db.py"), "--node", str(node),
                 "-o", str(tmp_path / "r2"),
                 str(ROOT / "repository" / "calibrations" / "readout_histogram.py")])
    assert code == 2
    assert "chain node file" in capsys.readouterr().err
