"""A DMA playback's switch steps compiled once for the classical regime, then replayed.

A playback (:class:`ionlink.node.network._Playback`) replayed with unchanged laser settings
(DDS profiles, attenuations, switch states at its start) drives the same lasers to the same
fields at the same relative times every time: which branch of the ion evolution each step
takes (``VirtualNetwork._switch_level``), the pumping rates, the durations between steps,
their transfer matrices, the new laser fields and where a 393 nm pulse ends (an emission)
are all fixed. :func:`compile_program` works them out once per playback and laser state
(:func:`laser_key`: the fields of all lasers, ``_Laser.epoch`` of the switched ones, which
counts DDS/attenuation changes, and the rates) into a flat list of operations;
:func:`run_program` applies them, evaluating the state-dependent parts as ``_switch_level``
does: the first interval of each ion (from its last event), population transfers (skipped
for an ion exactly in S, snapped to S after pumping), phonon-number draws (only when a
phonon number is drawn), phase synchronisation and the emissions. The arithmetic and the
order of every random draw are those of ``_switch_level``, step by step.

Two shortcuts keep the results identical:

- transfers made irrelevant by a later quench are skipped (``_mark_elisions``);
- without phonon-number draws, the steps are regrouped per ion (``_fuse``/``_run_fused``).

A program covers only what ``_switch_level`` does inline: the joint state in population
form with no photon batch pending at the start, no 397 or 729 light on the ions, no pumping
while photons are in flight, no 393 pulse under way at the start and emission probabilities
above 0; a playback with DDS or attenuation events, or one that needs any other branch, has
no program (``None``) and plays through the general path.
"""

from __future__ import annotations

import math
from typing import Any

from ionlink.node.ion import S

#: operation kinds
CLASSICAL, FLIGHT, SET, EMIT = 0, 1, 2, 3
#: what a CLASSICAL operation does with the populations (see ``_mark_elisions``)
KEEP, ELIDE, SNAP = 0, 1, 2
#: a quench whose transfer to S is at least 1 - SNAP_MARGIN from every level snaps any
#: probability vector to S (SNAP_FLOOR = 1e-12 leaves a margin of 10x for rounding)
SNAP_MARGIN = 1e-14
#: run programs regrouped (``_run_fused``) where possible (False: step by step; tests)
FUSED = True
#: elision only for an ion at least this far from S at the start ...
ELIDE_MIN_DEFICIT = 1e-6
#: ... and with less unpumped evolution (s) than this before the quench
ELIDE_MAX_FREE_S = 0.5


class Program:
    """Operations of one playback at one laser state (see module docstring).

    ``checks`` = ((ion, relative time of its first advance), ...): the program applies
    only if each ion's last event lies before that time (it then advances there).
    """

    __slots__ = ("ops", "checks", "emitters", "cyclic", "rates", "fused")

    def __init__(self, ops: tuple, checks: tuple, emitters: tuple, cyclic: bool,
                 rates: tuple, fused: tuple | None = None):
        self.ops = ops
        #: the same operations regrouped for :func:`_run_fused` (None: not possible)
        self.fused = fused
        self.checks = checks
        #: ions whose 393 pulse ends in the program (their pulse area is 0 at the start)
        self.emitters = emitters
        #: the lasers end as they started (the program may follow itself unchecked)
        self.cyclic = cyclic
        #: the rates it was compiled with (``program_rates``)
        self.rates = rates


def program_rates(net: Any) -> tuple:
    """The network's rates a program is compiled with."""
    return (net._heating_rate, net._quench_rate, net._repump_rate,
            net.cfg.laser_393.generation_time_constant_s)


def switched_lasers(steps: tuple) -> tuple:
    """The lasers whose switches resolved playback ``steps`` set."""
    out: dict[int, Any] = {}
    for _rel, changes, *_ in steps:
        for _i, _name, las, _value in changes or ():
            out[id(las)] = las
    return tuple(out.values())


