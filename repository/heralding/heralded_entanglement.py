"""Heralded ion-ion entanglement over a fibre link (single-photon protocol), nodes A and B."""

import numpy as np
from artiq.experiment import *

from ionlink.blocks import check_integer, check_real
from ionlink.blocks.bell import BASIS_Z, BellBasisMeasurement
from ionlink.blocks.link import (
    ATTEMPT_TRACE,
    COOLING_TRACE,
    EntanglementLink,
    LinkBatches,
    declare_link_arguments,
)
from ionlink.blocks.station import NO_CLICK

MEASUREMENTS = ("tomography", "z", "x", "y", "none")
#: Fallback memory coherence time (s) before the dynamical-decoupling calibration.
DEFAULT_MEMORY_T2 = 3 * ms


def max_phase_fidelity(rho: np.ndarray) -> float:
    """Fidelity of a two-qubit state (basis |00>, |01>, |10>, |11>) to the closest state
    (|01> + e^{i phi} |10>)/sqrt2: (rho_01,01 + rho_10,10)/2 + |rho_01,10|."""
    return float(np.real(rho[1, 1] + rho[2, 2]) / 2 + abs(rho[1, 2]))


def linear_fidelity(counts: np.ndarray, draws: int = 200, seed: int = 12345
                    ) -> tuple[float, float]:
    """Best-phase fidelity of the linear-inversion state of Pauli counts (3, 3, 4), and
    its standard error from multinomial resamples of the counts."""
    from analysis.tomography import linear_inversion

    rng = np.random.default_rng(seed)
    totals = counts.sum(axis=2)
    freq = counts / totals[:, :, None]
    samples = [max_phase_fidelity(linear_inversion(np.array(
        [[rng.multinomial(totals[i, j], freq[i, j]) for j in range(3)] for i in range(3)])))
        for _ in range(draws)]
    return max_phase_fidelity(linear_inversion(counts)), float(np.std(samples, ddof=1))


