"""Bell test / DI-QKD rounds on the virtual node: CHSH S and QBER against the modelled state.

The node is the quiet truth of tests.node_driver (no drifts, dephasing, motion or phase noise)
with a lossless photon path before the fibre and no dark counts, calibrated to its true
values, so that the heralded state is F |psi+><psi+| + (1 - F) |DD><DD| with 1 - F the
fraction of heralds in which both nodes emitted. Equatorial measurements of |DD> are
uncorrelated, so the expected S is F 2 sqrt2 and the key-round QBER (1 - F) / 2.
"""

from __future__ import annotations

import math

import numpy as np

from analysis.analyze import analyze_results
from analysis.bell import TSIRELSON
from analysis.results import ResultsFile
from tests import link_rig as L

EXPERIMENT = "bell/bell_test.py"


def test_chsh_and_qber_match_the_modelled_heralded_state(tmp_path):
    cfg = L.quiet_link_config()
    alpha, window, rounds = 0.2, 3e-6, 800
    outcome = L.run(tmp_path, EXPERIMENT, cfg,
                    dict(rounds=rounds, batch_rounds=400, alpha=alpha, window=window,
                         link_length=2.0, test_fraction=0.75, seed=3),
                    L.truth_calibrations(cfg))
    d = outcome.datasets
    x, y, a, b, test = (np.asarray(d[k]) for k in ("bell.x", "bell.y", "bell.a", "bell.b",
                                                    "bell.is_test"))
    assert x.size == rounds and d["bell.rounds_done"] == rounds
    # settings: stored per round, test rounds uniform over {0,1}^2, key rounds (0, 2)
    pairs = set(zip(x[test == 1].tolist(), y[test == 1].tolist(), strict=True))
    assert pairs == {(0, 0), (0, 1), (1, 0), (1, 1)}
    assert np.all(x[test == 0] == 0) and np.all(y[test == 0] == 2)
    assert np.array_equal(b ^ np.asarray(d["bell.herald_detector"]),
                          np.asarray(d["bell.b_raw"]))
    eta = L.network(cfg).truth(0.0)["a"]["photon_efficiency"] * (
        1 - math.exp(-(window - 100e-9) / cfg.photon.wavepacket_time_s))
    fidelity = 1 - L.heralded_dd_fraction(alpha, eta)
    s, s_err = d["bell.chsh_running"], d["bell.chsh_stderr_running"]
    assert abs(s - fidelity * TSIRELSON) < 5 * s_err, (s, s_err, fidelity * TSIRELSON)
    assert s > 2.0
    key = test == 0
    qber = d["bell.qber_running"]
    expected_qber = (1 - fidelity) / 2
    n_key = int(key.sum())
    assert abs(qber - expected_qber) < 5 * L.binomial_sigma(expected_qber, n_key)
    with ResultsFile(outcome.results_file) as results:
        sections = analyze_results(results)
    bell = sections["bell"]
    assert "error" not in bell, bell
    assert bell["test_rounds"] == int(test.sum())
    assert abs(bell["chsh"] - s) < 1e-12
    assert abs(bell["qber"] - qber) < 1e-12


def test_settings_are_reproducible_from_the_seed(tmp_path):
    cfg = L.quiet_link_config()
    args = dict(rounds=30, alpha=0.3, link_length=2.0, test_fraction=0.5, seed=11)
    cal = L.truth_calibrations(cfg)
    first = L.run(tmp_path / "1", EXPERIMENT, cfg, args, cal).datasets
    second = L.run(tmp_path / "2", EXPERIMENT, cfg, args, cal, seed=5).datasets
    for key in ("bell.x", "bell.y", "bell.is_test"):
        assert np.array_equal(first[key], second[key])
    assert first["bell.seed"] == 11
    # a different node seed gives different outcomes (independent quantum randomness)
    assert not np.array_equal(first["bell.a"], second["bell.a"])
