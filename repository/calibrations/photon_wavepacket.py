"""Temporal wavepacket of one node's photons at the station.

Stores calib.photon_wavepacket_time_<node>.
"""

from artiq.experiment import *

from ionlink.blocks import check_integer, check_real, node_argument
from ionlink.blocks.calibration import CalibrationScan
from ionlink.blocks.cooling import StatePreparation
from ionlink.blocks.photons import PhotonGeneration
from ionlink.blocks.station import ArrivalShots, StationGate


class PhotonWavepacket(EnvExperiment):
    """Photon wavepacket (arrival histogram)

    Each shot resets the ion, fires a 393 nm pulse of large alpha and opens both station
    detectors around the calibrated arrival time (``calib.fibre_delay_<node>``, from the
    fibre-delay calibration) for a window of several wavepacket lengths. The click
    timestamps relative to the emission form a fine histogram fitted with an exponential
    wavepacket over a flat background ("exponential_onset"). On a good fit with a small
    enough relative error the decay time is stored as ``calib.photon_wavepacket_time_<node>``
    (s); the fitted onset is reported next to the calibrated delay as a check.
    """

    def build(self):
        self.setattr_device("core")
        self.setattr_device("scheduler")
        node = node_argument(self, tooltip="whose photons to time")
        self.setattr_argument("shots", NumberValue(5000, precision=0, step=100, min=10,
                                                   type="int"),
                              group="Scan", tooltip="excitation shots")
        self.setattr_argument("alpha", NumberValue(0.9, min=0.01, max=0.99, step=0.05),
                              group="Scan", tooltip="excitation probability per shot")
        self.setattr_argument("window", NumberValue(10 * us, unit="us", min=100 * ns,
                                                    max=1 * ms),
                              group="Scan", tooltip="detection window after the arrival")
        self.setattr_argument("pre_window", NumberValue(1 * us, unit="us", min=0.0,
                                                        max=100 * us),
                              group="Scan", tooltip="window start before the arrival")
        self.setattr_argument("bin_width", NumberValue(200 * ns, unit="ns", min=1 * ns,
                                                       max=1 * us),
                              group="Analysis", tooltip="histogram bin width")
        self.setattr_argument("cooling_interval", NumberValue(100, precision=0, step=10,
                                                              min=1, type="int"),
                              group="Scan", tooltip="shots between Doppler coolings")
        self.setattr_argument("max_relative_error", NumberValue(0.1, min=1e-4, max=1.0),
                              group="Acceptance", tooltip="store the wavepacket time only if "
                              "its relative standard error is below this")
        self.prep = StatePreparation(self, node)
        self.photons = PhotonGeneration(self, node, self.alpha)
        # window and pre_window are None while the repository is examined: the gate's
        # window (pre_window + window after the arrival) is set in prepare()
        self.gate = StationGate(self, node)
        self.scan = CalibrationScan(self, "photon_wavepacket", node)
        self.arrivals = ArrivalShots(self, self.prep, self.photons, self.gate)

    def prepare(self):
        window = check_real("window", self.window, minimum=0.0, min_open=True, unit="s")
        pre_window = check_real("pre_window", self.pre_window, minimum=0.0, unit="s")
        self.gate.window = pre_window + window
        self.gate.pre_window = pre_window
        super().prepare()
        shots = check_integer("shots", self.shots, minimum=1)
        # the detectors open pre_window before the calibrated arrival, for the gate window
        self.arrivals.setup(shots, self.cooling_interval, self.gate.arrival_offset_mu(),
                            int(self.gate.window_mu))

    def run(self):
        self.arrivals.run()

    def analyze(self):
        scan = self.scan
        lo = self.gate.delay - self.pre_window
        fitted = self.arrivals.analyze("photon_wavepacket", scan, lo, lo + self.gate.window,
                                       self.bin_width)
        if fitted is None:
            return
        offsets, result = fitted
        tau, error = result["tau"], result.errors["tau"]
        self.set_dataset("photon_wavepacket.tau", tau, unit="us", scale=us)
        self.set_dataset("photon_wavepacket.tau_error", error, unit="us", scale=us)
        self.set_dataset("photon_wavepacket.onset", result["t0"], unit="us", scale=us)
        if not error < self.max_relative_error * tau:
            scan.reject(f"wavepacket time {tau / us:.4f} +- {error / us:.4f} us too uncertain")
            return
        print(f"photon wavepacket of node {self.node}: decay time {tau / us:.4f} +- "
              f"{error / us:.4f} us; onset {result['t0'] / us:.4f} +- "
              f"{result.errors['t0'] / ns:.2f} ns (calibrated delay {self.gate.delay / us:.4f}"
              f" us); {offsets.size} clicks in {self.arrivals.done} shots")
        scan.accept("photon_wavepacket_time", tau, unit="us")
