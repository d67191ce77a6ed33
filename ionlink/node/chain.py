"""The repeater chain A - R - B behind the simulated core: a :class:`World` of four qubits.

Ions (register order): ``a`` (node A), ``ra`` and ``rb`` (the repeater's two ions in one trap,
``ra`` emitting towards A, ``rb`` towards B), ``b`` (node B). Each ion is a qubit S1/2(-1/2)
= 0, D5/2 = 1; the four share one 16x16 density matrix. Links: ``ar`` (ions a, ra, station
detectors ``det_ar_0/1``) and ``rb`` (ions rb, b, ``det_rb_0/1``), each a single-photon
(Cabrillo) link with its own fibre lengths and station.

Physics per ion (parameters from the base node file, see ``repeater_node.toml``):

- 729 nm carrier pulses (individually addressed at R): exact rectangular-pulse unitary from
  the DDS frequency, phase (phase modes), amplitude/attenuation (pi time of
  ``laser_729``), with the dephasing noise as a detuning;
- memory: Ornstein-Uhlenbeck detuning noise (``memory.quasi_static_t2_s``, correlation time)
  and Markovian dephasing (``memory.markovian_t2_s``) as in the two-node network, D5/2 decay
  (``ion.d52_lifetime_s``) and 854 nm quench as amplitude damping D -> S; spin echoes and
  dynamical decoupling are the experiment's 729 pulses acting on this noise;
- 397 nm readout: projective (Born rule), PMT clicks at the bright rate of the node file
  while in S (866 on), stray light and dark counts always; R's 397/866 are global, its PMT
  channels individual (``pmt_ra``, ``pmt_rb``);
- 393 nm photon generation: ``alpha = 1 - exp(-area / tau_gen)``, emission
  ``sqrt(alpha) e^{-i phi} |D><S|`` (phi: the ion's 729 carrier phase, to which the
  generation lasers are locked); photons of a link interfere at its station (50:50 beam
  splitter, fibre phase with Ornstein-Uhlenbeck noise, mode overlap, non-number-resolving
  detectors: bunched photon pairs click once); detector dark counts and dead time from
  :mod:`ionlink.node.detectors`;
- MS gate at R: both tones of the bichromatic 729 beam (``dds_729_ms_blue_r``,
  ``dds_729_ms_red_r``) on: :func:`ionlink.node.gates.ms_channel` with sideband Rabi
  frequency ``sqrt(f_blue f_red) x`` the configured value, gate detuning
  ``2 pi (passes (f_blue - f_red)/2 - mode frequency)``, spin phase from the tones' mean
  phase relative to each ion at mid-pulse, plus the configured depolarising error per
  nominal gate length. A pulse is one rectangular segment: an output event on R's channels
  while both tones are on splits it into two pulses whose motion restarts (experiments
  leave R alone during the gate).

Not modelled here (see the two-node :class:`ionlink.node.VirtualNetwork`): D3/2 and the
second D5/2 sublevel (so no two-photon scheme), motion of the carrier pulses (Debye-Waller),
slow drifts of the node file's ``[drift]`` section. Output events are processed in time order
when an input is read (or on :meth:`flush`); ``core.reset()`` drops the buffered ones after the
RTIO counter (:meth:`ChainNetwork.discard_after`).
"""

from __future__ import annotations

import bisect
import math
from typing import Any

import numpy as np

from ionlink.node import gates
from ionlink.node.chain_config import ChainConfig, load_chain_config
from ionlink.node.chain_wiring import (
    IONS,
    LINKS,
    MS_TONES,
    ChainWiringError,
    build_chain_wiring,
    chain_roles,
    is_chain_device_db,
)
from ionlink.node.detectors import ClickRecord
from ionlink.node.drift import OrnsteinUhlenbeck
from ionlink.node.ion import carrier_rotation
from ionlink.node.network import (  # one AOM-channel model and constants for both worlds
    C_LIGHT,
    EMPTY,
    TWO_PI,
    _Laser,
)
from ionlink.sim.world import ResetAfterProcessingError

N_QUBITS = 4
DIM = 2 ** N_QUBITS
__all__ = ["IONS", "LINKS", "ChainNetwork", "ChainWiringError", "chain_roles",
           "is_chain_device_db"]


