"""Random streams of runs: new draws for every run and batch, one lab history for all.

Within one run the node's streams are not reused per batch, kernel call or DMA playback.
Across runs, ``RunRequest.seed`` defaults to the run's rid, so two runs of one experiment in
one results directory see different photon clicks and quantum outcomes (``--seed RID``
reproduces a run), while the lab's slow drifts come from ``VirtualNetwork``'s separate
``lab_seed``: every run sees the same lab history, so calibrations carry over.
"""

from __future__ import annotations

import numpy as np

from ionlink.node import VirtualNetwork
from ionlink.runner.devices import load_device_db
from ionlink.runner.run import RunRequest, run_experiment
from tests import link_rig as L


def test_two_runs_in_one_results_directory_see_independent_outcomes(tmp_path):
    cfg = L.quiet_link_config()
    runs = []
    for _ in range(2):
        request = RunRequest(experiment_file=L.ROOT / "repository" /
                             "heralding/heralded_entanglement.py",
                             arguments=dict(attempts=200, alpha=0.3, link_length=10.0,
                                            measurement="z"),
                             device_db=L.DEVICE_DB, results_root=tmp_path)
        outcome = run_experiment(request,
                                 world_factory=lambda ddb, s: VirtualNetwork(ddb, cfg, s))
        assert outcome.error is None, outcome.error
        runs.append(outcome.datasets)
    first, second = (np.asarray(d["heralding.herald_attempts"]) for d in runs)
    assert first.size > 20 and second.size > 20
    assert not np.array_equal(first, second)


def test_lab_drifts_do_not_depend_on_the_run_seed():
    ddb = load_device_db(L.DEVICE_DB)
    phases = [VirtualNetwork(ddb, None, seed).truth(600.0)["fibre_phase_rad"]
              for seed in (0, 1)]
    assert phases[0] == phases[1]


def test_successive_batches_of_one_run_do_not_repeat_draws(tmp_path):
    """Each batch is one kernel call of DMA playbacks: its heralds and outcomes must be new
    draws, not a replay of the previous batch's (the node's streams run on)."""
    d = L.run(tmp_path, "heralding/heralded_entanglement.py", L.quiet_link_config(),
              dict(attempts=300, batch_attempts=100, alpha=0.3, link_length=10.0,
                   measurement="z")).datasets
    attempts = np.asarray(d["heralding.herald_attempts"])
    outcomes = np.asarray(d["heralding.outcome_a"])
    batches = [attempts[attempts // 100 == k] % 100 for k in range(3)]
    assert all(b.size > 10 for b in batches)
    assert not np.array_equal(batches[0], batches[1])
    assert not np.array_equal(batches[1], batches[2])
    per_batch = [outcomes[attempts // 100 == k] for k in range(3)]
    n = min(len(o) for o in per_batch)
    assert not np.array_equal(per_batch[0][:n], per_batch[1][:n])
