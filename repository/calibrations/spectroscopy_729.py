"""729 nm spectroscopy: S1/2-D5/2 excitation vs. AOM frequency -> qubit transition frequency."""

import numpy as np
from artiq.experiment import *

from ionlink.blocks import FluorescenceReadout, Rotation729, StatePreparation, node_argument
from ionlink.blocks.calibration import CalibrationScan


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

    def prepare(self):
        super().prepare()
        self.center = self.rotation.frequency
        self.duration = self.pulse_time if self.pulse_time > 0 else self.rotation.pi_time
        self.x = self.center + np.array(list(self.detunings), dtype=float)
        if self.x.size < 6:
            raise ValueError(f"729 spectroscopy needs >= 6 frequencies, got {self.x.size}")
        self.done = 0

    @kernel
    def init(self):
        self.core.reset()
        self.prep.init()
        self.rotation.init()
        self.readout.init()

    @kernel
    def run_points(self, start: TInt32) -> TInt32:
        """Scan points ``start``.. until done or a pause is due; returns the next index."""
        self.core.break_realtime()
        for i in range(start, len(self.x)):
            if self.scheduler.check_pause():
                return i
            dark = 0
            for _ in range(self.shots):
                self.prep.prepare_state()
                self.rotation.pulse(self.x[i], self.duration, 0.0)
                dark += self.readout.measure()
                self.core.break_realtime()
            self.scan.record(i, dark / self.shots)
        return len(self.x)

    def run(self):
        self.scan.start(self.x, "rabi_line", n_shots=self.shots, unit="MHz")
        self.init()
        while self.done < self.x.size:
            self.done = self.run_points(self.done)
            if self.done < self.x.size:
                self.core.close()
                self.scheduler.pause()
                self.init()

    def analyze(self):
        from analysis.fits import fit

        scan = self.scan
        ok = scan.measured()
        if ok.sum() < 6:
            scan.reject(f"only {ok.sum()} points measured")
            return
        x, y = scan.x[ok], scan.y[ok]
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
