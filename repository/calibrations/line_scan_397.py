"""397 nm line scan: fluorescence vs. AOM frequency -> S1/2-P1/2 resonance, cooling and
detection frequencies."""

import numpy as np
from artiq.experiment import *

from ionlink.blocks import FluorescenceReadout, StatePreparation, node_argument
from ionlink.blocks.calibration import CalibrationScan
from ionlink.blocks.scan import run_with_pauses


class LineScan397(EnvExperiment):
    """397 nm line scan

    For each 397 nm DDS frequency of the scan the ion is quenched and Doppler-cooled at the
    current cooling setting, then its fluorescence is counted with 397 at the scanned
    frequency (and 866 on). The mean counts are fitted with a Lorentzian (Poisson errors).
    On a good fit the persistent datasets ``calib.resonance_397_<node>`` (line centre, DDS Hz),
    ``calib.linewidth_397_<node>`` (power-broadened FWHM, DDS Hz) and the derived
    ``calib.frequency_397_cooling_<node>`` = centre + cooling offset x FWHM and
    ``calib.frequency_397_detection_<node>`` = centre + detection offset x FWHM are stored.
    """

    def build(self):
        self.setattr_device("core")
        self.setattr_device("scheduler")
        node = node_argument(self, "which node's ion to calibrate")
        self.setattr_argument("frequencies",
                              Scannable(default=RangeScan(60 * MHz, 160 * MHz, 26),
                                        unit="MHz", global_min=1 * MHz,
                                        global_max=400 * MHz),
                              group="Scan", tooltip="397 nm DDS frequencies of the scan")
        self.setattr_argument("shots", NumberValue(20, precision=0, step=10, min=1,
                                                   type="int"),
                              group="Scan", tooltip="shots per frequency")
        self.setattr_argument("detection_time", NumberValue(200 * us, unit="us",
                                                            min=1 * us, max=100 * ms),
                              group="Scan", tooltip="PMT gate length per shot")
        self.setattr_argument("cooling_offset", NumberValue(-0.5, min=-2.0, max=0.0),
                              group="Derived settings",
                              tooltip="cooling frequency = centre + this x FWHM (-0.5: the "
                                      "Doppler-limit optimum, half a linewidth red)")
        self.setattr_argument("detection_offset", NumberValue(-0.25, min=-2.0, max=0.0),
                              group="Derived settings",
                              tooltip="detection frequency = centre + this x FWHM (red of "
                                      "resonance: bright and still cooling)")
        self.setattr_argument("max_center_error", NumberValue(1 * MHz, unit="MHz", min=0.0),
                              group="Acceptance",
                              tooltip="store only if the centre's standard error is below "
                                      "this")
        self.prep = StatePreparation(self, node)
        self.readout = FluorescenceReadout(self, node)
        self.scan = CalibrationScan(self, "line_397", node)

    def prepare(self):
        super().prepare()
        self.x = np.array(list(self.frequencies), dtype=float)
        if self.x.size < 5:
            raise ValueError(f"the 397 line scan needs >= 5 frequencies, got {self.x.size}")
        self.mean_counts = np.full(self.x.size, np.nan)
        self.done = 0

    @kernel
    def init(self):
        self.core.reset()
        self.prep.init()
        self.readout.init()

    @kernel
    def run_points(self, start: TInt32) -> TInt32:
        """Scan points ``start``.. until done or a pause is due; returns the next index."""
        self.core.break_realtime()
        for i in range(start, len(self.x)):
            if self.scheduler.check_pause():
                return i
            total = 0
            for _ in range(self.shots):
                self.prep.prepare_state()
                total += self.readout.detect_at(self.x[i], self.detection_time)
                self.core.break_realtime()
            self.scan.record(i, total / self.shots)
        return len(self.x)

    def run(self):
        self.scan.start(self.x, "lorentzian", unit="MHz")
        run_with_pauses(self, self.run_points, self.x.size)

    def analyze(self):
        from analysis.fits import fit

        scan = self.scan
        points = scan.measured_points(5)
        if points is None:
            return
        x, y = points
        # Poisson errors of a mean of `shots` counts (at least one count's worth).
        sigma = np.sqrt(np.maximum(y, 1.0 / self.shots) / self.shots)
        all_sigma = np.sqrt(np.maximum(scan.y, 1.0 / self.shots) / self.shots)
        scan.set_sigma(np.where(scan.measured(), all_sigma, np.nan))
        result = fit("lorentzian", x, y, sigma=sigma)
        self.set_dataset("line_397.fit", str(result.to_dict()))
        if not result.good:
            scan.reject(f"Lorentzian fit not good: {result.reason}")
            return
        center, fwhm = result["center"], result["fwhm"]
        if not x.min() <= center <= x.max():
            scan.reject(f"centre {center / MHz:.3f} MHz outside the scan")
            return
        if not result.errors["center"] < self.max_center_error:
            scan.reject(f"centre error {result.errors['center'] / MHz:.3f} MHz above "
                        f"{self.max_center_error / MHz:.3f} MHz")
            return
        if not result.errors["fwhm"] < 0.5 * fwhm:
            scan.reject(f"line width {fwhm / MHz:.3f} +- {result.errors['fwhm'] / MHz:.3f} "
                        "MHz not resolved")
            return
        if result["amplitude"] <= 0:
            scan.reject("no fluorescence peak (amplitude <= 0)")
            return
        print(f"397 resonance {center / MHz:.4f} +- {result.errors['center'] / MHz:.4f} MHz, "
              f"FWHM {fwhm / MHz:.3f} +- {result.errors['fwhm'] / MHz:.3f} MHz")
        scan.accept("resonance_397", center, unit="MHz")
        scan.accept("linewidth_397", fwhm, unit="MHz")
        scan.accept("frequency_397_cooling", center + self.cooling_offset * fwhm, unit="MHz")
        scan.accept("frequency_397_detection", center + self.detection_offset * fwhm,
                    unit="MHz")
