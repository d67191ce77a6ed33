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
    heralding.herald_attempts   optional, attempt number (from 0) of each herald (int)
    heralding.fidelity      optional, estimated fidelity of the heralded state (with
                            heralding.fidelity_stderr)
    heralding.basis_a, heralding.basis_b    optional, measurement basis per herald (0 X,
                            1 Y, 2 Z), with outcomes heralding.outcome_a and
                            heralding.outcome_b_corrected (0/1, Pauli frame applied)
  optional, read by the applets (applets.heralding_monitor, applets.arrival_histogram):
    heralding.history.time_s     node time since the run's start at each report (s)
    heralding.history.attempts   cumulative attempts at each report (int)
    heralding.history.heralds    cumulative heralds at each report (int)
    heralding.arrival_mu         station click times after the photon's emission (int64, mu)
    heralding.arrival_detector   station detector (0/1) of each click in arrival_mu
    heralding.gate_start_mu, heralding.gate_stop_mu   station gate window, same origin (mu)
Bell / DI-QKD rounds (one entry per round, all the same length):
    bell.x, bell.y          settings of node A and node B (0/1; key rounds of DI-QKD may
                            use B's key setting 2, aligned with A's setting 0)
    bell.a, bell.b          outcomes (0/1)
    bell.is_test            optional, 1 for test (CHSH) rounds, 0 for key rounds; without
                            it every round counts for CHSH
  written by repository/bell/bell_test.py besides (optional):
    bell.b_raw, bell.herald_detector   B's outcome before the herald's Pauli frame
                            (bell.b = bell.b_raw XOR detector) and the heralding detector
    bell.chsh_running, bell.chsh_stderr_running, bell.qber_running, bell.rounds_done
                            broadcast after each batch of rounds (live plots)
    bell.link_phase_turns   calib.link_phase used (turns added to B's equatorial axes;
                            also heralding.link_phase_turns in heralding runs)
Link-phase calibration (repository/calibrations/link_phase.py): scan
    calib.link_phase_scan.{x,y,sigma,model} (x: B's azimuth in turns, y: correlator E, model
    "sinusoid"), rounds link_phase.{theta_b_turns,a,b,herald_detector}, fit
    link_phase.{phase,phase_stderr,visibility,visibility_stderr,chi2,dof}
Repeater chain runs (repository/repeater/repeater_chain.py; analysis.repeater):
    repeater.pairs, repeater.duration_s      end-to-end pairs and node time (s)
    repeater.p_ar, repeater.p_rb             measured success probability per attempt
    repeater.attempt_period_s, repeater.cutoff_s, repeater.swap_time_s, repeater.window_s
    repeater.cooling_per_slot_s   optional, mean cooling time per attempt slot (s)
    repeater.memory_t2_s, repeater.memory_decay_exponent   optional, T2 of the ions a, ra,
                            rb, b (s) and the decay shape k of exp(-(t/T2)^k)
    repeater.alpha, repeater.length_ar_km, repeater.length_rb_km,
    repeater.fibre_loss_db_per_km, repeater.pair_t2_s, repeater.discards
    repeater.wait_s, repeater.storage_ar_s, repeater.storage_rb_s   per pair (s)
    repeater.herald_time_ar_mu, repeater.herald_time_rb_mu, repeater.herald_detector_ar,
    repeater.herald_detector_rb, repeater.swap_outcome (2 z_ra + z_rb), repeater.frame_x,
    repeater.frame_z     per pair
    repeater.end_basis_a, repeater.end_basis_b, repeater.end_outcome_a,
    repeater.end_outcome_b_corrected    end-node rounds (Pauli frame applied)
    repeater.fidelity, repeater.fidelity_stderr   optional, end-to-end fidelity
    repeater.photon_efficiency_<a|ra|rb|b>        optional, calibrated arm efficiencies
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
HERALDING_HERALD_ATTEMPTS = "heralding.herald_attempts"
HERALDING_HISTORY_TIME = "heralding.history.time_s"
HERALDING_HISTORY_ATTEMPTS = "heralding.history.attempts"
HERALDING_HISTORY_HERALDS = "heralding.history.heralds"
HERALDING_FIDELITY = "heralding.fidelity"
HERALDING_FIDELITY_STDERR = "heralding.fidelity_stderr"
HERALDING_BASES = ("heralding.basis_a", "heralding.basis_b")
HERALDING_OUTCOMES = ("heralding.outcome_a", "heralding.outcome_b_corrected")
HERALDING_ARRIVAL = "heralding.arrival_mu"
HERALDING_ARRIVAL_DETECTOR = "heralding.arrival_detector"
HERALDING_GATE_START = "heralding.gate_start_mu"
HERALDING_GATE_STOP = "heralding.gate_stop_mu"
DEFAULT_REF_PERIOD_S = 1e-9

BELL_ROUNDS = ("bell.x", "bell.y", "bell.a", "bell.b")
BELL_IS_TEST = "bell.is_test"

TOMOGRAPHY_COUNTS = "tomography.counts"

REPEATER_PAIRS = "repeater.pairs"

PHOTON_HDF5_TIMESTAMPS = "photon_data/timestamps"


def calibration_names(dataset_names) -> dict[str, dict[str, str]]:
    """{<name>: {field: dataset key}} for every calib.<name>.* group among `dataset_names`."""
    groups: dict[str, dict[str, str]] = {}
    for key in dataset_names:
        match = CALIBRATION_PATTERN.match(key)
        if match:
            groups.setdefault(match["name"], {})[match["field"]] = key
    return groups
