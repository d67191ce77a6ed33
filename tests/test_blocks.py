"""The shared kernel building blocks (ionlink.blocks) on the virtual node."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from ionlink.runner.datasets import DatasetDB
from ionlink.runner.run import RunRequest, run_experiment

ROOT = Path(__file__).resolve().parent.parent

PROBE = '''
import numpy as np
from artiq.experiment import *
from ionlink.blocks import FluorescenceReadout, Rotation729, StatePreparation


class BlockProbe(EnvExperiment):
    """Block probe"""

    def build(self):
        self.setattr_device("core")
        self.setattr_argument("node", EnumerationValue(["a", "b", "c"], "a"))
        self.setattr_argument("sequence", NumberValue(0, type="int", precision=0, step=1))
        self.setattr_argument("shots", NumberValue(40, type="int", precision=0, step=1))
        self.prep = StatePreparation(self, self.node)
        self.rotation = Rotation729(self, self.node)
        self.readout = FluorescenceReadout(self, self.node)

    def prepare(self):
        super().prepare()
        self.outcomes = np.zeros(self.shots, dtype=np.int32)
        self.counts = np.zeros(self.shots, dtype=np.int32)

    @kernel
    def run(self):
        self.core.reset()
        self.prep.init()
        self.rotation.init()
        self.readout.init()
        self.core.break_realtime()
        for i in range(self.shots):
            self.prep.prepare_state()
            if self.sequence == 1:
                self.rotation.pi_pulse()
            elif self.sequence == 2:
                self.rotation.half_pi(0.0)
                self.rotation.half_pi(0.5)
            elif self.sequence == 3:
                self.rotation.half_pi(0.0)
                self.rotation.rotate(-0.5 * 3.141592653589793, 0.0)
            elif self.sequence == 4:
                self.rotation.set_axis(0.25)
                self.rotation.rotate_on_axis(3.141592653589793)
            self.counts[i] = self.readout.detect()
            self.outcomes[i] = 0 if self.readout.is_bright(self.counts[i]) else 1
            self.core.break_realtime()

    def analyze(self):
        self.set_dataset("probe.outcomes", self.outcomes)
        self.set_dataset("probe.counts", self.counts)
        self.set_dataset("probe.settings", [self.rotation.frequency, self.rotation.pi_time,
                                            float(self.rotation.aom_passes),
                                            self.rotation.dds_turns_per_turn,
                                            float(self.readout.threshold),
                                            self.prep.cooling_time])
'''


def run_probe(tmp_path: Path, datasets: dict | None = None, **arguments):
    tmp_path.mkdir(parents=True, exist_ok=True)
    exp = tmp_path / "probe.py"
    exp.write_text(PROBE)
    root = tmp_path / "results"
    if datasets:
        db = DatasetDB(root / "dataset_db.pyon")
        for key, value in datasets.items():
            db.set(key, value, persist=True)
        db.save()
    outcome = run_experiment(RunRequest(exp, arguments=arguments,
                                        device_db=ROOT / "device_db.py", results_root=root))
    return outcome


def dark_fraction(outcome) -> tuple[int, int]:
    o = outcome.datasets["probe.outcomes"]
    return int(np.sum(o)), o.size


def test_unknown_node_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="node must be one of"):
        outcome = run_probe(tmp_path, node="c")
        if outcome.error is not None:
            raise outcome.error


def test_blocks_read_calibrations_with_first_run_fallbacks(tmp_path):
    outcome = run_probe(tmp_path / "first", shots=1)
    assert outcome.error is None
    frequency, pi_time, passes, turns, threshold, cooling = outcome.datasets["probe.settings"]
    assert (frequency, pi_time, passes, turns) == (80e6, 6e-6, 2.0, 0.5)
    calib = {"calib.frequency_729_b": 80.013e6, "calib.pi_time_729_b": 6.5e-6,
             "calib.aom_passes_729_b": 1, "calib.readout_threshold_b": 7,
             "calib.cooling_time_b": 2e-3}
    outcome = run_probe(tmp_path / "calibrated", calib, node="b", shots=1)
    assert outcome.error is None
    assert outcome.datasets["probe.settings"] == [80.013e6, 6.5e-6, 1.0, 1.0, 7.0, 2e-3]


def test_bad_calibration_value_names_the_dataset(tmp_path):
    outcome = run_probe(tmp_path, {"calib.pi_time_729_a": 0.0}, shots=1)
    assert isinstance(outcome.error, ValueError)
    assert "calib.pi_time_729_a" in str(outcome.error)


# Physics on the virtual node, calibrated to node A's truth (transition 80 MHz, thermal pi
# time ~6.6 us). With n = 40 shots, "mostly dark" means more than 70 % dark; if the true dark
# probability were only 0.9 (it is higher), failing that would have probability < 1e-3
# (binomial tail, checked below), and symmetrically for "mostly bright".
CALIBRATED = {"calib.frequency_729_a": 80e6, "calib.pi_time_729_a": 6.6e-6}
SHOTS = 40
LIMIT = 0.7


def test_binomial_limit_is_conservative():
    assert stats.binom.cdf(math.floor(LIMIT * SHOTS), SHOTS, 0.9) < 1e-3


@pytest.mark.parametrize("sequence, dark", [(0, False), (1, True), (2, False), (3, False),
                                            (4, True)])
def test_rotations_and_readout(tmp_path, sequence, dark):
    """0: nothing (bright); 1: pi pulse (dark); 2: pi/2 then pi/2 about the opposite axis
    (optical phase 1/2 turn: back to S, so the phase is optical, not the DDS's); 3: pi/2
    then a negative pi/2 rotation (back to S); 4: pi about y with set_axis/rotate_on_axis."""
    outcome = run_probe(tmp_path, CALIBRATED, sequence=sequence, shots=SHOTS)
    assert outcome.error is None
    k, n = dark_fraction(outcome)
    if dark:
        assert k > LIMIT * n
    else:
        assert n - k > LIMIT * n