class HeraldedEntanglement(LinkBatches, EnvExperiment):
    """Heralded entanglement (A-B link)

    Attempts to entangle the ions of nodes A and B through a heralding station in the middle
    of a fibre link: cool every N attempts, excite both nodes (the calibrated 393 nm pulse
    for the chosen alpha), gate the station detectors at the fibre-delayed arrival time and
    decide in the kernel. The attempt is a DMA trace played back each time. On a herald both
    ions are measured (after an optional storage time) in the chosen bases: Pauli bases drawn
    at random per herald ("tomography", giving a state fidelity), a fixed basis, or not at
    all. Records attempts, heralds, herald times, detectors, settings, outcomes and every
    station click; broadcasts heralds/s, mean generation time and its ratio to the memory
    coherence time while it runs.

    X and Y are measured in the link frame of ``ionlink.blocks.bell``: node B's equatorial
    axes are shifted by the calibrated ``calib.link_phase`` (turns, from
    ``repository/calibrations/link_phase.py``), so a detector-0 herald measures as psi+
    (<XX> = <YY> = +1); detector-1 heralds (Z on B) have B's X/Y outcomes flipped
    (``heralding.outcome_b_corrected``).
    """

    def build(self):
        self.setattr_device("core")
        self.setattr_device("core_dma")
        self.setattr_device("scheduler")
        self.setattr_argument("attempts", NumberValue(60000, precision=0, step=1000, min=1,
                                                      type="int"),
                              group="Run", tooltip="total entanglement attempts")
        self.setattr_argument("batch_attempts", NumberValue(10000, precision=0, step=1000,
                                                            min=1, type="int"),
                              group="Run", tooltip="attempts per kernel run; between runs the "
                              "live datasets update and the experiment yields if asked")
        self.setattr_argument("measurement", EnumerationValue(list(MEASUREMENTS),
                                                              "tomography"),
                              group="Run", tooltip="bases the ions are measured in after a "
                              "herald: random Pauli bases (tomography), fixed Z/X/Y, or none")
        self.setattr_argument("seed", NumberValue(0, precision=0, step=1, min=0, type="int"),
                              group="Run", tooltip="seed of the host's random basis choices")
        declare_link_arguments(self)
        self.setattr_argument("storage_time", NumberValue(0.0, unit="us", min=0.0,
                                                          max=1.0),
                              group="Memory", tooltip="wait after the herald before measuring")
        # Arguments are None while ARTIQ's master examines the repository: the link keeps
        # them as given and checks them in prepare(); its click record (two per attempt of
        # a batch) and the per-batch arrays are sized there.
        self.link = EntanglementLink(self, alpha=self.alpha, link_length=self.link_length,
                                     window=self.window,
                                     cooling_interval=self.cooling_interval)
        self.bell = BellBasisMeasurement(self)
        # per-batch arrays: typed placeholders, sized in prepare()
        self.basis_a = np.zeros(0, dtype=np.int32)
        self.basis_b = np.zeros(0, dtype=np.int32)
        self.outcomes = np.zeros(0, dtype=np.int32)
        self.herald_detectors = np.zeros(0, dtype=np.int32)
        self.herald_times = np.zeros(0, dtype=np.int64)
        self.herald_attempts = np.zeros(0, dtype=np.int32)
        self.batch_heralds = np.int32(0)
        self.batch_duration_mu = np.int64(0)
        self.need_init = True
        self.storage_mu = np.int64(0)
        self.settle = 20 * us
        self.kernel_invariants = {"core", "core_dma", "link", "bell", "do_measure",
                                  "storage_mu", "settle"}

    def prepare(self):
        n = check_integer("batch_attempts", self.batch_attempts, minimum=1)
        check_integer("attempts", self.attempts, minimum=1)
        storage_time = check_real("storage_time", self.storage_time, minimum=0.0, unit="s")
        self.link.click_capacity = 2 * n
        super().prepare()
        self.basis_a = np.zeros(n, dtype=np.int32)
        self.basis_b = np.zeros(n, dtype=np.int32)
        self.outcomes = np.zeros(n, dtype=np.int32)
        self.herald_detectors = np.zeros(n, dtype=np.int32)
        self.herald_times = np.zeros(n, dtype=np.int64)
        self.herald_attempts = np.zeros(n, dtype=np.int32)
        self.do_measure = self.measurement != "none"
        self.storage_mu = np.int64(round(storage_time / self.core.ref_period))
        self.rng = np.random.default_rng(self.seed)
        t2 = [float(self.get_dataset("calib.memory_t2_" + n, DEFAULT_MEMORY_T2))
              for n in ("a", "b")]
        # Coherence time of the entangled pair: both memories dephase (rates add).
        self.memory_t2 = 1.0 / (1.0 / t2[0] + 1.0 / t2[1])
        self.records = {k: [] for k in ("basis_a", "basis_b", "outcomes", "detectors",
                                        "times", "herald_attempts", "click_times",
                                        "click_detectors", "click_attempts",
                                        "click_arrivals")}
        self.history = {"time_s": [], "attempts": [], "heralds": []}
        self.total_attempts = 0
        self.total_duration = 0.0

    # ------------------------------------------------------------------ kernels
    @kernel
    def run_batch(self, attempts: TInt32):
        """``attempts`` attempts; on each herald measure in the drawn bases."""
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
        remaining = attempts
        k = 0
        while remaining > 0:
            d = self.link.attempt_until_herald(attempt_handle, cooling_handle, remaining)
            remaining -= self.link.attempts_done
            if d == NO_CLICK:
                break
            self.herald_detectors[k] = d
            self.herald_times[k] = self.link.herald_time_mu
            self.herald_attempts[k] = self.link.attempt_index - 1
            if self.do_measure:
                delay_mu(self.storage_mu)
                self.outcomes[k] = self.bell.measure_pauli(self.basis_a[k], self.basis_b[k])
                delay(self.settle)
            k += 1
        self.batch_heralds = k
        self.batch_duration_mu = now_mu() - t_begin

    # ------------------------------------------------------------------ host
    def draw_settings(self) -> None:
        n = len(self.basis_a)
        if self.measurement == "tomography":
            self.basis_a[:] = self.rng.integers(0, 3, n)
            self.basis_b[:] = self.rng.integers(0, 3, n)
        else:
            fixed = {"z": BASIS_Z, "x": 0, "y": 1, "none": BASIS_Z}[self.measurement]
            self.basis_a[:] = fixed
            self.basis_b[:] = fixed

    def collect_batch(self, attempts: int) -> None:
        k = int(self.batch_heralds)
        r = self.records
        r["basis_a"].append(self.basis_a[:k].copy())
        r["basis_b"].append(self.basis_b[:k].copy())
        r["outcomes"].append(self.outcomes[:k].copy())
        r["detectors"].append(self.herald_detectors[:k].copy())
        r["times"].append(self.herald_times[:k].copy())
        r["herald_attempts"].append(self.herald_attempts[:k].copy())
        times, detectors, numbers, arrivals = self.link.clicks()
        r["click_times"].append(times)
        r["click_detectors"].append(detectors)
        r["click_attempts"].append(numbers)
        r["click_arrivals"].append(arrivals)
        self.total_attempts += attempts
        self.total_duration += float(self.batch_duration_mu) * self.core.ref_period

    def joined(self, key: str) -> np.ndarray:
        return np.concatenate(self.records[key])

    def publish(self) -> None:
        """Running totals and rates as broadcast datasets (for live plots)."""
        heralds = int(sum(len(x) for x in self.records["detectors"]))
        duration = self.total_duration
        rate = heralds / duration if duration > 0 else 0.0
        self.set_dataset("heralding.attempts", self.total_attempts, broadcast=True)
        self.set_dataset("heralding.heralds", heralds, broadcast=True)
        self.set_dataset("heralding.duration_s", duration, broadcast=True, unit="s")
        self.set_dataset("heralding.rate_hz", rate, broadcast=True, unit="Hz")
        self.set_dataset("heralding.mean_generation_time_s",
                         duration / heralds if heralds else float("nan"), broadcast=True,
                         unit="s")
        self.set_dataset("heralding.rate_over_decoherence", rate * self.memory_t2,
                         broadcast=True)
        self.set_dataset("heralding.memory_t2_s", self.memory_t2, broadcast=True, unit="s")
        h = self.history
        h["time_s"].append(duration)
        h["attempts"].append(self.total_attempts)
        h["heralds"].append(heralds)
        for key, values in h.items():
            self.set_dataset("heralding.history." + key, np.array(values), broadcast=True)
        if self.measurement == "tomography":
            counts = self.tomography_counts()
            if np.all(counts.sum(axis=2) > 0):
                fidelity, error = linear_fidelity(counts, draws=50)
                self.set_dataset("heralding.fidelity", fidelity, broadcast=True)
                self.set_dataset("heralding.fidelity_stderr", error, broadcast=True)

    def corrected_outcomes(self) -> tuple:
        """(basis_a, basis_b, a, b_raw, b) of all heralds so far; b has the Pauli frame of
        detector-1 heralds applied (their state is detector 0's up to Z on node B, which
        flips B's X and Y outcomes)."""
        basis_a = self.joined("basis_a")
        basis_b = self.joined("basis_b")
        outcomes = self.joined("outcomes")
        detectors = self.joined("detectors")
        a = outcomes >> 1
        b_raw = outcomes & 1
        b = b_raw ^ ((detectors == 1) & (basis_b != BASIS_Z)).astype(np.int32)
        return basis_a, basis_b, a, b_raw, b

    def tomography_counts(self) -> np.ndarray:
        """Counts (3, 3, 4) [basis_a, basis_b, 2 a + b] of analysis.tomography."""
        basis_a, basis_b, a, _, b = self.corrected_outcomes()
        counts = np.zeros((3, 3, 4), dtype=np.int64)
        np.add.at(counts, (basis_a, basis_b, 2 * a + b), 1)
        return counts

    def run(self):
        done = 0
        while done < self.attempts:
            n = min(int(self.batch_attempts), int(self.attempts) - done)
            self.draw_settings()
            self.run_batch(n)
            self.collect_batch(n)
            done += n
            self.publish()
            if done < self.attempts:
                self.pause_if_asked()

    def analyze(self):
        ref = self.core.ref_period
        self.set_dataset("heralding.ref_period_s", ref)
        self.set_dataset("heralding.herald_times_mu", self.joined("times"))
        detectors = self.joined("detectors")
        self.set_dataset("heralding.herald_detectors", detectors)
        self.set_dataset("heralding.herald_attempts", self.joined("herald_attempts"))
        self.set_dataset("heralding.click_times_mu", self.joined("click_times"))
        self.set_dataset("heralding.click_detectors", self.joined("click_detectors"))
        self.set_dataset("heralding.click_attempts", self.joined("click_attempts"))
        self.set_dataset("heralding.arrival_mu", self.joined("click_arrivals"))
        self.set_dataset("heralding.arrival_detector", self.joined("click_detectors"))
        start, stop = self.link.gate_window_mu()
        self.set_dataset("heralding.gate_start_mu", start)
        self.set_dataset("heralding.gate_stop_mu", stop)
        self.set_dataset("heralding.clicks_lost", int(self.link.clicks_lost))
        self.set_dataset("heralding.alpha", self.link.photons_a.alpha_set())
        self.set_dataset("heralding.attempt_period_s", self.link.attempt_period(), unit="s")
        self.set_dataset("heralding.link_phase_turns", self.bell.link_phase)
        self.set_dataset("heralding.expected_success_probability",
                         self.link.expected_herald_probability())
        heralds = len(detectors)
        attempts = self.total_attempts
        rate = heralds / self.total_duration if self.total_duration > 0 else 0.0
        self.set_dataset("heralding.success_probability", heralds / attempts)
        calibrated = all(self.get_dataset("calib.photon_detection_efficiency_" + n, None,
                                          archive=False) is not None for n in ("a", "b"))
        basis = "calibrated" if calibrated else "uncalibrated first-run fallback"
        line = (f"heralds {heralds} in {attempts} attempts (p = {heralds / attempts:.4g}, "
                f"expected {self.link.expected_herald_probability():.4g} from {basis} "
                f"efficiencies); rate {rate:.4g} /s over {self.total_duration:.4g} s node time")
        if heralds:
            line += (f"; mean generation time {self.total_duration / heralds * 1e3:.4g} ms; "
                     f"generation/decoherence ratio {rate * self.memory_t2:.4g} "
                     f"(pair T2 {self.memory_t2 * 1e3:.4g} ms)")
        print(line)
        if self.measurement == "none" or heralds == 0:
            return
        basis_a, basis_b, a, b_raw, b = self.corrected_outcomes()
        self.set_dataset("heralding.basis_a", basis_a)
        self.set_dataset("heralding.basis_b", basis_b)
        self.set_dataset("heralding.outcome_a", a)
        self.set_dataset("heralding.outcome_b", b_raw)
        self.set_dataset("heralding.outcome_b_corrected", b)
        counts = self.tomography_counts()
        if self.measurement == "tomography":
            self.set_dataset("tomography.counts", counts)
            self.tomography_summary(counts)
        else:
            basis = "ZXY"[[BASIS_Z, 0, 1].index(int(basis_a[0]))]
            parity = float(np.mean(np.where(a == b, 1.0, -1.0)))
            self.set_dataset("heralding.parity", parity)
            print(f"<{basis}{basis}> = {parity:.4f} +- "
                  f"{np.sqrt(max(1 - parity ** 2, 0.0) / heralds):.4f} from {heralds} heralds")

    def tomography_summary(self, counts: np.ndarray) -> None:
        from analysis.tomography import maximum_likelihood

        if np.any(counts.sum(axis=2) == 0):
            print("fidelity: not every Pauli setting was measured yet")
            return
        result = maximum_likelihood(counts)
        fidelity = max_phase_fidelity(result.rho)
        _, error = linear_fidelity(counts, draws=200)
        self.set_dataset("heralding.fidelity", fidelity)
        self.set_dataset("heralding.fidelity_stderr", error)
        print(f"fidelity estimate {fidelity:.4f} +- {error:.4f} (tomography, "
              f"{int(counts.sum())} heralds; best-phase |01>+e^(i phi)|10> state)")
