"""Run the repeater experiment on a chosen chain truth with truth calibrations (test helper)."""

from __future__ import annotations

from pathlib import Path

from ionlink.node.chain import ChainNetwork
from ionlink.runner.datasets import DatasetDB
from ionlink.runner.devices import load_device_db
from ionlink.runner.run import RunRequest, run_experiment
from tests.repeater_driver import DEVICE_DB, ROOT

EXPERIMENT = ROOT / "repository" / "repeater" / "repeater_chain.py"


def chain_calibrations(config, seed: int = 0) -> dict:
    """Persistent calib.* datasets holding the chain's true values (readout threshold 0:
    no dark counts or stray light in the test truths)."""
    net = ChainNetwork(load_device_db(DEVICE_DB), config, seed)
    truth = net.truth()
    node = config.node
    out = {}
    for n in ("a", "ra", "rb", "b"):
        t = truth[n]
        out[f"calib.frequency_729_{n}"] = t["transition_729_dds_hz"]
        out[f"calib.pi_time_729_{n}"] = t["pi_time_s"]
        out[f"calib.amplitude_729_{n}"] = 1.0
        out[f"calib.readout_threshold_{n}"] = 0
        out[f"calib.fibre_delay_{n}"] = t["fibre_delay_s"]
        out[f"calib.photon_generation_time_{n}"] = node.laser_393.generation_time_constant_s
        out[f"calib.photon_detection_efficiency_{n}"] = t["photon_efficiency"]
        out[f"calib.photon_wavepacket_time_{n}"] = node.photon.wavepacket_time_s
    mem = node.memory
    # a coherence time for the analysis' exponential model: the Markovian T2 (the
    # quasi-static part is Gaussian); "no dephasing" as 1e6 s
    t2 = min(mem.markovian_t2_s, mem.quasi_static_t2_s, 1e6)
    for n in ("a", "ra", "rb", "b"):
        out[f"calib.memory_t2_{n}"] = t2
    ms = truth["ms"]
    out["calib.ms_frequency_blue_r"] = ms["blue_dds_hz"]
    out["calib.ms_frequency_red_r"] = ms["red_dds_hz"]
    out["calib.ms_amplitude_r"] = 1.0
    out["calib.ms_gate_time_r"] = ms["gate_time_s"]
    return out


def run_chain(tmp_path: Path, config, arguments: dict | None = None,
              calibrations: dict | None = None, seed: int = 0):
    """Run repository/repeater/repeater_chain.py on ``config``; returns the RunOutcome."""
    db_path = tmp_path / "dataset_db.pyon"
    cal = chain_calibrations(config, seed) if calibrations is None else calibrations
    db = DatasetDB(db_path)
    for key, value in cal.items():
        db.set(key, value, persist=True)
    db.save()
    request = RunRequest(experiment_file=EXPERIMENT, arguments=dict(arguments or {}),
                         device_db=DEVICE_DB, results_root=tmp_path, dataset_db=db_path,
                         seed=seed)
    outcome = run_experiment(request, world_factory=lambda ddb, s: ChainNetwork(ddb, config,
                                                                                   s))
    if outcome.error is not None:
        raise outcome.error
    return outcome
