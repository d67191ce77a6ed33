"""Link-phase calibration: the phase of the heralded A-B state -> ``calib.link_phase``.

Convention (see ``ionlink.blocks.bell``): a herald at station detector 0 leaves the ions in
(|10> + e^{i 2 pi phi} |01>)/sqrt2 in the nodes' 729 nm frames, and the correlator of A's
equatorial axis at azimuth theta_a with B's at theta_b is E = V cos(2 pi (theta_a - theta_b
+ phi)). phi = ``calib.link_phase`` (turns, in [-0.5, 0.5)) is the axis offset that
``BellBasisMeasurement`` adds to node B's equatorial axes. Detector-1 heralds are the same
state up to Z on B: B's outcome is flipped for them (detector-1 herald = Z on B).
"""

import math

import numpy as np
from artiq.experiment import *

from ionlink.blocks import check_integer
from ionlink.blocks.bell import BellBasisMeasurement, basis_phase_turns
from ionlink.blocks.link import (
    ATTEMPT_TRACE,
    COOLING_TRACE,
    EntanglementLink,
    LinkBatches,
    declare_link_arguments,
)
from ionlink.blocks.station import NO_CLICK

SCAN = "calib.link_phase_scan."


def fit_link_phase(theta_b, a, b) -> dict:
    """Fit E(theta_b) = c0 + V cos(2 pi (theta_b - phi)) to rounds with A at azimuth 0.

    ``theta_b`` (turns): B's azimuth per round; ``a``, ``b``: outcomes (0/1, b in the
    detector-0 frame). Weighted linear least squares of c0 + c1 cos + c2 sin on the
    correlators of each distinct azimuth, weights from Var(E) = (1 - E^2) / n with E the
    fitted value (two passes from the measured one). Returns phase (turns, [-0.5, 0.5)),
    phase_stderr (turns), visibility V, visibility_stderr, offset c0, chi2, dof, and per
    point x, y (correlators), sigma, n.
    """
    theta_b, a, b = (np.asarray(v) for v in (theta_b, a, b))
    if not theta_b.size == a.size == b.size:
        raise ValueError(f"theta_b, a, b must have equal lengths, got {theta_b.size}, "
                         f"{a.size}, {b.size}")
    x, inverse = np.unique(np.mod(theta_b, 1.0), return_inverse=True)
    if x.size < 4:
        raise ValueError(f"need rounds at >= 4 distinct azimuths of B, got {x.size}")
    n = np.bincount(inverse, minlength=x.size).astype(float)
    same = np.where(a == b, 1.0, -1.0)
    y = np.bincount(inverse, weights=same, minlength=x.size) / n
    design = np.column_stack([np.ones_like(x), np.cos(2 * np.pi * x), np.sin(2 * np.pi * x)])
    model = y
    for _ in range(3):
        var = np.clip(1.0 - np.clip(model, -1.0, 1.0) ** 2, 1.0 / n, None) / n
        w = 1.0 / var
        cov = np.linalg.inv(design.T @ (design * w[:, None]))
        c = cov @ (design.T @ (w * y))
        model = design @ c
    chi2 = float(np.sum(w * (y - model) ** 2))
    v = float(math.hypot(c[1], c[2]))
    phase = math.atan2(c[2], c[1]) / (2 * math.pi)
    phase = (phase + 0.5) % 1.0 - 0.5
    if v > 0:
        g_phase = np.array([0.0, -c[2], c[1]]) / v**2
        g_vis = np.array([0.0, c[1], c[2]]) / v
        phase_err = float(np.sqrt(g_phase @ cov @ g_phase)) / (2 * math.pi)
        vis_err = float(np.sqrt(g_vis @ cov @ g_vis))
    else:
        phase_err, vis_err = float("inf"), float(np.sqrt(cov[1, 1]))
    return dict(phase=float(phase), phase_stderr=phase_err, visibility=v,
                visibility_stderr=vis_err, offset=float(c[0]), chi2=chi2,
                dof=int(x.size - 3), x=x, y=y, sigma=np.sqrt(var), n=n)


