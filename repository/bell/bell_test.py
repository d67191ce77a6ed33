"""Bell test / device-independent QKD rounds over the heralded A-B link (CHSH)."""

import numpy as np
from artiq.experiment import *

from ionlink.blocks import check_integer, check_real
from ionlink.blocks.bell import BellBasisMeasurement
from ionlink.blocks.link import (
    ATTEMPT_TRACE,
    COOLING_TRACE,
    EntanglementLink,
    LinkBatches,
    declare_link_arguments,
)
from ionlink.blocks.station import NO_CLICK

#: Measurement axes (azimuth, turns, in the link frame of ionlink.blocks.bell) of node A's
#: settings x = 0, 1 and node B's y = 0, 1 (CHSH) and y = 2 (key setting, aligned with A's
#: x = 0), optimal for psi+ = (|01> + |10>)/sqrt2, whose correlator is
#: E = cos(2 pi (theta_a - theta_b)): E_00 = E_01 = E_10 = -E_11 = 1/sqrt2, S = 2 sqrt2
#: (analysis.bell: S = E00 + E01 + E10 - E11, E = P(a = b) - P(a != b)), and on key rounds
#: (x, y) = (0, 2) E = 1, i.e. a = b and a small QBER.
ANGLES_A = (0.0, 0.25)
ANGLES_B = (0.125, -0.125, 0.0)
KEY_SETTING_B = 2


