"""Photon generation and detection efficiency of one node -> generation time and eta."""

import numpy as np
from artiq.experiment import *

from ionlink.blocks import node_argument
from ionlink.blocks.calibration import CalibrationScan
from ionlink.blocks.cooling import StatePreparation
from ionlink.blocks.photons import PhotonGeneration
from ionlink.blocks.scan import run_with_pauses
from ionlink.blocks.station import NO_CLICK, StationGate


def efficiencies(result) -> tuple[float, float, float, float]:
    """(eta, eta error, generation time tau, tau error) from an "exponential_decay" fit of
    P(click) vs 393 pulse length T: P = offset + amplitude exp(-T / tau) with
    P(0) = amplitude + offset the dark-click probability and P(inf) = offset, so the
    probability that a generated photon clicks is eta = (offset - P0) / (1 - P0)."""
    a, off = result["amplitude"], result["offset"]
    p0 = a + off
    eta = (off - p0) / (1.0 - p0)
    # eta = -amplitude / (1 - amplitude - offset): gradient, with the fit covariance
    names = list(result.values)
    g = 1.0 - p0
    grad = np.zeros(len(names))
    grad[names.index("amplitude")] = -(1.0 - off) / g ** 2
    grad[names.index("offset")] = -a / g ** 2
    eta_err = float(np.sqrt(max(grad @ result.covariance @ grad, 0.0)))
    return float(eta), eta_err, float(result["tau"]), float(result.errors["tau"])


class PhotonEfficiency(EnvExperiment):
    """Photon generation efficiency (393 nm pulse length scan)

    For each 393 nm pulse length T the ion is reset (854 quench) and excited, and both
    station detectors are gated at the calibrated arrival time. The click probability
    P(T) = P0 + eta (1 - P0) (1 - exp(-T / tau)) (P0: dark clicks) is fitted
    ("exponential_decay", binomial errors). On a good fit with small enough relative errors
    the generation time tau (alpha = 1 - exp(-T / tau) at the 393 amplitude used) and eta,
    the probability that a generated photon clicks in the window, are stored as
    ``calib.photon_generation_time_<node>`` and ``calib.photon_detection_efficiency_<node>``,
    with the window as ``calib.photon_detection_window_<node>`` (so that other windows can
    rescale eta with the calibrated wavepacket time).
    """

    def build(self):
        self.setattr_device("core")
        self.setattr_device("scheduler")
        node = node_argument(self, tooltip="whose photons to count")
        self.setattr_argument("durations",
                              Scannable(default=RangeScan(0.0, 10 * us, 11), unit="us",
                                        global_min=0.0, global_max=1 * ms),
                              group="Scan", tooltip="393 nm pulse lengths")
        self.setattr_argument("shots", NumberValue(3000, precision=0, step=100, min=1,
                                                   type="int"),
                              group="Scan", tooltip="shots per pulse length")
        self.setattr_argument("window", NumberValue(5 * us, unit="us", min=100 * ns,
                                                    max=1 * ms),
                              group="Scan", tooltip="station window (as in heralding)")
        self.setattr_argument("cooling_interval", NumberValue(100, precision=0, step=10,
                                                              min=1, type="int"),
                              group="Scan", tooltip="shots between Doppler coolings")
        self.setattr_argument("max_relative_error", NumberValue(0.2, min=1e-4, max=1.0),
                              group="Acceptance", tooltip="store only if both relative "
                              "standard errors are below this")
        self.prep = StatePreparation(self, node)
        self.photons = PhotonGeneration(self, node, 0.5)
        self.gate = StationGate(self, node, window=self.window)
        self.scan = CalibrationScan(self, "photon_efficiency", node)
        self.pulses_mu = np.zeros(1, dtype=np.int64)

    def prepare(self):
        super().prepare()
        self.x = np.array(list(self.durations), dtype=float)
        if self.x.size < 5:
            raise ValueError(f"the efficiency scan needs >= 5 pulse lengths, got {self.x.size}")
        if np.any(self.x < 0):
            raise ValueError("393 pulse lengths must be >= 0 s")
        # A zero-length pulse is no pulse (dark clicks only).
        self.pulses_mu = np.array([round(t / self.core.ref_period) for t in self.x],
                                  dtype=np.int64)
        self.done = 0

    @kernel
    def init(self):
        self.core.reset()
        self.prep.init()
        self.photons.init()
        self.core.break_realtime()

    @kernel
    def run_points(self, start: TInt32) -> TInt32:
        """Scan points ``start``.. until done or a pause is due; returns the next index."""
        self.core.break_realtime()
        for i in range(start, len(self.pulses_mu)):
            if self.scheduler.check_pause():
                return i
            self.core.break_realtime()
            clicks = 0
            for j in range(self.shots):
                if j % self.cooling_interval == 0:
                    self.prep.prepare_state()
                self.photons.reset()
                if self.pulses_mu[i] >= 8:
                    self.photons.excite_mu(self.pulses_mu[i])
                t_end = self.gate.gate(now_mu())
                if self.gate.herald(t_end) != NO_CLICK:
                    clicks += 1
                delay(20 * us)
            self.scan.record(i, clicks / self.shots)
        return len(self.pulses_mu)

    def run(self):
        self.scan.start(self.x, "exponential_decay", n_shots=self.shots, unit="us")
        run_with_pauses(self, self.run_points, self.x.size)

    def analyze(self):
        from analysis.fits import fit

        scan = self.scan
        ok = scan.measured()
        if ok.sum() < 5:
            scan.reject(f"only {ok.sum()} points measured")
            return
        result = fit("exponential_decay", scan.x[ok], scan.y[ok], n_shots=self.shots)
        self.set_dataset("photon_efficiency.fit", str(result.to_dict()))
        if not result.good:
            scan.reject(f"exponential_decay fit not good: {result.reason}")
            return
        eta, eta_err, tau, tau_err = efficiencies(result)
        self.set_dataset("photon_efficiency.eta", eta)
        self.set_dataset("photon_efficiency.eta_error", eta_err)
        self.set_dataset("photon_efficiency.generation_time", tau, unit="us", scale=us)
        self.set_dataset("photon_efficiency.generation_time_error", tau_err, unit="us", scale=us)
        if not (eta > 0 and eta_err < self.max_relative_error * eta
                and tau_err < self.max_relative_error * tau):
            scan.reject(f"eta {eta:.4f} +- {eta_err:.4f}, generation time {tau / us:.3f} +- "
                        f"{tau_err / us:.3f} us: too uncertain")
            return
        print(f"node {self.node}: photon detection efficiency eta {eta:.4f} +- {eta_err:.4f}; "
              f"generation time {tau / us:.4f} +- {tau_err / us:.4f} us at 393 amplitude "
              f"{self.photons.amplitude}")
        scan.accept("photon_generation_time", tau, unit="us")
        scan.accept("photon_detection_efficiency", eta)
        scan.accept("photon_detection_window", float(self.gate.window), unit="us")
