"""Heralded entanglement attempts between node A and node B (single-photon protocol).

One attempt (recorded once as a DMA trace and played back): 854 nm quench of both ions to
S1/2, a 393 nm pulse on each node timed so that both photons reach the station together
(the node with the shorter fibre fires later), and both station detectors gated around that
arrival time. The kernel then reads the detectors and decides: exactly one detector clicked
is a herald. Either way the nodes learn the result only after the herald signal's way back
over the fibre (``link_length / 2``), so the next attempt - or the measurement of the
entangled ions - starts ``return delay + decision_time`` after the detection window closes
(at least ``min_turnaround``, the time the kernel CPU needs to read the detectors and start
the next playback).
Every ``cooling_interval`` attempts both ions are Doppler-cooled (a second DMA trace).

Clicks of every attempt (first click per detector and window) are recorded with their
timestamps, detector and attempt number, up to ``click_capacity`` per batch.
"""

import numpy as np
from artiq.experiment import (
    HasEnvironment,
    NumberValue,
    TInt32,
    TInt64,
    at_mu,
    kernel,
    now_mu,
    ns,
    parallel,
    us,
)

from ionlink.blocks._checks import check_integer, check_real
from ionlink.blocks.cooling import StatePreparation
from ionlink.blocks.photons import REPUMP_TAIL_MU, PhotonGeneration
from ionlink.blocks.station import NO_CLICK, StationGate, fibre_delay_seconds

ATTEMPT_TRACE = "ionlink_link_attempt"
COOLING_TRACE = "ionlink_link_cooling"


def declare_link_arguments(parent: HasEnvironment, alpha: float = 0.05,
                           alpha_tooltip: str = "excitation probability per attempt of each "
                           "node (sets the calibrated 393 nm pulse length)") -> None:
    """Declare the experiment arguments an :class:`EntanglementLink` takes, in group "Link",
    as attributes of ``parent``: ``link_length`` (km), ``alpha`` (default ``alpha``),
    ``window`` (s) and ``cooling_interval`` (attempts)."""
    parent.setattr_argument("link_length", NumberValue(10.0, unit="km", scale=1.0, min=0.0,
                                                       max=200.0, step=1.0),
                            group="Link", tooltip="node-to-node fibre length; the station "
                            "sits in the middle, the herald signal returns over half of it")
    parent.setattr_argument("alpha", NumberValue(alpha, min=1e-4, max=0.9, step=0.01),
                            group="Link", tooltip=alpha_tooltip)
    parent.setattr_argument("window", NumberValue(3 * us, unit="us", min=10 * ns,
                                                  max=100 * us),
                            group="Link", tooltip="station detection window per attempt")
    parent.setattr_argument("cooling_interval", NumberValue(500, precision=0, step=100,
                                                            min=1, type="int"),
                            group="Link", tooltip="attempts between Doppler coolings")


