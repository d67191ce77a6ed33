"""The virtual network: two 40Ca+ nodes and a heralding station behind the simulated core.

:class:`VirtualNetwork` implements :class:`ionlink.sim.world.World`. Output events are buffered
and processed in time order (stable: same-time events keep submission order) when an input is
requested or on :meth:`flush`. Between events each ion evolves under the lasers then on:

- 729 on: exact rectangular-pulse unitary (Rabi frequency from amplitude/attenuation and the
  drifting Rabi scale, Debye-Waller factor of the shot's phonon number, detuning from the DDS
  frequency vs the drifting transition plus the dephasing noise, phase from the DDS phase mode).
- 397 on: the ion is measured: projected on S/D/D3/2 with Born probabilities, then classical
  jumps (854 quench, D decay, pumping to D3/2 if 866 is off); PMT counts are Poisson with the
  scattering rate while in S, plus stray light and dark counts. 397+866 also Doppler-cool.
- otherwise: D5/2/D3/2 decay, 854/866 pumping (rate equations) and dephasing (Ornstein-Uhlenbeck
  detuning noise integrated exactly + Markovian dephasing).
- 393 pulse (switch on -> off): cavity-mediated Raman emission of a photon entangled with the
  ion (S -> D); photons of both nodes are resolved together at the station (see photons.py).
"""

from __future__ import annotations

import bisect
import math
from typing import Any

import numpy as np

from ionlink.node import ion as ionmod
from ionlink.node.config import NodeConfig, load_node_config
from ionlink.node.drift import Drift, OrnsteinUhlenbeck
from ionlink.node.ion import D, S
from ionlink.node.photons import PhotonBatch, outcome_kraus, sample_wavepacket
from ionlink.node.wiring import NODES, build_wiring
from ionlink.sim.world import PHASE_MODE_CONTINUOUS, DDSState

C_LIGHT = 299_792_458.0
TWO_PI = 2 * math.pi
EMPTY = np.empty(0, dtype=np.int64)


class _Laser:
    """State of one AOM channel: RF switch, DDS profile, attenuation, phase accumulator."""

    __slots__ = ("level", "dds", "att_db", "acc_turns", "acc_t_mu")

    def __init__(self) -> None:
        self.level = 0
        self.dds: DDSState | None = None
        self.att_db = 0.0
        self.acc_turns = 0.0
        self.acc_t_mu = 0

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
        d = self.dds
        if d is None:
            return 0.0
        if d.phase_mode == PHASE_MODE_CONTINUOUS:
            run = self.acc_turns + d.frequency_hz * (t_mu - self.acc_t_mu) * 1e-9
        else:
            run = d.frequency_hz * (t_mu - d.ref_time_mu) * 1e-9
        return math.fmod(run + (d.phase_turns if with_offset else 0.0), 1.0)


class _Ion:
    """Per-node dynamic state besides the shared density matrix."""

    def __init__(self, rng: np.random.Generator, cfg: NodeConfig):
        self.t_mu = 0
        self.atom_phase_turns = 0.0
        mem = cfg.memory
        sigma = math.sqrt(2) / mem.quasi_static_t2_s if math.isfinite(mem.quasi_static_t2_s) \
            else 0.0
        self.noise = OrnsteinUhlenbeck(rng, sigma, mem.noise_correlation_time_s)
        self.nbar = cfg.motion.initial_nbar
        self.n_shot: int | None = None
        self.area_393 = 0.0
        self.lasers = {la: _Laser() for la in ("397", "866", "854", "729", "393")}
        self.pmt_segments: list[tuple[int, int, float]] = []


