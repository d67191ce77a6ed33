"""`ionlink analyze | keyrate | budget` back ends, driven through their argparse parsers."""

import argparse
import json

import h5py
import numpy as np
import pytest

from analysis import commands, fit_models


def _parser():
    parser = argparse.ArgumentParser(prog="ionlink")
    commands.register(parser.add_subparsers(dest="command", required=True))
    return parser


def _run(argv):
    args = _parser().parse_args(argv)
    return args.func(args)


def _write_results(path, datasets, rid=42, class_name="HeraldedBell"):
    expid = {"file": "repository/bell.py", "class_name": class_name, "arguments": {"n": 10},
             "log_level": 30, "repo_rev": "abc123"}
    with h5py.File(path, "w") as f:
        f["artiq_version"] = "8.0"
        f["rid"] = rid
        f["start_time"] = 1_700_000_000
        f["run_time"] = 1_700_000_001.5
        f["expid"] = json.dumps(expid)
        group = f.create_group("datasets")
        f.create_group("archive")
        for key, value in datasets.items():
            group[key] = value
    return path


def _bell_rounds(rng, n=4000, test_fraction=0.5, visibility=0.95, key_agreement=0.98):
    x, y, a = rng.integers(0, 2, (3, n))
    is_test = (rng.random(n) < test_fraction).astype(np.int8)
    angles_a, angles_b = (0.0, np.pi / 2), (np.pi / 4, -np.pi / 4)
    e = visibility * np.cos(np.array(angles_a)[x] - np.array(angles_b)[y])
    same = np.where(is_test == 1, rng.random(n) < (1 + e) / 2, rng.random(n) < key_agreement)
    b = np.where(same, a, 1 - a)
    return {"bell.x": x, "bell.y": y, "bell.a": a, "bell.b": b, "bell.is_test": is_test}


