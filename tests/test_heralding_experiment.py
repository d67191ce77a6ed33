"""The heralded-entanglement experiment on the virtual node: rates, records, fidelity."""

from __future__ import annotations

import math

import numpy as np

from analysis.analyze import analyze_results
from analysis.results import ResultsFile
from ionlink.node import load_node_config
from tests import link_rig as L

EXPERIMENT = "heralding/heralded_entanglement.py"


def window_acceptance(cfg, window: float, pre: float = 100e-9) -> float:
    """Fraction of an exponential wavepacket inside a window opening ``pre`` early."""
    return 1.0 - math.exp(-(window - pre) / cfg.photon.wavepacket_time_s)


def test_herald_rate_matches_single_photon_probability(tmp_path):
    cfg = L.quiet_link_config()
    alpha, window, attempts = 0.1, 10e-6, 2500
    outcome = L.run(tmp_path, EXPERIMENT, cfg,
                    dict(attempts=attempts, batch_attempts=1250, alpha=alpha,
                         window=window, measurement="none"),
                    L.truth_calibrations(cfg))
    d = outcome.datasets
    eta = L.network(cfg).truth(0.0)["a"]["photon_efficiency"] * window_acceptance(cfg, window)
    p = L.single_photon_herald_probability(alpha, eta)
    assert d["heralding.attempts"] == attempts
    measured = d["heralding.heralds"] / attempts
    assert abs(measured - p) < 5 * L.binomial_sigma(p, attempts), (measured, p)
    # the experiment's own expectation from its (here: true) calibrations
    assert abs(d["heralding.expected_success_probability"] - p) < 1e-3
    # two batches: the kernel ran twice and the totals add up
    assert len(d["heralding.herald_times_mu"]) == d["heralding.heralds"]


def test_records_are_consistent_and_analyze_understands_them(tmp_path):
    cfg = L.quiet_link_config()
    outcome = L.run(tmp_path, EXPERIMENT, cfg,
                    dict(attempts=1500, alpha=0.2, link_length=10.0, measurement="z"),
                    L.truth_calibrations(cfg))
    d = outcome.datasets
    heralds = d["heralding.heralds"]
    assert heralds > 100
    times = np.asarray(d["heralding.herald_times_mu"])
    assert np.all(np.diff(times) > 0)
    # every herald is among the recorded clicks, at its attempt and detector
    clicks = set(zip(np.asarray(d["heralding.click_attempts"]).tolist(),
                     np.asarray(d["heralding.click_detectors"]).tolist(),
                     np.asarray(d["heralding.click_times_mu"]).tolist(), strict=True))
    for att, det, t in zip(d["heralding.herald_attempts"], d["heralding.herald_detectors"],
                           times, strict=True):
        assert (int(att), int(det), int(t)) in clicks
    # attempt period: quench + photon flight (5 km) + window + herald signal back (5 km)
    period = d["heralding.attempt_period_s"]
    flight = cfg.fibre.length_a_km * 1e3 * cfg.fibre.refractive_index / 299792458.0
    assert 2 * flight < period < 2 * flight + 20e-6
    assert d["heralding.duration_s"] > 1500 * period
    rate = heralds / d["heralding.duration_s"]
    assert abs(d["heralding.rate_hz"] - rate) < 1e-9 * rate
    assert abs(d["heralding.mean_generation_time_s"] - 1 / rate) < 1e-9 / rate
    assert abs(d["heralding.rate_over_decoherence"] - rate * d["heralding.memory_t2_s"]) \
        < 1e-9 * rate
    p = d["heralding.expected_success_probability"]
    assert abs(d["heralding.success_probability"] - p) < 5 * L.binomial_sigma(p, 1500)
    # ZZ: one ion in S and one in D, except |DD> heralds (both photons emitted)
    eta = L.network(cfg).truth(0.0)["a"]["photon_efficiency"] * window_acceptance(cfg, 3e-6)
    p_dd = L.heralded_dd_fraction(0.2, eta)
    parity = d["heralding.parity"]
    expected = -(1 - 2 * p_dd)
    assert abs(parity - expected) < 5 * math.sqrt((1 - expected**2) / heralds) + 1e-3
    with ResultsFile(outcome.results_file) as results:
        sections = analyze_results(results)
    assert "error" not in sections["heralding"], sections["heralding"]
    assert sections["heralding"]["heralds"] == heralds


def test_tomography_fidelity_matches_modelled_state(tmp_path):
    cfg = L.quiet_link_config()
    alpha = 0.2
    outcome = L.run(tmp_path, EXPERIMENT, cfg,
                    dict(attempts=2400, alpha=alpha, link_length=2.0,
                         measurement="tomography"),
                    L.truth_calibrations(cfg))
    d = outcome.datasets
    eta = L.network(cfg).truth(0.0)["a"]["photon_efficiency"] * window_acceptance(cfg, 3e-6)
    expected = 1 - L.heralded_dd_fraction(alpha, eta)
    counts = np.asarray(d["tomography.counts"])
    assert counts.sum() == d["heralding.heralds"]
    fidelity, error = d["heralding.fidelity"], d["heralding.fidelity_stderr"]
    assert 0 < error < 0.1
    assert abs(fidelity - expected) < 5 * error, (fidelity, error, expected)


def test_default_node_10km_runs_without_underflow(tmp_path):
    outcome = L.run(tmp_path, EXPERIMENT, load_node_config(None), dict(attempts=1500))
    assert "underflow" not in outcome.rtio_errors
    d = outcome.datasets
    assert d["heralding.attempts"] == 1500
    # default link: 10 km, attempts at ~1/(62 us); the herald signal's return is included
    assert 49e-6 < d["heralding.attempt_period_s"] < 80e-6


URGENT = '''
from artiq.experiment import *


class Urgent(EnvExperiment):
    """Urgent run"""

    def build(self):
        self.setattr_device("scheduler")

    def run(self):
        self.set_dataset("my_rid", self.scheduler.rid)
'''


def test_yields_to_a_higher_priority_run_between_batches(tmp_path):
    from ionlink.node import VirtualNetwork
    from ionlink.runner.run import RunRequest, run_experiment
    from ionlink.runner.scheduler import RunQueue

    urgent = tmp_path / "urgent.py"
    urgent.write_text(URGENT)
    rids = iter(range(100, 200))
    queue = RunQueue(lambda: next(rids))
    urgent_rid = queue.submit("main", {"file": str(urgent), "class_name": "Urgent",
                                       "arguments": {}, "log_level": 30, "repo_rev": None},
                              priority=5)
    cfg = L.quiet_link_config()
    request = RunRequest(experiment_file=L.ROOT / "repository" / EXPERIMENT,
                         arguments=dict(attempts=1200, batch_attempts=400, alpha=0.2,
                                        measurement="z"),
                         device_db=L.DEVICE_DB, results_root=tmp_path, rid=1)
    outcome = run_experiment(request, queue=queue,
                             world_factory=lambda ddb, s: VirtualNetwork(ddb, cfg, s))
    assert outcome.error is None, outcome.error
    assert outcome.datasets["heralding.attempts"] == 1200
    assert len(outcome.datasets["heralding.history.attempts"]) == 3
    assert list(tmp_path.rglob(f"{urgent_rid:09d}-Urgent.h5"))