class _Ion:
    def __init__(self, rng: np.random.Generator, cfg: ChainConfig, lasers: dict[str, _Laser],
                 transition_hz: float):
        mem = cfg.node.memory
        sigma = math.sqrt(2) / mem.quasi_static_t2_s if math.isfinite(
            mem.quasi_static_t2_s) else 0.0
        self.noise = OrnsteinUhlenbeck(rng, sigma, mem.noise_correlation_time_s)
        self.lasers = lasers
        self.transition_hz = transition_hz
        self.t_mu = 0
        self.area_393 = 0.0
        self.pmt_segments: list[tuple[int, int, float]] = []
        #: free evolution not yet applied to the state (s, rad)
        self.pend_dt = 0.0
        self.pend_phase = 0.0


class _Batch:
    """Emissions of one link awaiting detection: per ion (no-photon, photon) operators
    (2x2, later unitaries included), emission time, and deferred free-evolution time."""

    def __init__(self, link: str):
        self.link = link
        self.ops: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.emit_mu: dict[int, int] = {}
        self.deferred_s: dict[int, float] = {}

    def first_emission_mu(self) -> int:
        return min(self.emit_mu.values())


#: Bit of qubit q (register order, qubit 0 most significant) in each basis index.
_BITS = [((np.arange(DIM) >> (N_QUBITS - 1 - q)) & 1) for q in range(N_QUBITS)]
#: Basis indices with qubit q in S (low) and the same with qubit q in D (high).
_LOW = [np.flatnonzero(b == 0) for b in _BITS]
_HIGH = [np.flatnonzero(b == 1) for b in _BITS]
#: Flat indices of the (low, low) and (high, high) blocks of the 16x16 state.
_LOWLOW = [(lo[:, None] * DIM + lo[None, :]).ravel() for lo in _LOW]
_HIGHHIGH = [(hi[:, None] * DIM + hi[None, :]).ravel() for hi in _HIGH]


def _op(u: np.ndarray, q: int) -> np.ndarray:
    """A 2x2 operator on qubit ``q`` of the 4-qubit register."""
    return _kron(_kron(np.eye(2 ** q), u), np.eye(2 ** (N_QUBITS - 1 - q)))


_EYE4 = np.eye(4)


