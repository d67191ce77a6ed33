"""The virtual network: two 40Ca+ nodes and a heralding station behind the simulated core.

:class:`VirtualNetwork` implements :class:`ionlink.sim.world.World`. Output events are buffered
and processed in time order (stable: same-time events keep submission order) when an input is
requested or on :meth:`flush`; ``core.reset()`` drops the buffered ones after the RTIO counter
(:meth:`VirtualNetwork.discard_after`). Between events each ion evolves under the lasers then on:

- 729 on: exact rectangular-pulse unitary (Rabi frequency from amplitude/attenuation and the
  drifting Rabi scale, Debye-Waller factor of the shot's phonon number, detuning from the DDS
  frequency vs the drifting transition plus the dephasing noise, phase from the DDS phase mode).
  A frequency actuator of the 397/729 laser (``attach_laser_actuator``) shifting it by Delta
  moves the resonance the ion sees to ``f_res(t) - Delta(t) / aom_passes`` in DDS Hz, in the
  detunings and (integrated exactly) in the atom phase (derivation in ionlink.node.lasers).
- 397 on: the ion is measured: projected on S/D/D3/2 with Born probabilities, then classical
  jumps (854 quench, D decay, pumping to D3/2 if 866 is off); PMT counts are Poisson with the
  scattering rate while in S, plus stray light and dark counts. 397+866 also Doppler-cool.
- otherwise: D5/2/D3/2 decay, 854/866 pumping (rate equations) and dephasing (Ornstein-Uhlenbeck
  detuning noise integrated exactly + Markovian dephasing).
- 393 pulse (switch on -> off): cavity-mediated Raman emission of a photon entangled with the
  ion (S -> D; two-photon scheme: S -> D or E with an early or late time-bin photon); photons
  of both nodes are resolved together at the station (see photons.py).

Ions have four levels (S, D, D3/2, E; see ion.py). Detector clicks go into one continuous
record per detector (detectors.py).

Speed without shortcuts in the physics: the joint state is kept as a product of two
population vectors whenever it is one (after pumping, readout or an undetected attempt), so
pumping and decay are 4x4 transfers and an ion exactly in S skips free evolution; an ion left
within SNAP_FLOOR of S by pumping is set to S; the dephasing noise and the atom phase are
integrated lazily (exactly) when a coherence needs them; an attempt whose ions entered
classically is first resolved as "no click" from the generation probabilities (the no-click
outcome factorises per node), the joint Kraus computation runs only for attempts with clicks.
A DMA playback arrives as one batch (``output_batch``) and is processed as a unit in its
precompiled time order with the switch targets resolved and the classical branches of the
ion evolution inlined (same arithmetic as event by event); emission Kraus operators and
dephasing unitaries are built only when an outcome needs them. Likewise drawn or computed
only when needed: the emission phases (from a snapshot of the phase state at emission), the
dephasing noise of an ion while its photon is in flight (logged on the batch; for an attempt
decided as "no click" its time joins the noise lag: the noise is Markov, one step over the
sum has the same law) and the fibre phase noise (advanced only for attempts with clicks).
A playback replayed with unchanged laser settings runs as a program compiled once per laser
state (:mod:`ionlink.node.playback`: the same steps and draws, with population transfers a
later quench makes irrelevant skipped); when its photons are resolved right after it, the
emissions stay a light record and a :class:`PhotonBatch` is built only for an outcome with
clicks (``_resolve_light``). Identical playback tuples (the engine sends one per fine
phase) share one compiled ``_Playback``.
"""

from __future__ import annotations

import bisect
import math
from typing import Any

import numpy as np

from ionlink.node import ion as ionmod
from ionlink.node._fast import choose
from ionlink.node.config import NodeConfig, load_node_config
from ionlink.node.detectors import ClickRecord
from ionlink.node.drift import Drift, OrnsteinUhlenbeck
from ionlink.node.ion import LEVELS, D, E, S
from ionlink.node.photons import PhotonBatch, outcome_kraus, sample_wavepacket
from ionlink.node.playback import (
    Program,
    compile_program,
    laser_key,
    program_rates,
    run_program,
    switched_lasers,
)
from ionlink.node.wiring import NODES, build_wiring
from ionlink.sim.world import PHASE_MODE_CONTINUOUS, DDSState, ResetAfterProcessingError

C_LIGHT = 299_792_458.0
TWO_PI = 2 * math.pi
EMPTY = np.empty(0, dtype=np.int64)
#: Longest span (mu) the atom phases are left unintegrated (keeps fmod precision).
PHASE_SYNC_MU = 1_000_000
#: Elements of a just-pumped ion below this are numerical residue (see ``_snap_to_s``).
SNAP_FLOOR = 1e-12
#: Largest deviation of a joint state from the product of its marginals treated as product.
PRODUCT_TOLERANCE = 1e-13


def _level(level: int) -> np.ndarray:
    """Population vector of an ion in ``level`` (shared and read-only: population
    vectors are replaced, never modified in place)."""
    return _LEVEL_POPS[level]


def _read_only(v: np.ndarray) -> np.ndarray:
    v.flags.writeable = False
    return v


_LEVEL_POPS = tuple(_read_only(np.eye(LEVELS)[k].copy()) for k in range(LEVELS))


