"""Fluorescence readout of one node's qubit: 397 nm + 866 nm on, PMT counts, threshold.

Calibrated values (persistent datasets, read in ``prepare()``):

- ``calib.frequency_397_detection_<node>`` (Hz), ``calib.amplitude_397_detection_<node>``:
  397 AOM setting for detection (from the 397 nm line scan);
- ``calib.detection_time_<node>`` (s): PMT gate length;
- ``calib.readout_threshold_<node>`` (counts): bright when counts > threshold (readout
  histogram calibration, the convention of ``analysis.readout``).
"""

from artiq.experiment import (
    HasEnvironment,
    MHz,
    TBool,
    TFloat,
    TInt32,
    TInt64,
    delay_mu,
    kernel,
    ms,
)

from ionlink.blocks._node import calib_key, check_node

#: One coarse RTIO period (mu): events this far apart need no SED lane switch.
COARSE_MU = 8


class FluorescenceReadout(HasEnvironment):
    """State detection by 397 nm fluorescence: S1/2 scatters (bright), D5/2 does not (dark).

    ``FluorescenceReadout(parent, node="a")``. Kernels: :meth:`init`, :meth:`gate` (lasers
    and PMT gate for the calibrated detection time, no blocking) and :meth:`count` (blocks
    until the gate's end), :meth:`detect` (gate then count), :meth:`is_bright`,
    :meth:`classify`, :meth:`measure` (0 = bright = S1/2, 1 = dark = D5/2).

    Several nodes are read at once by opening their gates in one ``with parallel:`` and
    counting afterwards (each node has its own PMT input and 397/866 channels)::

        t = now_mu() + chunk_mu
        counts_a = 0
        counts_b = 0
        with parallel:
            end_a = self.readout_a.gate()
            end_b = self.readout_b.gate()
        # drain both inputs together in chunks (t: chunk ends) as the photons arrive
        while t < end_a or t < end_b:
            counts_a += self.readout_a.count(min(t, end_a))
            counts_b += self.readout_b.count(min(t, end_b))
            t += chunk_mu
        counts_a += self.readout_a.count(end_a)
        counts_b += self.readout_b.count(end_b)

    (``ionlink.blocks.bell.BellBasisMeasurement.read`` does this.)

    ``count``, ``detect`` and ``measure`` return with the RTIO counter at the end of the PMT
    gate: add slack (``delay`` or ``core.break_realtime()``) before the next output.
    """

    def build(self, node="a"):
        self.node = check_node(node)
        self.core = self.get_device("core")
        self.pmt = self.get_device("pmt_" + node)
        self.dds_397 = self.get_device("dds_397_" + node)
        self.dds_866 = self.get_device("dds_866_" + node)
        # calibrated values: typed placeholders, read in prepare()
        self.frequency_397 = 0.0
        self.amplitude_397 = 0.0
        self.detection_time = 0.0
        self.threshold = 0
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
    def gate_at(self, frequency: TFloat, duration: TFloat) -> TInt64:
        """866 on, 397 set to DDS ``frequency`` (Hz, calibrated detection amplitude), then
        397 on with the PMT gate open for ``duration`` seconds, 397 off; returns the gate's
        end (mu), which is the cursor afterwards. Does not block: read the counts with
        :meth:`count`.

        Laid out for the RTIO event dispatcher (SED): successive events are one coarse
        RTIO period apart except the two pairs that must coincide (397 on / gate open,
        gate close / 397 off), so each pair costs one lane switch and the gates of both
        nodes fit in one ``with parallel:`` (a branch that goes back in time needs lanes
        whose last event is older)."""
        self.dds_866.sw.on()
        delay_mu(COARSE_MU)
        self.dds_397.set(frequency, amplitude=self.amplitude_397)
        delay_mu(COARSE_MU)
        self.dds_397.sw.on()
        end = self.pmt.gate_rising(duration)
        self.dds_397.sw.off()
        return end

    @kernel
    def gate(self) -> TInt64:
        """Detection lasers on (866, 397 at the calibrated detection setting), the PMT gate
        open for the calibrated detection time, 397 off (866 stays on, as after cooling);
        returns the gate's end (mu) without blocking (see :meth:`count`). The gate opens
        about 1.5 us (866 switch and DDS update) after the cursor."""
        return self.gate_at(self.frequency_397, self.detection_time)

    @kernel
    def count(self, end_mu: TInt64) -> TInt32:
        """PMT counts registered before ``end_mu`` and not read yet (blocks until then):
        ``count(end)`` with the end returned by :meth:`gate` gives the gate's counts. Calls
        with increasing times drain the input in chunks, which is how several nodes'
        parallel gates are read together (each input FIFO holds 64 events)."""
        return self.pmt.count(end_mu)

    @kernel
    def detect_for(self, duration) -> TInt32:
        """Count PMT photons for ``duration`` seconds with 397 (detection setting) and 866 on;
        returns the count."""
        return self.detect_at(self.frequency_397, duration)

    @kernel
    def detect_at(self, frequency, duration) -> TInt32:
        """Count PMT photons for ``duration`` seconds with 397 at DDS ``frequency`` (Hz, the
        calibrated detection amplitude) and 866 on; returns the count (397 line scans)."""
        return self.count(self.gate_at(frequency, duration))

    @kernel
    def detect(self) -> TInt32:
        """PMT counts in the calibrated detection time (:meth:`gate` then :meth:`count`)."""
        return self.count(self.gate())

    @kernel
    def is_bright(self, counts) -> TBool:
        """True when ``counts`` exceed the calibrated threshold."""
        return counts > self.threshold

    @kernel
    def classify(self, counts: TInt32) -> TInt32:
        """Outcome of ``counts``: 0 = bright (S1/2), 1 = dark (D5/2)."""
        if self.is_bright(counts):
            return 0
        return 1

    @kernel
    def measure(self) -> TInt32:
        """Detect and classify: 0 = bright (S1/2), 1 = dark (D5/2)."""
        return self.classify(self.detect())
