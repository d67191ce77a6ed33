"""Fibre delay of one node's photons to the heralding station -> calib.fibre_delay_<node>."""

import numpy as np
from artiq.experiment import *

from ionlink.blocks import check_integer, check_real, node_argument
from ionlink.blocks.calibration import CalibrationScan
from ionlink.blocks.cooling import StatePreparation
from ionlink.blocks.photons import PhotonGeneration
from ionlink.blocks.station import StationGate, fibre_delay_seconds, fit_arrivals


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
        self.search_mu = np.int64(0)
        self.n_clicks = np.int32(0)
        self.offsets_mu = np.zeros(1, dtype=np.int64)

    def prepare(self):
        super().prepare()
        shots = check_integer("shots", self.shots, minimum=1)
        max_length = check_real("max_length", self.max_length, minimum=0.0, unit="km")
        self.search = fibre_delay_seconds(max_length) + 20 * us
        self.search_mu = np.int64(round(self.search / self.core.ref_period))
        self.offsets_mu = np.zeros(4 * shots + 64, dtype=np.int64)
        self.n_clicks = np.int32(0)
        self.done = 0

    @kernel
    def init(self):
        self.core.reset()
        self.prep.init()
        self.photons.init()
        self.core.break_realtime()

    @kernel
    def record_clicks(self, det, t_emit: TInt64, t_end: TInt64):
        t = det.timestamp_mu(t_end)
        while t >= 0:
            if self.n_clicks < len(self.offsets_mu):
                self.offsets_mu[self.n_clicks] = t - t_emit
                self.n_clicks += 1
            t = det.timestamp_mu(t_end)

    @kernel
    def run_shots(self, start: TInt32) -> TInt32:
        """Shots ``start``.. until done or a pause is due; returns the next shot."""
        self.core.break_realtime()
        for i in range(start, self.shots):
            if i % self.cooling_interval == 0:
                if self.scheduler.check_pause():
                    return i
                self.core.break_realtime()
                self.prep.prepare_state()
            self.photons.reset()
            self.photons.excite()
            t_emit = now_mu()
            t_end = self.gate.gate_at(t_emit, self.search_mu)
            self.record_clicks(self.gate.det0, t_emit, t_end)
            self.record_clicks(self.gate.det1, t_emit, t_end)
            self.core.break_realtime()
        return self.shots

    def run(self):
        self.init()
        while self.done < self.shots:
            self.done = self.run_shots(self.done)
            if self.done < self.shots:
                self.core.close()
                self.scheduler.pause()
                self.init()

    def analyze(self):
        offsets = self.offsets_mu[: int(self.n_clicks)] * self.core.ref_period
        self.set_dataset("fibre_delay.offsets_s", offsets)
        self.set_dataset("fibre_delay.shots", int(self.done))
        scan = self.scan
        if offsets.size < 20:
            scan.reject(f"only {offsets.size} clicks in {self.done} shots")
            return
        x, counts, sigma, result = fit_arrivals(offsets, 0.0, self.search, self.bin_width)
        scan.start(x, "exponential_onset", unit="us")
        for i, c in enumerate(counts):
            scan.record(i, float(c))
        scan.set_sigma(sigma)
        self.set_dataset("fibre_delay.fit", str(result.to_dict()))
        if not result.good:
            scan.reject(f"exponential_onset fit not good: {result.reason}")
            return
        delay, error = result["t0"], result.errors["t0"]
        self.set_dataset("fibre_delay.delay", delay, unit="us")
        self.set_dataset("fibre_delay.delay_error", error, unit="ns")
        if not error < self.max_error:
            scan.reject(f"delay {delay / us:.4f} us +- {error / ns:.2f} ns: error above "
                        f"{self.max_error / ns:.2f} ns")
            return
        print(f"fibre delay of node {self.node}: {delay / us:.4f} +- {error / ns:.2f} ns "
              f"(was {self.gate.delay / us:.4f} us); wavepacket decay "
              f"{result['tau'] / us:.3f} us; {offsets.size} clicks in {self.done} shots")
        scan.accept("fibre_delay", delay, unit="us")