def laser_key(net: Any, switched: tuple) -> tuple:
    """What a program of a playback switching the lasers ``switched`` depends on besides
    the playback: the field and on-state of every laser, the DDS/attenuation epoch of
    the lasers it switches (their fields once on) and the rates of the ion evolution."""
    return (tuple([las.f - (not las.is_on) for las in net._all_lasers]),
            tuple([las.epoch for las in switched]), program_rates(net))


def compile_program(net: Any, steps: tuple) -> Program | None:
    """Compile resolved playback ``steps`` (``_Playback.resolved``) for the network's
    current laser state; None if some step needs a branch a program does not cover."""
    heating = net._heating_rate
    # simulated laser state: _Laser -> [level, f, is_on]
    state: dict[int, list] = {}

    def laser(las) -> list:
        s = state.get(id(las))
        if s is None:
            s = state[id(las)] = [las.level, las.f, las.is_on]
        return s

    ops: list = []
    last_rel: dict[int, int] = {}
    checks: list = []
    batch = False
    # pulse areas from the start (0 for an ion with its 393 off, see ``run_program``)
    area_sum: dict[int, float] = {}
    tc = net.cfg.laser_393.generation_time_constant_s
    for rel, changes, _device, attr, _value in steps:
        if changes is None:
            if attr == "level":
                continue            # a TTL that drives nothing of the node
            return None             # DDS / attenuation / other events: general path
        for i, name, las, value in changes:
            ion = net.ions[i]
            l397, l866, l854, l729, l393 = (laser(x) for x in ion.laser_list)
            prev = last_rel.get(i)
            if prev is None or rel > prev:
                if l397[1] != 0 or l729[1] != 0:
                    return None
                f393 = l393[1]
                f2 = f393 * f393 if f393 > 0 else None
                if prev is None:
                    checks.append((i, rel))
                    dt = None
                else:
                    dt = (rel - prev) * 1e-9
                if f2 is not None and dt is None:
                    return None     # a 393 pulse under way at the start
                area = None if f2 is None else f2 * dt
                if area is not None:
                    area_sum[i] = area_sum.get(i, 0.0) + area
                heat = None if dt is None else heating * dt
                if not batch:
                    f866, f854 = l866[1], l854[1]
                    r854 = net._quench_rate * f854 * f854
                    r866 = net._repump_rate * f866 * f866
                    pumped = r854 > 0 or r866 > 0
                    transfer = None if dt is None else net._transfer(r854, r866, dt)
                    ops.append([CLASSICAL, i, rel, dt, f2, area, heat, r854, r866, pumped,
                                transfer, KEEP])
                elif l854[1] == 0 and l866[1] == 0:
                    ops.append((FLIGHT, i, rel, dt, f2, area, heat))
                else:
                    return None
                last_rel[i] = rel
            s = laser(las)
            was_on = s[2]
            d = las.dds
            gain = None
            if value == 1 and d is not None and d.amplitude > 0:
                gain = 10.0 ** (-las.att_db / 20.0) if las.att_db != las._gain_att \
                    else las._gain
                s[:] = [value, d.amplitude * gain, True]
            else:
                s[:] = [value, 0.0, False]
            ops.append((SET, ((las, value, s[1], s[2], las.att_db, gain),)))
            if not s[2] and was_on and name == "393":
                # the emission probability is fixed by the pulse: a program needs it > 0
                # (alpha = 0 emits nothing and leaves no batch)
                if 1 - math.exp(-area_sum.get(i, 0.0) / tc) <= 0:
                    return None
                area_sum[i] = 0.0
                ops.append((EMIT, i, rel))
                batch = True
    if not ops:
        return None
    _mark_elisions(ops)
    # consecutive SETs become one operation
    merged: list = []
    for op in ops:
        if op[0] == SET and merged and merged[-1][0] == SET:
            merged[-1] = (SET, merged[-1][1] + op[1])
        else:
            merged.append(tuple(op))
    emitters = tuple(sorted({op[1] for op in ops if op[0] == EMIT}))
    cyclic = all(s == [las.level, las.f, las.is_on]
                 for las, s in ((las, state.get(id(las))) for las in net._all_lasers)
                 if s is not None)
    span = max(op[2] for op in ops if op[0] != SET) - min(
        op[2] for op in ops if op[0] != SET)
    fused = _fuse(ops, state, net) if span < net._phase_sync_mu else None
    return Program(tuple(merged), tuple(checks), emitters, cyclic, program_rates(net),
                   fused)