def _kron(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Kronecker product of two square matrices (np.kron without its generality)."""
    n, m = a.shape[0], b.shape[0]
    return (a[:, None, :, None] * b[None, :, None, :]).reshape(n * m, n * m)


def _pair_perm(q1: int, q2: int) -> np.ndarray:
    """Basis indices ordered as [pair state (q1 q2), rest] (row-major)."""
    rest = [q for q in range(N_QUBITS) if q not in (q1, q2)]
    out = []
    for p in range(4):
        for r in range(4):
            bits = {q1: p >> 1, q2: p & 1, rest[0]: r >> 1, rest[1]: r & 1}
            out.append(sum(bits[q] << (N_QUBITS - 1 - q) for q in range(N_QUBITS)))
    return np.array(out)


_PAIR_PERM = {pair: _pair_perm(*pair) for pair in LINKS.values()}


class ChainNetwork:
    """Repeater chain A - R - B behind the simulated core (a :class:`World`).

    :param device_db: the lab's device_db with the chain's aliases (:func:`chain_roles`;
        ``device_db_repeater.py``).
    :param config: chain truth; ``None`` loads ``repeater_node.toml``.
    :param seed: master seed (independent streams per component).
    :param record_retention_s: node time for which detector clicks stay readable.
    """

    def __init__(self, device_db: dict[str, Any], config: ChainConfig | None = None,
                 seed: int = 0, lab_time_origin_s: float = 0.0,
                 record_retention_s: float = 5.0):
        self.cfg = config if config is not None else load_chain_config()
        self.lab_time_origin_s = float(lab_time_origin_s)
        node = self.cfg.node
        if node.protocol.scheme != "single_photon":
            raise ValueError("the repeater chain models the single-photon scheme only "
                             f"(protocol.scheme = {node.protocol.scheme!r})")
        seqs = np.random.SeedSequence(seed).spawn(8)
        self._rng = np.random.default_rng(seqs[0])
        self._photon_rng = np.random.default_rng(seqs[1])
        noise_rngs = [np.random.default_rng(s) for s in seqs[2].spawn(4)]
        # lasers: individual per ion except R's global 397/866 and the MS tones
        shared = {la: _Laser() for la in ("397", "866") + MS_TONES}
        l729 = node.laser_729
        transitions = (l729.transition_dds_hz_a, self.cfg.chain.transition_729_dds_hz_r,
                       self.cfg.chain.transition_729_dds_hz_r, l729.transition_dds_hz_b)
        self.ions: list[_Ion] = []
        for i in range(4):
            own = {la: _Laser() for la in ("397", "866", "854", "729", "393")}
            if i in (1, 2):
                own.update(shared)
            self.ions.append(_Ion(noise_rngs[i], self.cfg, own, transitions[i]))
        fibre = node.fibre
        self._fibre_noise = {link: OrnsteinUhlenbeck(np.random.default_rng(s),
                                                     fibre.phase_noise_rms_rad,
                                                     fibre.phase_noise_correlation_time_s)
                             for link, s in zip(LINKS, seqs[3].spawn(2), strict=True)}
        self._fibre_noise_t = {link: 0 for link in LINKS}
        self._wire(device_db)
        self._make_records(seqs[4], record_retention_s)
        self.rho = np.zeros((DIM, DIM), dtype=complex)
        self.rho[0, 0] = 1.0
        self._batches: dict[str, _Batch] = {}
        self._events: list[tuple[int, int, str, str, Any]] = []
        self._seq = 0
        #: latest timestamp of an output event processed so far (``discard_after``)
        self._processed_mu = -(1 << 62)
        #: total depolarising probability the MS beam has applied (for inspection)
        self.ms_error_applied = 0.0
        self._damp_cache: dict[tuple, tuple[np.ndarray, float]] = {}

    # ----------------------------------------------------------------- wiring
    def _wire(self, db: dict[str, Any]) -> None:
        w = build_chain_wiring(db)
        self.devices, self._dds, self._switch, self._inputs = (w.devices, w.dds, w.switch,
                                                               w.inputs)

    def _make_records(self, seq: np.random.SeedSequence, retention_s: float) -> None:
        if not retention_s > 0:
            raise ValueError(f"record_retention_s must be > 0 s, got {retention_s!r}")
        keep = int(round(retention_s * 1e9))
        rngs = [np.random.default_rng(s) for s in seq.spawn(8)]
        ro, st = self.cfg.node.readout, self.cfg.node.station
        self._pmt = [ClickRecord(f"pmt_{n}", rngs[i], ro.pmt_dark_count_rate_hz, 0, keep)
                     for i, n in enumerate(IONS)]
        dead = int(round(st.dead_time_s * 1e9))
        self._station = [ClickRecord(f"det_{link}_{d}", rngs[4 + 2 * k + d],
                                     st.dark_count_rate_hz, dead, keep)
                         for k, link in enumerate(LINKS) for d in (0, 1)]
        self._bg_final = 0
        self._bg_every = max(keep // 4, 1)

    # ----------------------------------------------------------------- truth
    def arm_length_km(self, ion: int) -> float:
        c = self.cfg.chain
        return (c.length_a_km, c.length_ra_km, c.length_rb_km, c.length_b_km)[ion]

    def photon_efficiency(self, ion: int) -> float:
        """Probability that a photon emitted by ``ion`` makes a click at its station."""
        p, f, st = self.cfg.node.photon, self.cfg.node.fibre, self.cfg.node.station
        return (p.collection_efficiency * p.conversion_efficiency * p.filter_transmission
                * 10 ** (-f.loss_db_per_km * self.arm_length_km(ion) / 10)
                * st.detector_efficiency)

    def fibre_delay_s(self, ion: int) -> float:
        return self.arm_length_km(ion) * 1e3 * self.cfg.node.fibre.refractive_index / C_LIGHT

    def pi_time_s(self, amplitude: float = 1.0, att_db: float = 0.0) -> float:
        """True 729 carrier pi time (s) of every ion (no motion in the chain model)."""
        return self.cfg.node.laser_729.pi_time_at_full_amplitude_s / (
            amplitude * 10 ** (-att_db / 20))

    def ms_sideband_rabi(self, field_blue: float, field_red: float) -> float:
        """eta Omega (rad/s) of the MS beam for the two tones' relative fields."""
        return TWO_PI * self.cfg.ms_gate.sideband_rabi_at_full_amplitude_hz * math.sqrt(
            field_blue * field_red)

    def ms_nominal_gate_time_s(self) -> float:
        """Length (s) of the maximally entangling one-loop gate at full amplitude."""
        rabi = self.ms_sideband_rabi(1.0, 1.0)
        return gates.ms_gate_time(gates.ms_entangling_detuning(rabi))

    def truth(self) -> dict[str, Any]:
        """True parameters (for calibrations and tests); transitions in DDS Hz."""
        out: dict[str, Any] = {}
        for i, name in enumerate(IONS):
            out[name] = {"transition_729_dds_hz": self.ions[i].transition_hz,
                         "pi_time_s": self.pi_time_s(),
                         "photon_efficiency": self.photon_efficiency(i),
                         "fibre_delay_s": self.fibre_delay_s(i)}
        ms = self.cfg.ms_gate
        passes = self.cfg.node.laser_729.aom_passes
        rabi = self.ms_sideband_rabi(1.0, 1.0)
        delta = gates.ms_entangling_detuning(rabi)
        out["ms"] = {"gate_time_s": self.ms_nominal_gate_time_s(),
                     "detuning_hz": delta / TWO_PI,
                     "blue_dds_hz": self.ions[1].transition_hz
                     + (ms.mode_frequency_hz + delta / TWO_PI) / passes,
                     "red_dds_hz": self.ions[1].transition_hz
                     - (ms.mode_frequency_hz + delta / TWO_PI) / passes,
                     "gate_error": ms.gate_error}
        return out

    # ----------------------------------------------------------------- inspection
    def joint_density_matrix(self) -> np.ndarray:
        """The 16x16 state of (a, ra, rb, b) as processed so far (call :meth:`flush`)."""
        for i in range(N_QUBITS):
            self._settle(i)
        return self.rho.copy()

    def evolve_to(self, t_mu: int) -> None:
        """Process every event before ``t_mu`` and evolve all ions up to it (for
        inspection; the core device never needs it)."""
        self.flush(t_mu)
        for i in range(N_QUBITS):
            self._advance(i, t_mu)

    def reduced_state(self, ions: tuple[int, int]) -> np.ndarray:
        """4x4 state of two ions (register indices, in that order)."""
        t = self.joint_density_matrix().reshape((2,) * 8)
        keep = list(ions)
        rest = [q for q in range(N_QUBITS) if q not in keep]
        letters = "abcdefgh"
        ket = [letters[q] for q in range(N_QUBITS)]
        bra = [letters[q + 4] for q in range(N_QUBITS)]
        for q in rest:
            bra[q] = ket[q]
        out = "".join(ket[q] for q in keep) + "".join(bra[q] for q in keep)
        spec = "".join(ket) + "".join(bra) + "->" + out
        return np.einsum(spec, t).reshape(4, 4)

    # ----------------------------------------------------------------- World interface
    def output(self, t_mu: int, device: str, attr: str, value: Any) -> None:
        """Buffer an output event (processed in time order later)."""
        self._events.append((t_mu, self._seq, device, attr, value))
        self._seq += 1

    def input_edges(self, device: str, t_from_mu: int, t_to_mu: int) -> np.ndarray:
        """Rising edges in ``[t_from_mu, t_to_mu)`` of a PMT or station detector."""
        which = self._inputs.get(device)
        if which is None:
            return EMPTY
        self.flush(t_to_mu)
        kind, k = which
        if kind == "pmt":
            self._advance(k, t_to_mu)
            self._finalise_pmt(k, t_to_mu)
            return self._pmt[k].query(t_from_mu, t_to_mu)
        rec = self._station[k]
        rec.finalise(t_to_mu)
        return rec.query(t_from_mu, t_to_mu)

    def discard_after(self, t_mu: int) -> None:
        """``core.reset()`` at RTIO counter ``t_mu``: buffered output events after ``t_mu``
        never happen. Raises :class:`ResetAfterProcessingError` if one has already been
        processed."""
        if self._processed_mu > t_mu:
            raise ResetAfterProcessingError(
                f"core.reset() at RTIO counter {t_mu} mu must discard output events after "
                f"it, but the repeater chain has already processed events up to "
                f"{self._processed_mu} mu")
        events = self._events
        if events:
            events.sort()
            del events[bisect.bisect_left(events, (t_mu + 1,)):]

    def input_pulse_width_mu(self, device: str) -> int:
        which = self._inputs.get(device)
        if which is not None and which[0] == "station":
            return self.cfg.node.station.pulse_width_mu
        return self.cfg.node.readout.pulse_width_mu

    def flush(self, t_mu: int | None = None) -> None:
        """Process buffered events before ``t_mu`` (all if None) and detect the photons of
        link batches emitted before it."""
        events = self._events
        if events:
            events.sort()
            if t_mu is None or events[-1][0] < t_mu:
                todo, self._events = events, []
            else:
                cut = bisect.bisect_left(events, (t_mu,))
                todo, self._events = events[:cut], events[cut:]
            if todo and todo[-1][0] > self._processed_mu:
                self._processed_mu = todo[-1][0]
            for t, _, device, attr, value in todo:
                self._process(t, device, attr, value)
        for link in list(self._batches):
            batch = self._batches[link]
            if t_mu is None or batch.first_emission_mu() < t_mu:
                self._resolve(link)
        if t_mu is not None and t_mu - self._bg_final > self._bg_every:
            self._bg_final = t_mu
            for rec in self._station:
                rec.finalise(t_mu)
            for i in range(4):
                self._finalise_pmt(i, min(self.ions[i].t_mu, t_mu))

    # ----------------------------------------------------------------- events
    def _process(self, t: int, device: str, attr: str, value: Any) -> None:
        if attr == "level":
            targets = self._switch.get(device)
        elif attr in ("dds", "att_db"):
            targets = self._dds.get(device)
        else:
            return
        if not targets:
            return
        for i, laser in targets:
            group = (1, 2) if i in (1, 2) else (i,)
            for j in group:
                self._advance(j, t)
            las = self.ions[i].lasers[laser]
            was_on = las.field() > 0
            if attr == "level":
                las.level = int(value)
            elif attr == "dds":
                las.set_dds(t, value)
            else:
                las.att_db = float(value)
            las.update()
            if laser == "393" and was_on and las.field() == 0:
                self._emit(i, t)

    # ----------------------------------------------------------------- evolution
    def _advance(self, i: int, t: int) -> None:
        if i in (1, 2):
            self._advance_r(t)
            return
        ion = self.ions[i]
        if t <= ion.t_mu:
            return
        self._segment(i, ion.t_mu, t)
        ion.t_mu = t

    def _advance_r(self, t: int) -> None:
        ra, rb = self.ions[1], self.ions[2]
        t0 = min(ra.t_mu, rb.t_mu)
        if t <= t0:
            return
        for i in (1, 2):   # bring both to a common time first (never differs, but be safe)
            if self.ions[i].t_mu < max(ra.t_mu, rb.t_mu):
                self._segment(i, self.ions[i].t_mu, max(ra.t_mu, rb.t_mu))
                self.ions[i].t_mu = max(ra.t_mu, rb.t_mu)
        t0 = ra.t_mu
        if t <= t0:
            return
        lasers = ra.lasers
        fb, fr = lasers["ms_blue"].field(), lasers["ms_red"].field()
        if fb > 0 and fr > 0:
            self._ms_segment(t0, t, fb, fr)
        else:
            self._segment(1, t0, t)
            self._segment(2, t0, t)
        ra.t_mu = rb.t_mu = t

    def _segment(self, i: int, t0: int, t1: int) -> None:
        """Evolve ion ``i`` from ``t0`` to ``t1`` under its lasers."""
        ion = self.ions[i]
        node = self.cfg.node
        las = ion.lasers
        dt = (t1 - t0) * 1e-9
        f393 = las["393"].field()
        if f393 > 0:
            ion.area_393 += f393 * f393 * dt
        _, noise_phase = ion.noise.advance(dt)
        f397 = las["397"].field()
        if f397 > 0:
            self._readout(i, t0, t1, f397)
            return
        f729 = las["729"].field()
        if f729 > 0:
            self._pulse_729(i, t0, t1, f729, noise_phase / dt)
            noise_phase = 0.0
        r854 = node.laser_854.quench_rate_at_full_amplitude_hz * las["854"].field() ** 2
        self._free(i, dt, noise_phase, r854)

    def _free(self, i: int, dt: float, noise_phase: float, r854: float) -> None:
        """Free evolution: dephasing noise (unitary), then Markovian dephasing and
        D -> S decay / 854 quench (deferred while the ion's photon is in flight)."""
        batch = self._batch_of(i)
        if batch is not None and r854 == 0:
            if noise_phase:
                z = np.diag([1.0, complex(math.cos(noise_phase), -math.sin(noise_phase))])
                k0, k1 = batch.ops[i]
                batch.ops[i] = (z @ k0, z @ k1)
            batch.deferred_s[i] = batch.deferred_s.get(i, 0.0) + dt
            return
        if batch is not None:
            self._resolve(batch.link)
        ion = self.ions[i]
        if r854 == 0:
            # free evolution commutes with itself: collected and applied when the ion is
            # next touched (_settle)
            ion.pend_dt += dt
            ion.pend_phase += noise_phase
            return
        self._settle(i)
        self._phase(i, noise_phase)
        self._damp(i, dt, r854)

    def _settle(self, i: int) -> None:
        """Apply the free evolution (dephasing noise phase, decay, Markovian dephasing)
        collected for ion ``i``."""
        ion = self.ions[i]
        if ion.pend_dt:
            self._phase(i, ion.pend_phase)
            self._damp(i, ion.pend_dt, 0.0)
            ion.pend_dt = 0.0
            ion.pend_phase = 0.0

    def _damp(self, i: int, dt: float, r854: float) -> None:
        """Amplitude damping D -> S (decay + 854 quench) and Markovian dephasing of qubit
        ``i`` over ``dt`` seconds (elementwise on the register state)."""
        key = (i, dt, r854)
        cached = self._damp_cache.get(key)
        if cached is None:
            node = self.cfg.node
            gamma = 1.0 / node.ion.d52_lifetime_s + r854
            p = -math.expm1(-gamma * dt)
            markov = math.exp(-dt / node.memory.markovian_t2_s)
            bit = _BITS[i]
            keep = np.where(bit == 1, math.sqrt(1 - p), 1.0)
            mask = np.outer(keep, keep) * np.where(bit[:, None] != bit[None, :], markov, 1.0)
            if len(self._damp_cache) > 1024:
                self._damp_cache.clear()
            cached = self._damp_cache[key] = (mask, p)
        mask, p = cached
        new = self.rho * mask
        if p > 0:
            new.flat[_LOWLOW[i]] += p * self.rho.flat[_HIGHHIGH[i]]
        self.rho = new

    def _phase(self, i: int, phase: float) -> None:
        """Rotate qubit ``i`` about Z: D picks up ``exp(-i phase)`` relative to S."""
        if phase:
            f = np.exp(-1j * phase * _BITS[i])
            self.rho = self.rho * np.outer(f, f.conj())

    def _laser_phase_rad(self, i: int, t: int, laser: str = "729",
                         with_offset: bool = True) -> float:
        """Phase (rad) of ``laser`` relative to ion ``i``'s qubit at ``t`` (double pass)."""
        ion = self.ions[i]
        passes = self.cfg.node.laser_729.aom_passes
        atom = math.fmod(ion.transition_hz * t * 1e-9, 1.0)
        return TWO_PI * passes * (ion.lasers[laser].phase_turns(t, with_offset) - atom)

    def _pulse_729(self, i: int, t0: int, t1: int, field: float, noise_detuning: float
                   ) -> None:
        self._settle(i)
        ion = self.ions[i]
        las = ion.lasers["729"]
        passes = self.cfg.node.laser_729.aom_passes
        omega = math.pi / self.pi_time_s() * field
        dt = (t1 - t0) * 1e-9
        offset = TWO_PI * passes * (las.dds.frequency_hz - ion.transition_hz)
        phi0 = self._laser_phase_rad(i, t0)
        u = carrier_rotation(omega, offset - noise_detuning, dt, phi0,
                                   phi0 + offset * dt)
        batch = self._batch_of(i)
        if batch is not None:
            k0, k1 = batch.ops[i]
            batch.ops[i] = (u @ k0, u @ k1)
        else:
            big = _op(u, i)
            self.rho = big @ self.rho @ big.conj().T

    def _ms_segment(self, t0: int, t1: int, fb: float, fr: float) -> None:
        """Both MS tones on over [t0, t1): the gate on (ra, rb), with the memories' noise."""
        for i in (1, 2):
            batch = self._batch_of(i)
            if batch is not None:
                self._resolve(batch.link)
            self._settle(i)
        dt = (t1 - t0) * 1e-9
        ra = self.ions[1]
        blue, red = ra.lasers["ms_blue"], ra.lasers["ms_red"]
        cfg = self.cfg
        passes = cfg.node.laser_729.aom_passes
        delta = TWO_PI * (passes * (blue.dds.frequency_hz - red.dds.frequency_hz) / 2
                          - cfg.ms_gate.mode_frequency_hz)
        mid = (t0 + t1) // 2
        phases = []
        for i in (1, 2):
            atom = math.fmod(self.ions[i].transition_hz * mid * 1e-9, 1.0)
            mean = 0.5 * (blue.phase_turns(mid) + red.phase_turns(mid))
            phases.append(TWO_PI * passes * (mean - atom))
        # dephasing noise of both memories during the gate (a Z phase each, applied at
        # mid-pulse order: half before, half after is below this model's accuracy)
        for i in (1, 2):
            _, phase = self.ions[i].noise.advance(dt)
            self._phase(i, phase)
        self.rho = gates.ms_channel(self.rho, (1, 2), N_QUBITS,
                                    self.ms_sideband_rabi(fb, fr), delta, dt,
                                    (phases[0], phases[1]), cfg.ms_gate.mode_nbar)
        nominal = self.ms_nominal_gate_time_s()
        p = 1.0 - (1.0 - cfg.ms_gate.gate_error) ** (dt / nominal)
        self.rho = gates.depolarise_pair(self.rho, (1, 2), N_QUBITS, p)
        for i in (1, 2):
            self._damp(i, dt, 0.0)
        self.ms_error_applied += p

    # ----------------------------------------------------------------- readout
    def _readout(self, i: int, t0: int, t1: int, f397: float) -> None:
        """397 on: measure the ion (Born rule), record the PMT rate; 854 quenches D."""
        batch = self._batch_of(i)
        if batch is not None:
            self._resolve(batch.link)
        self._settle(i)
        node = self.cfg.node
        ion = self.ions[i]
        diag = np.real(np.diag(self.rho))
        p_s = float(diag[_LOW[i]].sum() / diag.sum())
        level = 0 if self._rng.random() < p_s else 1
        keep = (_BITS[i] == level).astype(float)
        new = self.rho * np.outer(keep, keep)
        self.rho = new / np.real(np.trace(new))
        ro = node.readout
        f866 = ion.lasers["866"].field()
        sat = node.laser_397.saturation_at_full_amplitude * f397 * f397
        det = TWO_PI * node.laser_397.aom_passes * (
            ion.lasers["397"].dds.frequency_hz - node.laser_397.resonance_dds_hz)
        gamma = 1.0 / node.ion.p12_lifetime_s
        r_sc = 0.5 * gamma * sat / (1 + sat + (2 * det / gamma) ** 2)
        bright = (r_sc * ro.cycle_efficiency * ro.collection_efficiency
                  * ro.pmt_quantum_efficiency) if f866 > 0 else 0.0
        stray = ro.stray_light_rate_at_full_397_hz * f397 * f397
        r854 = node.laser_854.quench_rate_at_full_amplitude_hz * ion.lasers["854"].field() ** 2
        t_switch = t1
        if level == 1:
            rate = 1.0 / node.ion.d52_lifetime_s + r854
            t_switch = min(t1, t0 + max(int(self._rng.exponential(1 / rate) * 1e9), 1))
        segs = ion.pmt_segments
        if level == 1:
            segs.append((t0, t_switch, stray))
            if t_switch < t1:
                segs.append((t_switch, t1, stray + bright))
                lo, hi = _LOW[i], _HIGH[i]
                new = np.zeros_like(self.rho)
                new[np.ix_(lo, lo)] = self.rho[np.ix_(hi, hi)]
                self.rho = new
        else:
            segs.append((t0, t1, stray + bright))

    def _finalise_pmt(self, i: int, until: int) -> None:
        rec = self._pmt[i]
        if until <= rec.final_until:
            return
        ion = self.ions[i]
        segs = ion.pmt_segments
        rec.finalise(until, [s for s in segs if s[0] < until and s[2] > 0])
        ion.pmt_segments = [(max(s0, until), s1, r) for s0, s1, r in segs if s1 > until]

    # ----------------------------------------------------------------- photons
    def _link_of(self, i: int) -> str:
        return "ar" if i in LINKS["ar"] else "rb"

    def _batch_of(self, i: int) -> _Batch | None:
        batch = self._batches.get(self._link_of(i))
        if batch is not None and i in batch.ops:
            return batch
        return None

    def _emit(self, i: int, t: int) -> None:
        ion = self.ions[i]
        alpha = -math.expm1(-ion.area_393 / self.cfg.node.laser_393.generation_time_constant_s)
        ion.area_393 = 0.0
        if alpha <= 0:
            return
        link = self._link_of(i)
        batch = self._batches.get(link)
        if batch is not None and i in batch.ops:
            self._resolve(link)
            batch = None
        self._settle(i)
        if batch is None:
            batch = self._batches[link] = _Batch(link)
        phi = self._laser_phase_rad(i, t, with_offset=False)
        k0 = np.diag([math.sqrt(1 - alpha), 1.0]).astype(complex)
        k1 = np.zeros((2, 2), dtype=complex)
        k1[1, 0] = math.sqrt(alpha) * complex(math.cos(phi), -math.sin(phi))
        batch.ops[i] = (k0, k1)
        batch.emit_mu[i] = t
        batch.deferred_s[i] = 0.0

    def _fibre_phase(self, link: str, t_mu: int) -> float:
        dt = (t_mu - self._fibre_noise_t[link]) * 1e-9
        noise = self._fibre_noise[link]
        if dt > 0:
            noise.advance(dt)
            self._fibre_noise_t[link] = t_mu
        return self.cfg.node.fibre.phase_offset_rad + noise.x

    def _resolve(self, link: str) -> None:
        """Detect a link's photons: sample the station outcome, collapse the ions, queue
        the clicks, then apply the free evolution deferred while the photons flew."""
        batch = self._batches.pop(link)
        qi, qj = LINKS[link]
        self._settle(qi)
        self._settle(qj)
        eye = np.eye(2, dtype=complex)
        zero = np.zeros((2, 2), dtype=complex)
        k0i, k1i = batch.ops.get(qi, (eye, zero))
        k0j, k1j = batch.ops.get(qj, (eye, zero))
        ei = self.photon_efficiency(qi) if qi in batch.ops else 0.0
        ej = self.photon_efficiency(qj) if qj in batch.ops else 0.0
        m = self.cfg.node.station.mode_overlap
        phase = self._fibre_phase(link, batch.first_emission_mu())
        e_th = complex(math.cos(phase), math.sin(phase))
        k00 = _kron(k0i, k0j)
        k10 = _kron(k1i, k0j)
        k01 = _kron(k0i, k1j)
        k11 = _kron(k1i, k1j)
        perm = _PAIR_PERM[(qi, qj)]
        rp = self.rho[np.ix_(perm, perm)]

        def sand(k):
            big = _kron(k, _EYE4)
            return big @ rp @ big.conj().T

        s11 = sand(k11)
        none = (sand(k00) + (1 - ei) * sand(k10) + (1 - ej) * sand(k01)
                + (1 - ei) * (1 - ej) * s11)
        # the outcomes' probabilities add up to one: "no click" (the usual case) is decided
        # first, the click outcomes are only computed when it is not
        p_none = max(float(np.real(np.trace(none))), 0.0)
        if self._rng.random() < p_none:
            k, state = 0, none / p_none
        else:
            outcomes = []
            w11 = (0.5 * ei * (1 - ej) + 0.5 * (1 - ei) * ej
                   + ei * ej * (m / 2 + (1 - m) / 4))
            for sign in (1.0, -1.0):
                coherent = (math.sqrt(ei / 2) * k10
                            + sign * e_th * math.sqrt(m * ej / 2) * k01)
                outcomes.append(sand(coherent) + (1 - m) * ej / 2 * sand(k01) + w11 * s11)
            outcomes.append(ei * ej * (1 - m) / 2 * s11)
            probs = np.array([max(float(np.real(np.trace(o))), 0.0) for o in outcomes])
            j = int(self._rng.choice(3, p=probs / probs.sum()))
            k, state = j + 1, outcomes[j] / probs[j]
        new = np.empty_like(self.rho)
        new[np.ix_(perm, perm)] = state
        self.rho = new
        for q, dt in batch.deferred_s.items():
            if dt > 0:
                self._damp(q, dt, 0.0)
        clicks = {0: (), 1: (0,), 2: (1,), 3: (0, 1)}[k]
        if clicks:
            self._queue_clicks(link, batch, clicks)

    def _queue_clicks(self, link: str, batch: _Batch, detectors: tuple[int, ...]) -> None:
        ph, st = self.cfg.node.photon, self.cfg.node.station
        rng = self._photon_rng
        arrivals = [batch.emit_mu[q] * 1e-9 + self.fibre_delay_s(q) for q in batch.emit_mu]
        t_min = batch.first_emission_mu()
        base = 2 * list(LINKS).index(link)
        for d in detectors:
            if ph.wavepacket_shape == "exponential":
                wp = float(rng.exponential(ph.wavepacket_time_s))
            else:
                wp = float(abs(rng.normal(0.0, ph.wavepacket_time_s)))
            t = (sum(arrivals) / len(arrivals) + wp
                 + (rng.normal(0.0, st.timing_jitter_s) if st.timing_jitter_s > 0 else 0.0))
            self._station[base + d].add_signal([max(int(round(t * 1e9)), t_min)])
