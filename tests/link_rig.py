"""Run the link experiments (heralding, Bell, photon calibrations) on a chosen virtual node
with chosen persistent calibrations (test helper)."""

from __future__ import annotations

import math
from pathlib import Path

from ionlink.node import VirtualNetwork
from ionlink.runner.datasets import DatasetDB
from ionlink.runner.devices import load_device_db
from ionlink.runner.run import RunRequest, run_experiment
from tests.node_driver import quiet_config

ROOT = Path(__file__).resolve().parent.parent
DEVICE_DB = ROOT / "device_db.py"


def quiet_link_config(eta_parts: float = 1.0, alpha_time: float | None = None, **sections):
    """Quiet truth (tests.node_driver.quiet_config) without dark counts or stray light, with
    the photon path's collection, conversion and filter set to ``eta_parts`` each."""
    base = dict(photon={"collection_efficiency": eta_parts,
                        "conversion_efficiency": eta_parts,
                        "filter_transmission": eta_parts},
                station={"dark_count_rate_hz": 0.0},
                readout={"pmt_dark_count_rate_hz": 0.0,
                         "stray_light_rate_at_full_397_hz": 0.0})
    if alpha_time is not None:
        base["laser_393"] = {"generation_time_constant_s": alpha_time}
    for k, v in sections.items():
        base[k] = {**base.get(k, {}), **v}
    return quiet_config(**base)


def network(config, seed: int = 0) -> VirtualNetwork:
    return VirtualNetwork(load_device_db(DEVICE_DB), config, seed)


def truth_calibrations(config, seed: int = 0, photons: bool = True) -> dict:
    """Persistent calib.* datasets holding the node's true values at lab time 0, as a full
    calibration run would leave them (readout threshold 0: no dark counts)."""
    truth = network(config, seed).truth(0.0)
    out = {}
    for n in "ab":
        t = truth[n]
        out[f"calib.frequency_729_{n}"] = t["transition_729_dds_hz"]
        out[f"calib.pi_time_729_{n}"] = t["pi_time_s"]
        out[f"calib.amplitude_729_{n}"] = 1.0
        out[f"calib.readout_threshold_{n}"] = 0
        out[f"calib.fibre_delay_{n}"] = t["fibre_delay_s"]
        if photons:
            out[f"calib.photon_generation_time_{n}"] = \
                config.laser_393.generation_time_constant_s
            out[f"calib.photon_detection_efficiency_{n}"] = t["photon_efficiency"]
            out[f"calib.photon_wavepacket_time_{n}"] = config.photon.wavepacket_time_s
    return out


def run(tmp_path: Path, experiment: str, config, arguments: dict | None = None,
        calibrations: dict | None = None, seed: int = 0):
    """Run ``repository/<experiment>`` with the given persistent datasets; returns the
    RunOutcome (raises the experiment's error)."""
    db_path = tmp_path / "dataset_db.pyon"
    if calibrations:
        db = DatasetDB(db_path)
        for key, value in calibrations.items():
            db.set(key, value, persist=True)
        db.save()
    request = RunRequest(experiment_file=ROOT / "repository" / experiment,
                         arguments=dict(arguments or {}), device_db=DEVICE_DB,
                         results_root=tmp_path, dataset_db=db_path, seed=seed)
    outcome = run_experiment(request, world_factory=lambda ddb, s: VirtualNetwork(ddb, config,
                                                                                     s))
    if outcome.error is not None:
        raise outcome.error
    return outcome


def persistent(tmp_path: Path) -> DatasetDB:
    return DatasetDB(tmp_path / "dataset_db.pyon")


def single_photon_herald_probability(alpha: float, eta: float) -> float:
    """One click from the two nodes: one photon emitted and detected, or both emitted and at
    least one detected (two photons bunch at the beam splitter, one click)."""
    return 2 * alpha * (1 - alpha) * eta + alpha**2 * (2 * eta - eta**2)


def heralded_dd_fraction(alpha: float, eta: float) -> float:
    """Fraction of heralds with both ions excited (|DD>, no entanglement)."""
    both = alpha**2 * (2 * eta - eta**2)
    return both / single_photon_herald_probability(alpha, eta)


def binomial_sigma(p: float, n: int) -> float:
    return math.sqrt(max(p * (1 - p), 1.0 / n) / n)
