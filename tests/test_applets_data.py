"""Recorded data for the applet tests and the README screenshots (data writers, no tests).

Each writer draws a small, physically plausible data set from a seeded generator and writes
it in the ARTIQ results layout (``datasets/`` group, root ``rid``/``start_time``/``expid``),
with the dataset names of analysis.schemas, so the applets read it as they read a real run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from ionlink.runner import pyon

#: Windows of finished tests, kept alive (hidden) until the session ends: a view that
#: Python's garbage collector frees while Qt still holds its scene can crash the process.
_FINISHED_WINDOWS: list = []


@pytest.fixture(autouse=True)
def close_widgets():
    """Hide the windows a test opened, so later tests' event processing never paints them,
    and keep them referenced (see _FINISHED_WINDOWS)."""
    yield
    import sys

    if "pyqtgraph.Qt" not in sys.modules:
        return
    from pyqtgraph.Qt import QtWidgets

    app = QtWidgets.QApplication.instance()
    if app is None:
        return
    for widget in app.topLevelWidgets():
        if widget.isVisible():
            widget.hide()
        _FINISHED_WINDOWS.append(widget)


def write_results(path: Path, datasets: dict, rid: int = 1, class_name: str = "Recorded",
                  start_time: float | None = None) -> Path:
    """Write ``datasets`` as an ARTIQ results file at ``path`` (atomically replaced)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    with h5py.File(temporary, "w") as f:
        group = f.create_group("datasets")
        for key, value in datasets.items():
            group[key] = value
        f.create_group("archive")
        f["rid"] = rid
        f["start_time"] = time.time() if start_time is None else start_time
        f["artiq_version"] = "recorded"
        f["expid"] = json.dumps({"class_name": class_name, "arguments": {}})
    temporary.replace(path)
    return path


def heralding_data(reports: int = 24, seed: int = 1, p_success: float = 1.2e-3,
                   attempt_period_s: float = 60e-6, report_s: float = 0.5,
                   t2_s: float = 0.1, visibility: float = 0.85) -> dict:
    """A heralding run reported every ``report_s`` of node time: cumulative attempts and
    heralds (binomial per report), the run's totals and T2; herald times (uniform within
    each report, in mu) and attempt numbers; per herald random Pauli bases and outcomes
    drawn from a Werner state of ``visibility`` around (|01> + |10>)/sqrt2 (fidelity
    (1 + 3 V) / 4); and station
    clicks (photon arrivals with an exponential wavepacket after a fibre delay, plus uniform
    dark counts) with the gate window."""
    from analysis.tomography import outcome_probabilities

    rng = np.random.default_rng(seed)
    per_report = rng.poisson(report_s / attempt_period_s, reports)
    heralds = rng.binomial(per_report, p_success)
    cum_a, cum_h = np.cumsum(per_report), np.cumsum(heralds)
    times = report_s * np.arange(1, reports + 1)
    herald_s = np.sort(np.concatenate([rng.uniform(t - report_s, t, k)
                                       for t, k in zip(times, heralds, strict=True)]))
    herald_attempts = np.sort(np.concatenate([
        rng.choice(np.arange(end - n, end), k, replace=False)
        for end, n, k in zip(cum_a, per_report, heralds, strict=True)]))
    psi = np.array([0, 1, 1, 0]) / np.sqrt(2)
    rho = visibility * np.outer(psi, psi) + (1 - visibility) * np.eye(4) / 4
    probabilities = outcome_probabilities(rho)        # [basis_a, basis_b, 2a + b]
    n = int(cum_h[-1])
    basis_a, basis_b = rng.integers(0, 3, n), rng.integers(0, 3, n)
    outcome = np.array([rng.choice(4, p=probabilities[i, j] / probabilities[i, j].sum())
                        for i, j in zip(basis_a, basis_b, strict=True)])
    delay_mu, tau_mu, gate = 24_480, 300, (24_400, 26_400)
    photons = delay_mu + rng.exponential(tau_mu, 4000).astype(np.int64)
    darks = rng.integers(23_000, 28_000, 300)
    arrival = np.concatenate([photons, darks])
    detector = rng.integers(0, 2, arrival.size)
    order = rng.permutation(arrival.size)
    return {
        "heralding.attempts": int(cum_a[-1]), "heralding.heralds": n,
        "heralding.duration_s": float(times[-1]), "heralding.memory_t2_s": t2_s,
        "heralding.history.time_s": times, "heralding.history.attempts": cum_a,
        "heralding.history.heralds": cum_h,
        "heralding.herald_times_mu": (herald_s * 1e9).astype(np.int64) + 10**9,
        "heralding.herald_attempts": herald_attempts,
        "heralding.ref_period_s": 1e-9,
        "heralding.basis_a": basis_a, "heralding.basis_b": basis_b,
        "heralding.outcome_a": outcome >> 1, "heralding.outcome_b_corrected": outcome & 1,
        "heralding.arrival_mu": arrival[order], "heralding.arrival_detector": detector[order],
        "heralding.gate_start_mu": gate[0], "heralding.gate_stop_mu": gate[1],
    }