class EntanglementLink(HasEnvironment):
    """The attempt loop of a two-node heralded-entanglement link.

    :param alpha: excitation probability per attempt of each node.
    :param link_length: node-to-node fibre length (km); the station is in the middle, so the
        herald signal returns over ``link_length / 2`` (and, before the fibre-delay
        calibration, the photons are expected after that length too).
    :param window: station detection window (s).
    :param cooling_interval: attempts between two Doppler coolings of both ions.
    :param decision_time: node-side latency (s) from receiving the herald signal to acting.
    :param min_turnaround: shortest time (s) from the window's end to the next attempt:
        the kernel CPU reads both detectors (a few us each) and starts the next DMA playback
        in it, so short links are limited by it rather than by the fibre.
    :param click_capacity: clicks recorded per batch (further clicks are only counted).

    The settings are kept as given in ``build`` (experiment arguments are None while ARTIQ's
    master examines the repository); a parent may change these attributes before
    :meth:`prepare`, which checks them (one clear error naming the setting), hands alpha,
    window and the fallback fibre length to the children and computes the timing.
    """

    def build(self, alpha=0.05, link_length=10.0, window=3 * us, cooling_interval=500,
              decision_time=1 * us, min_turnaround=12 * us, click_capacity=4096):
        self.alpha = alpha
        self.link_length = link_length
        self.window = window
        self.cooling_interval = cooling_interval
        self.decision_time = decision_time
        self.min_turnaround = min_turnaround
        self.click_capacity = click_capacity
        self.setattr_device("core")
        self.setattr_device("core_dma")
        self.prep_a = StatePreparation(self, "a")
        self.prep_b = StatePreparation(self, "b")
        self.photons_a = PhotonGeneration(self, "a", alpha)
        self.photons_b = PhotonGeneration(self, "b", alpha)
        self.gate_a = StationGate(self, "a", window)
        self.gate_b = StationGate(self, "b", window)
        # Kernel state: typed placeholders for the compiler, real values in prepare().
        self.attempts_per_cooling = np.int32(1)
        self.since_cooling = np.int32(1 << 30)
        self.attempts_done = np.int32(0)
        self.attempt_index = np.int32(0)
        self.herald_time_mu = np.int64(-1)
        self.n_clicks = np.int32(0)
        self.clicks_lost = np.int32(0)
        self.click_times_mu = np.zeros(0, dtype=np.int64)
        self.click_detectors = np.zeros(0, dtype=np.int32)
        self.click_attempts = np.zeros(0, dtype=np.int32)
        self.click_arrivals_mu = np.zeros(0, dtype=np.int64)
        self.window_end_mu = np.int64(0)
        self.emit_a_mu = np.int64(0)
        self.emit_b_mu = np.int64(0)
        self.return_mu = np.int64(0)
        self.cooling_time = 0.0
        self.kernel_invariants = {"core", "core_dma", "prep_a", "prep_b", "photons_a",
                                  "photons_b", "gate_a", "gate_b", "attempts_per_cooling",
                                  "emit_a_mu", "emit_b_mu", "return_mu", "window_end_mu",
                                  "cooling_time"}

    def check_settings(self) -> None:
        """Check and convert the settings (host side; ValueError naming a bad one)."""
        self.alpha = check_real("alpha", self.alpha, minimum=0.0, maximum=1.0,
                                min_open=True, max_open=True)
        self.link_length = check_real("link_length", self.link_length, minimum=0.0,
                                      unit="km")
        self.window = check_real("window", self.window, minimum=0.0, min_open=True, unit="s")
        self.cooling_interval = check_integer("cooling_interval", self.cooling_interval,
                                              minimum=1)
        self.decision_time = check_real("decision_time", self.decision_time, minimum=0.0,
                                        unit="s")
        self.min_turnaround = check_real("min_turnaround", self.min_turnaround, minimum=0.0,
                                         unit="s")
        self.click_capacity = check_integer("click_capacity", self.click_capacity, minimum=1)

    def prepare(self):
        """Settings, children's calibrations, then the attempt's timing (all in machine
        units) and the click record."""
        self.check_settings()
        half = self.link_length / 2
        for photons in (self.photons_a, self.photons_b):
            photons.alpha = self.alpha
        for gate in (self.gate_a, self.gate_b):
            gate.window = self.window
            gate.fallback_length = half
        self.call_child_method("prepare")
        self.attempts_per_cooling = np.int32(self.cooling_interval)
        n = self.click_capacity
        self.n_clicks = np.int32(0)
        self.click_times_mu = np.zeros(n, dtype=np.int64)
        self.click_detectors = np.zeros(n, dtype=np.int32)
        self.click_attempts = np.zeros(n, dtype=np.int32)
        self.click_arrivals_mu = np.zeros(n, dtype=np.int64)
        period = self.core.ref_period
        self.cooling_time = max(self.prep_a.cooling_time, self.prep_b.cooling_time)
        # Emission times (end of each 393 pulse) after the quench so that both photons
        # arrive together, neither pulse starting before the quench has ended.
        pa, pb = int(self.photons_a.pulse_mu), int(self.photons_b.pulse_mu)
        da, db = int(self.gate_a.delay_mu), int(self.gate_b.delay_mu)
        arrival = max(pa + da, pb + db)
        self.emit_a_mu = np.int64(arrival - da)
        self.emit_b_mu = np.int64(arrival - db)
        # window end after node A's emission (photon arrival times are relative to it)
        self.window_end_mu = np.int64(int(self.gate_a.delay_mu) - int(self.gate_a.pre_mu)
                                      + int(self.gate_a.window_mu))
        self.return_delay = fibre_delay_seconds(half)
        wait = max(self.return_delay + self.decision_time, self.min_turnaround)
        self.return_mu = np.int64(round(wait / period))

    # ------------------------------------------------------------------ host-side figures
    def attempt_period(self) -> float:
        """Node time (s) of one attempt without a herald: quench, excitation, photon
        flight, window, herald signal's way back, decision."""
        period = self.core.ref_period
        quench = max(int(self.photons_a.quench_mu), int(self.photons_b.quench_mu)) \
            + REPUMP_TAIL_MU
        window_end = (int(self.emit_a_mu) + int(self.gate_a.delay_mu)
                      - int(self.gate_a.pre_mu) + int(self.gate_a.window_mu))
        return (quench + window_end + int(self.return_mu)) * period

    def expected_herald_probability(self) -> float:
        """Probability of at least one click per attempt from the calibrated alphas and
        efficiencies (rescaled to this window): 1 - (1 - alpha_a eta_a)(1 - alpha_b eta_b)
        (about 2 alpha eta for a symmetric link; two photons that meet at the beam splitter
        leave by one port, so this is also the one-detector probability)."""
        p = 1.0
        for photons, gate in ((self.photons_a, self.gate_a), (self.photons_b, self.gate_b)):
            eta = photons.efficiency_in_window(gate.window, gate.pre_window)
            p *= 1.0 - photons.alpha_set() * eta
        return 1.0 - p

    def clicks(self) -> tuple:
        """(times_mu, detectors, attempt numbers from 0, arrival times after node A's
        emission in mu) of the clicks recorded by the last kernel run; clears the record."""
        n = int(self.n_clicks)
        out = (self.click_times_mu[:n].copy(), self.click_detectors[:n].copy(),
               self.click_attempts[:n].copy(), self.click_arrivals_mu[:n].copy())
        self.n_clicks = np.int32(0)
        return out

    def gate_window_mu(self) -> tuple[int, int]:
        """Start and end (mu) of the station window after node A's emission."""
        end = int(self.window_end_mu)
        return end - int(self.gate_a.window_mu), end

    # ------------------------------------------------------------------ kernels
    @kernel
    def init(self):
        """Initialise both nodes (CPLDs, lasers, 393 channels) and record the DMA traces."""
        self.prep_a.init()
        self.prep_b.init()
        self.photons_a.init()
        self.photons_b.init()
        self.record()

    @kernel
    def attempt_events(self):
        """The events of one attempt, from the cursor; ends at the window's end."""
        with parallel:
            self.photons_a.reset()
            self.photons_b.reset()
        t0 = now_mu()
        at_mu(t0 + self.emit_a_mu - self.photons_a.pulse_mu)
        self.photons_a.excite()
        at_mu(t0 + self.emit_b_mu - self.photons_b.pulse_mu)
        self.photons_b.excite()
        self.gate_a.gate(t0 + self.emit_a_mu)

    @kernel
    def cooling_events(self):
        """Doppler cooling of both ions in parallel."""
        with parallel:
            self.prep_a.cooling.cool(self.cooling_time)
            self.prep_b.cooling.cool(self.cooling_time)

    @kernel
    def record(self):
        """Record the attempt and the cooling as DMA traces."""
        with self.core_dma.record(ATTEMPT_TRACE):
            self.attempt_events()
        with self.core_dma.record(COOLING_TRACE):
            self.cooling_events()
        self.since_cooling = 1 << 30

    @kernel
    def record_click(self, t_mu: TInt64, detector: TInt32, t_emit_mu: TInt64):
        if self.n_clicks < len(self.click_times_mu):
            self.click_times_mu[self.n_clicks] = t_mu
            self.click_detectors[self.n_clicks] = detector
            self.click_attempts[self.n_clicks] = self.attempt_index
            self.click_arrivals_mu[self.n_clicks] = t_mu - t_emit_mu
            self.n_clicks += 1
        else:
            self.clicks_lost += 1

    @kernel
    def attempt_until_herald(self, attempt_handle, cooling_handle,
                             max_attempts: TInt32) -> TInt32:
        """Attempt until a herald or ``max_attempts`` attempts (handles: ``core_dma.get_handle``
        of :data:`ATTEMPT_TRACE` and :data:`COOLING_TRACE`); returns the heralding
        detector (0/1) or ``NO_CLICK``. ``attempts_done`` holds the attempts made, and
        ``attempt_index`` the attempts of the run so far (the herald's is
        ``attempt_index - 1``); the herald's click time is in ``herald_time_mu``. The
        cursor ends when the nodes know the result (window end + return delay + decision
        time, at least the minimum turnaround)."""
        n = 0
        while n < max_attempts:
            if self.since_cooling >= self.attempts_per_cooling:
                self.core_dma.playback_handle(cooling_handle)
                self.since_cooling = 0
            self.core_dma.playback_handle(attempt_handle)
            t_end = now_mu()
            n += 1
            self.since_cooling += 1
            d = self.gate_a.herald(t_end)
            t_emit = t_end - self.window_end_mu
            if self.gate_a.first_click_0_mu >= 0:
                self.record_click(self.gate_a.first_click_0_mu, 0, t_emit)
            if self.gate_a.first_click_1_mu >= 0:
                self.record_click(self.gate_a.first_click_1_mu, 1, t_emit)
            self.attempt_index += 1
            at_mu(t_end + self.return_mu)
            if d == 0 or d == 1:
                self.attempts_done = n
                self.herald_time_mu = self.gate_a.click_mu
                return d
        self.attempts_done = n
        return NO_CLICK