def _fuse(ops: list, state: dict, net: Any) -> tuple:
    """The operations regrouped for :func:`_run_fused`: (per ion with population steps:
    (ion, its CLASSICAL operations), the EMIT and FLIGHT operations in order, the lasers'
    final states ``(laser, level, f, on, att, gain or None)``).

    Valid when no random number is drawn in the program (no phonon-number draws): the
    CLASSICAL steps of one ion then touch only that ion, all of them come before the
    first emission, nothing in the program reads a laser's switch state (the fields are
    compiled in), and the atom phases are synchronised at most once per ion (the program
    spans less than ``PHASE_SYNC_MU``), so the steps of each ion can run together, the
    emissions and steps in flight after them in order, and the switch states be set once
    at the end -- with the arithmetic of the step-by-step loop.
    """
    groups: dict[int, list] = {}
    rest: list = []
    final: dict[int, tuple] = {}
    for op in ops:
        if op[0] == CLASSICAL:
            groups.setdefault(op[1], []).append(tuple(op))
        elif op[0] == SET:
            for las, value, f, on, att, gain in op[1]:
                old = final.get(id(las))
                if not on and old is not None and old[5] is not None:
                    att, gain = old[4], old[5]      # the gain cache of an earlier "on"
                final[id(las)] = (las, value, f, on, att, gain)
        else:
            rest.append(tuple(op))
    # per ion: its steps, and the increments of its accumulators after the first step
    # (the intervals, the pulse areas where the 393 is on, the heating)
    grouped = tuple((i, tuple(g), tuple(op[3] for op in g[1:]),
                     tuple(op[5] for op in g[1:] if op[5] is not None),
                     tuple(op[6] for op in g[1:])) for i, g in groups.items())
    return grouped, tuple(rest), tuple(final.values())


def _mark_elisions(ops: list) -> None:
    """Mark the population transfers of each ion that a later quench makes irrelevant.

    A pumping step whose transfer moves every level to S with probability at least
    ``1 - SNAP_MARGIN`` ends with the ion snapped to S (``SNAP_FLOOR``) from any
    probability vector, so the transfers before it are not needed: they are marked
    ``ELIDE`` (skipped at run time when the ion's populations at the start pass
    :func:`_elision_applies`) and the quench ``SNAP`` (sets S). The one way the skipped
    transfers could matter -- one of them leaving S at exactly 1.0 without a snap, which
    stops later transfers -- needs the ion within ~1e-16 of S after unpumped decay; the
    run-time check excludes it (S deficit >= ``ELIDE_MIN_DEFICIT``, unpumped time before
    the quench < ``ELIDE_MAX_FREE_S``, while the decay rates are ~1/s).
    """
    by_ion: dict[int, list] = {}
    for op in ops:
        if op[0] == CLASSICAL:
            by_ion.setdefault(op[1], []).append(op)
    for seq in by_ion.values():
        free = 0.0
        for k, op in enumerate(seq):
            dt, pumped, transfer = op[3], op[9], op[10]
            if k and dt is not None and pumped and float(transfer[S].min()) >= 1 - SNAP_MARGIN:
                for pre in seq[:k]:
                    pre[11] = ELIDE
                op[11] = SNAP
                seq[0][11] = (ELIDE, free, seq[0][9])   # first: the run-time check's data
                break
            if not pumped and dt is not None:
                free += dt
            if free >= ELIDE_MAX_FREE_S:
                break