def test_analyze_recognises_all_sections(tmp_path, capsys):
    rng = np.random.default_rng(21)
    t = np.linspace(0, 20e-6, 41)
    shots = 100
    p = fit_models.rabi_flop(t, 1e5, 0.95, 0.02, 1e-4)
    datasets = {
        "calib.rabi.x": t, "calib.rabi.y": rng.binomial(shots, p) / shots,
        "calib.rabi.model": "rabi", "calib.rabi.n_shots": shots,
        "readout.bright_counts": rng.poisson(15, 2000),
        "readout.dark_counts": rng.poisson(0.3, 2000),
        "heralding.attempts": 100000, "heralding.heralds": 500, "heralding.duration_s": 10.0,
        "heralding.memory_t2_s": 0.1,
        "heralding.herald_times_mu": np.cumsum(rng.exponential(0.02e9, 500)).astype(np.int64),
        **_bell_rounds(rng),
    }
    path = _write_results(tmp_path / "000000042-HeraldedBell.h5", datasets)
    plots = tmp_path / "plots"
    assert _run(["analyze", str(path), "--json", "--plots", str(plots)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rid"] == 42 and out["class_name"] == "HeraldedBell"
    sections = out["sections"]
    rabi = sections["calib.rabi"]
    assert rabi["good"] and abs(rabi["values"]["rabi_frequency"] - 1e5) < 5 * rabi["errors"][
        "rabi_frequency"]
    assert abs(rabi["derived"]["pi_time"]["value"] - 5e-6) < 5 * rabi["derived"]["pi_time"]["error"]
    assert sections["readout"]["fidelity"] > 0.99
    assert sections["heralding"]["success_probability"] == pytest.approx(0.005)
    assert sections["heralding"]["rate_over_decoherence"] == pytest.approx(5.0)
    bell = sections["bell"]
    # S = 0.95 * 2 sqrt2 = 2.687 with ~2000 test rounds: stderr ~0.03
    assert abs(bell["chsh"] - 0.95 * 2 * np.sqrt(2)) < 5 * bell["chsh_stderr"]
    assert abs(bell["qber"] - 0.02) < 5 * np.sqrt(0.02 * 0.98 / bell["key_rounds"])
    assert sorted(p.name for p in plots.iterdir()) == ["bell.png", "calib_rabi.png",
                                                       "heralding.png", "readout.png"]
    assert _run(["analyze", str(path)]) == 0
    text = capsys.readouterr().out
    assert "rabi_frequency" in text and "chsh" in text and "+-" in text


def test_analyze_by_rid_and_errors(tmp_path, capsys):
    root = tmp_path / "results"
    day = root / "2024-01-02" / "03"
    day.mkdir(parents=True)
    _write_results(day / "000000007-Scan.h5", {"tomography.counts": np.full((3, 3, 4), 25)},
                   rid=7, class_name="Scan")
    assert _run(["analyze", "7", "--results-root", str(root), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["sections"]["tomography"]["bell_fidelities"]["phi+"] == pytest.approx(0.25,
                                                                                    abs=1e-6)
    assert _run(["analyze", "8", "--results-root", str(root)]) == 2
    assert "rid 8" in capsys.readouterr().err
    assert _run(["analyze", str(tmp_path / "missing.h5")]) == 2
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5")
    assert _run(["analyze", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "error" in err
    empty = _write_results(tmp_path / "000000009-Empty.h5", {"other": 1}, rid=9)
    assert _run(["analyze", str(empty)]) == 2
    assert "no recognised datasets" in capsys.readouterr().err


def test_analyze_reports_broken_section_without_failing(tmp_path, capsys):
    path = _write_results(tmp_path / "000000010-X.h5",
                          {"calib.weird.x": np.arange(10.0), "calib.weird.y": np.arange(10.0)},
                          rid=10)
    assert _run(["analyze", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert "unknown fit model" in out["sections"]["calib.weird"]["error"]


def test_analyze_photon_hdf5(tmp_path, capsys):
    path = tmp_path / "tags.h5"
    rng = np.random.default_rng(22)
    timestamps = np.sort(rng.integers(0, 10**12, 30000)).astype(np.int64)   # 1 s at 1 ps
    detectors = rng.integers(0, 2, timestamps.size).astype(np.uint8)
    with h5py.File(path, "w") as f:
        f["photon_data/timestamps"] = timestamps
        f["photon_data/detectors"] = detectors
        f["photon_data/timestamps_specs/timestamps_unit"] = 1e-12
        f["acquisition_duration"] = 1.0
    assert _run(["analyze", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    channels = out["timetags"]["channels"]
    assert channels["0"]["tags"] + channels["1"]["tags"] == 30000
    assert channels["0"]["rate_hz"] == pytest.approx(channels["0"]["tags"])


def test_keyrate_command(capsys):
    assert _run(["keyrate", "--chsh", "2.7", "--qber", "0.02", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert 0.5 < out["asymptotic_key_rate"] < 0.6
    assert _run(["keyrate", "--chsh", "2.677", "--qber", "0.0144", "--rounds", "100000000",
                 "--test-fraction", "0.2"]) == 0
    assert "finite key length" in capsys.readouterr().out
    # Nadlinger et al. (2022): n = 1.5e6, gamma = 13/256, designed for S = 2.64, Q = 1.8 %
    for method, positive in (("nadlinger2022", True), ("af2018", False)):
        assert _run(["keyrate", "--chsh", "2.64", "--qber", "0.018", "--rounds", "1500000",
                     "--test-fraction", str(13 / 256), "--method", method, "--json"]) == 0
        finite = json.loads(capsys.readouterr().out)["finite"]
        assert finite["method"] == method and (finite["key_length"] > 0) == positive
        if method == "nadlinger2022":  # their published key, 95 884 bits
            assert finite["key_length"] == pytest.approx(95_884, rel=1e-3)
    assert _run(["keyrate", "--chsh", "3.1", "--qber", "0.01"]) == 2
    assert "CHSH" in capsys.readouterr().err


def test_budget_command(capsys):
    assert _run(["budget", "--length-km", "10", "--chain-links", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["link"]["herald_delay_s"] == pytest.approx(50e-6)
    assert out["chain"]["n_links"] == 2
    assert _run(["budget", "--length-km", "10", "--protocol", "two_photon"]) == 0
    assert "success_probability" in capsys.readouterr().out
    assert _run(["budget", "--length-km", "10", "--detector-efficiency", "2"]) == 2
    assert "detector_efficiency" in capsys.readouterr().err


def test_analyze_reports_uncertainties_and_plots_tomography(tmp_path, capsys):
    from analysis import tomography

    rng = np.random.default_rng(23)
    psi = tomography.BELL_STATES["psi-"]
    probabilities = tomography.outcome_probabilities(
        0.9 * np.outer(psi, psi.conj()) + 0.1 * np.eye(4) / 4)
    counts = np.array([[rng.multinomial(40, probabilities[i, j] / probabilities[i, j].sum())
                        for j in range(3)] for i in range(3)])
    bright, dark = rng.poisson(15, 1000), rng.poisson(0.3, 1000)
    path = _write_results(tmp_path / "000000043-Heralded.h5", {
        "heralding.attempts": 10000, "heralding.heralds": 360, "heralding.duration_s": 4.0,
        "heralding.fidelity": 0.91, "heralding.fidelity_stderr": 0.02,
        "tomography.counts": counts,
        "readout.bright_counts": bright, "readout.dark_counts": dark}, rid=43)
    plots = tmp_path / "plots"
    assert _run(["analyze", str(path), "--json", "--plots", str(plots)]) == 0
    sections = json.loads(capsys.readouterr().out)["sections"]
    heralding = sections["heralding"]
    assert (heralding["fidelity"], heralding["fidelity_stderr"]) == (0.91, 0.02)
    # 360 heralds in 4 s: mean generation time 1/90 s, relative error 1/sqrt(360)
    assert heralding["mean_generation_time_s"] == pytest.approx(4.0 / 360)
    assert heralding["mean_generation_time_stderr_s"] == pytest.approx(4.0 / 360 / np.sqrt(360))
    tomo = sections["tomography"]
    assert tomo["bell_state"] == "psi-"
    assert tomo["bell_fidelity"] == tomo["bell_fidelities"]["psi-"]
    # 360 shots over 9 settings: fidelity error ~ sqrt(3 (1 - E^2) / 40) / 4 ~ 0.03
    assert 0.005 < tomo["bell_fidelity_stderr"] < 0.1
    assert abs(tomo["bell_fidelity"] - (0.9 + 0.025)) < 5 * tomo["bell_fidelity_stderr"]
    readout = sections["readout"]
    expected = 0.5 * np.sqrt(sum(e * (1 - e) / n for e, n in (
        (readout["bright_error"], bright.size), (readout["dark_error"], dark.size))))
    assert readout["fidelity_stderr"] == pytest.approx(expected)
    assert (plots / "tomography.png").stat().st_size > 0
    assert _run(["analyze", str(path)]) == 0
    text = capsys.readouterr().out
    for line in ("mean_generation_time_s = ", "fidelity = 0.91 +- 0.02",
                 "bell_fidelity = ", "psi- = "):
        matching = [t for t in text.splitlines() if line in t]
        assert matching and all("+-" in t for t in matching), (line, text)


def test_analyze_photon_hdf5_plots_rates_streamed_across_chunks(tmp_path, capsys):
    from analysis.analyze import timetag_rate_trace
    from analysis.timetags import TimeTagWriter, generate_tags

    timestamps, detectors = generate_tags([2e5, 5e4], 0.01, channels=(0, 3), seed=4)
    path = tmp_path / "tags.h5"
    with TimeTagWriter(path, 1e-12, chunk_tags=997) as writer:   # many chunk boundaries
        writer.append(timestamps, detectors)
    times, bin_s, channels = timetag_rate_trace(path, n_bins=50)
    span = int(timestamps[-1] - timestamps[0])
    assert bin_s == pytest.approx(span * 1e-12 / 50)
    assert times[0] == pytest.approx(bin_s / 2) and sorted(channels) == [0, 3]
    for channel, counts in channels.items():
        on = timestamps[detectors == channel] - timestamps[0]
        reference, _ = np.histogram(on, bins=50, range=(0, span))  # last bin closed
        np.testing.assert_array_equal(counts, reference)
    plots = tmp_path / "plots"
    assert _run(["analyze", str(path), "--json", "--plots", str(plots)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["plots"] == [str(plots / "timetags_rates.png")]
    assert (plots / "timetags_rates.png").stat().st_size > 0
    assert _run(["analyze", str(path), "--plots", str(plots)]) == 0
    assert f"plot: {plots / 'timetags_rates.png'}" in capsys.readouterr().out


def test_analyze_names_file_and_problem_for_truncated_and_foreign_files(tmp_path, capsys):
    root = tmp_path / "results"
    hour = root / "2024-01-02" / "03"
    hour.mkdir(parents=True)
    good = _write_results(hour / "000000005-Good.h5", {"heralding.attempts": 10,
                                                       "heralding.heralds": 1,
                                                       "heralding.duration_s": 1.0}, rid=5)
    truncated = hour / "000000006-Cut.h5"
    truncated.write_bytes(good.read_bytes()[:2000])
    foreign = hour / "000000007-Foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["data"] = np.arange(3)
    (hour / "notes.h5").write_bytes(b"")
    for path, problem in ((truncated, "truncated"), (foreign, "missing rid, start_time")):
        assert _run(["analyze", str(path)]) == 2
        err = capsys.readouterr().err
        assert str(path) in err and problem in err and err.count("\n") == 1
    # the rid look-up skips the oddly named file with a warning and still finds run 5
    with pytest.warns(UserWarning, match="notes.h5"):
        assert _run(["analyze", "5", "--results-root", str(root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sections"]["heralding"]["heralds"] == 1
    with pytest.warns(UserWarning, match="notes.h5"):
        assert _run(["analyze", "6", "--results-root", str(root)]) == 2
    assert "000000006-Cut.h5" in capsys.readouterr().err
    assert _run(["analyze", str(root)]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_analyze_bell_with_anti_correlated_key_rounds_keeps_chsh(tmp_path, capsys):
    rng = np.random.default_rng(24)
    rounds = _bell_rounds(rng)
    key = rounds["bell.is_test"] == 0
    rounds["bell.b"] = np.where(key, 1 - rounds["bell.b"], rounds["bell.b"])  # QBER ~ 0.98
    path = _write_results(tmp_path / "000000044-Bell.h5", rounds, rid=44)
    assert _run(["analyze", str(path), "--json"]) == 0
    bell = json.loads(capsys.readouterr().out)["sections"]["bell"]
    assert "error" not in bell
    assert abs(bell["chsh"] - 0.95 * 2 * np.sqrt(2)) < 5 * bell["chsh_stderr"]
    assert abs(bell["qber"] - 0.98) < 5 * np.sqrt(0.02 * 0.98 / bell["key_rounds"])
    assert bell["asymptotic_key_rate"] == 0.0 and "QBER > 1/2" in bell["note"]


def test_analyze_photon_hdf5_coincidences_against_accidentals(tmp_path, capsys):
    """Detectors 0 and 1 share correlated photons (20 % of channel 0's tags again on 1, 2 ns
    later): their coincidences in +-5 ns far exceed the accidentals; 0 and 2 are independent
    Poisson streams: the ratio is 1 within 5 standard errors."""
    from analysis.timetags import TimeTagWriter, generate_tags

    timestamps, detectors = generate_tags(2e5, 0.2, channels=(0, 1, 2), seed=9,
                                          correlated_fraction=0.2, correlation_delay_s=2e-9,
                                          correlation_jitter_s=1e-10)
    path = tmp_path / "tags.h5"
    with TimeTagWriter(path, 1e-12) as writer:
        writer.append(timestamps, detectors)
    assert _run(["analyze", str(path), "--json", "--window-s", "5e-9"]) == 0
    tags = json.loads(capsys.readouterr().out)["timetags"]
    assert tags["coincidence_window_s"] == pytest.approx(5e-9)
    correlated, independent = tags["pairs"]["0-1"], tags["pairs"]["0-2"]
    assert correlated["ratio"] > 50
    assert abs(independent["ratio"] - 1) < 5 * independent["ratio_stderr"]
    # brute force for the independent pair
    t0, t2 = timestamps[detectors == 0], timestamps[detectors == 2]
    lo = np.searchsorted(t2, t0 - 5000, side="left")
    hi = np.searchsorted(t2, t0 + 5000, side="right")
    assert independent["coincidences"] == int(np.sum(hi - lo))
    assert _run(["analyze", str(path), "--window-s", "5e-9"]) == 0
    assert "detectors 0-1:" in capsys.readouterr().out
    assert _run(["analyze", str(path), "--window-s", "-1"]) == 2


def test_analyze_bell_gives_the_finite_size_key_of_the_rounds(tmp_path, capsys):
    """Enough good rounds give a finite-size key (Nadlinger et al. 2022 bound, designed for
    the observed S and Q): 600 000 rounds at S ~ 2.8, Q ~ 0.5 %; the first 30 000 of them
    give none, and say by how much (negative surplus)."""
    rng = np.random.default_rng(31)
    rounds = _bell_rounds(rng, n=600_000, test_fraction=0.08, visibility=0.99,
                          key_agreement=0.995)
    path = _write_results(tmp_path / "000000045-Bell.h5", rounds, rid=45)
    assert _run(["analyze", str(path), "--json"]) == 0
    bell = json.loads(capsys.readouterr().out)["sections"]["bell"]
    from analysis import qkd
    expected = qkd.finite_key_length(600_000, bell["test_rounds"] / bell["rounds"],
                                     bell["chsh"], bell["qber"])
    assert bell["finite_key_bits"] == expected.key_length > 0
    few = {k: v[:30_000] for k, v in rounds.items()}
    path = _write_results(tmp_path / "000000046-Bell.h5", few, rid=46)
    assert _run(["analyze", str(path), "--json"]) == 0
    bell = json.loads(capsys.readouterr().out)["sections"]["bell"]
    assert bell["finite_key_bits"] == 0 and bell["finite_key_surplus_bits"] < 0
