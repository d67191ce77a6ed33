"""Fluorescence readout of one node's qubit: 397 nm + 866 nm on, PMT counts, threshold.

Calibrated values (persistent datasets, read in ``prepare()``):

- ``calib.frequency_397_detection_<node>`` (Hz), ``calib.amplitude_397_detection_<node>``:
  397 AOM setting for detection (from the 397 nm line scan);
- ``calib.detection_time_<node>`` (s): PMT gate length;
- ``calib.readout_threshold_<node>`` (counts): bright when counts > threshold (readout
  histogram calibration, the convention of ``analysis.readout``).
"""

from artiq.experiment import HasEnvironment, MHz, TBool, TInt32, kernel, ms

from ionlink.blocks._node import calib_key, check_node


class FluorescenceReadout(HasEnvironment):
    """State detection by 397 nm fluorescence: S1/2 scatters (bright), D5/2 does not (dark).

    ``FluorescenceReadout(parent, node="a")``. Kernels: :meth:`init`, :meth:`detect` (counts),
    :meth:`is_bright`, :meth:`measure` (0 = bright = S1/2, 1 = dark = D5/2). ``detect`` and
    ``measure`` end at the end of the PMT gate with the RTIO counter there too: add slack
    (``delay`` or ``core.break_realtime()``) before the next output.
    """

    def build(self, node="a"):
        self.node = check_node(node)
        self.core = self.get_device("core")
        self.pmt = self.get_device("pmt_" + node)
        self.dds_397 = self.get_device("dds_397_" + node)
        self.dds_866 = self.get_device("dds_866_" + node)
        self.kernel_invariants = {"core", "pmt", "dds_397", "dds_866", "node"}

    def prepare(self):
        node = self.node
        self.frequency_397 = float(self.get_dataset(calib_key("frequency_397_detection", node),
                                                    105 * MHz))
        self.amplitude_397 = float(self.get_dataset(calib_key("amplitude_397_detection", node),
                                                    1.0))
        self.detection_time = float(self.get_dataset(calib_key("detection_time", node),
                                                     1 * ms))
        self.threshold = int(self.get_dataset(calib_key("readout_threshold", node), 1))
        if not self.detection_time > 0:
            raise ValueError(f"calib.detection_time_{node} must be > 0 s, "
                             f"got {self.detection_time}")
        self.kernel_invariants |= {"frequency_397", "amplitude_397", "detection_time",
                                   "threshold"}

    @kernel
    def init(self):
        """Put the PMT input in its idle state (gate closed). The 397/866 channels are
        initialised by DopplerCooling.init."""
        self.pmt.input()

    @kernel
    def detect_for(self, duration) -> TInt32:
        """Count PMT photons for ``duration`` seconds with 397 (detection setting) and 866 on;
        returns the count."""
        return self.detect_at(self.frequency_397, duration)

    @kernel
    def detect_at(self, frequency, duration) -> TInt32:
        """Count PMT photons for ``duration`` seconds with 397 at DDS ``frequency`` (Hz, the
        calibrated detection amplitude) and 866 on; returns the count (397 line scans)."""
        self.dds_397.set(frequency, amplitude=self.amplitude_397)
        self.dds_866.sw.on()
        self.dds_397.sw.on()
        end = self.pmt.gate_rising(duration)
        self.dds_397.sw.off()
        return self.pmt.count(end)

    @kernel
    def detect(self) -> TInt32:
        """PMT counts in the calibrated detection time."""
        return self.detect_for(self.detection_time)

    @kernel
    def is_bright(self, counts) -> TBool:
        """True when ``counts`` exceed the calibrated threshold."""
        return counts > self.threshold

    @kernel
    def measure(self) -> TInt32:
        """Detect and classify: 0 = bright (S1/2), 1 = dark (D5/2)."""
        if self.is_bright(self.detect()):
            return 0
        return 1