def _product_marginals(rho: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The two ions' reduced states if ``rho`` is their product, else None."""
    ra = np.einsum("ijkj->ik", rho)
    rb = np.einsum("ijil->jl", rho)
    norm = np.real(np.trace(ra))
    ra, rb = ra / norm, rb / norm
    if np.abs(rho / norm - np.einsum("ik,jl->ijkl", ra, rb)).max() > PRODUCT_TOLERANCE:
        return None
    return ra, rb


def _no_click_map(branches: list, rho: np.ndarray, eta: float) -> np.ndarray:
    """Unnormalised state of one node's ion given that none of its photons was detected:
    each emitted photon is lost with probability 1 - eta (lost photons keep no phase)."""
    out = np.zeros_like(rho)
    for photons, op in branches:
        w = (1.0 - eta) ** len(photons)
        if w > 0:
            out += w * (op @ rho @ op.conj().T)
    return out


class _Playback:
    """World events of one DMA trace (``output_batch``), sorted once by (time, submission)."""

    __slots__ = ("events", "steps", "first", "last", "resolved", "switched", "programs")

    def __init__(self, events: tuple[tuple[int, str, str, Any], ...]):
        self.events = events
        order = sorted(range(len(events)), key=lambda k: (events[k][0], k))
        self.steps = tuple(events[k] for k in order)
        self.first = self.steps[0][0]
        self.last = self.steps[-1][0]
        self.resolved = None    # steps with the network's targets (``_run_playback``)
        self.switched: tuple = ()  # the lasers it switches (set with ``resolved``)
        #: laser key -> compiled program or None (:mod:`ionlink.node.playback`)
        self.programs: dict[tuple, Program | None] = {}


class _NoEmission:
    """Kraus operator of no emission, ``sqrt(1 - alpha)`` on S (built on demand)."""

    __slots__ = ("alpha",)

    def __init__(self, alpha: float):
        self.alpha = alpha

    def __call__(self) -> np.ndarray:
        k0 = np.eye(LEVELS, dtype=complex)
        k0[S, S] = math.sqrt(1 - self.alpha)
        return k0


class _EmissionKraus:
    """``sqrt(p) exp(-i phi) |level><S|`` (built on demand). ``phi`` is the carrier phase
    at emission; it is computed on demand too, from ``snapshot`` (the laser's and the atom's
    phase state at emission, see ``VirtualNetwork._emission_phase``)."""

    __slots__ = ("level", "p", "phase_of", "snapshot")

    def __init__(self, level: int, p: float, phase_of, snapshot: tuple):
        self.level, self.p, self.phase_of, self.snapshot = level, p, phase_of, snapshot

    @property
    def phi(self) -> float:
        """Emission phase (rad)."""
        return self.phase_of(self.level, self.snapshot)

    def __call__(self) -> np.ndarray:
        phi = self.phi
        k1 = np.zeros((LEVELS, LEVELS), dtype=complex)
        k1[self.level, S] = math.sqrt(self.p) * complex(math.cos(phi), -math.sin(phi))
        return k1


class _Laser:
    """State of one AOM channel: RF switch, DDS profile, attenuation, phase accumulator."""

    __slots__ = ("level", "dds", "att_db", "acc_turns", "acc_t_mu", "f", "is_on",
                 "_gain_att", "_gain", "epoch")

    def __init__(self) -> None:
        self.level = 0
        self.dds: DDSState | None = None
        self.att_db = 0.0
        self.acc_turns = 0.0
        self.acc_t_mu = 0
        #: cached :meth:`field` and :attr:`on` (kept up to date by :meth:`update`)
        self.f = 0.0
        self.is_on = False
        self._gain_att = 0.0
        self._gain = 1.0
        #: counts changes of the DDS profile or attenuation (``VirtualNetwork._process``)
        self.epoch = 0

    def update(self) -> None:
        """Recompute the cached field after a change of level, profile or attenuation."""
        d = self.dds
        on = self.is_on = self.level == 1 and d is not None and d.amplitude > 0
        if on:
            if self.att_db != self._gain_att:
                self._gain_att = self.att_db
                self._gain = 10.0 ** (-self.att_db / 20.0)
            self.f = d.amplitude * self._gain
        else:
            self.f = 0.0

    @property
    def on(self) -> bool:
        return self.level == 1 and self.dds is not None and self.dds.amplitude > 0

    def field(self) -> float:
        """Relative optical field amplitude (amplitude * 10^(-att/20)); 0 when off."""
        if not self.on:
            return 0.0
        return self.dds.amplitude * 10.0 ** (-self.att_db / 20.0)

    def set_dds(self, t_mu: int, state: DDSState) -> None:
        if self.dds is not None:
            self.acc_turns = math.fmod(
                self.acc_turns + self.dds.frequency_hz * (t_mu - self.acc_t_mu) * 1e-9, 1.0)
        self.acc_t_mu = t_mu
        self.dds = state

    def phase_turns(self, t_mu: int, with_offset: bool = True) -> float:
        """DDS output phase (turns, mod 1) at ``t_mu`` per :class:`DDSState` semantics;
        ``with_offset=False`` leaves out the programmed phase offset (the carrier alone)."""
        return _dds_phase_turns(self.dds, self.acc_turns, self.acc_t_mu, t_mu, with_offset)


def _dds_phase_turns(d: DDSState | None, acc_turns: float, acc_t_mu: int, t_mu: int,
                     with_offset: bool) -> float:
    """:meth:`_Laser.phase_turns` of a profile ``d`` with accumulator state ``acc_*``."""
    if d is None:
        return 0.0
    if d.phase_mode == PHASE_MODE_CONTINUOUS:
        run = acc_turns + d.frequency_hz * (t_mu - acc_t_mu) * 1e-9
    else:
        run = d.frequency_hz * (t_mu - d.ref_time_mu) * 1e-9
    return math.fmod(run + (d.phase_turns if with_offset else 0.0), 1.0)


class _Ion:
    """Per-node dynamic state besides the shared density matrix."""

    def __init__(self, rng: np.random.Generator, cfg: NodeConfig):
        self.t_mu = 0
        # atom phases (turns) of the S-D and S-E lines at phase_t_mu (integrated lazily)
        self.atom_phase_turns = 0.0
        self.atom_phase_e_turns = 0.0
        self.phase_t_mu = 0
        # OU noise time not yet applied (skipped while the ion state has no coherence)
        self.noise_lag_s = 0.0
        # noise phases logged on the pending photon batch, drawn (after noise_lag_s, in
        # order) only if the batch's branches are needed (``VirtualNetwork._settle_noise``)
        self.noise_pending: list = []
        mem = cfg.memory
        sigma = math.sqrt(2) / mem.quasi_static_t2_s if math.isfinite(mem.quasi_static_t2_s) \
            else 0.0
        self.noise = OrnsteinUhlenbeck(rng, sigma, mem.noise_correlation_time_s)
        self.nbar = cfg.motion.initial_nbar
        self.n_shot: int | None = None
        self.area_393 = 0.0
        self.lasers = {la: _Laser() for la in ("397", "866", "854", "729", "393")}
        self.laser_list = tuple(self.lasers[k] for k in ("397", "866", "854", "729", "393"))
        self.pmt_segments: list[tuple[int, int, float]] = []


class VirtualNetwork:
    """Two-node 40Ca+ network behind the simulated core (a :class:`World`).

    :param device_db: the lab's device_db dict (roles are its aliases, see wiring.py).
    :param config: node truth; ``None`` loads the defaults.
    :param seed: seed of the run's random draws (photon clicks, quantum outcomes, fast
        noise); components get independent streams via SeedSequence.spawn.
    :param lab_seed: seed of the lab's slow drifts (transition frequencies, Rabi
        frequency, fibre phase, temperature): one lab history shared by every run
        whatever its ``seed``, so calibrations carry over between runs.
    :param lab_time_origin_s: lab time (s) of ``t_mu = 0`` for the drifts.
    :param record_retention_s: node time (s) for which detector clicks stay readable behind
        the newest finalised click time (see :mod:`ionlink.node.detectors`).

    Detector inputs (PMTs, station detectors) are continuous click records: reading them is
    non-consuming and idempotent, and every reader (TTL gates, a time tagger) sees the same
    clicks, dark counts and dead time included, whether or not a gate was open.
    """

    def __init__(self, device_db: dict[str, Any], config: NodeConfig | None = None,
                 seed: int = 0, lab_time_origin_s: float = 0.0,
                 record_retention_s: float = 5.0, lab_seed: int = 0):
        self.cfg = config if config is not None else load_node_config()
        self.wiring = build_wiring(device_db)
        self.lab_time_origin_s = float(lab_time_origin_s)
        seqs = np.random.SeedSequence(seed).spawn(8)
        self._rng = np.random.default_rng(seqs[0])  # quantum outcomes and counts
        self._photon_rng = np.random.default_rng(seqs[1])
        cfg = self.cfg
        self.ions = [_Ion(np.random.default_rng(seqs[2 + i]), cfg) for i in range(2)]
        self._fibre_noise = OrnsteinUhlenbeck(np.random.default_rng(seqs[4]),
                                              cfg.fibre.phase_noise_rms_rad,
                                              cfg.fibre.phase_noise_correlation_time_s)
        self._fibre_noise_t_mu = 0
        self.lab_seed = int(lab_seed)
        self._drifts = self._make_drifts(np.random.default_rng(
            np.random.SeedSequence([self.lab_seed, 0x1AB])))
        self._drift_729 = [self._drifts[f"729_{n}"] for n in NODES]
        # frequency actuators of the 397/729 lasers per ion (ionlink.node.lasers; None:
        # none) and the devices whose events move them -> the ions they act on
        self._act_397: list = [None, None]
        self._act_729: list = [None, None]
        self._actuated_devices: dict[str, tuple[int, ...]] = {}
        self._efficiency_consts: tuple | None = None
        # The joint state is kept in one of two forms: ``_pops`` = [p_A, p_B] when it is a
        # product of diagonal (classical) states -- the usual state between attempts, where
        # pumping, decay and dephasing reduce to 4x4 population transfers -- or the full
        # 4-tensor ``_rho`` (``_pops`` None). ``self.rho`` materialises the full form.
        self._rho: np.ndarray | None = None
        self._pops: list[np.ndarray] | None = [_level(S), _level(S)]
        self._batch: PhotonBatch | None = None
        # the emissions of a playback program resolved right after it, in light form
        # (ionlink.node.playback.run_program; None otherwise)
        self._light: tuple | None = None
        self._events: list[tuple[int, int, str, str, Any]] = []
        self._seq = 0
        # DMA playbacks buffered as one item (t, seq, None, _Playback, t0), see output_batch
        self._playback_plans: dict[int, tuple[tuple, _Playback]] = {}
        self._playbacks_by_events: dict[tuple, _Playback] = {}
        self._pending_playbacks = 0
        #: latest timestamp of an output event processed so far (``discard_after``)
        self._processed_mu = -(1 << 62)
        self._make_records(seqs[6], record_retention_s)
        self._heating_rate = cfg.motion.heating_rate_quanta_per_s
        self._quench_rate = cfg.laser_854.quench_rate_at_full_amplitude_hz
        self._repump_rate = cfg.laser_866.repump_rate_at_full_amplitude_hz
        # device key -> (ion index, laser, laser state) it drives
        self._switch_targets = {
            dev: [(NODES.index(n), la, self.ions[NODES.index(n)].lasers[la]) for n, la in tg]
            for dev, tg in self.wiring.switch.items()}
        self._dds_targets = {
            dev: (NODES.index(n), la, self.ions[NODES.index(n)].lasers[la])
            for dev, (n, la) in self.wiring.dds.items()}
        ion = cfg.ion
        self._gamma12 = 1.0 / ion.p12_lifetime_s
        self._pulse_width = {k: cfg.readout.pulse_width_mu for k in self.wiring.pmt}
        self._pulse_width.update({k: cfg.station.pulse_width_mu for k in self.wiring.station})
        self._rates: dict[tuple, ionmod.RateMatrix] = {}
        self._transfers: dict[tuple, np.ndarray] = {}
        self._switch_cache: dict[tuple, tuple] = {}
        # compiled playback programs (ionlink.node.playback): the lasers and the
        # constants of the inlined evolution
        self._all_lasers = tuple(las for ion in self.ions for las in ion.laser_list)
        self._laser_changes = 0     # laser changes outside programs
        self._last_program: tuple | None = None     # (playback, program, changes then)
        self._level_s = _level(S)
        self._level_s_list = self._level_s.tolist()
        self._snap_floor = SNAP_FLOOR
        self._phase_sync_mu = PHASE_SYNC_MU

    # ----------------------------------------------------------------- state
    @property
    def rho(self) -> np.ndarray:
        """The joint state ``rho[a, b, a', b']`` (full form)."""
        pops = self._pops
        if pops is not None:
            rho = np.zeros((LEVELS,) * 4, dtype=complex)
            idx = np.arange(LEVELS)
            rho[idx[:, None], idx[None, :], idx[:, None], idx[None, :]] = np.outer(*pops)
            self._rho, self._pops = rho, None
        return self._rho

    @rho.setter
    def rho(self, value: np.ndarray) -> None:
        self._rho, self._pops = value, None

    # ----------------------------------------------------------------- detectors
    def _make_records(self, seq: np.random.SeedSequence, retention_s: float) -> None:
        if not retention_s > 0:
            raise ValueError(f"record_retention_s must be > 0 s, got {retention_s!r}")
        self.record_retention_s = float(retention_s)
        keep = int(round(retention_s * 1e9))
        rngs = [np.random.default_rng(s) for s in seq.spawn(4)]
        ro, st = self.cfg.readout, self.cfg.station
        self._pmt_records = [ClickRecord(f"pmt_{n}", rngs[i], ro.pmt_dark_count_rate_hz, 0,
                                         keep) for i, n in enumerate(NODES)]
        dead = int(round(st.dead_time_s * 1e9))
        self._station_records = [ClickRecord(f"det_station_{d}", rngs[2 + d],
                                             st.dark_count_rate_hz, dead, keep)
                                 for d in range(2)]
        self._bg_final_mu = 0
        self._bg_every_mu = max(keep // 4, 1)
        # device keys and aliases -> ("pmt", node index) / ("station", detector)
        self._inputs: dict[str, tuple[str, int]] = {}
        for key, node in self.wiring.pmt.items():
            self._inputs[key] = ("pmt", NODES.index(node))
        for key, det in self.wiring.station.items():
            self._inputs[key] = ("station", det)
        for role, key in self.wiring.devices.items():
            if key in self._inputs:
                self._inputs[role] = self._inputs[key]

    def _finalise_pmt(self, i: int, until: int) -> None:
        rec = self._pmt_records[i]
        if until <= rec.final_until:
            return
        ion = self.ions[i]
        segs = ion.pmt_segments
        rec.finalise(until, [s for s in segs if s[0] < until and s[2] > 0])
        ion.pmt_segments = [(max(s0, until), s1, r) for s0, s1, r in segs if s1 > until]

    def _finalise_background(self, t_mu: int) -> None:
        """Finalise every record as far as it is known (bounds memory without readers)."""
        self._bg_final_mu = t_mu
        for rec in self._station_records:
            rec.finalise(t_mu)
        for i in range(2):
            self._finalise_pmt(i, min(self.ions[i].t_mu, t_mu))

    # ----------------------------------------------------------------- truth and drifts
    def _make_drifts(self, rng: np.random.Generator) -> dict[str, Drift]:
        dc = self.cfg.drift
        seqs = np.random.SeedSequence(int(rng.integers(1 << 63))).spawn(10)
        names = [("729", dc.transition_729_walk_hz_per_sqrt_s, dc.transition_729_sine_hz,
                  dc.transition_729_period_s),
                 ("397", dc.resonance_397_walk_hz_per_sqrt_s, dc.resonance_397_sine_hz,
                  dc.resonance_397_period_s),
                 ("rabi", dc.rabi_scale_walk_per_sqrt_s, dc.rabi_scale_sine,
                  dc.rabi_scale_period_s),
                 ("photon", dc.photon_efficiency_walk_per_sqrt_s, dc.photon_efficiency_sine,
                  dc.photon_efficiency_period_s)]
        drifts = {}
        k = 0
        for node in NODES:
            for name, walk, amp, period in names:
                drifts[f"{name}_{node}"] = Drift(np.random.default_rng(seqs[k]), dc.grid_step_s,
                                                 walk, amp, period)
                k += 1
        drifts["fibre_phase"] = Drift(np.random.default_rng(seqs[k]), dc.grid_step_s,
                                      dc.fibre_phase_walk_rad_per_sqrt_s,
                                      dc.fibre_phase_sine_rad, dc.fibre_phase_period_s)
        drifts["temperature"] = Drift(np.random.default_rng(seqs[k + 1]), dc.grid_step_s, 0.0,
                                      self.cfg.fibre.temperature_swing_kelvin, 86400.0)
        return drifts

    def lab_time_s(self, t_mu: int) -> float:
        """Lab time (s) of a core timestamp."""
        return self.lab_time_origin_s + t_mu * 1e-9

    def _lab_to_mu(self, lab_s: float) -> int:
        """Core timestamp (mu) of a lab time (s)."""
        return int(round((lab_s - self.lab_time_origin_s) * 1e9))

    def free_transition_729_dds_hz(self, node: int, lab_s: float) -> float:
        """DDS frequency (Hz) resonant with the S-D qubit line for the free-running 729
        laser (its drift only, no actuator)."""
        c = self.cfg.laser_729
        base = c.transition_dds_hz_a if node == 0 else c.transition_dds_hz_b
        return base + self._drifts[f"729_{NODES[node]}"](lab_s)

    def transition_729_dds_hz(self, node: int, lab_s: float) -> float:
        """DDS frequency (Hz) resonant with the S-D qubit line at lab time ``lab_s``: the
        free-running drift minus the 729 actuator's optical shift / ``aom_passes``
        (see :mod:`ionlink.node.lasers` for the sign)."""
        f = self.free_transition_729_dds_hz(node, lab_s)
        act = self._act_729[node]
        if act is not None:
            f -= act.shift_hz(self._lab_to_mu(lab_s)) / self.cfg.laser_729.aom_passes
        return f

    def transition_e_dds_hz(self, node: int, lab_s: float) -> float:
        """DDS frequency (Hz) resonant with the S-E line (second D5/2 sublevel)."""
        return self.transition_729_dds_hz(node, lab_s) \
            + self.cfg.laser_729.transition_e_offset_dds_hz

    def free_resonance_397_dds_hz(self, node: int, lab_s: float) -> float:
        """DDS frequency (Hz) resonant with S1/2-P1/2 for the free-running 397 laser (its
        drift only, no actuator)."""
        return self.cfg.laser_397.resonance_dds_hz + self._drifts[f"397_{NODES[node]}"](lab_s)

    def resonance_397_dds_hz(self, node: int, lab_s: float) -> float:
        """DDS frequency (Hz) resonant with S1/2-P1/2 at lab time ``lab_s``: the
        free-running drift minus the 397 actuator's optical shift / ``aom_passes``."""
        f = self.free_resonance_397_dds_hz(node, lab_s)
        act = self._act_397[node]
        if act is not None:
            f -= act.shift_hz(self._lab_to_mu(lab_s)) / self.cfg.laser_397.aom_passes
        return f

    def rabi_scale(self, node: int, lab_s: float) -> float:
        return max(1.0 + self._drifts[f"rabi_{NODES[node]}"](lab_s), 0.0)

    def photon_efficiency(self, node: int, lab_s: float) -> float:
        """Probability that an emitted photon makes a click (collection, conversion, filter,
        fibre loss, detector efficiency)."""
        consts = self._efficiency_consts
        if consts is None or consts[0] is not self.cfg:
            p, f, st = self.cfg.photon, self.cfg.fibre, self.cfg.station
            consts = self._efficiency_consts = (self.cfg, tuple(
                (self._drifts[f"photon_{n}"], p.collection_efficiency,
                 p.conversion_efficiency, p.filter_transmission,
                 10 ** (-f.loss_db_per_km * (f.length_a_km if k == 0 else f.length_b_km) / 10),
                 st.detector_efficiency) for k, n in enumerate(NODES)))
        drift, coll, conv, filt, loss, det = consts[1][node]
        scale = max(1.0 + drift(lab_s), 0.0)
        collect = min(coll * scale, 1.0)
        return collect * conv * filt * loss * det

    def _efficiencies(self, lab_s: float) -> tuple[float, float]:
        """``(photon_efficiency(0, lab_s), photon_efficiency(1, lab_s))`` (same arithmetic)."""
        consts = self._efficiency_consts
        if consts is None or consts[0] is not self.cfg:
            self.photon_efficiency(0, lab_s)
            consts = self._efficiency_consts
        out = []
        for drift, coll, conv, filt, loss, det in consts[1]:
            scale = max(1.0 + drift(lab_s), 0.0)
            out.append(min(coll * scale, 1.0) * conv * filt * loss * det)
        return out[0], out[1]

    def fibre_delay_s(self, node: int, lab_s: float) -> float:
        f = self.cfg.fibre
        length = (f.length_a_km if node == 0 else f.length_b_km) * 1e3
        dtemp = self._drifts["temperature"](lab_s)
        return length * f.refractive_index / C_LIGHT * (1 + f.delay_ppm_per_kelvin * 1e-6 * dtemp)

    def omega_729(self, node: int, field: float, lab_s: float) -> float:
        """Bare carrier Rabi frequency (rad/s) for a relative optical field."""
        return math.pi / self.cfg.laser_729.pi_time_at_full_amplitude_s * field \
            * self.rabi_scale(node, lab_s)

    def pi_time_s(self, node: int, amplitude: float = 1.0, att_db: float = 0.0,
                  lab_s: float = 0.0, nbar: float | None = None) -> float:
        """True 729 carrier pi time (s); with ``nbar`` the Debye-Waller-reduced Rabi frequency
        averaged over a thermal distribution of that mean (first-order: exp(-eta^2 (nbar+1/2)))."""
        omega = self.omega_729(node, amplitude * 10 ** (-att_db / 20), lab_s)
        if nbar is not None:
            omega *= math.exp(-self.cfg.motion.lamb_dicke_729 ** 2 * (nbar + 0.5))
        return math.pi / omega

    def alpha_393(self, amplitude: float, att_db: float, duration_s: float) -> float:
        """Photon generation probability of a rectangular 393 pulse."""
        field = amplitude * 10 ** (-att_db / 20)
        return 1 - math.exp(-field * field * duration_s
                            / self.cfg.laser_393.generation_time_constant_s)

    def bright_rate_hz(self, node: int, f_dds_hz: float, amplitude: float = 1.0,
                       att_db: float = 0.0, lab_s: float = 0.0) -> float:
        """Mean PMT count rate (1/s) of a bright ion (S, 397+866 on), without background."""
        c = self.cfg
        sat = c.laser_397.saturation_at_full_amplitude * (amplitude * 10 ** (-att_db / 20)) ** 2
        det = TWO_PI * c.laser_397.aom_passes * (f_dds_hz - self.resonance_397_dds_hz(node,
                                                                                        lab_s))
        r = ionmod.scattering_rate(self._gamma12, sat, det)
        ro = c.readout
        return r * ro.cycle_efficiency * ro.collection_efficiency * ro.pmt_quantum_efficiency

    def background_rate_hz(self, amplitude: float = 1.0, att_db: float = 0.0) -> float:
        """PMT count rate (1/s) of a dark ion with 397 on: stray light + dark counts."""
        ro = self.cfg.readout
        return ro.pmt_dark_count_rate_hz + ro.stray_light_rate_at_full_397_hz * (
            amplitude * 10 ** (-att_db / 20)) ** 2

    def truth(self, lab_time_s: float) -> dict[str, Any]:
        """True parameters at a lab time (for checking calibrations)."""
        c = self.cfg
        out: dict[str, Any] = {}
        for i, node in enumerate(NODES):
            f397 = self.resonance_397_dds_hz(i, lab_time_s)
            out[node] = {
                "transition_729_dds_hz": self.transition_729_dds_hz(i, lab_time_s),
                "transition_e_dds_hz": self.transition_e_dds_hz(i, lab_time_s),
                "pi_time_s": self.pi_time_s(i, 1.0, 0.0, lab_time_s),
                "rabi_scale": self.rabi_scale(i, lab_time_s),
                "resonance_397_dds_hz": f397,
                "photon_efficiency": self.photon_efficiency(i, lab_time_s),
                "fibre_delay_s": self.fibre_delay_s(i, lab_time_s),
                "readout_bright_rate_hz_at_resonance": self.bright_rate_hz(i, f397, 1.0, 0.0,
                                                                           lab_time_s),
                "readout_background_rate_hz": self.background_rate_hz(),
            }
        out["t2_quasi_static_s"] = c.memory.quasi_static_t2_s
        out["t2_markovian_s"] = c.memory.markovian_t2_s
        out["noise_correlation_time_s"] = c.memory.noise_correlation_time_s
        out["fibre_phase_rad"] = c.fibre.phase_offset_rad + self._drifts["fibre_phase"](
            lab_time_s)
        out["d52_lifetime_s"] = c.ion.d52_lifetime_s
        return out

    # ----------------------------------------------------------------- World interface
    def output(self, t_mu: int, device: str, attr: str, value: Any) -> None:
        """Buffer an output event (processed in time order later)."""
        self._events.append((t_mu, self._seq, device, attr, value))
        self._seq += 1

    def output_batch(self, t0_mu: int, events: tuple[tuple[int, str, str, Any], ...]) -> None:
        """Buffer the world events of one DMA playback (``(t_rel_mu, device, attr, value)``
        in submission order, at ``t0_mu + t_rel_mu``), as ``output`` would one by one.

        The playback is kept as one item and processed as a unit, in its precompiled time
        order, when no other buffered event falls inside its time span; otherwise it is
        expanded into single events first. Either way the events are processed in the
        order (time, submission) exactly as if ``output`` had been called per event.
        """
        if "output" in self.__dict__:       # wrapped (laser actuators): every event seen
            output = self.output
            for rel, device, attr, value in events:
                output(t0_mu + rel, device, attr, value)
            return
        entry = self._playback_plans.get(id(events))
        if entry is None or entry[0] is not events:
            if len(self._playback_plans) > 64:
                self._playback_plans.clear()
                self._playbacks_by_events.clear()
            # one _Playback per content: the engine sends one tuple per fine phase
            try:
                plan = self._playbacks_by_events.get(events)
            except TypeError:       # an unhashable value: no sharing
                plan = _Playback(events)
            if plan is None:
                plan = self._playbacks_by_events[events] = _Playback(events)
            entry = self._playback_plans[id(events)] = (events, plan)
        plan = entry[1]
        self._events.append((t0_mu + plan.first, self._seq, None, plan, t0_mu))
        self._seq += len(events)
        self._pending_playbacks += 1

    def _expand_playbacks(self, t_mu: int | None) -> None:
        """Expand (into single events) buffered playbacks that cannot be processed as a
        unit before ``t_mu``: another event inside their span, or the cut inside it.
        ``self._events`` is sorted on entry and on exit."""
        events = self._events
        expanded = False
        for k, item in enumerate(events):
            if item[2] is not None:
                continue
            plan, t0 = item[3], item[4]
            t_last = t0 + plan.last
            if (k + 1 == len(events) or events[k + 1][0] > t_last) and (
                    t_mu is None or t_last < t_mu or item[0] >= t_mu):
                continue
            seq = item[1]
            events[k] = None
            events.extend([(t0 + rel, seq + j, device, attr, value)
                           for j, (rel, device, attr, value) in enumerate(plan.events)])
            self._pending_playbacks -= 1
            expanded = True
        if expanded:
            events[:] = [e for e in events if e is not None]
            events.sort()

    def _run_playback(self, plan: _Playback, t0: int, light: bool = False) -> None:
        """Process a playback's events (as ``_process`` would, switch targets resolved).
        ``light``: its photons are resolved right after it (see ``run_program``)."""
        steps = plan.resolved
        if steps is None:
            # consecutive switch events at one time become one list of changes (the
            # same sequence of per-target steps as event by event)
            merged: list = []
            for rel, device, attr, value in plan.steps:
                changes = self._switch_changes(device, value) if attr == "level" else None
                if changes is not None and merged and merged[-1][1] is not None \
                        and merged[-1][0] == rel:
                    merged[-1] = (rel, merged[-1][1] + changes, None, None, None)
                else:
                    merged.append((rel, changes, device, attr, value))
            steps = plan.resolved = tuple(merged)
            plan.switched = switched_lasers(steps)
        if self._pops is not None and self._batch is None:
            last = self._last_program
            if last is not None and last[0] is plan and last[2] == self._laser_changes \
                    and last[1].cyclic and last[1].rates == program_rates(self):
                program = last[1]   # the same playback again, no laser touched since
            else:
                key = laser_key(self, plan.switched)
                programs = plan.programs
                if key in programs:
                    program = programs[key]
                else:
                    if len(programs) > 16:
                        programs.clear()
                    program = programs[key] = compile_program(self, steps)
            if program is not None and run_program(self, program, t0, light):
                self._last_program = (plan, program, self._laser_changes)
                return
        switch = self._switch_level
        for rel, changes, device, attr, value in steps:
            if changes is None:
                self._process(t0 + rel, device, attr, value)
            else:
                switch(t0 + rel, changes)

    def _switch_changes(self, device: str, value: Any) -> tuple | None:
        """The ``(ion, laser, _Laser, level)`` changes of RF switch ``device`` set to
        ``value`` (None: not a switch of the node)."""
        level = int(value)
        key = (device, level)
        changes = self._switch_cache.get(key)
        if changes is None:
            targets = self._switch_targets.get(device)
            if targets is None:
                return None
            changes = self._switch_cache[key] = tuple(
                (i, laser, las, level) for i, laser, las in targets)
        return changes

    def _switch_level(self, t: int, changes: tuple) -> None:
        """RF switches set at ``t``: ``changes`` = ``(ion, laser, _Laser, level)`` each, in
        order. Each ion is advanced to ``t`` first (``_advance``, its classical branches
        inlined with the same arithmetic), a 393 pulse that ends emits."""
        self._laser_changes += 1
        ions = self.ions
        heating = self._heating_rate
        for i, laser, las, value in changes:
            ion = ions[i]
            if t > ion.t_mu:
                pops = self._pops
                l397, l866, l854, l729, l393 = ion.laser_list
                batch = self._batch
                if pops is None or l397.f != 0 or l729.f != 0:
                    self._advance(i, t)
                elif batch is None:
                    # _advance's two classical branches, inlined (same arithmetic):
                    # exactly in S (motion heats), or populations pumped/decaying
                    dt = (t - ion.t_mu) * 1e-9
                    f393 = l393.f
                    if f393 > 0:
                        ion.area_393 += f393 * f393 * dt
                    ion.noise_lag_s += dt
                    p = pops[i]
                    if p[S] != 1.0:
                        f866, f854 = l866.f, l854.f
                        r854 = self._quench_rate * f854 * f854
                        r866 = self._repump_rate * f866 * f866
                        # (ndarray.dot: the same BLAS product as @, less overhead)
                        v = self._transfer(r854, r866, dt).dot(p)
                        if (r854 > 0 or r866 > 0) and 1.0 - v[S] <= SNAP_FLOOR:
                            v = _level(S)
                        pops[i] = v
                    ion.nbar += heating * dt
                    if ion.n_shot is not None and heating > 0:
                        ion.n_shot += int(self._rng.poisson(heating * dt))
                    ion.t_mu = t
                    if t - ion.phase_t_mu > PHASE_SYNC_MU:
                        self._sync_phase(i, t)
                elif l854.f == 0 and l866.f == 0:
                    # photons in flight, nothing pumping: _advance's branch that logs
                    # the noise phase and defers the decay, inlined
                    dt = (t - ion.t_mu) * 1e-9
                    f393 = l393.f
                    if f393 > 0:
                        ion.area_393 += f393 * f393 * dt
                    if ion.noise.sigma != 0:
                        # the noise phase over dt, drawn only if the branches are needed
                        ion.noise_pending.append(batch.defer_phase(i, dt))
                    batch.deferred_s[i] += dt
                    ion.nbar += heating * dt
                    if ion.n_shot is not None and heating > 0:
                        ion.n_shot += int(self._rng.poisson(heating * dt))
                    ion.t_mu = t
                    if t - ion.phase_t_mu > PHASE_SYNC_MU:
                        self._sync_phase(i, t)
                else:
                    self._advance(i, t)
            # the switch changes (_Laser.update inlined)
            was_on = las.is_on
            las.level = value
            d = las.dds
            if value == 1 and d is not None and d.amplitude > 0:
                if las.att_db != las._gain_att:
                    las._gain_att = las.att_db
                    las._gain = 10.0 ** (-las.att_db / 20.0)
                las.f = d.amplitude * las._gain
                las.is_on = True
            else:
                las.f = 0.0
                las.is_on = False
                if was_on and laser == "393":
                    self._emit(i, t)

    def input_edges(self, device: str, t_from_mu: int, t_to_mu: int) -> np.ndarray:
        """Rising edges in ``[t_from_mu, t_to_mu)`` of a PMT or station detector (device
        key or role alias); other inputs see none. Non-consuming and idempotent."""
        which = self._inputs.get(device)
        if which is None:
            return EMPTY
        self.flush(t_to_mu)
        kind, k = which
        if kind == "pmt":
            self._advance(k, t_to_mu)
            self._finalise_pmt(k, t_to_mu)
            return self._pmt_records[k].query(t_from_mu, t_to_mu)
        rec = self._station_records[k]
        rec.finalise(t_to_mu)
        return rec.query(t_from_mu, t_to_mu)

    def input_pulse_width_mu(self, device: str) -> int:
        return self._pulse_width.get(device, 10)

    def flush(self, t_mu: int | None = None) -> None:
        """Process buffered events with timestamps before ``t_mu`` (all if None) and resolve
        photon batches emitted before it."""
        events = self._events
        if len(events) == 1 and events[0][2] is None and t_mu is not None and \
                events[0][4] + events[0][3].last < t_mu:
            # the usual case: one playback, all of it before t_mu
            _, _, _, plan, t0 = events[0]
            self._events = []
            self._pending_playbacks -= 1
            if t0 + plan.last > self._processed_mu:
                self._processed_mu = t0 + plan.last
            self._run_playback(plan, t0, True)
            if self._light is not None:
                self._resolve_light()
            events = ()
        if events:
            events.sort()
            if self._pending_playbacks:
                self._expand_playbacks(t_mu)
            if t_mu is None or events[-1][0] < t_mu:
                todo, self._events = events, []
            else:
                cut = bisect.bisect_left(events, (t_mu,))
                todo, self._events = events[:cut], events[cut:]
            last = len(todo) - 1
            if todo:
                # (an unexpanded playback ends before the next item starts: the last
                # item ends last)
                end = todo[-1][0] if todo[-1][2] is not None else \
                    todo[-1][4] + todo[-1][3].last
                if end > self._processed_mu:
                    self._processed_mu = end
            for k, (t, _, device, attr, value) in enumerate(todo):
                if device is None:
                    self._pending_playbacks -= 1
                    # the last item: its photons are resolved right below
                    self._run_playback(attr, value, k == last)
                else:
                    self._process(t, device, attr, value)
            if self._light is not None:
                self._resolve_light()
        if self._batch is not None and (
                t_mu is None or self._batch.first_emission_mu() < t_mu):
            self._resolve_batch()
        if t_mu is not None and t_mu - self._bg_final_mu > self._bg_every_mu:
            self._finalise_background(t_mu)

    def discard_after(self, t_mu: int) -> None:
        """``core.reset()`` at RTIO counter ``t_mu``: buffered output events (single or in
        DMA playbacks, a playback cut where it crosses ``t_mu``) after ``t_mu`` never happen,
        nor the actuator values they set. Raises :class:`ResetAfterProcessingError` if an
        event after ``t_mu`` has already been processed (the ions evolved under it)."""
        if self._processed_mu > t_mu:
            raise ResetAfterProcessingError(
                f"core.reset() at RTIO counter {t_mu} mu must discard output events after "
                f"it, but the virtual network has already processed events up to "
                f"{self._processed_mu} mu")
        events = self._events
        if events:
            events.sort()
            if self._pending_playbacks:
                self._expand_playbacks(t_mu + 1)
            cut = bisect.bisect_left(events, (t_mu + 1,))
            self._pending_playbacks -= sum(1 for e in events[cut:] if e[2] is None)
            del events[cut:]
        optical = self.__dict__.get("_optical")
        if optical is not None:
            optical.discard_after(t_mu)

    # ----------------------------------------------------------------- event dispatch
    def _process(self, t: int, device: str, attr: str, value: Any) -> None:
        if attr == "level":
            changes = self._switch_changes(device, value)
            if changes is not None:
                self._switch_level(t, changes)
        elif attr in ("dds", "att_db"):
            if self._actuated_devices and attr == "dds" and device in self._actuated_devices:
                self._actuator_event(t, device)
            target = self._dds_targets.get(device)
            if target is None:
                return
            i, laser, las = target
            self._advance(i, t)
            self._laser_changes += 1
            was_on = las.on
            if attr == "dds":
                if value != las.dds:
                    las.epoch += 1
                las.set_dds(t, value)
            else:
                if float(value) != las.att_db:
                    las.epoch += 1
                las.att_db = float(value)
            las.update()
            self._after_change(i, laser, was_on, las.on, t)
        elif attr == "dac_v" and device in self._actuated_devices:
            self._actuator_event(t, device)

    def _actuator_event(self, t: int, device: str) -> None:
        """An event of a device that actuates a 397/729 laser: the ions it acts on are
        advanced to ``t`` under the old value (the actuators recorded the new one on
        output), so a segment never spans an actuator step."""
        for i in self._actuated_devices[device]:
            self._advance(i, t)

    def _after_change(self, i: int, laser: str, was_on: bool, now_on: bool, t: int) -> None:
        if laser == "393" and was_on and not now_on:
            self._emit(i, t)

    # ----------------------------------------------------------------- ion evolution
    def _advance(self, i: int, t: int) -> None:
        ion = self.ions[i]
        if t <= ion.t_mu:
            return
        t0 = ion.t_mu
        dt = (t - t0) * 1e-9
        l397, l866, l854, l729, l393 = ion.laser_list
        f397, f866, f854, f729, f393 = l397.f, l866.f, l854.f, l729.f, l393.f
        if f393 > 0:
            ion.area_393 += f393 * f393 * dt
        pops = self._pops
        if (pops is not None and pops[i][S] == 1.0 and f397 == 0 and f729 == 0
                and self._batch is None):
            # fast path: an ion exactly in S, no coherence anywhere, no 397/729: only the
            # motion heats and the noise's (Markov) state runs on (applied when next needed)
            ion.noise_lag_s += dt
            ion.nbar += self._heating_rate * dt
            if ion.n_shot is not None and self._heating_rate > 0:
                ion.n_shot += int(self._rng.poisson(self._heating_rate * dt))
            ion.t_mu = t
            if t - ion.phase_t_mu > PHASE_SYNC_MU:
                self._sync_phase(i, t)
            return
        lab = self.lab_time_s(t0)
        if pops is not None and self._batch is None and f729 == 0:
            # no coherence anywhere: the dephasing noise's phase has no effect; its
            # (Markov) state is advanced over the whole skipped time when next needed
            ion.noise_lag_s += dt
            noise_phase = 0.0
        else:
            self._settle_noise(ion)
            _, noise_phase = ion.noise.advance(dt)
        if f397 > 0:
            self._readout_segment(i, t0, t, f397, f866, f854, lab)
        else:
            if f729 > 0:
                self._pulse_729(i, t0, t, f729, noise_phase / dt, lab)
                noise_phase = 0.0
            self._incoherent(i, dt, f866, f854, noise_phase)
            self._heat(ion, dt)
        ion.t_mu = t
        if t - ion.phase_t_mu > PHASE_SYNC_MU:
            self._sync_phase(i, t)

    @staticmethod
    def _settle_noise(ion: _Ion) -> None:
        """Advance ion's dephasing noise over the time it was left unapplied: first the
        lag (no coherence then), then the phases logged on the pending photon batch, in
        order (their values are drawn now)."""
        noise = ion.noise
        if ion.noise_lag_s:
            noise.advance(ion.noise_lag_s)
            ion.noise_lag_s = 0.0
        if ion.noise_pending:
            for factory in ion.noise_pending:
                factory.phase = noise.advance(factory.dt)[1]
            ion.noise_pending = []

    @staticmethod
    def _drop_noise(ion: _Ion) -> None:
        """The batch's logged noise phases are not needed (no coherence): their time joins
        the lag (the noise is Markov: one step over the sum has the same law)."""
        if ion.noise_pending:
            ion.noise_lag_s += sum(f.dt for f in ion.noise_pending)
            ion.noise_pending = []

    def _sync_phase(self, i: int, t: int) -> None:
        """Bring the atom phases of ion ``i`` to ``t`` (exact integral of the drifting
        effective transition frequency in DDS Hz, the 729 actuator's piecewise-constant
        shift included)."""
        ion = self.ions[i]
        t0 = ion.phase_t_mu
        if t <= t0:
            return
        c = self.cfg.laser_729
        base = c.transition_dds_hz_a if i == 0 else c.transition_dds_hz_b
        dt = (t - t0) * 1e-9
        turns = base * dt + self._drift_729[i].integral(self.lab_time_s(t0),
                                                        self.lab_time_s(t))
        act = self._act_729[i]
        if act is not None:     # the effective transition (see transition_729_dds_hz)
            turns -= act.integral_hz_s(t0, t) / c.aom_passes
        ion.atom_phase_turns = math.fmod(ion.atom_phase_turns + turns, 1.0)
        ion.atom_phase_e_turns = math.fmod(
            ion.atom_phase_e_turns + turns + c.transition_e_offset_dds_hz * dt, 1.0)
        ion.phase_t_mu = t

    def _heat(self, ion: _Ion, dt: float) -> None:
        rate = self._heating_rate
        ion.nbar += rate * dt
        if ion.n_shot is not None and rate > 0:
            ion.n_shot += int(self._rng.poisson(rate * dt))

    def _rate_matrix(self, r854: float, r866: float, s_to_x: float) -> ionmod.RateMatrix:
        key = (r854, r866, s_to_x)
        rm = self._rates.get(key)
        if rm is None:
            ion = self.cfg.ion
            b_s = 1 - ion.p32_branching_to_d52 - ion.p32_branching_to_d32
            q = ionmod.rate_matrix(d_to_s=1 / ion.d52_lifetime_s + r854 * b_s,
                                   d_to_x=r854 * ion.p32_branching_to_d32,
                                   x_to_s=1 / ion.d32_lifetime_s + r866,
                                   s_to_x=s_to_x)
            rm = self._rates[key] = ionmod.RateMatrix(q)
            if len(self._rates) > 256:
                self._rates.clear()
        return rm

    def _transfer(self, r854: float, r866: float, dt: float) -> np.ndarray:
        """``_rate_matrix(r854, r866, 0).transfer(dt)``, cached per (rates, duration)
        (attempt loops repeat the same few)."""
        key = (r854, r866, dt)
        p = self._transfers.get(key)
        if p is None:
            if len(self._transfers) > 1024:
                self._transfers.clear()
            p = self._transfers[key] = self._rate_matrix(r854, r866, 0.0).transfer(dt)
        return p

    def _incoherent(self, i: int, dt: float, f866: float, f854: float,
                    noise_phase: float) -> None:
        """Free evolution / 854, 866 pumping for ``dt`` seconds, with dephasing."""
        r854 = self._quench_rate * f854 * f854
        r866 = self._repump_rate * f866 * f866
        batch = self._batch
        if batch is not None and r854 == 0 and r866 == 0:
            # photons pending: keep the unitary part exact, defer the weak non-unitary part
            if noise_phase != 0.0:
                batch.apply_phase(i, noise_phase)
            batch.deferred_s[i] += dt
            return
        if batch is not None:
            self._resolve_batch()
        pumped = r854 > 0 or r866 > 0
        if self._pops is not None:
            if self._pops[i][S] == 1.0:
                return      # exactly in S: nothing leaves S without 397
            v = self._transfer(r854, r866, dt).dot(self._pops[i])
            if pumped and 1.0 - v[S] <= SNAP_FLOOR:
                v = _level(S)
            self._pops[i] = v
            return
        self.rho = self._free_channel(self.rho, i, dt, r854, r866, noise_phase)
        if pumped:
            self._snap_to_s(i)

    def _snap_to_s(self, i: int) -> None:
        """After pumping: if every element of ion ``i`` outside ``|S><S|`` is below
        SNAP_FLOOR (numerical residue such as exp(-rate t) ~ 1e-25 after a quench), set them
        to zero so the ion is exactly in S (and free evolution can be skipped)."""
        t = self.rho if i == 0 else self.rho.transpose(1, 0, 3, 2)
        block = t[S, :, S, :]
        p = float(np.real(np.trace(block)))
        if abs(1.0 - p) > SNAP_FLOOR:
            return
        rest = t.copy()
        rest[S, :, S, :] = 0.0
        if np.abs(rest).max() > SNAP_FLOOR:
            return
        other = block / p
        off = other - np.diag(np.diag(other))
        if not off.any():   # product of classical states: switch to the population form
            pops = [_level(S), np.clip(np.real(np.diag(other)), 0.0, None)]
            self._pops = pops if i == 0 else pops[::-1]
            self._rho = None
            return
        out = np.zeros_like(t)
        out[S, :, S, :] = other
        self.rho = out if i == 0 else out.transpose(1, 0, 3, 2)

    def _free_channel(self, rho: np.ndarray, i: int, dt: float, r854: float, r866: float,
                      noise_phase: float) -> np.ndarray:
        cfg = self.cfg
        p = self._rate_matrix(r854, r866, 0.0).transfer(dt)
        # extra dephasing: 854 scattering that returns to D (P3/2 -> D5/2 branch)
        extra = r854 * cfg.ion.p32_branching_to_d52 / 2
        markov = 1.0 / cfg.memory.markovian_t2_s
        diag = np.sqrt(np.diag(p))
        coh = np.outer(diag, diag).astype(complex)
        damp = math.exp(-(extra + markov) * dt)
        phase = complex(math.cos(noise_phase), -math.sin(noise_phase)) * damp
        # the S-D and S-E lines see the same detuning noise (same laser; the Zeeman
        # sensitivities are taken equal); D-E coherence keeps only the Markovian part
        for d in (D, E):
            coh[d, S] *= phase
            coh[S, d] *= phase.conjugate()
        coh[D, E] *= damp
        coh[E, D] *= damp
        return ionmod.apply_incoherent(rho, p, coh, i)

    def _laser_phase_rad(self, i: int, t_mu: int, with_offset: bool = True,
                         level: int = D) -> float:
        """729 laser phase relative to the atom's S-``level`` line (rad) at ``t_mu``
        (``with_offset=False``: the running carrier without the programmed phase offset)."""
        ion = self.ions[i]
        self._sync_phase(i, t_mu)
        las = ion.lasers["729"]
        passes = self.cfg.laser_729.aom_passes
        atom = ion.atom_phase_e_turns if level == E else ion.atom_phase_turns
        return TWO_PI * passes * (las.phase_turns(t_mu, with_offset) - atom)

    def _pulse_729(self, i: int, t0: int, t1: int, field: float, noise_detuning: float,
                   lab: float) -> None:
        ion = self.ions[i]
        cfg = self.cfg
        las = ion.lasers["729"]
        passes = cfg.laser_729.aom_passes
        # the pulse drives the S-D or the S-E line, whichever is nearer (the other is MHz
        # away: off-resonant coupling (Omega/Delta)^2 ~ 1e-3 is neglected)
        f_t = self.free_transition_729_dds_hz(i, lab)
        act = self._act_729[i]
        if act is not None:     # effective transition at the pulse start (see lasers.py)
            f_t -= act.shift_hz(t0) / passes
        f_e = f_t + cfg.laser_729.transition_e_offset_dds_hz
        level = D
        if abs(las.dds.frequency_hz - f_e) < abs(las.dds.frequency_hz - f_t):
            level, f_t = E, f_e
        detuning = TWO_PI * passes * (las.dds.frequency_hz - f_t) - noise_detuning
        if ion.n_shot is None:
            nbar = ion.nbar
            ion.n_shot = int(self._rng.geometric(1 / (nbar + 1)) - 1) if nbar > 0 else 0
        omega = self.omega_729(i, field, lab) * ionmod.debye_waller(
            ion.n_shot, cfg.motion.lamb_dicke_729)
        dt = (t1 - t0) * 1e-9
        phi0 = self._laser_phase_rad(i, t0, level=level)
        # laser phase relative to the atom at the end of the pulse
        phi1 = phi0 + TWO_PI * passes * (las.dds.frequency_hz - f_t) * dt
        u = ionmod.rotation(omega, detuning, dt, phi0, phi1, level)
        if self._batch is not None:
            self._batch.apply_unitary(i, u)
        else:
            self.rho = ionmod.apply_unitary(self.rho, u, i)

    def _readout_segment(self, i: int, t0: int, t1: int, f397: float, f866: float,
                         f854: float, lab: float) -> None:
        """397 on: project the ion, then classical jumps; record PMT rate segments."""
        if self._batch is not None:
            self._resolve_batch()
        cfg = self.cfg
        ion = self.ions[i]
        sat = cfg.laser_397.saturation_at_full_amplitude * f397 * f397
        f_res = self.free_resonance_397_dds_hz(i, lab)
        act = self._act_397[i]
        if act is not None:     # effective resonance at the segment start (see lasers.py)
            f_res -= act.shift_hz(t0) / cfg.laser_397.aom_passes
        det = TWO_PI * cfg.laser_397.aom_passes * (ion.lasers["397"].dds.frequency_hz - f_res)
        r_sc = ionmod.scattering_rate(self._gamma12, sat, det)
        classical = self._pops is not None
        pops = self._pops[i] if classical else ionmod.reduced_populations(self.rho, i)
        level = choose(self._rng, [x if x > 0.0 else 0.0 for x in pops.tolist()])
        measured = level
        r854 = cfg.laser_854.quench_rate_at_full_amplitude_hz * f854 * f854
        r866 = cfg.laser_866.repump_rate_at_full_amplitude_hz * f866 * f866
        s_to_x = r_sc * cfg.ion.p12_branching_to_d32 if r866 == 0 else 0.0
        q = self._rate_matrix(r854, r866, s_to_x).q
        ro = cfg.readout
        bright = r_sc * ro.cycle_efficiency * ro.collection_efficiency * ro.pmt_quantum_efficiency
        stray = ro.stray_light_rate_at_full_397_hz * f397 * f397
        t = t0
        while t < t1:
            rate_out = -q[level, level]
            dwell = self._rng.exponential(1 / rate_out) if rate_out > 0 else math.inf
            t_next = min(t1, t + max(int(dwell * 1e9), 1)) if math.isfinite(dwell) else t1
            rate = stray + (bright if level == S else 0.0)
            segs = ion.pmt_segments
            if segs and segs[-1][1] == t and segs[-1][2] == rate:
                segs[-1] = (segs[-1][0], t_next, rate)
            else:
                segs.append((t, t_next, rate))
            if t_next < t1:
                col = q[:, level].tolist()
                col[level] = 0.0
                level = choose(self._rng, col)
            t = t_next
        if classical:
            self._pops[i] = _level(level)
        else:
            self.rho = ionmod.project(self.rho, i, measured, level)
        # motion: Doppler cooling with 866 on, otherwise heating
        dt = (t1 - t0) * 1e-9
        if r866 > 0:
            w = ionmod.cooling_rate(sat, det, self._gamma12,
                                   cfg.motion.doppler_cooling_time_constant_s)
            n_d = ionmod.doppler_nbar(self._gamma12, TWO_PI * cfg.motion.trap_frequency_hz, sat,
                                      det)
            if w > 0:
                ion.nbar = n_d + (ion.nbar - n_d) * math.exp(-w * dt)
            else:
                ion.nbar = min(ion.nbar * math.exp(-w * dt) + 1.0, 1e4)
            ion.n_shot = None
        else:
            self._heat(ion, dt)

    # ----------------------------------------------------------------- photons
    def _emit(self, i: int, t: int) -> None:
        """The 393 pulse of ion ``i`` ends at ``t``: its photon joins the batch."""
        emission = self._emission(i, t)
        if emission is not None:
            self._log_emission(i, t, *emission)

    def _emission(self, i: int, t: int) -> tuple[float, tuple] | None:
        """``(alpha, snapshot)`` of the emission of ion ``i`` at ``t`` (None: alpha is 0);
        resets the pulse area. The snapshot is the 729 laser's and the atom's phase state
        (see ``_emission_phase``)."""
        ion = self.ions[i]
        alpha = 1 - math.exp(-ion.area_393 / self.cfg.laser_393.generation_time_constant_s)
        ion.area_393 = 0.0
        if alpha <= 0:
            return None
        las = ion.lasers["729"]
        return alpha, (i, t, las.dds, las.acc_turns, las.acc_t_mu, ion.atom_phase_turns,
                       ion.atom_phase_e_turns, ion.phase_t_mu)

    def _log_emission(self, i: int, t: int, alpha: float, snap: tuple) -> None:
        """Add an emission (``_emission``) to the photon batch, starting one if needed."""
        # the photon-generation lasers are phase-locked to the node's 729 laser carrier, so
        # the heralded coherence is referenced to it (programmed phase offsets excluded)
        k0 = _NoEmission(alpha)
        proto = self.cfg.protocol
        phase_of = self._emission_phase
        if proto.scheme == "two_photon":
            # bichromatic Raman: S -> D + H photon or S -> E + V photon; V leaves the node
            # one time bin later (polarisation -> time-bin converter)
            late = t + int(round(proto.time_bin_separation_s * 1e9))
            photons = [(_EmissionKraus(D, alpha / 2, phase_of, snap), t),
                       (_EmissionKraus(E, alpha / 2, phase_of, snap), late)]
            splits = ((D, alpha / 2), (E, alpha / 2))
        else:
            photons = [(_EmissionKraus(D, alpha, phase_of, snap), t)]
            splits = ((D, alpha),)
        if self._batch is None:
            if self._pops is not None:
                # (population arrays are replaced, never modified in place: no copies)
                self._batch = PhotonBatch.start(None, list(self._pops))
            else:
                self._batch = PhotonBatch.start(self.rho)
        self._batch.emit(i, k0, photons, splits)

    def _emission_phase(self, level: int, snapshot: tuple) -> float:
        """Phase (rad) of an emission to ``level``: the 729 carrier (the photon-generation
        lasers are phase-locked to it; programmed phase offsets excluded) relative to the
        atom's S-``level`` line at the emission time. ``snapshot`` = (ion, t_mu, the 729
        profile and phase accumulator, the atom phases and their time) taken at emission,
        so the phase is computed only if needed, as ``_laser_phase_rad`` would then."""
        i, t, dds, acc, acc_t, atom_d, atom_e, t0 = snapshot
        c = self.cfg.laser_729
        if t > t0:
            base = c.transition_dds_hz_a if i == 0 else c.transition_dds_hz_b
            dt = (t - t0) * 1e-9
            turns = base * dt + self._drift_729[i].integral(self.lab_time_s(t0),
                                                            self.lab_time_s(t))
            act = self._act_729[i]
            if act is not None:
                turns -= act.integral_hz_s(t0, t) / c.aom_passes
            atom_d = math.fmod(atom_d + turns, 1.0)
            atom_e = math.fmod(atom_e + turns + c.transition_e_offset_dds_hz * dt, 1.0)
        atom = atom_e if level == E else atom_d
        return TWO_PI * c.aom_passes * (_dds_phase_turns(dds, acc, acc_t, t, False) - atom)

    def _fibre_phase(self, t_mu: int) -> float:
        dt = (t_mu - self._fibre_noise_t_mu) * 1e-9
        if dt > 0:
            self._fibre_noise.advance(dt)
            self._fibre_noise_t_mu = t_mu
        lab = self.lab_time_s(t_mu)
        return self.cfg.fibre.phase_offset_rad + self._drifts["fibre_phase"](lab) \
            + self._fibre_noise.x

    def _resolve_batch(self) -> None:
        """Detect the batch's photons: sample one outcome, collapse the ions, queue clicks.

        No click at all is sampled first when the ions entered the batch in a product
        state (the usual attempt): its probability and state then factorise per node (lost
        photons do not interfere), so most (failed) attempts skip the joint computation.
        """
        batch, self._batch = self._batch, None
        t_first = batch.first_emission_mu()
        lab = self.lab_time_s(t_first)
        eta = self._efficiencies(lab)
        ions = self.ions
        if batch.pops is not None and batch.monomial:
            # classical product state, photon generation and phases only: the no-click
            # populations follow from the generation probabilities
            va, vb = batch.no_click_lists(eta)
            na, nb = sum(va), sum(vb)           # (numpy's order for 4 elements)
            if self._rng.random() < na * nb:
                self._pops = [np.array([x / na if x > 0.0 else 0.0 for x in va]),
                              np.array([x / nb if x > 0.0 else 0.0 for x in vb])]
                self._rho = None
                for ion in ions:
                    if ion.noise_pending:
                        self._drop_noise(ion)
                deferred = batch.deferred_s
                if deferred[0] > 0 or deferred[1] > 0:
                    self._finish_batch(batch, None)
                return
            self._resolve_clicks(batch, t_first, lab, eta)
            return
        self._resolve_general(batch, t_first, lab, eta)

    def _resolve_light(self) -> None:
        """``_resolve_batch`` of a playback program's emissions kept in light form
        (``self._light``, see :func:`ionlink.node.playback.run_program`): the same
        arithmetic and draws as the :class:`PhotonBatch` they stand for, which is built
        only when "no click" is drawn against."""
        pops0, entries, deferred, noise_dts = self._light
        self._light = None
        t_first = entries[0][2]     # (the first entry is the first emission)
        lab = self.lab_time_s(t_first)
        eta = self._efficiencies(lab)
        two_photon = self.cfg.protocol.scheme == "two_photon"
        level_s = self._level_s
        pa, pb = pops0
        v = (list(self._level_s_list) if pa is level_s else pa.tolist(),
             list(self._level_s_list) if pb is level_s else pb.tolist())
        for alpha, i, _t, _snap in entries:
            if alpha is None:
                continue
            vi = v[i]
            loss = 1.0 - eta[i]
            p_s = vi[S]
            splits = ((D, alpha / 2), (E, alpha / 2)) if two_photon else ((D, alpha),)
            for level, p in splits:
                vi[S] -= p_s * p
                vi[level] += p_s * p * loss
        va, vb = v
        na, nb = sum(va), sum(vb)           # (numpy's order for 4 elements)
        if self._rng.random() < na * nb:
            pops = self._pops = [np.array([x / na if x > 0.0 else 0.0 for x in va]),
                                 np.array([x / nb if x > 0.0 else 0.0 for x in vb])]
            self._rho = None
            for i, dts in enumerate(noise_dts):
                if dts:     # the noise phases are not needed: their time joins the lag
                    self.ions[i].noise_lag_s += sum(dts)
            for i, d in enumerate(deferred):
                if d > 0:
                    pops[i] = self._transfer(0.0, 0.0, d).dot(pops[i])
            return
        # the batch the program would have built, in the same order
        ions = self.ions
        for alpha, i, t_or_dt, snap in entries:
            if alpha is None:
                ions[i].noise_pending.append(self._batch.defer_phase(i, t_or_dt))
            else:
                self._log_emission(i, t_or_dt, alpha, snap)
        batch, self._batch = self._batch, None
        batch.deferred_s = [deferred[0], deferred[1]]
        self._resolve_clicks(batch, t_first, lab, eta)

    def _resolve_clicks(self, batch: PhotonBatch, t_first: int, lab: float,
                        eta: tuple[float, float]) -> None:
        """``_resolve_batch`` of a classical, monomial batch after "no click" was drawn
        against: the joint outcome."""
        ions = self.ions
        self._settle_noise(ions[0])
        self._settle_noise(ions[1])
        marginals = batch.marginals
        batch.rho0 = np.einsum("ik,jl->ijkl", *marginals)
        self._resolve_outcome(batch, t_first, lab, eta, marginals)

    def _resolve_general(self, batch: PhotonBatch, t_first: int, lab: float,
                         eta: tuple[float, float]) -> None:
        """``_resolve_batch`` of a batch that entered in a joint state or saw coherent
        operations."""
        ions = self.ions
        self._settle_noise(ions[0])
        self._settle_noise(ions[1])
        marginals = batch.marginals
        if marginals is None:
            marginals = _product_marginals(batch.rho0)
        if marginals is not None and not batch.monomial:
            posts = [_no_click_map(batch.branches[i], marginals[i], eta[i]) for i in range(2)]
            p_none = [float(np.real(np.trace(p))) for p in posts]
            if self._rng.random() < p_none[0] * p_none[1]:
                posts = [p / n for p, n in zip(posts, p_none, strict=True)]
                if not any((p - np.diag(np.diag(p))).any() for p in posts):
                    self._pops = [np.clip(np.real(np.diag(p)), 0.0, None) for p in posts]
                    self._rho = None
                    self._finish_batch(batch, None)
                else:
                    self._finish_batch(batch, np.einsum("ik,jl->ijkl", *posts))
                return
            if batch.rho0 is None:
                batch.rho0 = np.einsum("ik,jl->ijkl", *marginals)
        self._resolve_outcome(batch, t_first, lab, eta, marginals)

    def _resolve_outcome(self, batch: PhotonBatch, t_first: int, lab: float,
                         eta: tuple[float, float], marginals: tuple | None) -> None:
        """Sample the detected outcome of ``batch`` (no click already decided against
        when ``marginals`` is not None), collapse the ions and queue the clicks."""
        # (the fibre noise is Markov: skipping it for attempts decided as "no click" above
        # and advancing it over the whole time now has the same law)
        phase = self._fibre_phase(t_first)
        kraus, clicks = outcome_kraus(batch, eta, phase, self.cfg.station.mode_overlap)
        n = LEVELS * LEVELS
        rho = batch.rho0.reshape(n, n)
        unnorm = kraus @ rho @ kraus.conj().transpose(0, 2, 1)
        # outcomes the station cannot tell apart (which photon was lost, which mode a
        # partially distinguishable photon was in) are one observed outcome: their sum
        # is the state conditioned on what the detectors saw
        groups: dict[tuple, int] = {}
        index = np.array([groups.setdefault(c, len(groups)) for c in clicks])
        member = np.zeros((len(groups), len(index)), dtype=complex)  # BLAS, not mixed
        member[index, np.arange(len(index))] = 1.0
        observed = (member @ unnorm.reshape(len(index), n * n)).reshape(-1, n, n)
        clicks = list(groups)
        probs = np.clip(np.real(np.einsum("kii->k", observed)), 0, None)
        if marginals is not None and () in groups:
            probs[groups[()]] = 0.0     # "no click" was already decided against
        k = int(self._rng.choice(len(probs), p=probs / probs.sum()))
        self._finish_batch(batch, (observed[k] / probs[k]).reshape((LEVELS,) * 4))
        if clicks[k]:
            self._queue_clicks(batch, clicks[k], lab)

    def _finish_batch(self, batch: PhotonBatch, new: np.ndarray | None) -> None:
        """Set the post-detection state (``None``: already set in population form) and
        apply the free evolution deferred while the photons were in flight."""
        if new is None:
            for i in range(2):
                if batch.deferred_s[i] > 0:
                    self._pops[i] = self._transfer(0.0, 0.0, batch.deferred_s[i]).dot(
                        self._pops[i])
            return
        for i in range(2):
            if batch.deferred_s[i] > 0:
                new = self._free_channel(new, i, batch.deferred_s[i], 0.0, 0.0, 0.0)
        self.rho = new

    def _queue_clicks(self, batch: PhotonBatch, clicks: tuple, lab: float) -> None:
        ph, st = self.cfg.photon, self.cfg.station
        rng = self._photon_rng
        # a click cannot precede the emission (matters only for zero-length fibres)
        t_min = min(min(ts) for ts in batch.emit_times_mu if ts)
        for det, mode in clicks:
            arrivals = [batch.emit_times_mu[i][mode] * 1e-9 + self.fibre_delay_s(i, lab)
                        for i in range(2) if len(batch.emit_times_mu[i]) > mode]
            t = (sum(arrivals) / len(arrivals)
                 + sample_wavepacket(rng, ph.wavepacket_shape, ph.wavepacket_time_s)
                 + (rng.normal(0.0, st.timing_jitter_s) if st.timing_jitter_s > 0 else 0.0))
            self._station_records[det].add_signal([max(int(round(t * 1e9)), t_min)])

    # ----------------------------------------------------------------- inspection
    def joint_density_matrix(self) -> np.ndarray:
        """The two ions' 16x16 density matrix (basis |a b>, a and b in the levels S, D,
        D3/2, E of :mod:`ionlink.node.ion`) as currently processed (call :meth:`flush`
        first)."""
        n = LEVELS * LEVELS
        return self.rho.reshape(n, n).copy()

    # ----------------------------------------------------------------- lasers (wavemeter)
    @property
    def optical(self):
        """The nodes' lasers as a wavemeter sees them (:class:`ionlink.node.lasers.NodeLasers`,
        created on first use; 397/729 drift with this network's resonance drifts)."""
        lasers = self.__dict__.get("_optical")
        if lasers is None:
            from ionlink.node.lasers import NodeLasers

            def resonance(laser: str, i: int, lab_s: float) -> float:
                if laser == "397":
                    return self.free_resonance_397_dds_hz(i, lab_s)
                return self.free_transition_729_dds_hz(i, lab_s)

            passes = {"397": self.cfg.laser_397.aom_passes,
                      "729": self.cfg.laser_729.aom_passes}
            # a seed fixed by the master seed, drawn from no generator the physics uses
            seed = int(self._drifts["temperature"].phase * 1e15)
            lasers = self.__dict__["_optical"] = NodeLasers(
                self.lab_time_s, resonance, passes, seed, self.cfg.drift.grid_step_s,
                self._actuator_attached)
        return lasers

    def _actuator_attached(self, laser: str, i: int, actuator: Any) -> None:
        """``NodeLasers.attach`` hook: the ion physics follows the 397/729 actuators
        (effective resonance, see :mod:`ionlink.node.lasers`); every output event of the
        core is shown to the lasers from now on (this instance's ``output`` is wrapped
        once)."""
        if laser in ("397", "729"):
            acts = self._act_397 if laser == "397" else self._act_729
            acts[i] = actuator
            devices: dict[str, list[int]] = {}
            for (name, k), act in self.optical.attached().items():
                if name in ("397", "729"):
                    devices.setdefault(act.device, []).append(k)
            self._actuated_devices = {d: tuple(sorted(set(ks))) for d, ks in devices.items()}
        if "output" not in self.__dict__:
            buffered = VirtualNetwork.output.__get__(self)
            observe = self.optical.observe

            def output(t_mu: int, device: str, attr: str, value: Any) -> None:
                observe(t_mu, device, attr, value)
                buffered(t_mu, device, attr, value)
            self.output = output

    def optical_frequency_hz(self, laser: str, node: str, t_mu: int) -> float:
        """Optical frequency (Hz) of ``laser`` (``"397"``, ``"866"``, ``"854"``, ``"729"``,
        ``"393"``) of node ``"a"``/``"b"`` at core time ``t_mu``, actuator included."""
        return self.optical.optical_frequency_hz(laser, node, t_mu)

    def attach_laser_actuator(self, laser: str, node: str, device: str, kind: str = "dac",
                              channel: int = 0, hz_per_unit: float | None = None,
                              reference: float = 0.0) -> None:
        """Hook: make a DAC channel (``kind="dac"``, Hz per volt) or a DDS frequency
        (``kind="dds"``, Hz per DDS Hz) of ``device`` (device_db key) the laser's frequency
        actuator; ``hz_per_unit=None`` takes the node's true tuning
        (:func:`ionlink.node.lasers.default_tuning`). From then on every output event of the
        core is also shown to the lasers (this instance's ``output`` is wrapped once), and
        a 397/729 actuator moves the ion's effective resonance: ``f_res(t) - shift(t) /
        aom_passes`` in DDS Hz (:mod:`ionlink.node.lasers`; an actuator's shift is 0 until
        its first event)."""
        from ionlink.node.lasers import Actuator, default_tuning

        self.optical.check(laser, node)
        k = default_tuning(kind, laser) if hz_per_unit is None else float(hz_per_unit)
        self.optical.attach(laser, node, Actuator(kind, device, int(channel), k,
                                                  float(reference)))