class LinkBatches:
    """Host-side batch loop of experiments that run :class:`EntanglementLink` kernels in
    batches (a mixin for the ``EnvExperiment``: ``class X(LinkBatches, EnvExperiment)``).

    The experiment has ``core`` and ``scheduler`` devices and a ``need_init`` flag its
    batch kernel reads (re-initialise the nodes after a pause). :meth:`run_rounds` is the
    loop of ``rounds`` heralded rounds in batches of ``batch_rounds`` within
    ``max_attempts`` attempts: per batch ``start_batch(start, n)`` (host: settings of
    rounds ``start..start + n``), the kernel ``run_batch(n, attempts left)`` (sets
    ``batch_done`` rounds and ``batch_attempts``), ``finish_batch(start, done)`` (host:
    store the outcomes), then ``publish()``; the counts are in ``measured`` and
    ``attempts_total``. A batch that ends early (attempts exhausted) ends the run.
    """

    def pause_if_asked(self) -> None:
        """Between batches: yield to a higher-priority experiment if the scheduler asks
        (closing the core device connection; the next batch re-initialises the nodes)."""
        if self.scheduler.check_pause():
            self.core.close()
            self.scheduler.pause()
            self.need_init = True

    def run_rounds(self) -> None:
        while self.measured < self.rounds and self.attempts_total < self.max_attempts:
            start = self.measured
            n = min(int(self.batch_rounds), int(self.rounds) - start)
            self.start_batch(start, n)
            self.run_batch(n, int(self.max_attempts) - self.attempts_total)
            done = int(self.batch_done)
            self.finish_batch(start, done)
            self.measured += done
            self.attempts_total += int(self.batch_attempts)
            self.publish()
            if done < n:
                break
            if self.measured < self.rounds:
                self.pause_if_asked()