class LinkPhase(LinkBatches, EnvExperiment):
    """Link phase (heralded A-B state)

    Heralds entangled pairs with the attempt loop of the heralded-entanglement experiment
    and measures both ions along equatorial axes: A at azimuth 0, B at ``points`` azimuths
    spread over one turn (round r uses point r mod points, so slow drifts hit every point
    alike), raw, without the link-phase correction. The correlator E = P(a = b) - P(a != b)
    per azimuth (B flipped after detector-1 heralds) is fitted with c0 + V cos(2 pi
    (theta_b - phi)); ``calib.link_phase`` = phi (turns) is stored only on a good fit:
    visibility V >= ``min_visibility`` and 5 standard errors above 0, phase standard error
    <= ``max_phase_error`` and chi2 probability >= 1e-3.

    The phase is that of the link as run: calibrate with the link length and storage time
    of the experiments that use it (the 729 detuning left after the frequency calibration
    adds 2 delta (t_measure - t_emit) to it); it does not depend on alpha.

    How often: on the default node the fibre phase after active stabilisation still drifts
    (``[drift]`` in ``ionlink/node/default_node.toml``: random walk 0.01 rad/sqrt(s) plus a
    0.5 rad sinusoid of period 1 h, up to 8.7e-4 rad/s): its rms change (95th percentile)
    over seeds 0-2 is 0.03 (0.06) rad in 10 s, 0.085 (0.17) rad in 1 min, 0.24 (0.45) rad
    in 5 min and 0.4 (0.7) rad in 10 min. A phase error delta lowers S by cos(delta) (0.4 %
    at 0.085 rad, 3 % at 0.24 rad) and raises the key-round QBER to (1 - V cos(delta)) / 2,
    so a lab recalibrates about every minute (at most every ~5 min) during Bell / DI-QKD
    runs, e.g. interleaved with them, and watches the running QBER in between. The fast
    residual noise (0.1 rad rms, 1 ms) cannot be calibrated and lowers V by ~0.5 %. One
    calibration (400 rounds) takes ~4 s of node time (~13 s wall time in the simulation)
    at alpha = 0.1 on the default 10 km link. The drifts belong to the node's seed: use the
    same ``--seed`` for the calibration and the runs that use it.
    """

    def build(self):
        self.setattr_device("core")
        self.setattr_device("core_dma")
        self.setattr_device("scheduler")
        self.setattr_argument("rounds", NumberValue(400, precision=0, step=100, min=8,
                                                    type="int"),
                              group="Scan", tooltip="heralded rounds in total")
        self.setattr_argument("points", NumberValue(8, precision=0, step=1, min=4, max=64,
                                                    type="int"),
                              group="Scan", tooltip="azimuths of node B over one turn")
        self.setattr_argument("batch_rounds", NumberValue(100, precision=0, step=10, min=1,
                                                          type="int"),
                              group="Scan", tooltip="rounds per kernel run")
        self.setattr_argument("max_attempts", NumberValue(2_000_000, precision=0,
                                                          step=100000, min=1, type="int"),
                              group="Scan", tooltip="stop after this many attempts")
        self.setattr_argument("max_phase_error", NumberValue(0.02, min=1e-4, max=0.25),
                              group="Acceptance", tooltip="largest phase standard error "
                              "(turns) that is stored")
        self.setattr_argument("min_visibility", NumberValue(0.2, min=0.0, max=1.0),
                              group="Acceptance", tooltip="smallest fitted visibility V "
                              "that is stored")
        declare_link_arguments(self, alpha=0.1, alpha_tooltip="excitation probability per "
                               "attempt (more heralds, lower V; the phase does not depend on it)")
        self.link = EntanglementLink(self, alpha=self.alpha, link_length=self.link_length,
                                     window=self.window,
                                     cooling_interval=self.cooling_interval,
                                     click_capacity=1 << 12)
        self.bell = BellBasisMeasurement(self)
        self.phase_a = basis_phase_turns(0.0)
        # per-batch arrays: typed placeholders, sized in prepare() (arguments are None
        # while ARTIQ's master examines the repository)
        self.phase_b = np.zeros(0)
        self.outcomes = np.zeros(0, dtype=np.int32)
        self.detectors = np.zeros(0, dtype=np.int32)
        self.batch_done = np.int32(0)
        self.batch_attempts = np.int32(0)
        self.need_init = True
        self.settle = 20 * us
        self.kernel_invariants = {"core", "core_dma", "link", "bell", "settle", "phase_a"}

    def prepare(self):
        super().prepare()
        batch = check_integer("batch_rounds", self.batch_rounds, minimum=1)
        check_integer("max_attempts", self.max_attempts, minimum=1)
        self.phase_b = np.zeros(batch)
        self.outcomes = np.zeros(batch, dtype=np.int32)
        self.detectors = np.zeros(batch, dtype=np.int32)
        n = check_integer("rounds", self.rounds, minimum=1)
        p = check_integer("points", self.points, minimum=4)
        if n < p:
            raise ValueError(f"rounds ({n}) must be at least points ({p})")
        self.azimuths = np.arange(p) / p
        self.theta_b = self.azimuths[np.arange(n) % p]
        self.a = np.zeros(n, dtype=np.int32)
        self.b = np.zeros(n, dtype=np.int32)
        self.detector = np.zeros(n, dtype=np.int32)
        self.measured = 0
        self.attempts_total = 0
        self.set_dataset(SCAN + "x", self.azimuths, broadcast=True, unit="turns")
        self.set_dataset(SCAN + "y", np.full(p, np.nan), broadcast=True)
        self.set_dataset(SCAN + "model", "sinusoid", broadcast=True)

    @kernel
    def run_batch(self, rounds: TInt32, max_attempts: TInt32):
        """Up to ``rounds`` heralded rounds (A at azimuth 0, B at ``phase_b``)."""
        if self.need_init:
            self.core.reset()
            self.link.init()
            self.bell.init()
            self.need_init = False
        self.core.break_realtime()
        attempt_handle = self.core_dma.get_handle(ATTEMPT_TRACE)
        cooling_handle = self.core_dma.get_handle(COOLING_TRACE)
        self.core.break_realtime()
        remaining = max_attempts
        k = 0
        while k < rounds and remaining > 0:
            d = self.link.attempt_until_herald(attempt_handle, cooling_handle, remaining)
            remaining -= self.link.attempts_done
            if d == NO_CLICK:
                break
            self.detectors[k] = d
            self.outcomes[k] = self.bell.measure(True, self.phase_a, True, self.phase_b[k])
            delay(self.settle)
            k += 1
        self.batch_done = k
        self.batch_attempts = max_attempts - remaining

    def publish(self) -> None:
        m = self.measured
        x = np.mod(self.theta_b[:m], 1.0)
        same = np.where(self.a[:m] == self.b[:m], 1.0, -1.0)
        y = np.full(self.azimuths.size, np.nan)
        for i, az in enumerate(self.azimuths):
            sel = x == az
            if sel.any():
                y[i] = same[sel].mean()
        self.set_dataset(SCAN + "y", y, broadcast=True)

    def start_batch(self, start: int, n: int) -> None:
        """B's pulse phases of rounds ``start..start + n`` for the next batch."""
        self.phase_b[:n] = basis_phase_turns(self.theta_b[start:start + n])

    def finish_batch(self, start: int, done: int) -> None:
        """Store the batch's ``done`` rounds from ``start``."""
        out = self.outcomes[:done]
        det = self.detectors[:done]
        self.a[start:start + done] = out >> 1
        # detector-1 herald = Z on B: flips B's equatorial outcome
        self.b[start:start + done] = (out & 1) ^ det
        self.detector[start:start + done] = det

    def run(self):
        self.run_rounds()

    def analyze(self):
        m = self.measured
        self.set_dataset("link_phase.theta_b_turns", self.theta_b[:m])
        self.set_dataset("link_phase.a", self.a[:m])
        self.set_dataset("link_phase.b", self.b[:m])
        self.set_dataset("link_phase.herald_detector", self.detector[:m])
        self.set_dataset("link_phase.attempts", self.attempts_total)
        self.set_dataset("link_phase.previous_turns", self.bell.link_phase)
        if m < 4 * self.azimuths.size or len(np.unique(self.theta_b[:m])) < 4:
            self.reject(f"only {m} heralded rounds in {self.attempts_total} attempts")
            return
        r = fit_link_phase(self.theta_b[:m], self.a[:m], self.b[:m])
        self.set_dataset(SCAN + "y", r["y"], broadcast=True)
        self.set_dataset(SCAN + "sigma", r["sigma"], broadcast=True)
        for key in ("phase", "phase_stderr", "visibility", "visibility_stderr", "offset",
                    "chi2", "dof"):
            self.set_dataset("link_phase." + key, r[key])
        from scipy.stats import chi2 as chi2_dist

        p_chi2 = float(chi2_dist.sf(r["chi2"], r["dof"])) if r["dof"] > 0 else 1.0
        self.set_dataset("link_phase.chi2_probability", p_chi2)
        print(f"link phase {r['phase']:.4f} +- {r['phase_stderr']:.4f} turns, visibility "
              f"{r['visibility']:.3f} +- {r['visibility_stderr']:.3f}, chi2 "
              f"{r['chi2']:.1f} / {r['dof']} (p = {p_chi2:.3g}) from {m} rounds")
        reasons = []
        if not r["visibility"] >= self.min_visibility:
            reasons.append(f"visibility {r['visibility']:.3f} < {self.min_visibility}")
        if not r["visibility"] > 5 * r["visibility_stderr"]:
            reasons.append("visibility not 5 standard errors above 0")
        if not r["phase_stderr"] <= self.max_phase_error:
            reasons.append(f"phase error {r['phase_stderr']:.4f} > {self.max_phase_error} "
                           "turns")
        if p_chi2 < 1e-3:
            reasons.append(f"chi2 probability {p_chi2:.2g} < 1e-3 (phase drifted during "
                           "the scan?)")
        if reasons:
            self.reject("; ".join(reasons))
            return
        self.set_dataset("calib.link_phase", r["phase"], persist=True, unit="turns")
        print(f"calib.link_phase = {r['phase']!r} stored")

    def reject(self, reason: str) -> None:
        print(f"calib.link_phase not stored (keeps {self.bell.link_phase!r}): {reason}")