class BellTest(LinkBatches, EnvExperiment):
    """Bell test / DI-QKD rounds (CHSH)

    Each round is one heralded entangled pair (the attempt loop of the heralded-entanglement
    experiment). Per round the host draws, before the round, whether it is a test round
    (probability ``test_fraction``) and the settings: test rounds take x, y uniformly from
    {0, 1}, key rounds x = 0 and B's key setting y = 2. The choices come from numpy's PCG64
    generator seeded with ``seed`` and are all stored. Both ions are then measured along the
    chosen equatorial axes (729 nm pi/2 pulse, fluorescence readout) in the link frame: node
    B's axes are shifted by the calibrated link phase ``calib.link_phase`` (turns; run
    ``repository/calibrations/link_phase.py`` first, with the same link settings, and again
    when it has drifted, see there), so the detector-0 state is psi+. A herald at detector 1
    prepares the state of detector 0 up to Z on node B, so B flips its outcome then (``b``;
    the raw outcome is kept as ``bell.b_raw``). Running CHSH S (test rounds) and QBER (key
    rounds) are broadcast after each batch; long runs yield to the scheduler between
    batches.
    """

    def build(self):
        self.setattr_device("core")
        self.setattr_device("core_dma")
        self.setattr_device("scheduler")
        self.setattr_argument("rounds", NumberValue(400, precision=0, step=100, min=1,
                                                    type="int"),
                              group="Run", tooltip="heralded rounds to measure")
        self.setattr_argument("batch_rounds", NumberValue(100, precision=0, step=10, min=1,
                                                          type="int"),
                              group="Run", tooltip="rounds per kernel run; between runs the "
                              "running S and QBER update and the experiment yields if asked")
        self.setattr_argument("max_attempts", NumberValue(10_000_000, precision=0,
                                                          step=100000, min=1, type="int"),
                              group="Run", tooltip="stop after this many attempts in total")
        self.setattr_argument("test_fraction", NumberValue(1.0, min=0.0, max=1.0, step=0.05),
                              group="Protocol", tooltip="probability that a round is a CHSH "
                              "test round (else a key round); 1 = plain Bell test")
        self.setattr_argument("seed", NumberValue(0, precision=0, step=1, min=0, type="int"),
                              group="Protocol", tooltip="seed of the host's setting choices")
        declare_link_arguments(self)
        self.link = EntanglementLink(self, alpha=self.alpha, link_length=self.link_length,
                                     window=self.window,
                                     cooling_interval=self.cooling_interval,
                                     click_capacity=1 << 14)
        self.bell = BellBasisMeasurement(self)
        # per-batch arrays: typed placeholders, sized in prepare() (arguments are None
        # while ARTIQ's master examines the repository)
        self.theta_a = np.zeros(0)
        self.theta_b = np.zeros(0)
        self.outcomes = np.zeros(0, dtype=np.int32)
        self.detectors = np.zeros(0, dtype=np.int32)
        self.herald_times = np.zeros(0, dtype=np.int64)
        self.batch_done = np.int32(0)
        self.batch_attempts = np.int32(0)
        self.batch_duration_mu = np.int64(0)
        self.need_init = True
        self.settle = 20 * us
        self.kernel_invariants = {"core", "core_dma", "link", "bell", "settle"}

    def prepare(self):
        super().prepare()
        check_real("test_fraction", self.test_fraction, minimum=0.0, maximum=1.0)
        check_integer("max_attempts", self.max_attempts, minimum=1)
        batch = check_integer("batch_rounds", self.batch_rounds, minimum=1)
        self.theta_a = np.zeros(batch)
        self.theta_b = np.zeros(batch)
        self.outcomes = np.zeros(batch, dtype=np.int32)
        self.detectors = np.zeros(batch, dtype=np.int32)
        self.herald_times = np.zeros(batch, dtype=np.int64)
        rng = np.random.default_rng(self.seed)
        n = check_integer("rounds", self.rounds, minimum=1)
        self.is_test = (rng.random(n) < self.test_fraction).astype(np.int32)
        self.x = np.where(self.is_test == 1, rng.integers(0, 2, n), 0).astype(np.int32)
        self.y = np.where(self.is_test == 1, rng.integers(0, 2, n),
                          KEY_SETTING_B).astype(np.int32)
        self.a = np.zeros(n, dtype=np.int32)
        self.b_raw = np.zeros(n, dtype=np.int32)
        self.herald_detector = np.zeros(n, dtype=np.int32)
        self.herald_time_mu = np.zeros(n, dtype=np.int64)
        self.measured = 0
        self.attempts_total = 0
        self.duration = 0.0

    # ------------------------------------------------------------------ kernel
    @kernel
    def run_batch(self, rounds: TInt32, max_attempts: TInt32):
        """Up to ``rounds`` heralded rounds within ``max_attempts`` attempts."""
        if self.need_init:
            self.core.reset()
            self.link.init()
            self.bell.init()
            self.need_init = False
        self.core.break_realtime()
        attempt_handle = self.core_dma.get_handle(ATTEMPT_TRACE)
        cooling_handle = self.core_dma.get_handle(COOLING_TRACE)
        self.core.break_realtime()
        t_begin = now_mu()
        remaining = max_attempts
        k = 0
        while k < rounds and remaining > 0:
            d = self.link.attempt_until_herald(attempt_handle, cooling_handle, remaining)
            remaining -= self.link.attempts_done
            if d == NO_CLICK:
                break
            self.detectors[k] = d
            self.herald_times[k] = self.link.herald_time_mu
            self.outcomes[k] = self.bell.measure_axes(self.theta_a[k], self.theta_b[k])
            delay(self.settle)
            k += 1
        self.batch_done = k
        self.batch_attempts = max_attempts - remaining
        self.batch_duration_mu = now_mu() - t_begin

    # ------------------------------------------------------------------ host
    def publish(self) -> None:
        """Rounds so far and the running CHSH S / QBER as broadcast datasets."""
        from analysis.bell import chsh_from_rounds

        m = self.measured
        b = self.b_raw[:m] ^ self.herald_detector[:m]
        for key, value in (("bell.x", self.x[:m]), ("bell.y", self.y[:m]),
                           ("bell.a", self.a[:m]), ("bell.b", b),
                           ("bell.is_test", self.is_test[:m])):
            self.set_dataset(key, value, broadcast=True)
        test = self.is_test[:m] == 1
        seen = np.zeros((2, 2), dtype=bool)
        seen[self.x[:m][test], self.y[:m][test]] = True
        s = s_err = float("nan")
        if seen.all():
            r = chsh_from_rounds(self.x[:m][test], self.y[:m][test], self.a[:m][test], b[test])
            s, s_err = r.value, r.stderr
        key = ~test
        qber = float(np.mean(self.a[:m][key] != b[key])) if key.any() else float("nan")
        self.set_dataset("bell.chsh_running", s, broadcast=True)
        self.set_dataset("bell.chsh_stderr_running", s_err, broadcast=True)
        self.set_dataset("bell.qber_running", qber, broadcast=True)
        self.set_dataset("bell.rounds_done", m, broadcast=True)
        self.set_dataset("heralding.attempts", self.attempts_total, broadcast=True)
        self.set_dataset("heralding.heralds", m, broadcast=True)
        self.set_dataset("heralding.duration_s", self.duration, broadcast=True, unit="s")
        self.set_dataset("heralding.rate_hz", m / self.duration if self.duration else 0.0,
                         broadcast=True, unit="Hz")
        self.chsh, self.chsh_stderr, self.qber = s, s_err, qber

    def start_batch(self, start: int, n: int) -> None:
        """Measurement axes of rounds ``start..start + n`` for the next batch."""
        self.theta_a[:n] = np.asarray(ANGLES_A)[self.x[start:start + n]]
        self.theta_b[:n] = np.asarray(ANGLES_B)[self.y[start:start + n]]

    def finish_batch(self, start: int, done: int) -> None:
        """Store the batch's ``done`` rounds from ``start`` and its node time."""
        self.a[start:start + done] = self.outcomes[:done] >> 1
        self.b_raw[start:start + done] = self.outcomes[:done] & 1
        self.herald_detector[start:start + done] = self.detectors[:done]
        self.herald_time_mu[start:start + done] = self.herald_times[:done]
        self.duration += float(self.batch_duration_mu) * self.core.ref_period

    def run(self):
        self.run_rounds()

    def analyze(self):
        from analysis import qkd

        m = self.measured
        self.set_dataset("bell.b_raw", self.b_raw[:m])
        self.set_dataset("bell.herald_detector", self.herald_detector[:m])
        self.set_dataset("heralding.herald_times_mu", self.herald_time_mu[:m])
        self.set_dataset("heralding.ref_period_s", self.core.ref_period)
        self.set_dataset("bell.angles_a_turns", np.array(ANGLES_A))
        self.set_dataset("bell.angles_b_turns", np.array(ANGLES_B))
        self.set_dataset("bell.link_phase_turns", self.bell.link_phase)
        self.set_dataset("bell.seed", int(self.seed))
        if m == 0:
            print(f"no heralded round in {self.attempts_total} attempts")
            return
        line = (f"{m} rounds ({int(self.is_test[:m].sum())} test) from "
                f"{self.attempts_total} attempts over {self.duration:.4g} s node time")
        if np.isfinite(self.chsh):
            line += f"; CHSH S = {self.chsh:.4f} +- {self.chsh_stderr:.4f}"
        if np.isfinite(self.qber):
            line += f"; QBER {self.qber:.4f}"
            if np.isfinite(self.chsh):
                s = min(max(self.chsh, 0.0), qkd.TSIRELSON)
                rate = qkd.asymptotic_key_rate(s, min(self.qber, 0.5))
                self.set_dataset("bell.asymptotic_key_rate", rate)
                line += f"; asymptotic key rate {rate:.4f} bit/key round"
                if 0.0 < self.test_fraction < 1.0:
                    finite = qkd.finite_key_length(m, self.test_fraction, s,
                                                   min(self.qber, 0.5))
                    self.set_dataset("bell.finite_key_bits", finite.key_length)
                    line += f"; finite-size key {finite.key_length} bits (EAT)"
        print(line)
