"""Fibre delay of one node's photons to the heralding station -> calib.fibre_delay_<node>."""

from artiq.experiment import *

from ionlink.blocks import check_integer, check_real, node_argument
from ionlink.blocks.calibration import CalibrationScan
from ionlink.blocks.cooling import StatePreparation
from ionlink.blocks.photons import PhotonGeneration
from ionlink.blocks.station import ArrivalShots, StationGate, fibre_delay_seconds


class FibreDelay(EnvExperiment):
    """Fibre delay (photon arrival search)

    Each shot resets the ion (854 quench), fires a 393 nm pulse of large alpha and opens
    both station detectors from the end of the pulse (the photon's emission) for a search
    window covering fibres up to ``max_length``. Every click's timestamp relative to the
    emission goes into a histogram, fitted with an exponential wavepacket starting at the
    fibre delay over a flat dark-count background ("exponential_onset"). On a good fit with
    a small enough error the onset is stored as ``calib.fibre_delay_<node>`` (s), which the
    station gate of every photon experiment uses.
    """

    def build(self):
        self.setattr_device("core")
        self.setattr_device("scheduler")
        node = node_argument(self, tooltip="whose photons to time")
        self.setattr_argument("shots", NumberValue(2000, precision=0, step=100, min=10,
                                                   type="int"),
                              group="Scan", tooltip="excitation shots")
        self.setattr_argument("alpha", NumberValue(0.9, min=0.01, max=0.99, step=0.05),
                              group="Scan", tooltip="excitation probability per shot")
        self.setattr_argument("max_length", NumberValue(20.0, unit="km", scale=1.0, min=0.1,
                                                        max=200.0, step=1.0),
                              group="Scan", tooltip="longest node-to-station fibre searched")
        self.setattr_argument("bin_width", NumberValue(100 * ns, unit="ns", min=1 * ns,
                                                       max=10 * us),
                              group="Analysis", tooltip="histogram bin width")
        self.setattr_argument("cooling_interval", NumberValue(100, precision=0, step=10,
                                                              min=1, type="int"),
                              group="Scan", tooltip="shots between Doppler coolings")
        self.setattr_argument("max_error", NumberValue(20 * ns, unit="ns", min=0.0),
                              group="Acceptance",
                              tooltip="store the delay only if its standard error is below this")
        self.prep = StatePreparation(self, node)
        self.photons = PhotonGeneration(self, node, self.alpha)
        self.gate = StationGate(self, node)
        self.scan = CalibrationScan(self, "photon_arrival_search", node)
        self.arrivals = ArrivalShots(self, self.prep, self.photons, self.gate)

    def prepare(self):
        super().prepare()
        shots = check_integer("shots", self.shots, minimum=1)
        max_length = check_real("max_length", self.max_length, minimum=0.0, unit="km")
        self.search = fibre_delay_seconds(max_length) + 20 * us
        search_mu = round(self.search / self.core.ref_period)
        # the detectors open at the emission for the whole search window
        self.arrivals.setup(shots, self.cooling_interval, 0, search_mu)

    def run(self):
        self.arrivals.run()

    def analyze(self):
        scan = self.scan
        fitted = self.arrivals.analyze("fibre_delay", scan, 0.0, self.search, self.bin_width)
        if fitted is None:
            return
        offsets, result = fitted
        delay, error = result["t0"], result.errors["t0"]
        self.set_dataset("fibre_delay.delay", delay, unit="us", scale=us)
        self.set_dataset("fibre_delay.delay_error", error, unit="ns", scale=ns)
        if not error < self.max_error:
            scan.reject(f"delay {delay / us:.4f} us +- {error / ns:.2f} ns: error above "
                        f"{self.max_error / ns:.2f} ns")
            return
        print(f"fibre delay of node {self.node}: {delay / us:.4f} +- {error / ns:.2f} ns "
              f"(was {self.gate.delay / us:.4f} us); wavepacket decay "
              f"{result['tau'] / us:.3f} us; {offsets.size} clicks in {self.arrivals.done} "
              "shots")
        scan.accept("fibre_delay", delay, unit="us")