class VirtualNetwork:
    """Two-node 40Ca+ network behind the simulated core (a :class:`World`).

    :param device_db: the lab's device_db dict (roles are its aliases, see wiring.py).
    :param config: node truth; ``None`` loads the defaults.
    :param seed: master seed; components get independent streams via SeedSequence.spawn.
    :param lab_time_origin_s: lab time (s) of ``t_mu = 0`` for the drifts.
    """

    def __init__(self, device_db: dict[str, Any], config: NodeConfig | None = None,
                 seed: int = 0, lab_time_origin_s: float = 0.0):
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
        self._drifts = self._make_drifts(np.random.default_rng(seqs[5]))
        rho = np.zeros((3, 3, 3, 3), dtype=complex)
        rho[S, S, S, S] = 1.0
        self.rho = rho
        self._batch: PhotonBatch | None = None
        self._events: list[tuple[int, int, str, str, Any]] = []
        self._seq = 0
        self._clicks: list[list[int]] = [[], []]
        self._last_click = [-(1 << 62), -(1 << 62)]
        ion = cfg.ion
        self._gamma12 = 1.0 / ion.p12_lifetime_s
        self._pulse_width = {k: cfg.readout.pulse_width_mu for k in self.wiring.pmt}
        self._pulse_width.update({k: cfg.station.pulse_width_mu for k in self.wiring.station})
        self._rates: dict[tuple, ionmod.RateMatrix] = {}

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

    def transition_729_dds_hz(self, node: int, lab_s: float) -> float:
        c = self.cfg.laser_729
        base = c.transition_dds_hz_a if node == 0 else c.transition_dds_hz_b
        return base + self._drifts[f"729_{NODES[node]}"](lab_s)

    def resonance_397_dds_hz(self, node: int, lab_s: float) -> float:
        return self.cfg.laser_397.resonance_dds_hz + self._drifts[f"397_{NODES[node]}"](lab_s)

    def rabi_scale(self, node: int, lab_s: float) -> float:
        return max(1.0 + self._drifts[f"rabi_{NODES[node]}"](lab_s), 0.0)

    def photon_efficiency(self, node: int, lab_s: float) -> float:
        """Probability that an emitted photon makes a click (collection, conversion, filter,
        fibre loss, detector efficiency)."""
        p, f, st = self.cfg.photon, self.cfg.fibre, self.cfg.station
        length = f.length_a_km if node == 0 else f.length_b_km
        scale = max(1.0 + self._drifts[f"photon_{NODES[node]}"](lab_s), 0.0)
        collect = min(p.collection_efficiency * scale, 1.0)
        return (collect * p.conversion_efficiency * p.filter_transmission
                * 10 ** (-f.loss_db_per_km * length / 10) * st.detector_efficiency)

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

    def input_edges(self, device: str, t_from_mu: int, t_to_mu: int) -> np.ndarray:
        """Rising edges in ``[t_from_mu, t_to_mu)`` on a PMT or station detector."""
        self.flush(t_to_mu)
        node = self.wiring.pmt.get(device)
        if node is not None:
            return self._pmt_edges(NODES.index(node), t_from_mu, t_to_mu)
        det = self.wiring.station.get(device)
        if det is not None:
            return self._station_edges(det, t_from_mu, t_to_mu)
        return EMPTY

    def input_pulse_width_mu(self, device: str) -> int:
        return self._pulse_width.get(device, 10)

    def flush(self, t_mu: int | None = None) -> None:
        """Process buffered events with timestamps before ``t_mu`` (all if None) and resolve
        photon batches emitted before it."""
        events = self._events
        if events:
            events.sort()
            if t_mu is None or events[-1][0] < t_mu:
                todo, self._events = events, []
            else:
                cut = bisect.bisect_left(events, (t_mu,))
                todo, self._events = events[:cut], events[cut:]
            for t, _, device, attr, value in todo:
                self._process(t, device, attr, value)
        if self._batch is not None and (
                t_mu is None or min(min(ts) for ts in self._batch.emit_times_mu if ts)
                < t_mu):
            self._resolve_batch()

    # ----------------------------------------------------------------- event dispatch
    def _process(self, t: int, device: str, attr: str, value: Any) -> None:
        w = self.wiring
        if attr == "level":
            targets = w.switch.get(device)
            if targets is None:
                return
            for node, laser in targets:
                i = NODES.index(node)
                self._advance(i, t)
                las = self.ions[i].lasers[laser]
                was_on = las.on
                las.level = int(value)
                self._after_change(i, laser, was_on, las.on, t)
        elif attr in ("dds", "att_db"):
            target = w.dds.get(device)
            if target is None:
                return
            node, laser = target
            i = NODES.index(node)
            self._advance(i, t)
            las = self.ions[i].lasers[laser]
            was_on = las.on
            if attr == "dds":
                las.set_dds(t, value)
            else:
                las.att_db = float(value)
            self._after_change(i, laser, was_on, las.on, t)

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
        lab = self.lab_time_s(t0)
        las = ion.lasers
        f397, f866, f854, f729, f393 = (las[k].field() for k in ("397", "866", "854", "729",
                                                                   "393"))
        if f393 > 0:
            ion.area_393 += f393 * f393 * dt
        _, noise_phase = ion.noise.advance(dt)
        if f397 > 0:
            self._readout_segment(i, t0, t, f397, f866, f854, lab)
        else:
            if f729 > 0:
                self._pulse_729(i, t0, t, f729, noise_phase / dt, lab)
                noise_phase = 0.0
            self._incoherent(i, dt, f866, f854, noise_phase)
            self._heat(ion, dt)
        ion.atom_phase_turns = math.fmod(
            ion.atom_phase_turns + self.transition_729_dds_hz(i, lab) * dt, 1.0)
        ion.t_mu = t

    def _heat(self, ion: _Ion, dt: float) -> None:
        rate = self.cfg.motion.heating_rate_quanta_per_s
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

    def _incoherent(self, i: int, dt: float, f866: float, f854: float,
                    noise_phase: float) -> None:
        """Free evolution / 854, 866 pumping for ``dt`` seconds, with dephasing."""
        cfg = self.cfg
        r854 = cfg.laser_854.quench_rate_at_full_amplitude_hz * f854 * f854
        r866 = cfg.laser_866.repump_rate_at_full_amplitude_hz * f866 * f866
        batch = self._batch
        if batch is not None and r854 == 0 and r866 == 0:
            # photons pending: keep the unitary part exact, defer the weak non-unitary part
            if noise_phase != 0.0:
                batch.apply_unitary(i, np.diag([1.0, np.exp(-1j * noise_phase), 1.0]))
            batch.deferred_s[i] += dt
            return
        if batch is not None:
            self._resolve_batch()
        self.rho = self._free_channel(self.rho, i, dt, r854, r866, noise_phase)

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
        coh[D, S] *= phase
        coh[S, D] *= phase.conjugate()
        return ionmod.apply_incoherent(rho, p, coh, i)

    def _laser_phase_rad(self, i: int, t_mu: int, with_offset: bool = True) -> float:
        """729 laser phase relative to the atom (rad) at ``t_mu`` (``with_offset=False``:
        the running carrier without the programmed phase offset)."""
        ion = self.ions[i]
        las = ion.lasers["729"]
        passes = self.cfg.laser_729.aom_passes
        return TWO_PI * passes * (las.phase_turns(t_mu, with_offset) - ion.atom_phase_turns
                                  - self.transition_729_dds_hz(i, self.lab_time_s(t_mu))
                                  * (t_mu - ion.t_mu) * 1e-9)

    def _pulse_729(self, i: int, t0: int, t1: int, field: float, noise_detuning: float,
                   lab: float) -> None:
        ion = self.ions[i]
        cfg = self.cfg
        las = ion.lasers["729"]
        passes = cfg.laser_729.aom_passes
        f_t = self.transition_729_dds_hz(i, lab)
        detuning = TWO_PI * passes * (las.dds.frequency_hz - f_t) - noise_detuning
        if ion.n_shot is None:
            nbar = ion.nbar
            ion.n_shot = int(self._rng.geometric(1 / (nbar + 1)) - 1) if nbar > 0 else 0
        omega = self.omega_729(i, field, lab) * ionmod.debye_waller(
            ion.n_shot, cfg.motion.lamb_dicke_729)
        dt = (t1 - t0) * 1e-9
        phi0 = self._laser_phase_rad(i, t0)
        # laser phase relative to the atom at the end of the pulse
        phi1 = phi0 + TWO_PI * passes * (las.dds.frequency_hz - f_t) * dt
        u = ionmod.rotation(omega, detuning, dt, phi0, phi1)
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
        det = TWO_PI * cfg.laser_397.aom_passes * (
            ion.lasers["397"].dds.frequency_hz - self.resonance_397_dds_hz(i, lab))
        r_sc = ionmod.scattering_rate(self._gamma12, sat, det)
        pops = np.clip(ionmod.reduced_populations(self.rho, i), 0, None)
        level = int(self._rng.choice(3, p=pops / pops.sum()))
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
                col = q[:, level].copy()
                col[level] = 0
                level = int(self._rng.choice(3, p=col / col.sum()))
            t = t_next
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
        ion = self.ions[i]
        alpha = 1 - math.exp(-ion.area_393 / self.cfg.laser_393.generation_time_constant_s)
        ion.area_393 = 0.0
        if alpha <= 0:
            return
        # the photon-generation lasers are phase-locked to the node's 729 laser carrier, so
        # the heralded coherence is referenced to it (programmed phase offsets excluded)
        phi = self._laser_phase_rad(i, t, with_offset=False)
        k0 = np.diag([math.sqrt(1 - alpha), 1.0, 1.0]).astype(complex)
        k1 = np.zeros((3, 3), dtype=complex)
        k1[D, S] = math.sqrt(alpha) * complex(math.cos(phi), -math.sin(phi))
        if self._batch is None:
            self._batch = PhotonBatch.start(self.rho)
        self._batch.emit(i, k0, k1, t)

    def _fibre_phase(self, t_mu: int) -> float:
        dt = (t_mu - self._fibre_noise_t_mu) * 1e-9
        if dt > 0:
            self._fibre_noise.advance(dt)
            self._fibre_noise_t_mu = t_mu
        lab = self.lab_time_s(t_mu)
        return self.cfg.fibre.phase_offset_rad + self._drifts["fibre_phase"](lab) \
            + self._fibre_noise.x

    def _resolve_batch(self) -> None:
        """Detect the batch's photons: sample one outcome, collapse the ions, queue clicks."""
        batch, self._batch = self._batch, None
        t_first = min(min(ts) for ts in batch.emit_times_mu if ts)
        lab = self.lab_time_s(t_first)
        eta = (self.photon_efficiency(0, lab), self.photon_efficiency(1, lab))
        kraus, clicks = outcome_kraus(batch, eta, self._fibre_phase(t_first))
        rho = batch.rho0.reshape(9, 9)
        unnorm = kraus @ rho @ kraus.conj().transpose(0, 2, 1)
        probs = np.clip(np.real(np.einsum("kii->k", unnorm)), 0, None)
        k = int(self._rng.choice(len(probs), p=probs / probs.sum()))
        new = (unnorm[k] / probs[k]).reshape(3, 3, 3, 3)
        for i in range(2):
            if batch.deferred_s[i] > 0:
                new = self._free_channel(new, i, batch.deferred_s[i], 0.0, 0.0, 0.0)
        self.rho = new
        if clicks[k]:
            self._queue_clicks(batch, clicks[k], lab)

    def _queue_clicks(self, batch: PhotonBatch, clicks: tuple, lab: float) -> None:
        ph, st = self.cfg.photon, self.cfg.station
        rng = self._photon_rng
        for det, mode in clicks:
            arrivals = [batch.emit_times_mu[i][mode] * 1e-9 + self.fibre_delay_s(i, lab)
                        for i in range(2) if len(batch.emit_times_mu[i]) > mode]
            t = (sum(arrivals) / len(arrivals)
                 + sample_wavepacket(rng, ph.wavepacket_shape, ph.wavepacket_time_s)
                 + (rng.normal(0.0, st.timing_jitter_s) if st.timing_jitter_s > 0 else 0.0))
            bisect.insort(self._clicks[det], int(round(t * 1e9)))

    # ----------------------------------------------------------------- inputs
    def _station_edges(self, det: int, t0: int, t1: int) -> np.ndarray:
        st = self.cfg.station
        pending = self._clicks[det]
        lo = bisect.bisect_left(pending, t0)
        hi = bisect.bisect_left(pending, t1)
        times = pending[lo:hi]
        del pending[:hi]
        n_dark = self._rng.poisson(st.dark_count_rate_hz * (t1 - t0) * 1e-9) if t1 > t0 else 0
        if n_dark:
            times = times + self._rng.integers(t0, t1, size=n_dark).tolist()
            times.sort()
        if not times:
            return EMPTY
        dead = int(round(st.dead_time_s * 1e9))
        out = []
        last = self._last_click[det]
        for t in times:
            if t - last >= dead:
                out.append(t)
                last = t
        self._last_click[det] = last
        return np.array(out, dtype=np.int64)

    def _pmt_edges(self, i: int, t0: int, t1: int) -> np.ndarray:
        self._advance(i, t1)
        ion = self.ions[i]
        dark = self.cfg.readout.pmt_dark_count_rate_hz
        rng = self._rng
        parts = []
        n = rng.poisson(dark * (t1 - t0) * 1e-9) if t1 > t0 else 0
        if n:
            parts.append(rng.integers(t0, t1, size=n))
        keep = []
        for s0, s1, rate in ion.pmt_segments:
            if s1 > t1:
                keep.append((max(s0, t1), s1, rate))
            a, b = max(s0, t0), min(s1, t1)
            if b > a and rate > 0:
                n = rng.poisson(rate * (b - a) * 1e-9)
                if n:
                    parts.append(rng.integers(a, b, size=n))
        ion.pmt_segments = keep
        if not parts:
            return EMPTY
        out = np.concatenate(parts).astype(np.int64)
        out.sort()
        return out

    # ----------------------------------------------------------------- inspection
    def joint_density_matrix(self) -> np.ndarray:
        """The two ions' 9x9 density matrix (basis |a b>, levels S, D, D3/2) as currently
        processed (call :meth:`flush` first)."""
        return self.rho.reshape(9, 9).copy()