def _elision_applies(p: Any, dt: float, first_pumped: bool, free_s: float) -> bool:
    """Whether an ion with populations ``p`` (array or list) at the start (its first
    interval ``dt`` seconds, pumped or not, then ``free_s`` s of unpumped steps) may skip
    the transfers marked ``ELIDE`` (see :func:`_mark_elisions`)."""
    vals = p if p.__class__ is list else p.tolist()
    if min(vals) < 0.0 or abs(sum(vals) - 1.0) > 1e-13 or 1.0 - vals[S] < ELIDE_MIN_DEFICIT:
        return False
    return free_s + (0.0 if first_pumped else dt) < ELIDE_MAX_FREE_S


def run_program(net: Any, program: Program, t0: int, light: bool = False) -> bool:
    """Apply ``program`` at playback time ``t0``; False (nothing changed) if the state
    does not allow it (see module docstring).

    ``light``: the caller resolves the photons right after the program (nothing else
    happens in between); the emissions are then kept as a light record in ``net._light``
    instead of a :class:`PhotonBatch`: (populations at the first emission, entries,
    deferred seconds per ion, deferred noise intervals per ion), with the entries
    ``(alpha, ion, t_mu, snapshot)`` per emission and ``(None, ion, dt, None)`` per
    deferred noise phase, in order. ``VirtualNetwork._resolve_light`` builds the batch
    from it only if the outcome is not "no click".
    """
    pops = net._pops
    if pops is None or net._batch is not None or net._light is not None:
        return False
    ions = net.ions
    for i, rel in program.checks:
        if t0 + rel <= ions[i].t_mu:
            return False
    for i in program.emitters:
        if ions[i].area_393 != 0.0:
            return False
    heating = net._heating_rate
    if program.fused is not None and FUSED and (
            heating == 0 or all(ion.n_shot is None for ion in ions)):
        _run_fused(net, program.fused, t0, light)
        return True
    entries: list = []
    deferred = [0.0, 0.0]
    noise_dts: tuple[list, list] = ([], [])
    pops0 = None
    level_s = net._level_s
    floor = net._snap_floor
    sync_mu = net._phase_sync_mu
    elide = [False] * len(ions)
    for op in program.ops:
        kind = op[0]
        if kind == SET:
            for las, value, f, on, att, gain in op[1]:
                las.level = value
                las.f = f
                las.is_on = on
                if on:      # (the cached gain, as _Laser.update leaves it)
                    las._gain_att = att
                    las._gain = gain
            continue
        if kind == EMIT:
            if light:
                alpha, snap = net._emission(op[1], t0 + op[2])
                if pops0 is None:
                    pops0 = list(pops)
                entries.append((alpha, op[1], t0 + op[2], snap))
            else:
                net._emit(op[1], t0 + op[2])
            continue
        if kind == CLASSICAL:
            _, i, rel, dt, f2, area, heat, r854, r866, pumped, transfer, mode = op
        else:
            _, i, rel, dt, f2, area, heat = op
        ion = ions[i]
        t = t0 + rel
        if dt is None:
            dt = (t - ion.t_mu) * 1e-9
            if f2 is not None:
                area = f2 * dt
            heat = heating * dt
        if area is not None:
            ion.area_393 += area
        if kind == CLASSICAL:
            ion.noise_lag_s += dt
            p = pops[i]
            if p[S] != 1.0:
                if mode is not KEEP:
                    if mode.__class__ is tuple:     # the ion's first step: check
                        elide[i] = _elision_applies(p, dt, mode[2], mode[1])
                        mode = ELIDE
                    if elide[i]:
                        if mode == SNAP:
                            pops[i] = level_s
                        p = None
                if p is not None:
                    if transfer is None:
                        transfer = net._transfer(r854, r866, dt)
                    v = transfer.dot(p)
                    if pumped and 1.0 - v[S] <= floor:
                        v = level_s
                    pops[i] = v
        else:
            _defer(net, ion, i, dt, light, entries, noise_dts, deferred)
        ion.nbar += heat
        if ion.n_shot is not None and heating > 0:
            ion.n_shot += int(net._rng.poisson(heating * dt))
        ion.t_mu = t
        if t - ion.phase_t_mu > sync_mu:
            net._sync_phase(i, t)
    if pops0 is not None:
        net._light = (pops0, entries, deferred, noise_dts)
    return True


