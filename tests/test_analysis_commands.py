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


def _bell_rounds(rng, n=4000):
    x, y, a = rng.integers(0, 2, (3, n))
    is_test = (rng.random(n) < 0.5).astype(np.int8)
    angles_a, angles_b = (0.0, np.pi / 2), (np.pi / 4, -np.pi / 4)
    e = 0.95 * np.cos(np.array(angles_a)[x] - np.array(angles_b)[y])
    same = np.where(is_test == 1, rng.random(n) < (1 + e) / 2, rng.random(n) < 0.98)
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
