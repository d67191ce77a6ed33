"""Repeater chain A - R - B: two heralded links, memories that wait, a cutoff, and the
entanglement swap at the repeater R (device_db_repeater.py, node file repeater_node.toml).

Attempt slots: every slot, each link that holds no entanglement makes one single-photon
heralding attempt (854 nm quench of its two ions, 393 nm excitation timed so that both
photons reach the link's station together, station detectors gated) - both links in
parallel, as DMA traces. The nodes learn a slot's result after the herald signal's way back
from the station. A heralded link keeps its two memories (dynamical decoupling: one 729 nm pi
pulse on both memories per slot, where enabled) until the other link is heralded too, or
until the cutoff time, when it is abandoned (memories reset by the next attempt). With both
links heralded, R swaps: a Molmer-Sorensen gate on its two ions, then both are read out
together with the end nodes A and B, rotated into random Pauli bases (tomography of the
end-to-end state; the ends need not wait for R's result). The Pauli-frame correction of
each swap (from R's outcomes and the heralding detectors, analysis.repeater.pauli_frame) is
recorded and applied in analysis.

Timing a real node needs: the return of the herald signal (half a link of fibre, at least
MIN_TURNAROUND for the CPU), the CPU slack before the swap (``measure_slack``, reprogramming
the end nodes' basis axes), Doppler cooling every ``cooling_interval`` slots while no memory
is held; events of a slot are host-sorted into strictly increasing coarse timestamps so
that the SED keeps them in one lane. Node time, not wall time, is what the rates report.
"""

import numpy as np
from artiq.experiment import *

from ionlink.blocks.bell import BASIS_Z, basis_phase_turns
from ionlink.blocks.cooling import StatePreparation
from ionlink.blocks.photons import REPUMP_TAIL_MU, PhotonGeneration
from ionlink.blocks.readout import FluorescenceReadout
from ionlink.blocks.rotation import Rotation729
from ionlink.blocks.station import NO_CLICK, fibre_delay_seconds

#: Basis pairs of the "fidelity" measurement (as analysis.repeater.FIDELITY_SETTINGS).
FIDELITY_SETTINGS = ((2, 2), (0, 0), (0, 1), (1, 0), (1, 1))

#: DMA traces: attempts on both links, on one link (optionally with a decoupling pulse on the
#: other, held, link's memories), and cooling of every ion.
TRACE_BOTH = "repeater_both"
TRACE_AR = "repeater_ar"
TRACE_RB = "repeater_rb"
TRACE_AR_DD = "repeater_ar_dd"
TRACE_RB_DD = "repeater_rb_dd"
TRACE_COOL = "repeater_cool"
#: Held-link states.
FREE = 0
HELD = 1
PI = np.pi
#: Shortest time (s) from a slot's window end to the next slot: the CPU reads four station
#: inputs and decides in it.
MIN_TURNAROUND = 20 * us
#: One coarse RTIO period (mu): events of a slot are at least this far apart.
COARSE_MU = 8
#: Index of each RF switch in RepeaterChain.switches.
SWITCHES = ("866_a", "854_a", "393_a", "729_a", "866_r", "854_ra", "854_rb", "393_ra",
            "393_rb", "729_ra", "729_rb", "866_b", "854_b", "393_b", "729_b", "397_a",
            "397_r", "397_b")
#: The PMT inputs read together are drained alternately in chunks of this many mu.
READ_CHUNK_MU = 50000
#: Fallbacks before the repeater's calibrations (documented, not truth).
DEFAULT_MS_GATE_TIME = 50 * us
DEFAULT_MS_DETUNING = 20 * kHz
DEFAULT_MODE_FREQUENCY = 1.732 * MHz
DEFAULT_MEMORY_T2 = 3 * ms


def slot_events(ar: bool, rb: bool, dd_ar: bool, dd_rb: bool, quench_mu: int,
                emit_mu: dict, pulse_mu: dict, pi_mu: dict) -> tuple:
    """RF-switch events of one attempt slot (host side): offsets (mu, int64), switch indices
    into :data:`SWITCHES` and levels (int32), in time order with strictly increasing coarse
    timestamps (simultaneous events are moved apart by one coarse period each, at most a few
    tens of ns, so that the SED keeps them in one lane).

    Links that try (``ar``, ``rb``): 854 nm quench of both ions with their 866 on, then each
    ion's 393 nm pulse ending at its emission time ``emit_mu[ion]``. Held links to decouple
    (``dd_ar``, ``dd_rb``): a 729 nm pi pulse (``pi_mu[ion]``) on both memories at the start.
    """
    ev = []
    ions = {"ar": ("a", "ra"), "rb": ("rb", "b")}
    for link, on in (("ar", ar), ("rb", rb)):
        if not on:
            continue
        for ion in ions[link]:
            repump = "866_r" if ion in ("ra", "rb") else "866_" + ion
            ev += [(0, repump, 1), (0, "854_" + ion, 1), (quench_mu, "854_" + ion, 0),
                   (quench_mu + REPUMP_TAIL_MU, repump, 0),
                   (emit_mu[ion] - pulse_mu[ion], "393_" + ion, 1),
                   (emit_mu[ion], "393_" + ion, 0)]
    for link, on in (("ar", dd_ar), ("rb", dd_rb)):
        if on:
            for ion in ions[link]:
                ev += [(0, "729_" + ion, 1), (pi_mu[ion], "729_" + ion, 0)]
    # one event per (time, switch): the shared 866 of R appears once per link
    return _staggered(ev)