def _run_fused(net: Any, fused: tuple, t0: int, light: bool) -> None:
    """:func:`run_program` with the regrouped operations of ``_fuse`` (same results)."""
    groups, rest, final = fused
    ions = net.ions
    pops = net._pops
    heating = net._heating_rate
    sync_mu = net._phase_sync_mu
    level_s = net._level_s
    floor = net._snap_floor
    for i, ops, dts, areas, heats in groups:
        ion = ions[i]
        first = ops[0]
        t_first = t0 + first[2]
        dt0 = (t_first - ion.t_mu) * 1e-9
        # the scalar accumulators, in the order of the steps (the first step adds no
        # pulse area: a program starts with the 393 off)
        lag = ion.noise_lag_s + dt0
        for d in dts:
            lag += d
        ion.noise_lag_s = lag
        nbar = ion.nbar + heating * dt0
        for h in heats:
            nbar += h
        ion.nbar = nbar
        if areas:
            area = ion.area_393
            for a in areas:
                area += a
            ion.area_393 = area
        # the populations
        p = pops[i]
        vals = None if p is level_s else p.tolist()
        if vals is not None and vals[S] != 1.0:
            mode = first[11]
            if mode is not KEEP and _elision_applies(vals, dt0, mode[2], mode[1]):
                pops[i] = level_s
            else:
                for k, op in enumerate(ops):
                    p = pops[i]
                    if p[S] == 1.0:
                        break
                    dt = op[3] if k else dt0
                    transfer = op[10]
                    if transfer is None:
                        transfer = net._transfer(op[7], op[8], dt)
                    v = transfer.dot(p)
                    if op[9] and 1.0 - v[S] <= floor:
                        v = level_s
                    pops[i] = v
        # the phase synchronisation (at most one: the program is shorter than sync_mu)
        if t0 + ops[-1][2] - ion.phase_t_mu > sync_mu:
            for op in ops:
                t = t0 + op[2]
                if t - ion.phase_t_mu > sync_mu:
                    net._sync_phase(i, t)
                    break
        ion.t_mu = t0 + ops[-1][2]
    entries: list = []
    deferred = [0.0, 0.0]
    noise_dts: tuple[list, list] = ([], [])
    pops0 = None
    for op in rest:
        if op[0] == EMIT:
            if light:
                alpha, snap = net._emission(op[1], t0 + op[2])
                if pops0 is None:
                    pops0 = list(pops)
                entries.append((alpha, op[1], t0 + op[2], snap))
            else:
                net._emit(op[1], t0 + op[2])
            continue
        _, i, rel, dt, f2, area, heat = op
        ion = ions[i]
        t = t0 + rel
        if dt is None:
            dt = (t - ion.t_mu) * 1e-9
            if f2 is not None:
                area = f2 * dt
            heat = heating * dt
        if area is not None:
            ion.area_393 += area
        _defer(net, ion, i, dt, light, entries, noise_dts, deferred)
        ion.nbar += heat
        ion.t_mu = t
        if t - ion.phase_t_mu > sync_mu:
            net._sync_phase(i, t)
    for las, value, f, on, att, gain in final:
        las.level = value
        las.f = f
        las.is_on = on
        if gain is not None:
            las._gain_att = att
            las._gain = gain
    if pops0 is not None:
        net._light = (pops0, entries, deferred, noise_dts)


def _defer(net, ion, i: int, dt: float, light: bool, entries: list, noise_dts: list,
           deferred: list) -> None:
    """Defer ``dt`` (s) of ion ``i``'s coherent evolution: to the light record of the
    playback (``light``) or to the pending photon batch, with its phase-noise interval."""
    if light:
        if ion.noise.sigma != 0:
            entries.append((None, i, dt, None))
            noise_dts[i].append(dt)
        deferred[i] += dt
    else:
        batch = net._batch
        if ion.noise.sigma != 0:
            ion.noise_pending.append(batch.defer_phase(i, dt))
        batch.deferred_s[i] += dt
