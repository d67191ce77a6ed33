"""Dataset names that `ionlink analyze` recognises in an ARTIQ results file.

Experiments that want their data analysed write these keys with `set_dataset(...,
archive=True)` (stored under `datasets/` in the results file). Units are SI unless the name
says otherwise (`_mu`: RTIO machine units, 1 mu = `heralding.ref_period_s`, default 1 ns).

Calibration scans (any number, <name> without dots):
    calib.<name>.x          1-D scan points (s for times, Hz for frequencies)
    calib.<name>.y          measured values; probabilities when n_shots is given
    calib.<name>.model      fit model name: one of analysis.fit_models.MODELS
                            (default: <name> itself if it is a model name)
    calib.<name>.n_shots    optional, shots per point (scalar or per point): binomial weights
    calib.<name>.sigma      optional, absolute standard errors of y
Readout calibration:
    readout.bright_counts   photon counts per shot, ion prepared bright
    readout.dark_counts     photon counts per shot, ion prepared dark
Heralded entanglement runs:
    heralding.attempts      total number of attempts (int)
    heralding.heralds       number of heralds (int)
    heralding.duration_s    wall-clock duration of the run (s)
    heralding.herald_times_mu   optional, RTIO timestamps of the heralds (int64, mu)
    heralding.ref_period_s  optional, seconds per mu (default 1e-9)
    heralding.memory_t2_s   optional, memory coherence time T2 (s) for the figure of merit
Bell / DI-QKD rounds (one entry per round, all the same length):
    bell.x, bell.y          settings of node A and node B (0/1)
    bell.a, bell.b          outcomes (0/1)
    bell.is_test            optional, 1 for test (CHSH) rounds, 0 for key rounds; without
                            it every round counts for CHSH
Two-qubit tomography:
    tomography.counts       counts of shape (3, 3, 4) [basis_A, basis_B, outcome], bases X, Y,
                            Z, outcome 2 a + b (see analysis.tomography)
A Photon-HDF5 time-tag file is recognised by `photon_data/timestamps` at its root.
"""

from __future__ import annotations

import re

CALIBRATION_PATTERN = re.compile(r"^calib\.(?P<name>[^.]+)\.(?P<field>x|y|model|n_shots|sigma)$")
CALIBRATION_REQUIRED = ("x", "y")

READOUT_BRIGHT = "readout.bright_counts"
READOUT_DARK = "readout.dark_counts"

HERALDING_ATTEMPTS = "heralding.attempts"
HERALDING_HERALDS = "heralding.heralds"
HERALDING_DURATION = "heralding.duration_s"
HERALDING_TIMES = "heralding.herald_times_mu"
HERALDING_REF_PERIOD = "heralding.ref_period_s"
HERALDING_T2 = "heralding.memory_t2_s"
HERALDING_REQUIRED = (HERALDING_ATTEMPTS, HERALDING_HERALDS, HERALDING_DURATION)
DEFAULT_REF_PERIOD_S = 1e-9

BELL_ROUNDS = ("bell.x", "bell.y", "bell.a", "bell.b")
BELL_IS_TEST = "bell.is_test"

TOMOGRAPHY_COUNTS = "tomography.counts"

PHOTON_HDF5_TIMESTAMPS = "photon_data/timestamps"


def calibration_names(dataset_names) -> dict[str, dict[str, str]]:
    """{<name>: {field: dataset key}} for every calib.<name>.* group among `dataset_names`."""
    groups: dict[str, dict[str, str]] = {}
    for key in dataset_names:
        match = CALIBRATION_PATTERN.match(key)
        if match:
            groups.setdefault(match["name"], {})[match["field"]] = key
    return groups
