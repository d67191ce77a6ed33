"""Memory coherence of the 729 nm qubit under dynamical decoupling (spin echo / CPMG) -> T2."""

import numpy as np
from artiq.experiment import *

from ionlink.blocks import FluorescenceReadout, Rotation729, StatePreparation, node_argument
from ionlink.blocks.calibration import CalibrationScan
from ionlink.blocks.scan import run_with_pauses

PI = 3.141592653589793


class MemoryCoherence(EnvExperiment):
    """Memory coherence (dynamical decoupling)

    Each shot: prepare S1/2, pi/2 pulse about x (phase 0), then N pi pulses spaced by T/N,
    with T/(2N) free evolution before the first and after the last, and a final pi/2 pulse
    about x with phase 0 or 1/2; read out. The pi pulses are a CPMG train about y (phase 1/4
    turn, along the Bloch vector; N = 1 is a spin echo) or the XY4 / XY8 phase cycles, which
    also tolerate the pulse-area errors of a thermal ion when noise tips the Bloch vector off
    the axis between pulses. The contrast C(T) = P(D | 0) - P(D | 1/2) is the qubit
    coherence left after the total free evolution T. It is fitted with an exponential decay
    to zero (binomial errors propagated); its time constant is the memory coherence time
    under decoupling. D5/2 decay (lifetime T1) removes coherence at 1/(2 T1); the pure
    dephasing time is 1/(1/tau - 1/(2 T1)). On a good fit ``calib.memory_t2_<node>``
    (tau, s) and ``calib.dephasing_t2_<node>`` (s) are stored.
    """

    def build(self):
        self.setattr_device("core")
        self.setattr_device("scheduler")
        node = node_argument(self, "which node's ion to calibrate")
        self.setattr_argument("times",
                              Scannable(default=RangeScan(10 * ms, 300 * ms, 12), unit="ms",
                                        global_min=0.0, global_max=100.0),
                              group="Scan", tooltip="total free evolution times T")
        self.setattr_argument("pulses", NumberValue(256, precision=0, step=1, min=1,
                                                    max=100000, type="int"),
                              group="Scan",
                              tooltip="number N of decoupling pi pulses (1: spin echo); "
                                      "the spacing T/N must be short against the noise "
                                      "correlation time")
        self.setattr_argument("sequence", EnumerationValue(["XY8", "XY4", "CPMG"], "XY8"),
                              group="Scan",
                              tooltip="pi-pulse phases: CPMG (all along the Bloch vector: "
                                      "robust to area errors only for that state), XY4 / XY8 "
                                      "(x y x y [y x y x]: robust for any state; N must be a "
                                      "multiple of 4 / 8)")
        self.setattr_argument("shots", NumberValue(30, precision=0, step=10, min=1,
                                                   type="int"),
                              group="Scan", tooltip="shots per time and final phase")
        self.setattr_argument("d52_lifetime", NumberValue(1.168, unit="s", min=1e-3),
                              group="Analysis",
                              tooltip="D5/2 lifetime T1 for the pure-dephasing T2 (1.168(7) s, "
                                      "Barton et al. PRA 62, 032503 (2000))")
        self.setattr_argument("max_relative_error", NumberValue(0.3, min=1e-3, max=1.0),
                              group="Acceptance",
                              tooltip="store T2 only if its relative standard error is below "
                                      "this")
        self.prep = StatePreparation(self, node)
        self.rotation = Rotation729(self, node)
        self.readout = FluorescenceReadout(self, node)
        self.scan = CalibrationScan(self, "memory_coherence", node)

    def prepare(self):
        super().prepare()
        self.x = np.array(list(self.times), dtype=float)
        if self.x.size < 4:
            raise ValueError(f"the coherence scan needs >= 4 times, got {self.x.size}")
        # spacing between pi pulses, the half spacing at both ends and the total free
        # evolution, in machine units
        self.spacing_mu = np.array([self.core.seconds_to_mu(t / self.pulses)
                                    for t in self.x], dtype=np.int64)
        self.half_mu = self.spacing_mu // 2
        self.total_mu = self.spacing_mu * self.pulses
        self.pi_half_mu = np.int64(self.core.seconds_to_mu(0.5 * self.rotation.pi_time))
        # the DDS phase update (a few us) and half a pi pulse must fit into T / (2 N)
        min_half = self.core.seconds_to_mu(10 * us + self.rotation.pi_time)
        if np.any(self.half_mu < min_half):
            raise ValueError(f"free evolution T / (2 N) must be >= {min_half} ns (DDS phase "
                             "update and half a pi pulse); lengthen T or use fewer pulses")
        cycle = {"CPMG": [0.25], "XY4": [0.0, 0.25, 0.0, 0.25],
                 "XY8": [0.0, 0.25, 0.0, 0.25, 0.25, 0.0, 0.25, 0.0]}[self.sequence]
        if self.pulses % len(cycle):
            raise ValueError(f"{self.sequence} needs a multiple of {len(cycle)} pulses, got "
                             f"{self.pulses}")
        self.phases = np.array(cycle * (self.pulses // len(cycle)), dtype=float)
        self.alternate = len(cycle) > 1
        self.dark_phase_0 = np.zeros(self.x.size, dtype=np.int32)
        self.dark_phase_half = np.zeros(self.x.size, dtype=np.int32)
        self.done = 0

    @kernel
    def init(self):
        self.core.reset()
        self.prep.init()
        self.rotation.init()
        self.readout.init()

    @kernel
    def shot(self, i: TInt32, final_phase: TFloat) -> TInt32:
        """One decoupling shot at scan point ``i``; returns 1 for D (dark), 0 for S."""
        self.prep.prepare_state()
        self.rotation.half_pi(0.0)
        t0 = now_mu()
        self.rotation.set_axis(self.phases[0])
        # pi pulse k centred at t0 + (k + 1/2) * spacing; its phase set after the previous
        t = t0 + self.half_mu[i] - self.pi_half_mu
        for k in range(self.pulses):
            at_mu(t)
            self.rotation.rotate_on_axis(PI)
            if self.alternate and k + 1 < self.pulses:
                self.rotation.set_axis(self.phases[k + 1])
            t += self.spacing_mu[i]
        self.rotation.set_axis(final_phase)
        at_mu(t0 + self.total_mu[i])
        self.rotation.rotate_on_axis(0.5 * PI)
        return self.readout.measure()

    @kernel
    def run_sweeps(self, start: TInt32) -> TInt32:
        """Sweeps ``start``.. over all times (both final phases), one shot each per sweep,
        until done or a pause is due; returns the next sweep (sweeping spreads each point's
        shots over the run, so slow noise does not shift single points)."""
        self.core.break_realtime()
        for sweep in range(start, self.shots):
            if self.scheduler.check_pause():
                return sweep
            for i in range(len(self.x)):
                self.dark_phase_0[i] += self.shot(i, 0.0)
                self.core.break_realtime()
                self.dark_phase_half[i] += self.shot(i, 0.5)
                self.core.break_realtime()
            self.sweep_done(sweep + 1, self.dark_phase_0, self.dark_phase_half)
        return self.shots

    @rpc(flags={"async"})
    def sweep_done(self, sweeps: TInt32, dark0: TArray(TInt32), dark1: TArray(TInt32)):
        self.scan.update((np.asarray(dark0) - np.asarray(dark1)) / sweeps)

    def run(self):
        self.scan.start(self.x, "exponential_to_zero", unit="ms")
        run_with_pauses(self, self.run_sweeps, self.shots)

    def analyze(self):
        from analysis.fits import fit

        scan = self.scan
        if self.done < self.shots:
            scan.reject(f"only {self.done} of {self.shots} sweeps done")
            return
        n = self.shots
        p0 = self.dark_phase_0 / n
        p1 = self.dark_phase_half / n
        scan.update(p0 - p1)
        c0 = np.clip(p0, 0.5 / n, 1 - 0.5 / n)
        c1 = np.clip(p1, 0.5 / n, 1 - 0.5 / n)
        sigma = np.sqrt((c0 * (1 - c0) + c1 * (1 - c1)) / n)
        scan.set_sigma(sigma)
        self.set_dataset("memory_coherence.p_phase_0", p0)
        self.set_dataset("memory_coherence.p_phase_half", p1)
        result = fit("exponential_to_zero", scan.x, scan.y, sigma=sigma)
        self.set_dataset("memory_coherence.fit", str(result.to_dict()))
        if not result.good:
            scan.reject(f"exponential decay fit not good: {result.reason}")
            return
        tau, tau_error = result["tau"], result.errors["tau"]
        rate = 1.0 / tau - 0.5 / self.d52_lifetime
        print(f"memory coherence under {self.pulses}-pulse {self.sequence}: tau {tau / ms:.2f} +- "
              f"{tau_error / ms:.2f} ms")
        if not tau_error < self.max_relative_error * tau:
            scan.reject(f"tau {tau / ms:.2f} +- {tau_error / ms:.2f} ms too uncertain")
            return
        if not rate > 0:
            scan.reject(f"coherence time {tau:.3g} s not shorter than 2 T1: no dephasing "
                        "resolved")
            return
        t2 = 1.0 / rate
        t2_error = t2 * t2 / (tau * tau) * tau_error
        self.set_dataset("memory_coherence.dephasing_t2_error", t2_error)
        print(f"pure dephasing T2 {t2 / ms:.2f} +- {t2_error / ms:.2f} ms (T1 "
              f"{self.d52_lifetime} s)")
        scan.accept("memory_t2", tau, unit="ms")
        scan.accept("dephasing_t2", t2, unit="ms")