def _staggered(ev: list) -> tuple:
    """Sort ``(offset_mu, switch, level)`` events and move simultaneous ones apart by one
    coarse period each; returns offsets (int64), switch indices and levels (int32)."""
    ev = sorted(set(ev), key=lambda e: (e[0], SWITCHES.index(e[1]), e[2]))
    times, last = [], -COARSE_MU
    for t, _, _ in ev:
        t = max(t, (last // COARSE_MU + 1) * COARSE_MU)
        times.append(t)
        last = t
    return (np.array(times, dtype=np.int64),
            np.array([SWITCHES.index(e[1]) for e in ev], dtype=np.int32),
            np.array([e[2] for e in ev], dtype=np.int32))


def cooling_events(cooling_mu: dict) -> tuple:
    """RF-switch events of a Doppler cooling of every ion (866 and 397 on for each node's
    cooling time ``cooling_mu[node]``, node in a, r, b), as :func:`slot_events`."""
    ev = []
    for node, t in cooling_mu.items():
        ev += [(0, "866_" + node, 1), (0, "397_" + node, 1), (t, "397_" + node, 0)]
    return _staggered(ev)


class RepeaterIons(HasEnvironment):
    """The repeater's two ions: individually addressed 729/854/393 nm, global 397/866 nm,
    the bichromatic MS beam, individual PMT readout.

    Calibrations (persistent datasets): ``calib.frequency_729_ra``/``_rb``,
    ``calib.pi_time_729_ra``/``_rb``, ``calib.amplitude_729_ra``/``_rb``,
    ``calib.frequency_397_cooling_r``, ``calib.frequency_397_detection_r``,
    ``calib.detection_time_r``, ``calib.readout_threshold_ra``/``_rb``,
    ``calib.cooling_time_r``, ``calib.quench_time_854_r``, ``calib.frequency_393_r``,
    ``calib.photon_generation_time_ra``/``_rb``, ``calib.ms_frequency_blue_r``,
    ``calib.ms_frequency_red_r``, ``calib.ms_amplitude_r``, ``calib.ms_gate_time_r``.
    """

    def build(self):
        self.setattr_device("core")
        for name in ("dds_397_r", "dds_866_r", "dds_854_ra", "dds_854_rb", "dds_729_ra",
                     "dds_729_rb", "dds_393_ra", "dds_393_rb", "dds_729_ms_blue_r",
                     "dds_729_ms_red_r", "pmt_ra", "pmt_rb"):
            self.setattr_device(name)
        self.pulse_ra_mu = np.int64(8)
        self.pulse_rb_mu = np.int64(8)
        self.kernel_invariants = {"core", "dds_397_r", "dds_866_r", "dds_854_ra",
                                  "dds_854_rb", "dds_729_ra", "dds_729_rb", "dds_393_ra",
                                  "dds_393_rb", "dds_729_ms_blue_r", "dds_729_ms_red_r",
                                  "pmt_ra", "pmt_rb"}

    def prepare(self):
        g = self.get_dataset
        self.f729_ra = float(g("calib.frequency_729_ra", 80.006 * MHz))
        self.f729_rb = float(g("calib.frequency_729_rb", 80.006 * MHz))
        self.pi_time_ra = float(g("calib.pi_time_729_ra", 6 * us))
        self.pi_time_rb = float(g("calib.pi_time_729_rb", 6 * us))
        self.amp729_ra = float(g("calib.amplitude_729_ra", 1.0))
        self.amp729_rb = float(g("calib.amplitude_729_rb", 1.0))
        self.f397_cool = float(g("calib.frequency_397_cooling_r", 100 * MHz))
        self.f397_detect = float(g("calib.frequency_397_detection_r", 105 * MHz))
        self.f866 = float(g("calib.frequency_866_r", 80 * MHz))
        self.f854 = float(g("calib.frequency_854_r", 80 * MHz))
        self.detection_time = float(g("calib.detection_time_r", 1 * ms))
        self.threshold_ra = int(g("calib.readout_threshold_ra", 1))
        self.threshold_rb = int(g("calib.readout_threshold_rb", 1))
        self.cooling_time = float(g("calib.cooling_time_r", 1 * ms))
        self.quench_time = float(g("calib.quench_time_854_r", 10 * us))
        self.f393 = float(g("calib.frequency_393_r", 80 * MHz))
        self.generation_time_ra = float(g("calib.photon_generation_time_ra", 2 * us))
        self.generation_time_rb = float(g("calib.photon_generation_time_rb", 2 * us))
        centre = 0.5 * (self.f729_ra + self.f729_rb)
        offset = (DEFAULT_MODE_FREQUENCY + DEFAULT_MS_DETUNING) / 2
        self.ms_blue = float(g("calib.ms_frequency_blue_r", centre + offset))
        self.ms_red = float(g("calib.ms_frequency_red_r", centre - offset))
        # The tones sit symmetric about the addressing beams' frequencies to the DDS's
        # resolution: blue + red = f729_ra + f729_rb exactly as programmed. Otherwise the MS
        # spin phase drifts against the photons' emission phases (locked to the addressing
        # 729 beams) by the tones' FTW rounding, ~1 rad/s, and the swapped state's phase
        # with it.
        dds = self.dds_729_ms_blue_r
        grid_ra = dds.ftw_to_frequency(dds.frequency_to_ftw(self.f729_ra))
        grid_rb = dds.ftw_to_frequency(dds.frequency_to_ftw(self.f729_rb))
        half = dds.ftw_to_frequency(dds.frequency_to_ftw(0.5 * (self.ms_blue - self.ms_red)))
        self.f729_ra, self.f729_rb = grid_ra, grid_rb
        self.ms_blue = grid_ra + half
        self.ms_red = grid_rb - half
        self.ms_amplitude = float(g("calib.ms_amplitude_r", 1.0))
        self.ms_gate_time = float(g("calib.ms_gate_time_r", DEFAULT_MS_GATE_TIME))
        for key, value in (("detection_time_r", self.detection_time),
                           ("quench_time_854_r", self.quench_time),
                           ("ms_gate_time_r", self.ms_gate_time),
                           ("pi_time_729_ra", self.pi_time_ra), ("pi_time_729_rb", self.pi_time_rb),
                           ("photon_generation_time_ra", self.generation_time_ra),
                           ("photon_generation_time_rb", self.generation_time_rb)):
            if not value > 0:
                raise ValueError(f"calib.{key} must be > 0 s, got {value!r}")
        period = self.core.ref_period
        self.quench_mu = np.int64(round(self.quench_time / period))
        self.pi_ra_mu = np.int64(round(self.pi_time_ra / period))
        self.detection_mu = np.int64(round(self.detection_time / period))
        self.pi_rb_mu = np.int64(round(self.pi_time_rb / period))
        self.kernel_invariants |= {
            "f729_ra", "f729_rb", "amp729_ra", "amp729_rb", "f397_cool", "f397_detect",
            "f866", "f854", "detection_time", "threshold_ra", "threshold_rb", "cooling_time",
            "quench_mu", "f393", "ms_blue", "ms_red", "ms_amplitude", "ms_gate_time",
            "pi_ra_mu", "pi_rb_mu", "detection_mu"}

    def set_alpha(self, alpha: float) -> None:
        """393 pulse lengths (mu) for excitation probability ``alpha`` (host only)."""
        period = self.core.ref_period
        self.pulse_ra_mu = np.int64(max(8, round(-self.generation_time_ra * np.log1p(-alpha)
                                                 / period)))
        self.pulse_rb_mu = np.int64(max(8, round(-self.generation_time_rb * np.log1p(-alpha)
                                                 / period)))

    @kernel
    def init(self):
        """Initialise R's three Urukuls and every channel (switches off, 866 on)."""
        self.dds_397_r.cpld.init()
        self.dds_729_ra.cpld.init()
        self.dds_393_ra.cpld.init()
        self.dds_397_r.init()
        self.dds_866_r.init()
        self.dds_854_ra.init()
        self.dds_854_rb.init()
        self.dds_729_ra.init()
        self.dds_729_rb.init()
        self.dds_729_ms_blue_r.init()
        self.dds_729_ms_red_r.init()
        self.dds_393_ra.init()
        self.dds_393_rb.init()
        # one coarse period between switch events: simultaneous events on many channels
        # would each move to the next SED lane and overrun the eight lanes
        self.dds_397_r.sw.off()
        delay_mu(COARSE_MU)
        self.dds_854_ra.sw.off()
        delay_mu(COARSE_MU)
        self.dds_854_rb.sw.off()
        delay_mu(COARSE_MU)
        self.dds_729_ra.sw.off()
        delay_mu(COARSE_MU)
        self.dds_729_rb.sw.off()
        delay_mu(COARSE_MU)
        self.dds_729_ms_blue_r.sw.off()
        delay_mu(COARSE_MU)
        self.dds_729_ms_red_r.sw.off()
        delay_mu(COARSE_MU)
        self.dds_393_ra.sw.off()
        delay_mu(COARSE_MU)
        self.dds_393_rb.sw.off()
        delay_mu(COARSE_MU)
        self.dds_397_r.set(self.f397_cool)
        self.dds_866_r.set(self.f866)
        delay_mu(COARSE_MU)
        self.dds_866_r.sw.on()
        self.dds_854_ra.set(self.f854)
        self.dds_854_rb.set(self.f854)
        self.dds_393_ra.set(self.f393)
        self.dds_393_rb.set(self.f393)
        self.dds_729_ms_blue_r.set(self.ms_blue, amplitude=self.ms_amplitude)
        self.dds_729_ms_red_r.set(self.ms_red, amplitude=self.ms_amplitude)
        self.set_axes()
        self.pmt_ra.input()
        self.pmt_rb.input()

    @kernel
    def set_axes(self):
        """Program both 729 channels for resonant pulses of phase 0 (decoupling pulses)."""
        self.dds_729_ra.set(self.f729_ra, amplitude=self.amp729_ra)
        self.dds_729_rb.set(self.f729_rb, amplitude=self.amp729_rb)

    @kernel
    def set_cooling(self):
        """Program the global 397 nm for cooling (advances by the DDS update time)."""
        self.dds_397_r.set(self.f397_cool)

    @kernel
    def quench_ra(self):
        """854 quench of ion ra to S (866 on during it); advances by the quench + tail."""
        self.dds_866_r.sw.on()
        self.dds_854_ra.sw.pulse_mu(self.quench_mu)
        delay_mu(REPUMP_TAIL_MU)
        self.dds_866_r.sw.off()

    @kernel
    def quench_rb(self):
        """854 quench of ion rb to S (866 on during it); advances by the quench + tail."""
        self.dds_866_r.sw.on()
        self.dds_854_rb.sw.pulse_mu(self.quench_mu)
        delay_mu(REPUMP_TAIL_MU)
        self.dds_866_r.sw.off()

    @kernel
    def excite_ra(self):
        self.dds_393_ra.sw.pulse_mu(self.pulse_ra_mu)

    @kernel
    def excite_rb(self):
        self.dds_393_rb.sw.pulse_mu(self.pulse_rb_mu)

    @kernel
    def pi_ra(self):
        """Decoupling pi pulse on ion ra (switch only; axis from :meth:`set_axes`)."""
        self.dds_729_ra.sw.pulse_mu(self.pi_ra_mu)

    @kernel
    def pi_rb(self):
        self.dds_729_rb.sw.pulse_mu(self.pi_rb_mu)

    @kernel
    def ms_gate(self):
        """The MS gate: both tones of the bichromatic beam on for the calibrated time."""
        with parallel:
            self.dds_729_ms_blue_r.sw.pulse(self.ms_gate_time)
            self.dds_729_ms_red_r.sw.pulse(self.ms_gate_time)

    @kernel
    def read(self) -> TInt32:
        """Read both ions (global 397 + 866, individual PMTs); returns 2 z_ra + z_rb with
        z = 0 bright (S), 1 dark (D). Ends with the RTIO counter at the gate's end."""
        self.dds_397_r.set(self.f397_detect)
        self.dds_866_r.sw.on()
        self.dds_397_r.sw.on()
        with parallel:
            self.pmt_ra.gate_rising(self.detection_time)
            self.pmt_rb.gate_rising(self.detection_time)
        self.dds_397_r.sw.off()
        end = now_mu()
        # drain both input FIFOs in chunks as the clicks arrive (one channel read to the end
        # first would let the other's 64-event FIFO overflow during a bright readout)
        n_ra = 0
        n_rb = 0
        t = end - self.detection_mu + READ_CHUNK_MU
        while t < end:
            n_ra += self.pmt_ra.count(t)
            n_rb += self.pmt_rb.count(t)
            t += READ_CHUNK_MU
        n_ra += self.pmt_ra.count(end)
        n_rb += self.pmt_rb.count(end)
        z_ra = 0 if n_ra > self.threshold_ra else 1
        z_rb = 0 if n_rb > self.threshold_rb else 1
        return 2 * z_ra + z_rb


class LinkStation(HasEnvironment):
    """The two detectors of one link's heralding station (``det_<link>_0/1``)."""

    def build(self, link="ar"):
        if link not in ("ar", "rb"):
            raise ValueError(f"link must be 'ar' or 'rb', got {link!r}")
        self.setattr_device("core")
        self.det0 = self.get_device("det_" + link + "_0")
        self.det1 = self.get_device("det_" + link + "_1")
        self.click_mu = np.int64(-1)
        self.kernel_invariants = {"core", "det0", "det1"}

    @kernel
    def init(self):
        self.det0.input()
        self.det1.input()

    @kernel
    def gate(self, t_open_mu: TInt64, window_mu: TInt64):
        at_mu(t_open_mu)
        with parallel:
            self.det0.gate_rising_mu(window_mu)
            self.det1.gate_rising_mu(window_mu)

    @kernel
    def herald(self, t_end_mu: TInt64) -> TInt32:
        """0/1: exactly that detector clicked (click time in ``click_mu``); NO_CLICK
        otherwise (none or both). Drains both inputs up to ``t_end_mu``."""
        t0 = self.det0.timestamp_mu(t_end_mu)
        if t0 >= 0:
            self.det0.count(t_end_mu)
        t1 = self.det1.timestamp_mu(t_end_mu)
        if t1 >= 0:
            self.det1.count(t_end_mu)
        if t0 >= 0 and t1 < 0:
            self.click_mu = t0
            return 0
        if t1 >= 0 and t0 < 0:
            self.click_mu = t1
            return 1
        return NO_CLICK


class RepeaterChain(EnvExperiment):
    """Repeater chain A - R - B (entanglement swapping)

    Two single-photon links (A-R and R-B) attempt in parallel slots; a heralded link waits in
    memory (optionally with dynamical decoupling) for the other until the cutoff; then R
    swaps (MS gate + readout of both ions) and A and B are measured in random Pauli bases.
    Records per-link herald times and detectors, waiting and storage times, discards, swap
    outcomes and Pauli frames, and the end-to-end rounds; reports the end-to-end rate and
    fidelity.
    """

    def build(self):
        self.setattr_device("core")
        self.setattr_device("core_dma")
        self.setattr_device("scheduler")
        self.setattr_argument("pairs", NumberValue(200, precision=0, step=10, min=1,
                                                   type="int"),
                              group="Run", tooltip="end-to-end pairs (swaps) to collect")
        self.setattr_argument("max_slots", NumberValue(2000000, precision=0, step=10000,
                                                       min=1, type="int"),
                              group="Run", tooltip="give up after this many attempt slots")
        self.setattr_argument("batch_pairs", NumberValue(50, precision=0, step=10, min=1,
                                                         type="int"),
                              group="Run", tooltip="pairs per kernel run (live datasets "
                              "update and the experiment may yield between runs)")
        self.setattr_argument("seed", NumberValue(0, precision=0, step=1, min=0, type="int"),
                              group="Run", tooltip="seed of the end nodes' basis choices")
        self.setattr_argument("alpha", NumberValue(0.05, min=1e-4, max=0.9, step=0.01),
                              group="Links", tooltip="excitation probability per attempt "
                              "of every emitter")
        self.setattr_argument("link_length_ar", NumberValue(10.0, unit="km", scale=1.0,
                                                            min=0.0, max=500.0, step=1.0),
                              group="Links", tooltip="A-R fibre length (station in the "
                              "middle; fallback for the fibre delays before calibration)")
        self.setattr_argument("link_length_rb", NumberValue(10.0, unit="km", scale=1.0,
                                                            min=0.0, max=500.0, step=1.0),
                              group="Links", tooltip="R-B fibre length")
        self.setattr_argument("window", NumberValue(3 * us, unit="us", min=10 * ns,
                                                    max=100 * us),
                              group="Links", tooltip="station detection window")
        self.setattr_argument("fibre_loss", NumberValue(0.2, min=0.0, max=10.0, step=0.1),
                              group="Links", tooltip="fibre attenuation (dB/km), recorded "
                              "for the comparison with direct transmission")
        self.setattr_argument("cooling_interval", NumberValue(500, precision=0, step=100,
                                                              min=1, type="int"),
                              group="Links", tooltip="slots between coolings (only while "
                              "no memory is held)")
        self.setattr_argument("cutoff", NumberValue(5 * ms, unit="ms", min=0.0, max=10.0),
                              group="Memory", tooltip="longest time a heralded link waits "
                              "for the other before it is abandoned")
        self.setattr_argument("decoupling", BooleanValue(True), group="Memory",
                              tooltip="one 729 nm pi pulse per slot on both memories of a "
                              "waiting link (CPMG), an even number in total")
        self.setattr_argument("measurement", EnumerationValue(["tomography", "fidelity",
                                                               "z"], "tomography"),
                              group="Run", tooltip="end nodes' bases: random Pauli pairs "
                              "(tomography), random among ZZ, XX, XY, YX, YY (fidelity), "
                              "or Z")
        self.prep_a = StatePreparation(self, "a")
        self.prep_b = StatePreparation(self, "b")
        self.photons_a = PhotonGeneration(self, "a", self.alpha)
        self.photons_b = PhotonGeneration(self, "b", self.alpha)
        self.r = RepeaterIons(self)
        self.station_ar = LinkStation(self, "ar")
        self.station_rb = LinkStation(self, "rb")
        self.rot_a = Rotation729(self, "a")
        self.rot_b = Rotation729(self, "b")
        self.ro_a = FluorescenceReadout(self, "a")
        self.ro_b = FluorescenceReadout(self, "b")
        self.batch_pairs_done = np.int32(0)
        self.batch_slots = np.int32(0)
        self.batch_attempts_ar = np.int32(0)
        self.batch_attempts_rb = np.int32(0)
        self.batch_heralds_ar = np.int32(0)
        self.batch_heralds_rb = np.int32(0)
        self.batch_discards = np.int32(0)
        self.batch_duration_mu = np.int64(0)
        self.batch_cooling_mu = np.int64(0)
        self.since_cooling = np.int32(1 << 30)
        self.need_init = True
        self.settle = 20 * us
        #: slack after R's readout for the CPU to program the end nodes' basis rotations
        self.measure_slack = 200 * us
        self.kernel_invariants = {"core", "core_dma", "prep_a", "prep_b", "photons_a",
                                  "photons_b", "r", "station_ar", "station_rb", "rot_a",
                                  "rot_b", "ro_a", "ro_b",
                                  "settle", "measure_slack"}

    # ------------------------------------------------------------------ host: timing
    def prepare(self):
        self.call_child_method("prepare")
        # per-pair records, sized by an argument (None while the master examines build())
        n = int(self.batch_pairs)
        self.basis_a = np.zeros(n, dtype=np.int32)
        self.basis_b = np.zeros(n, dtype=np.int32)
        self.end_outcomes = np.zeros(n, dtype=np.int32)
        self.swap_outcomes = np.zeros(n, dtype=np.int32)
        self.det_ar = np.zeros(n, dtype=np.int32)
        self.det_rb = np.zeros(n, dtype=np.int32)
        self.herald_ar_mu = np.zeros(n, dtype=np.int64)
        self.herald_rb_mu = np.zeros(n, dtype=np.int64)
        self.learn_ar_mu = np.zeros(n, dtype=np.int64)
        self.learn_rb_mu = np.zeros(n, dtype=np.int64)
        self.swap_mu = np.zeros(n, dtype=np.int64)
        self.end_mu = np.zeros(n, dtype=np.int64)
        self.resume_mu = np.zeros(n, dtype=np.int64)
        self.dd_pulses = np.zeros(n, dtype=np.int32)
        self.r.set_alpha(self.alpha)
        # RF switches of the slot traces (device attributes: not in build(), which the
        # master also runs to examine the experiment with dummy devices)
        sw = {"866_a": self.photons_a.dds_866, "854_a": self.photons_a.dds_854,
              "393_a": self.photons_a.dds, "729_a": self.rot_a.dds_729,
              "866_r": self.r.dds_866_r, "854_ra": self.r.dds_854_ra,
              "854_rb": self.r.dds_854_rb, "393_ra": self.r.dds_393_ra,
              "393_rb": self.r.dds_393_rb, "729_ra": self.r.dds_729_ra,
              "729_rb": self.r.dds_729_rb, "866_b": self.photons_b.dds_866,
              "854_b": self.photons_b.dds_854, "393_b": self.photons_b.dds,
              "729_b": self.rot_b.dds_729, "397_a": self.prep_a.cooling.dds_397,
              "397_r": self.r.dds_397_r, "397_b": self.prep_b.cooling.dds_397}
        self.switches = [sw[name].sw for name in SWITCHES]
        self.kernel_invariants |= {"switches"}
        period = self.core.ref_period
        self.gate_a_mu = np.int64(round(self.ro_a.detection_time / period))
        self.gate_b_mu = np.int64(round(self.ro_b.detection_time / period))
        self.kernel_invariants |= {"gate_a_mu", "gate_b_mu"}
        g = self.get_dataset
        half_ar, half_rb = self.link_length_ar / 2, self.link_length_rb / 2
        delays = {n: float(g("calib.fibre_delay_" + n, fibre_delay_seconds(h)))
                  for n, h in (("a", half_ar), ("ra", half_ar), ("rb", half_rb),
                               ("b", half_rb))}
        for n, d in delays.items():
            if not d >= 0:
                raise ValueError(f"calib.fibre_delay_{n} must be >= 0 s, got {d!r}")
        d_mu = {n: int(round(d / period)) for n, d in delays.items()}
        q = max(int(self.photons_a.quench_mu), int(self.photons_b.quench_mu),
                int(self.r.quench_mu))
        quench = q + REPUMP_TAIL_MU
        pulses = {"a": int(self.photons_a.pulse_mu), "ra": int(self.r.pulse_ra_mu),
                  "rb": int(self.r.pulse_rb_mu), "b": int(self.photons_b.pulse_mu)}
        pis = {"a": int(round(self.rot_a.pi_time / period)),
               "ra": int(self.r.pi_ra_mu), "rb": int(self.r.pi_rb_mu),
               "b": int(round(self.rot_b.pi_time / period))}
        pre = int(round(100 * ns / period))
        window = int(round(self.window / period))
        emit, opens, ends = {}, {}, {}
        for link, (i, j) in (("ar", ("a", "ra")), ("rb", ("rb", "b"))):
            arrival = max(quench + pulses[i] + d_mu[i], quench + pulses[j] + d_mu[j])
            emit[i] = arrival - d_mu[i]
            emit[j] = arrival - d_mu[j]
            opens[link] = arrival - pre
            ends[link] = arrival - pre + window + 2 * COARSE_MU
        self.window_mu = np.int64(window)
        self.open_ar_mu = np.int64(opens["ar"])
        self.open_rb_mu = np.int64(opens["rb"])
        self.end_ar_mu = np.int64(ends["ar"])
        self.end_rb_mu = np.int64(ends["rb"])
        self.end_both_mu = np.int64(max(ends.values()))
        cooling = {"a": int(round(self.prep_a.cooling_time / period)),
                   "r": int(round(self.r.cooling_time / period)),
                   "b": int(round(self.prep_b.cooling_time / period))}
        self.cool_t, self.cool_k, self.cool_v = cooling_events(cooling)
        self.cool_n = np.int32(len(self.cool_t))
        self.cool_end_mu = np.int64(int(self.cool_t[-1]) + COARSE_MU)
        self.kernel_invariants |= {"cool_t", "cool_k", "cool_v", "cool_n", "cool_end_mu"}
        for name, flags in (("both", (True, True, False, False)),
                            ("ar", (True, False, False, False)),
                            ("rb", (False, True, False, False)),
                            ("ardd", (True, False, False, True)),
                            ("rbdd", (False, True, True, False))):
            t, k, v = slot_events(*flags, q, emit, pulses, pis)
            setattr(self, name + "_t", t)
            setattr(self, name + "_k", k)
            setattr(self, name + "_v", v)
            setattr(self, name + "_n", np.int32(len(t)))
            self.kernel_invariants |= {name + "_t", name + "_k", name + "_v", name + "_n"}
        # the herald signal returns from the middle of each link; the nodes act after both
        ret = max(fibre_delay_seconds(half_ar), fibre_delay_seconds(half_rb))
        self.return_mu = np.int64(round(max(ret + 1 * us, MIN_TURNAROUND) / period))
        self.cutoff_mu = np.int64(round(self.cutoff / period))
        self.kernel_invariants |= {"window_mu", "open_ar_mu", "open_rb_mu", "end_ar_mu",
                                   "end_rb_mu", "end_both_mu", "return_mu", "cutoff_mu"}
        self.rng = np.random.default_rng(self.seed)
        t2 = [float(g("calib.memory_t2_" + n, DEFAULT_MEMORY_T2)) for n in ("a", "ra", "rb",
                                                                             "b")]
        self.memory_t2 = t2
        #: shape of the memories' decay exp(-(t/T2)^k): 1 exponential, 2 Gaussian
        self.decay_exponent = float(g("calib.memory_decay_exponent", 1.0))
        self.pair_t2 = 1.0 / (1.0 / t2[0] + 1.0 / t2[1])
        self.records: dict[str, list] = {}
        self.totals = {"slots": 0, "attempts_ar": 0, "attempts_rb": 0, "heralds_ar": 0,
                       "heralds_rb": 0, "discards": 0, "duration_s": 0.0,
                       "cooling_s": 0.0}

    # ------------------------------------------------------------------ kernels: traces
    @kernel
    def play_events(self, ev_t, ev_k, ev_v, n: TInt32, gate_ar: TBool, gate_rb: TBool,
                    end_mu: TInt64):
        """One attempt slot from the cursor: ``n`` RF-switch events (offsets ``ev_t`` in mu,
        switch index ``ev_k`` into ``switches``, level ``ev_v``; strictly increasing
        coarse timestamps, so they stay in one SED lane), then the station gates of the
        links that try; the cursor ends ``end_mu`` after the start."""
        t0 = now_mu()
        for i in range(n):
            at_mu(t0 + ev_t[i])
            if ev_v[i] == 1:
                self.switches[ev_k[i]].on()
            else:
                self.switches[ev_k[i]].off()
        if gate_ar:
            at_mu(t0 + self.open_ar_mu)
            self.station_ar.det0.gate_rising_mu(self.window_mu)
            at_mu(t0 + self.open_ar_mu + COARSE_MU)
            self.station_ar.det1.gate_rising_mu(self.window_mu)
        if gate_rb:
            at_mu(t0 + self.open_rb_mu)
            self.station_rb.det0.gate_rising_mu(self.window_mu)
            at_mu(t0 + self.open_rb_mu + COARSE_MU)
            self.station_rb.det1.gate_rising_mu(self.window_mu)
        at_mu(t0 + end_mu)

    @kernel
    def record_traces(self):
        with self.core_dma.record(TRACE_BOTH):
            self.play_events(self.both_t, self.both_k, self.both_v, self.both_n, True, True,
                             self.end_both_mu)
        with self.core_dma.record(TRACE_AR):
            self.play_events(self.ar_t, self.ar_k, self.ar_v, self.ar_n, True, False,
                             self.end_ar_mu)
        with self.core_dma.record(TRACE_RB):
            self.play_events(self.rb_t, self.rb_k, self.rb_v, self.rb_n, False, True,
                             self.end_rb_mu)
        with self.core_dma.record(TRACE_AR_DD):
            self.play_events(self.ardd_t, self.ardd_k, self.ardd_v, self.ardd_n, True, False,
                             self.end_ar_mu)
        with self.core_dma.record(TRACE_RB_DD):
            self.play_events(self.rbdd_t, self.rbdd_k, self.rbdd_v, self.rbdd_n, False, True,
                             self.end_rb_mu)
        with self.core_dma.record(TRACE_COOL):
            self.play_events(self.cool_t, self.cool_k, self.cool_v, self.cool_n, False, False,
                             self.cool_end_mu)

    # ------------------------------------------------------------------ kernels: protocol
    @kernel
    def init(self):
        self.core.reset()
        self.prep_a.init()
        self.prep_b.init()
        self.photons_a.init()
        self.photons_b.init()
        self.r.init()
        self.rot_a.init()
        self.rot_b.init()
        self.ro_a.init()
        self.ro_b.init()
        self.station_ar.init()
        self.station_rb.init()
        self.set_decoupling_axes()
        self.core.break_realtime()
        self.record_traces()

    @kernel
    def set_cooling(self):
        """Program every 397 nm DDS for cooling (readouts leave the detection setting)."""
        self.prep_a.cooling.dds_397.set(self.prep_a.cooling.frequency_397,
                                        amplitude=self.prep_a.cooling.amplitude_397)
        self.prep_b.cooling.dds_397.set(self.prep_b.cooling.frequency_397,
                                        amplitude=self.prep_b.cooling.amplitude_397)
        self.r.set_cooling()
        delay(10 * us)

    @kernel
    def set_decoupling_axes(self):
        self.rot_a.set_axis(0.0)
        self.rot_b.set_axis(0.0)
        self.r.set_axes()

    @kernel
    def swap_and_measure(self, k: TInt32, pulses: TInt32, held_ar: TBool):
        """R's Bell-state measurement and, at the same time, the end nodes in the drawn
        bases (their outcomes do not wait for R's: the Pauli frame is applied in analysis).
        An odd number of decoupling pulses on the link that waited (A-R if ``held_ar``) is
        completed to an even one first."""
        delay(self.measure_slack)
        if pulses % 2 == 1:
            with parallel:
                if held_ar:
                    self.rot_a.rotate_on_axis(PI)
                if held_ar:
                    self.r.pi_ra()
                if not held_ar:
                    self.r.pi_rb()
                if not held_ar:
                    self.rot_b.rotate_on_axis(PI)
        rot_a = self.basis_a[k] != BASIS_Z
        rot_b = self.basis_b[k] != BASIS_Z
        self.rot_a.set_axis(basis_phase_turns(0.25 * float(self.basis_a[k])))
        self.rot_b.set_axis(basis_phase_turns(0.25 * float(self.basis_b[k])))
        self.swap_mu[k] = now_mu()
        self.r.ms_gate()
        with parallel:
            if rot_a:
                self.rot_a.rotate_on_axis(0.5 * PI)
            if rot_b:
                self.rot_b.rotate_on_axis(0.5 * PI)
        outcome = self.read_all()
        self.swap_outcomes[k] = outcome & 3
        self.end_outcomes[k] = outcome >> 2
        self.end_mu[k] = now_mu()
        self.core.break_realtime()
        self.set_decoupling_axes()
        delay(self.settle)
        self.resume_mu[k] = now_mu()

    @kernel
    def read_all(self) -> TInt32:
        """Fluorescence readout of A, B and both R ions at once (each for its calibrated
        detection time); returns 8 a + 4 b + 2 z_ra + z_rb (0 = bright = S)."""
        ro_a = self.ro_a
        ro_b = self.ro_b
        ro_a.dds_397.set(ro_a.frequency_397, amplitude=ro_a.amplitude_397)
        ro_b.dds_397.set(ro_b.frequency_397, amplitude=ro_b.amplitude_397)
        self.r.dds_397_r.set(self.r.f397_detect)
        ro_a.dds_866.sw.on()
        delay_mu(COARSE_MU)
        ro_b.dds_866.sw.on()
        delay_mu(COARSE_MU)
        self.r.dds_866_r.sw.on()
        delay_mu(COARSE_MU)
        ro_a.dds_397.sw.on()
        delay_mu(COARSE_MU)
        ro_b.dds_397.sw.on()
        delay_mu(COARSE_MU)
        self.r.dds_397_r.sw.on()
        t0 = now_mu()
        with parallel:
            ro_a.pmt.gate_rising(ro_a.detection_time)
            ro_b.pmt.gate_rising(ro_b.detection_time)
            self.r.pmt_ra.gate_rising(self.r.detection_time)
            self.r.pmt_rb.gate_rising(self.r.detection_time)
        end = now_mu()
        at_mu(t0 + self.gate_a_mu)
        ro_a.dds_397.sw.off()
        at_mu(t0 + self.gate_b_mu + COARSE_MU)
        ro_b.dds_397.sw.off()
        at_mu(t0 + self.r.detection_mu + 2 * COARSE_MU)
        self.r.dds_397_r.sw.off()
        at_mu(end + 3 * COARSE_MU)
        # drain the four input FIFOs in chunks as the clicks arrive
        n_a = 0
        n_b = 0
        n_ra = 0
        n_rb = 0
        t = t0 + READ_CHUNK_MU
        while t < end:
            n_a += ro_a.pmt.count(t)
            n_b += ro_b.pmt.count(t)
            n_ra += self.r.pmt_ra.count(t)
            n_rb += self.r.pmt_rb.count(t)
            t += READ_CHUNK_MU
        n_a += ro_a.pmt.count(end)
        n_b += ro_b.pmt.count(end)
        n_ra += self.r.pmt_ra.count(end)
        n_rb += self.r.pmt_rb.count(end)
        a = 0 if n_a > ro_a.threshold else 1
        b = 0 if n_b > ro_b.threshold else 1
        z_ra = 0 if n_ra > self.r.threshold_ra else 1
        z_rb = 0 if n_rb > self.r.threshold_rb else 1
        return 8 * a + 4 * b + 2 * z_ra + z_rb

    @kernel
    def run_batch(self, max_pairs: TInt32, max_slots: TInt32):
        """Attempt slots until ``max_pairs`` swaps or ``max_slots`` slots."""
        if self.need_init:
            self.init()
            self.need_init = False
        self.core.break_realtime()
        h_both = self.core_dma.get_handle(TRACE_BOTH)
        h_ar = self.core_dma.get_handle(TRACE_AR)
        h_rb = self.core_dma.get_handle(TRACE_RB)
        h_ar_dd = self.core_dma.get_handle(TRACE_AR_DD)
        h_rb_dd = self.core_dma.get_handle(TRACE_RB_DD)
        h_cool = self.core_dma.get_handle(TRACE_COOL)
        self.core.break_realtime()
        t_begin = now_mu()
        state_ar = FREE
        state_rb = FREE
        learn_ar = t_begin
        learn_rb = t_begin
        click_ar = t_begin
        click_rb = t_begin
        d_ar = 0
        d_rb = 0
        pulses = 0
        k = 0
        slots = 0
        attempts_ar = 0
        attempts_rb = 0
        heralds_ar = 0
        heralds_rb = 0
        discards = 0
        cooling_mu = now_mu() - t_begin
        while k < max_pairs and slots < max_slots:
            if state_ar == FREE and state_rb == FREE \
                    and self.since_cooling >= self.cooling_interval:
                t_cool = now_mu()
                self.set_cooling()
                self.core_dma.playback_handle(h_cool)
                self.since_cooling = 0
                cooling_mu += now_mu() - t_cool
            try_ar = state_ar == FREE
            try_rb = state_rb == FREE
            if try_ar and try_rb:
                self.core_dma.playback_handle(h_both)
            elif try_ar:
                if self.decoupling:
                    self.core_dma.playback_handle(h_ar_dd)
                    pulses += 1
                else:
                    self.core_dma.playback_handle(h_ar)
            else:
                if self.decoupling:
                    self.core_dma.playback_handle(h_rb_dd)
                    pulses += 1
                else:
                    self.core_dma.playback_handle(h_rb)
            t_end = now_mu()
            slots += 1
            self.since_cooling += 1
            r_ar = NO_CLICK
            r_rb = NO_CLICK
            if try_ar:
                attempts_ar += 1
                r_ar = self.station_ar.herald(t_end)
            if try_rb:
                attempts_rb += 1
                r_rb = self.station_rb.herald(t_end)
            at_mu(t_end + self.return_mu)
            t_now = now_mu()
            if r_ar != NO_CLICK:
                heralds_ar += 1
                state_ar = HELD
                d_ar = r_ar
                learn_ar = t_now
                click_ar = self.station_ar.click_mu
            if r_rb != NO_CLICK:
                heralds_rb += 1
                state_rb = HELD
                d_rb = r_rb
                learn_rb = t_now
                click_rb = self.station_rb.click_mu
            if state_ar == HELD and state_rb == HELD:
                self.det_ar[k] = d_ar
                self.det_rb[k] = d_rb
                self.herald_ar_mu[k] = click_ar
                self.herald_rb_mu[k] = click_rb
                self.learn_ar_mu[k] = learn_ar
                self.learn_rb_mu[k] = learn_rb
                self.dd_pulses[k] = pulses
                self.swap_and_measure(k, pulses, learn_ar < learn_rb)
                k += 1
                state_ar = FREE
                state_rb = FREE
                pulses = 0
            elif state_ar == HELD and t_now - learn_ar > self.cutoff_mu:
                state_ar = FREE
                discards += 1
                pulses = 0
            elif state_rb == HELD and t_now - learn_rb > self.cutoff_mu:
                state_rb = FREE
                discards += 1
                pulses = 0
        self.batch_pairs_done = k
        self.batch_slots = slots
        self.batch_attempts_ar = attempts_ar
        self.batch_attempts_rb = attempts_rb
        self.batch_heralds_ar = heralds_ar
        self.batch_heralds_rb = heralds_rb
        self.batch_discards = discards
        self.batch_duration_mu = now_mu() - t_begin
        self.batch_cooling_mu = cooling_mu

    # ------------------------------------------------------------------ host
    def draw_settings(self) -> None:
        n = len(self.basis_a)
        if self.measurement == "tomography":
            self.basis_a[:] = self.rng.integers(0, 3, n)
            self.basis_b[:] = self.rng.integers(0, 3, n)
        elif self.measurement == "fidelity":
            settings = np.array(FIDELITY_SETTINGS, dtype=np.int32)
            pick = settings[self.rng.integers(0, len(settings), n)]
            self.basis_a[:] = pick[:, 0]
            self.basis_b[:] = pick[:, 1]
        else:
            self.basis_a[:] = 2
            self.basis_b[:] = 2

    def collect(self) -> None:
        k = int(self.batch_pairs_done)
        for key in ("basis_a", "basis_b", "end_outcomes", "swap_outcomes", "det_ar",
                    "det_rb", "herald_ar_mu", "herald_rb_mu", "learn_ar_mu", "learn_rb_mu",
                    "swap_mu", "end_mu", "resume_mu", "dd_pulses"):
            self.records.setdefault(key, []).append(getattr(self, key)[:k].copy())
        t = self.totals
        t["slots"] += int(self.batch_slots)
        t["attempts_ar"] += int(self.batch_attempts_ar)
        t["attempts_rb"] += int(self.batch_attempts_rb)
        t["heralds_ar"] += int(self.batch_heralds_ar)
        t["heralds_rb"] += int(self.batch_heralds_rb)
        t["discards"] += int(self.batch_discards)
        t["duration_s"] += float(self.batch_duration_mu) * self.core.ref_period
        t["cooling_s"] += float(self.batch_cooling_mu) * self.core.ref_period

    def joined(self, key: str) -> np.ndarray:
        parts = self.records.get(key, [])
        return np.concatenate(parts) if parts else np.zeros(0)

    def publish(self) -> None:
        t = self.totals
        pairs = len(self.joined("swap_mu"))
        self.set_dataset("repeater.pairs", pairs, broadcast=True)
        self.set_dataset("repeater.duration_s", t["duration_s"], broadcast=True, unit="s")
        rate = pairs / t["duration_s"] if t["duration_s"] > 0 else 0.0
        self.set_dataset("repeater.rate_hz", rate, broadcast=True, unit="Hz")
        self.set_dataset("repeater.discards", t["discards"], broadcast=True)

    def run(self):
        done = 0
        slots = 0
        while done < self.pairs and slots < self.max_slots:
            self.draw_settings()
            n = min(int(self.batch_pairs), int(self.pairs) - done)
            self.run_batch(n, int(self.max_slots) - slots)
            self.collect()
            done += int(self.batch_pairs_done)
            slots += int(self.batch_slots)
            self.publish()
            if int(self.batch_pairs_done) < n:
                break
            if done < self.pairs and self.scheduler.check_pause():
                self.core.close()
                self.scheduler.pause()
                self.need_init = True

    def analyze(self):
        from analysis.errors import AnalysisError
        from analysis.repeater import (
            fidelity_from_correlators,
            fidelity_from_rounds,
            frame_corrected,
            pauli_frame,
        )

        ref = self.core.ref_period
        t = self.totals
        self.set_dataset("repeater.ref_period_s", ref)
        for key, name in (("det_ar", "herald_detector_ar"), ("det_rb", "herald_detector_rb"),
                          ("herald_ar_mu", "herald_time_ar_mu"),
                          ("herald_rb_mu", "herald_time_rb_mu"),
                          ("learn_ar_mu", "learn_time_ar_mu"),
                          ("learn_rb_mu", "learn_time_rb_mu"), ("swap_mu", "swap_time_mu"),
                          ("end_mu", "end_time_mu"), ("dd_pulses", "decoupling_pulses"),
                          ("swap_outcomes", "swap_outcome")):
            self.set_dataset("repeater." + name, self.joined(key))
        learn_ar, learn_rb = self.joined("learn_ar_mu"), self.joined("learn_rb_mu")
        swap = self.joined("swap_mu")
        wait = np.abs(learn_ar - learn_rb) * ref
        self.set_dataset("repeater.wait_s", wait, unit="s")
        self.set_dataset("repeater.storage_ar_s", (swap - learn_ar) * ref, unit="s")
        self.set_dataset("repeater.storage_rb_s", (swap - learn_rb) * ref, unit="s")
        for key in ("slots", "attempts_ar", "attempts_rb", "heralds_ar", "heralds_rb"):
            self.set_dataset("repeater." + key, t[key])
        p_ar = t["heralds_ar"] / max(t["attempts_ar"], 1)
        p_rb = t["heralds_rb"] / max(t["attempts_rb"], 1)
        self.set_dataset("repeater.p_ar", p_ar)
        self.set_dataset("repeater.p_rb", p_rb)
        both = (int(self.end_both_mu) + int(self.return_mu)) * ref
        self.set_dataset("repeater.attempt_period_s", both, unit="s")
        # Doppler cooling (between slots while no memory is held), per slot
        self.set_dataset("repeater.cooling_per_slot_s", t["cooling_s"] / max(t["slots"], 1),
                         unit="s")
        self.set_dataset("repeater.cutoff_s", float(self.cutoff), unit="s")
        self.set_dataset("repeater.alpha", float(self.alpha))
        self.set_dataset("repeater.window_s", float(self.window), unit="s")
        self.set_dataset("repeater.fibre_loss_db_per_km", float(self.fibre_loss))
        self.set_dataset("repeater.discards", t["discards"])
        self.set_dataset("repeater.length_ar_km", float(self.link_length_ar))
        self.set_dataset("repeater.length_rb_km", float(self.link_length_rb))
        self.set_dataset("repeater.pair_t2_s", self.pair_t2, unit="s")
        self.set_dataset("repeater.memory_t2_s", np.array(self.memory_t2), unit="s")
        self.set_dataset("repeater.memory_decay_exponent", self.decay_exponent)
        # node time the swap costs the protocol: from the nodes learning the second herald
        # to the next attempt slot (measurements, CPU slack, re-programming)
        resume = self.joined("resume_mu")
        swap_s = (float(np.mean(resume - np.maximum(learn_ar, learn_rb)) * ref)
                  if len(swap) else 0.0)
        self.set_dataset("repeater.swap_time_s", swap_s, unit="s")
        for n in ("a", "ra", "rb", "b"):
            self.set_dataset("repeater.photon_efficiency_" + n, float(self.get_dataset(
                "calib.photon_detection_efficiency_" + n, float("nan"), archive=False)))
        pairs = len(swap)
        rate = pairs / t["duration_s"] if t["duration_s"] > 0 else 0.0
        line = (f"{pairs} end-to-end pairs in {t['duration_s']:.4g} s node time "
                f"(rate {rate:.4g} /s); link success p_ar = {p_ar:.4g}, p_rb = {p_rb:.4g}; "
                f"{t['discards']} memories discarded at the {self.cutoff * 1e3:.3g} ms cutoff")
        if pairs:
            line += f"; mean wait {wait.mean() * 1e3:.4g} ms"
        print(line)
        if not pairs:
            return
        z = self.joined("swap_outcomes")
        fx, fz = pauli_frame(z >> 1, z & 1, self.joined("det_ar"), self.joined("det_rb"))
        outcomes = self.joined("end_outcomes")
        basis_a, basis_b = self.joined("basis_a"), self.joined("basis_b")
        a, b = outcomes >> 1, outcomes & 1
        b_corr = frame_corrected(basis_b, b, fx, fz)
        self.set_dataset("repeater.frame_x", fx.astype(np.int32))
        self.set_dataset("repeater.frame_z", fz.astype(np.int32))
        self.set_dataset("repeater.end_basis_a", basis_a)
        self.set_dataset("repeater.end_basis_b", basis_b)
        self.set_dataset("repeater.end_outcome_a", a)
        self.set_dataset("repeater.end_outcome_b", b)
        self.set_dataset("repeater.end_outcome_b_corrected", b_corr)
        if self.measurement == "z":
            return
        estimator = (fidelity_from_rounds if self.measurement == "tomography"
                     else fidelity_from_correlators)
        try:
            fid, err = estimator(basis_a, basis_b, a, b_corr, fx)
        except AnalysisError as e:
            print(f"end-to-end fidelity: {e}")
            return
        self.set_dataset("repeater.fidelity", fid)
        self.set_dataset("repeater.fidelity_stderr", err)
        print(f"end-to-end fidelity {fid:.4f} +- {err:.4f} ({self.measurement}, best phase "
              f"per Pauli-frame class, {pairs} pairs)")
