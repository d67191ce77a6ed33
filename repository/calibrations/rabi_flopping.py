"""Rabi flopping on the 729 nm qubit transition -> pi time."""

import numpy as np
from artiq.experiment import *

from ionlink.blocks import FluorescenceReadout, Rotation729, StatePreparation, node_argument
from ionlink.blocks.calibration import CalibrationScan
from ionlink.blocks.scan import ExcitationScan, run_with_pauses


def first_maximum(result, t_guess: float) -> float:
    """Time (s) of the first maximum of a fitted flop curve, searched on a fine grid over
    [0.5, 1.5] x ``t_guess`` (the n = 0 pi time)."""
    grid = np.linspace(0.5 * t_guess, 1.5 * t_guess, 4001)
    return float(grid[int(np.argmax(result.predict(grid)))])


def pi_time_and_error(result, draws: int = 400, seed: int = 0) -> tuple[float, float]:
    """Pi time (first maximum) of a ``rabi_thermal`` fit and its standard error, propagated
    by sampling the parameters from the fit covariance."""
    from analysis import fit_models

    f = result["rabi_frequency"]
    t_pi = first_maximum(result, 0.5 / f)
    rng = np.random.default_rng(seed)
    mean = np.array(list(result.values.values()))
    samples = rng.multivariate_normal(mean, result.covariance, size=draws)
    grid = np.linspace(0.5 * t_pi, 1.5 * t_pi, 2001)
    maxima = [grid[int(np.argmax(fit_models.rabi_flop_thermal(grid, *p)))] for p in samples
              if p[0] > 0]
    return t_pi, float(np.std(maxima))


class RabiFlopping(EnvExperiment):
    """Rabi flopping (729 nm)

    Each shot prepares S1/2 (quench, Doppler cooling), applies a resonant 729 pulse of the
    scanned length at the calibrated transition frequency and reads the state out. P(D) vs.
    pulse length is fitted with thermal Rabi flopping (``rabi_thermal``: carrier Rabi
    frequency reduced by the Debye-Waller factor of a thermal phonon distribution, binomial
    errors). On a good fit the first maximum of the fitted curve, the pi time of the
    Doppler-cooled ion, is stored as ``calib.pi_time_729_<node>``.
    """

    def build(self):
        self.setattr_device("core")
        self.setattr_device("scheduler")
        node = node_argument(self, "which node's ion to calibrate")
        self.setattr_argument("durations",
                              Scannable(default=RangeScan(0.0, 30 * us, 31), unit="us",
                                        global_min=0.0, global_max=10 * ms),
                              group="Scan", tooltip="729 pulse lengths")
        self.setattr_argument("shots", NumberValue(50, precision=0, step=10, min=1,
                                                   type="int"),
                              group="Scan", tooltip="shots per pulse length")
        self.setattr_argument("max_relative_error", NumberValue(0.05, min=1e-4, max=1.0),
                              group="Acceptance",
                              tooltip="store the pi time only if its relative standard "
                                      "error is below this")
        self.prep = StatePreparation(self, node)
        self.rotation = Rotation729(self, node)
        self.readout = FluorescenceReadout(self, node)
        self.scan = CalibrationScan(self, "rabi_729", node)
        self.points = ExcitationScan(self, self.prep, self.rotation, self.readout, self.scan)

    def prepare(self):
        super().prepare()
        self.x = np.array(list(self.durations), dtype=float)
        if self.x.size < 8:
            raise ValueError(f"Rabi flopping needs >= 8 pulse lengths, got {self.x.size}")
        if np.any(self.x < 0):
            raise ValueError("pulse lengths must be >= 0 s")
        self.points.configure(np.full(self.x.size, self.rotation.frequency), self.x,
                              self.shots)
        self.done = 0

    def run(self):
        self.scan.start(self.x, "rabi_thermal", n_shots=self.shots, unit="us")
        run_with_pauses(self, self.points.run_points, self.x.size, self.points.init)

    def analyze(self):
        from analysis.fits import fit

        scan = self.scan
        points = scan.measured_points(8)
        if points is None:
            return
        x, y = points
        result = fit("rabi_thermal", x, y, n_shots=self.shots)
        self.set_dataset("rabi_729.fit", str(result.to_dict()))
        if not result.good:
            scan.reject(f"rabi_thermal fit not good: {result.reason}")
            return
        t_pi, error = pi_time_and_error(result)
        self.set_dataset("rabi_729.pi_time", t_pi)
        self.set_dataset("rabi_729.pi_time_error", error)
        if not x.min() < t_pi < x.max():
            scan.reject(f"pi time {t_pi / us:.3f} us outside the scanned lengths")
            return
        if not error < self.max_relative_error * t_pi:
            scan.reject(f"pi time {t_pi / us:.3f} +- {error / us:.3f} us too uncertain")
            return
        print(f"729 pi time {t_pi / us:.4f} +- {error / us:.4f} us (was "
              f"{self.rotation.pi_time / us:.4f} us); n=0 Rabi frequency "
              f"{result['rabi_frequency'] / kHz:.3f} kHz, thermal spread "
              f"{result['spread'] / kHz:.3f} kHz")
        scan.accept("pi_time_729", t_pi, unit="us")
