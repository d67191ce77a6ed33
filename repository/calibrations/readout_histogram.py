"""Readout calibration of node A: bright/dark PMT histograms -> threshold and fidelity."""

import numpy as np
from artiq.experiment import *


class ReadoutHistogram(EnvExperiment):
    """Readout histograms (node A)

    Prepares the ion alternately bright (S1/2) and dark (D5/2, by a 729 nm pi pulse),
    counts 397 nm fluorescence on the PMT for each shot, and from the two histograms
    chooses the count threshold with the best mean readout fidelity. A good result is
    stored as the persistent datasets ``calib.readout_threshold_a`` and
    ``calib.readout_fidelity_a``.
    """

    def build(self):
        self.setattr_device("core")
        self.setattr_device("pmt_a")
        self.setattr_device("dds_397_a")
        self.setattr_device("dds_866_a")
        self.setattr_device("dds_854_a")
        self.setattr_device("dds_729_a")
        self.setattr_argument("shots", NumberValue(300, precision=0, step=100, min=10,
                                                   type="int"),
                              group="Readout", tooltip="shots per state (bright and dark)")
        self.setattr_argument("detection_time", NumberValue(1 * ms, unit="ms", min=10 * us,
                                                            max=100 * ms),
                              group="Readout", tooltip="PMT gate length per shot")
        self.setattr_argument("cooling_time", NumberValue(500 * us, unit="us", min=0.0),
                              group="Preparation", tooltip="Doppler cooling before each shot")
        self.setattr_argument("frequency_397", NumberValue(105 * MHz, unit="MHz"),
                              group="Readout", tooltip="397 nm AOM frequency for detection")
        self.setattr_argument("min_fidelity", NumberValue(0.95, min=0.5, max=1.0),
                              group="Acceptance",
                              tooltip="store the threshold only above this fidelity")

    def prepare(self):
        self.frequency_729 = self.get_dataset("calib.frequency_729_a", 80 * MHz)
        self.pi_time_729 = self.get_dataset("calib.pi_time_729_a", 6 * us)
        self.bright_counts = np.zeros(self.shots, dtype=np.int32)
        self.dark_counts = np.zeros(self.shots, dtype=np.int32)

    @kernel
    def init_hardware(self):
        self.core.reset()
        self.dds_397_a.cpld.init()
        for dds in [self.dds_397_a, self.dds_866_a, self.dds_854_a, self.dds_729_a]:
            dds.init()
            dds.sw.off()
            delay(10 * us)
        self.dds_866_a.set(80 * MHz, amplitude=1.0)
        self.dds_854_a.set(80 * MHz, amplitude=1.0)
        self.dds_729_a.set(self.frequency_729, amplitude=1.0)
        self.dds_866_a.sw.on()

    @kernel
    def shot(self, dark) -> TInt32:
        # Reset to S with the 854 quench, then Doppler cool.
        self.dds_854_a.sw.pulse(5 * us)
        self.dds_397_a.set(100 * MHz, amplitude=1.0)
        self.dds_397_a.sw.pulse(self.cooling_time)
        if dark:
            self.dds_729_a.sw.pulse(self.pi_time_729)
        self.dds_397_a.set(self.frequency_397, amplitude=1.0)
        self.dds_397_a.sw.on()
        end = self.pmt_a.gate_rising(self.detection_time)
        self.dds_397_a.sw.off()
        counts = self.pmt_a.count(end)
        delay(20 * us)
        return counts

    @kernel
    def run_shots(self):
        self.core.break_realtime()
        for i in range(self.shots):
            self.bright_counts[i] = self.shot(False)
            self.dark_counts[i] = self.shot(True)
            self.core.break_realtime()

    def run(self):
        self.init_hardware()
        self.run_shots()
        self.set_dataset("readout.bright_counts", self.bright_counts)
        self.set_dataset("readout.dark_counts", self.dark_counts)

    def analyze(self):
        from analysis.readout import optimize_threshold

        result = optimize_threshold(self.bright_counts, self.dark_counts)
        self.set_dataset("readout.threshold", result.threshold)
        self.set_dataset("readout.fidelity", result.fidelity)
        self.set_dataset("readout.mean_bright", float(np.mean(self.bright_counts)))
        self.set_dataset("readout.mean_dark", float(np.mean(self.dark_counts)))
        if result.fidelity >= self.min_fidelity:
            self.set_dataset("calib.readout_threshold_a", result.threshold, persist=True)
            self.set_dataset("calib.readout_fidelity_a", result.fidelity, persist=True)
            print(f"readout threshold {result.threshold}, fidelity {result.fidelity:.4f}")
        else:
            print(f"readout fidelity {result.fidelity:.4f} below {self.min_fidelity}: "
                  "threshold not stored")
