"""729 nm spectroscopy: S1/2-D5/2 excitation vs. AOM frequency -> qubit transition frequency."""

import numpy as np
from artiq.experiment import *

from ionlink.blocks import FluorescenceReadout, Rotation729, StatePreparation, node_argument
from ionlink.blocks.calibration import CalibrationScan
from ionlink.blocks.scan import ExcitationScan, run_with_pauses


class Spectroscopy729(EnvExperiment):
    """729 nm spectroscopy

    Scans the 729 nm DDS frequency around the calibrated transition
    (``calib.frequency_729_<node>``); each shot prepares S1/2, applies one 729 pulse of the
    calibrated pi time (or the given duration) at the scanned frequency and reads the state
    out. The excitation probability P(D) is fitted with the spectrum of a rectangular pulse
    (``rabi_line``, binomial errors); on a good fit the line centre is stored as
    ``calib.frequency_729_<node>``.
    """

    def build(self):
        self.setattr_device("core")
        self.setattr_device("scheduler")
        node = node_argument(self, "which node's ion to calibrate")
        self.setattr_argument("detunings",
                              Scannable(default=RangeScan(-150 * kHz, 150 * kHz, 31),
                                        unit="kHz", global_min=-10 * MHz,
                                        global_max=10 * MHz),
                              group="Scan",
                              tooltip="DDS frequency offsets from the calibrated transition")
        self.setattr_argument("shots", NumberValue(50, precision=0, step=10, min=1,
                                                   type="int"),
                              group="Scan", tooltip="shots per frequency")
        self.setattr_argument("pulse_time", NumberValue(0.0, unit="us", min=0.0,
                                                        max=10 * ms),
                              group="Scan",
                              tooltip="729 pulse length; 0 uses the calibrated pi time")
        self.prep = StatePreparation(self, node)
        self.rotation = Rotation729(self, node)
        self.readout = FluorescenceReadout(self, node)
        self.scan = CalibrationScan(self, "spectroscopy_729", node)
        self.points = ExcitationScan(self, self.prep, self.rotation, self.readout, self.scan)

    def prepare(self):
        super().prepare()
        self.center = self.rotation.frequency
        self.duration = self.pulse_time if self.pulse_time > 0 else self.rotation.pi_time
        self.x = self.center + np.array(list(self.detunings), dtype=float)
        if self.x.size < 6:
            raise ValueError(f"729 spectroscopy needs >= 6 frequencies, got {self.x.size}")
        self.points.configure(self.x, np.full(self.x.size, self.duration), self.shots)
        self.done = 0

    def run(self):
        self.scan.start(self.x, "rabi_line", n_shots=self.shots, unit="MHz")
        run_with_pauses(self, self.points.run_points, self.x.size, self.points.init)

    def analyze(self):
        from analysis.fits import fit

        scan = self.scan
        points = scan.measured_points(6)
        if points is None:
            return
        x, y = points
        result = fit("rabi_line", x, y, n_shots=self.shots)
        self.set_dataset("spectroscopy_729.fit", str(result.to_dict()))
        if not result.good:
            scan.reject(f"rabi_line fit not good: {result.reason}")
            return
        center, error = result["center"], result.errors["center"]
        if not x.min() <= center <= x.max():
            scan.reject(f"centre {center / MHz:.6f} MHz outside the scan")
            return
        if result["contrast"] < 0.2:
            scan.reject(f"contrast {result['contrast']:.2f} too small for a line")
            return
        print(f"729 transition {center / MHz:.6f} MHz +- {error / kHz:.3f} kHz "
              f"(was {self.center / MHz:.6f} MHz)")
        scan.accept("frequency_729", center, unit="MHz")