def bell_data(rounds: int = 20_000, visibility: float = 0.9, test_fraction: float = 0.5,
              seed: int = 2) -> dict:
    """CHSH/DI-QKD rounds of a Werner state with visibility V: test rounds at the optimal
    CHSH settings (E_xy = +-V/sqrt2, S = 2 sqrt2 V), key rounds with aligned bases
    (P(a != b) = (1 - V) / 2); settings uniform."""
    rng = np.random.default_rng(seed)
    x, y = rng.integers(0, 2, rounds), rng.integers(0, 2, rounds)
    is_test = (rng.random(rounds) < test_fraction).astype(np.int64)
    correlation = np.where(is_test == 1, np.where((x == 1) & (y == 1), -1, 1)
                           * visibility / np.sqrt(2), visibility)
    a = rng.integers(0, 2, rounds)
    same = rng.random(rounds) < (1 + correlation) / 2
    b = np.where(same, a, 1 - a)
    return {"bell.x": x, "bell.y": y, "bell.a": a, "bell.b": b, "bell.is_test": is_test}


def calibration_db(path: Path, now_s: float) -> Path:
    """A dataset database with calibrated parameters, provenance in the calibration graph's
    format (``provenance.calib.<name>``: JSON list), its node states (``calgraph.state``)
    and a spec (``calgraph.spec``)."""
    def history(*entries):
        return json.dumps([{"action": a, "value": v, "previous": p, "rid": r,
                            "time": now_s - age, "data": "", "node": "", "note": ""}
                           for a, v, p, r, age in entries])
    db = {
        "calib.frequency_729_a": (80.0123e6, {"unit": "MHz", "scale": 1e6}),
        "calib.pi_time_729_a": (6.3e-6, {"unit": "us", "scale": 1e-6}),
        "calib.readout_threshold_a": (3, {}),
        "calib.fibre_delay_a": (24.48e-6, {"unit": "us", "scale": 1e-6}),
        "calib.t2_a": (0.02, {"unit": "ms", "scale": 1e-3}),
        "calib.ramsey.x": (np.linspace(0, 1e-3, 5), {}),
        "provenance.calib.frequency_729_a": (history(
            ("calibrated", 80.0101e6, 80.0e6, 11, 7200.0),
            ("calibrated", 80.0123e6, 80.0101e6, 19, 600.0)), {}),
        "provenance.calib.pi_time_729_a": (history(
            ("calibrated", 6.3e-6, 6.1e-6, 12, 5 * 3600.0)), {}),
        "provenance.calib.readout_threshold_a": (history(
            ("calibrated", 3, 2, 10, 1800.0), ("rejected", 9, 3, 21, 60.0)), {}),
        "provenance.calib.t2_a": (history(("calibrated", 0.02, 0.03, 15, 1200.0)), {}),
        "provenance.calib.wavepacket_time_a": (history(
            ("rejected", 1.1e-6, None, 20, 300.0)), {}),
        "calgraph.state": (json.dumps({
            "wavepacket_a": {"last_ok": None, "last_calibrated": None, "failed": True,
                             "message": "fit failed: too few clicks"},
            "freq729_a": {"last_ok": now_s - 120.0, "last_calibrated": now_s - 600.0,
                          "failed": False, "message": "in spec"}}), {}),
        "calgraph.spec": (json.dumps({
            "calib.frequency_729_a": {"min": 80.00e6, "max": 80.02e6, "timeout_s": 3600,
                                      "node": "freq729_a"},
            "calib.wavepacket_time_a": {"timeout_s": 3600, "node": "wavepacket_a"},
            "calib.pi_time_729_a": {"min": 5e-6, "max": 8e-6, "timeout_s": 3600},
            "calib.t2_a": {"min": 0.05, "timeout_s": 86400}}), {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    pyon.store_file(path, db)
    return path
