"""Ramsey interferometry on the 729 nm qubit -> transition detuning and T2*."""

import numpy as np
from artiq.experiment import *

from ionlink.blocks import FluorescenceReadout, Rotation729, StatePreparation, node_argument
from ionlink.blocks.calibration import CalibrationScan
from ionlink.blocks.scan import run_with_pauses


class Ramsey729(EnvExperiment):
    """Ramsey (729 nm)

    Each shot: prepare S1/2, pi/2 pulse (phase 0), wait T, pi/2 pulse with phase
    ``virtual_detuning * T`` (a phase advance that acts as an extra laser detuning), read out.
    P(D) vs. T is a fringe at |laser detuning + virtual detuning| (optical Hz) decaying as
    exp(-(T/T2*)^2) (quasi-static frequency noise); it is fitted with the ``ramsey`` model
    (binomial errors). The laser detuning is the fringe frequency minus the virtual detuning
    (valid for |detuning| < virtual detuning; a phase offset is taken to advance the optical
    phase, as for a +1-order AOM). On a good fit the corrected transition
    ``calib.frequency_729_<node>`` (DDS Hz: detuning / AOM passes) and
    ``calib.t2_star_729_<node>`` (s) are stored.
    """

    def build(self):
        self.setattr_device("core")
        self.setattr_device("scheduler")
        node = node_argument(self, "which node's ion to calibrate")
        self.setattr_argument("waits",
                              Scannable(default=RangeScan(0.0, 3 * ms, 121), unit="ms",
                                        global_min=0.0, global_max=10.0),
                              group="Scan", tooltip="free evolution times between the pulses")
        self.setattr_argument("virtual_detuning", NumberValue(8 * kHz, unit="kHz", min=0.0,
                                                              max=1 * MHz),
                              group="Scan",
                              tooltip="phase advance rate of the second pulse (optical Hz); "
                                      "must exceed the expected |detuning|, and the fringe "
                                      "(up to twice it) must be sampled by the wait steps")
        self.setattr_argument("shots", NumberValue(20, precision=0, step=10, min=1,
                                                   type="int"),
                              group="Scan", tooltip="shots per wait time")
        self.setattr_argument("max_frequency_error", NumberValue(200 * Hz, unit="Hz",
                                                                 min=0.0),
                              group="Acceptance",
                              tooltip="store the frequency only if its standard error "
                                      "(DDS Hz) is below this")
        self.prep = StatePreparation(self, node)
        self.rotation = Rotation729(self, node)
        self.readout = FluorescenceReadout(self, node)
        self.scan = CalibrationScan(self, "ramsey_729", node)

    def prepare(self):
        super().prepare()
        self.x = np.array(list(self.waits), dtype=float)
        if self.x.size < 10:
            raise ValueError(f"Ramsey needs >= 10 wait times, got {self.x.size}")
        if np.any(self.x < 0):
            raise ValueError("wait times must be >= 0 s")
        self.phases = self.virtual_detuning * self.x
        self.dark = np.zeros(self.x.size, dtype=np.int32)
        self.done = 0

    @kernel
    def init(self):
        self.core.reset()
        self.prep.init()
        self.rotation.init()
        self.readout.init()

    @kernel
    def run_sweeps(self, start: TInt32) -> TInt32:
        """Sweeps ``start``.. over all wait times, one shot per point and sweep, until done
        or a pause is due; returns the next sweep. Sweeping (rather than taking all shots of
        a point in a row) spreads each point's shots over the run, so slow frequency noise
        averages out instead of shifting single points."""
        self.core.break_realtime()
        for sweep in range(start, self.shots):
            if self.scheduler.check_pause():
                return sweep
            for i in range(len(self.x)):
                self.prep.prepare_state()
                self.rotation.half_pi(0.0)
                delay(self.x[i])
                self.rotation.half_pi(self.phases[i])
                self.dark[i] += self.readout.measure()
                self.core.break_realtime()
            self.sweep_done(sweep + 1, self.dark)
        return self.shots

    @rpc(flags={"async"})
    def sweep_done(self, sweeps: TInt32, dark: TArray(TInt32)):
        self.scan.update(np.asarray(dark) / sweeps)

    def run(self):
        self.scan.start(self.x, "ramsey", n_shots=self.shots, unit="ms")
        run_with_pauses(self, self.run_sweeps, self.shots)
        self.scan.update(self.dark / self.shots)

    def analyze(self):
        from analysis.fits import fit

        scan = self.scan
        if self.done < self.shots:
            scan.reject(f"only {self.done} of {self.shots} sweeps done")
            return
        x, y = scan.x, scan.y
        result = fit("ramsey", x, y, n_shots=self.shots)
        self.set_dataset("ramsey_729.fit", str(result.to_dict()))
        if not result.good:
            scan.reject(f"ramsey fit not good: {result.reason}")
            return
        passes = self.rotation.aom_passes
        detuning = result["detuning"] - self.virtual_detuning  # optical Hz
        error = result.errors["detuning"] / passes  # DDS Hz
        frequency = self.rotation.frequency - detuning / passes
        t2, t2_error = result["t2"], result.errors["t2"]
        self.set_dataset("ramsey_729.detuning", detuning)
        self.set_dataset("ramsey_729.t2_star", t2)
        print(f"Ramsey: laser detuning {detuning:.1f} Hz (optical), transition "
              f"{frequency / MHz:.7f} MHz +- {error:.1f} Hz (DDS), T2* {t2 / ms:.3f} +- "
              f"{t2_error / ms:.3f} ms")
        steps = np.diff(np.sort(x))
        nyquist = 0.5 / float(np.max(steps)) if steps.size else 0.0
        if not result["detuning"] < 0.9 * nyquist:
            scan.reject(f"fringe {result['detuning']:.1f} Hz too close to the sampling limit "
                        f"{nyquist:.1f} Hz of the wait steps")
            return
        if not abs(detuning) < self.virtual_detuning:
            scan.reject(f"|detuning| {abs(detuning):.1f} Hz not below the virtual detuning "
                        f"{self.virtual_detuning:.1f} Hz: sign ambiguous")
            return
        if not error < self.max_frequency_error:
            scan.reject(f"frequency error {error:.1f} Hz above {self.max_frequency_error} Hz")
            return
        if not t2 < 2 * x.max():
            scan.reject(f"T2* {t2 / ms:.3f} ms not resolved by waits up to "
                        f"{x.max() / ms:.3f} ms")
            return
        scan.accept("frequency_729", frequency, unit="MHz")
        scan.accept("t2_star_729", t2, unit="ms")
