"""The node's lasers as a wavemeter sees them: optical frequencies, drift and actuators.

Each node (``a``, ``b``) has five lasers named by wavelength: ``397``, ``866``, ``854``,
``729``, ``393``. A laser's free-running optical frequency (Hz, vacuum) at lab time ``t`` is

- ``397`` and ``729``: the atomic line minus ``aom_passes`` times the node's drifting
  free-running resonance/transition in DDS Hz (``VirtualNetwork.free_resonance_397_dds_hz``
  / ``free_transition_729_dds_hz``). The node models those drifts as the laser drifting
  against a fixed atom (detuning = passes * (f_dds - f_res(t))), so this is the same drift,
  seen before the AOM where a wavemeter samples the beam;
- ``866``, ``854``, ``393``: the atomic line (no AOM offset modelled) plus a seeded
  :class:`ionlink.node.drift.Drift` with the parameters of :data:`FREE_RUNNING_DRIFT`.

Actuators: a laser may have one frequency actuator, a DAC channel (``dac_v`` events of a
Zotino channel, tuning ``hz_per_unit`` Hz per volt, e.g. a piezo) or a DDS offset (the
frequency of a DDS channel, ``hz_per_unit`` Hz per DDS Hz, e.g. an offset-lock beat or a
double-pass AOM in the lock path). The actuator adds ``hz_per_unit * (value - reference)``
to the free-running frequency from the event's timestamp on.

What the ion sees (397 and 729): the beam reaching the ion is the laser shifted by the AOM,
``f_laser + passes * f_dds``, and the atom is fixed at the line ``L``. With
``f_laser(t) = L - passes * f_res(t) + Delta(t)`` (``Delta`` the actuator's shift, optical
Hz) the optical detuning is ``passes * f_dds - passes * f_res(t) + Delta(t)
= passes * (f_dds - f_eff(t))`` with the effective resonance in DDS Hz
``f_eff(t) = f_res(t) - Delta(t) / passes``: a positive shift of the laser moves the DDS
frequency of resonance down by ``Delta / passes``. ``VirtualNetwork`` uses ``f_eff`` for
the 397 scattering (cooling, fluorescence) and the 729 pulses, and integrates it (the
piecewise-constant ``Delta`` exactly, :meth:`Actuator.integral_hz_s`) into the atom phase
the 729 laser phase is referenced to. The actuators of 866/854/393 change only what the
wavemeter reads (the node does not model the detuning of those lasers).

Line centres (vacuum): S1/2-P1/2 755.222766 THz and S1/2-P3/2 761.905013 THz, D3/2-P1/2
346.000235 THz, D5/2-P3/2 350.862882 THz (Gebert et al., PRL 115, 053003 (2015));
S1/2-D5/2 411.042129776 THz (Chwalla et al., PRL 102, 023002 (2009)).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ionlink.node.drift import Drift
from ionlink.node.wiring import NODES

#: Laser name -> optical line centre in Hz.
LINE_HZ: dict[str, float] = {
    "397": 755.222766e12,
    "866": 346.000235e12,
    "854": 350.862882e12,
    "729": 411.042129776e12,
    "393": 761.905013e12,
}
LASER_NAMES = tuple(LINE_HZ)

#: Drift of the free-running lasers the node file has no drift for: (random walk in
#: Hz/sqrt(s), sine amplitude Hz, sine period s). Plausible for unlocked ECDLs (tens of MHz
#: per hour), not a fit.
FREE_RUNNING_DRIFT: dict[str, tuple[float, float, float]] = {
    "866": (2.0e5, 20.0e6, 3600.0),
    "854": (2.0e5, 20.0e6, 3600.0),
    "393": (2.0e5, 20.0e6, 3600.0),
}

ACTUATOR_KINDS = ("dac", "dds")

#: True tuning of each laser by a DAC actuator (Hz per volt at the DAC output, e.g. a piezo
#: driver): tens of MHz per volt is typical of ECDL piezo tuning; plausible, not a fit.
DAC_TUNING_HZ_PER_V: dict[str, float] = {"397": 1.2e8, "866": 9.0e7, "854": 9.0e7,
                                         "729": 5.0e7, "393": 1.2e8}
#: True tuning by a DDS offset (optical Hz per DDS Hz): a double-pass AOM in the lock path.
DDS_TUNING_HZ_PER_HZ = 2.0


def default_tuning(kind: str, laser: str) -> float:
    """The node's true tuning coefficient of a ``kind`` actuator on ``laser``."""
    if kind == "dac":
        return DAC_TUNING_HZ_PER_V[laser]
    if kind == "dds":
        return DDS_TUNING_HZ_PER_HZ
    raise ValueError(f"actuator kind must be one of {ACTUATOR_KINDS}, got {kind!r}")


@dataclass
class Actuator:
    """A frequency actuator of one laser.

    :param kind: ``"dac"`` (value in volts) or ``"dds"`` (value in DDS Hz).
    :param device: device_db key of the DAC or DDS device.
    :param channel: DAC channel (ignored for a DDS).
    :param hz_per_unit: optical Hz per volt (DAC) or per DDS Hz.
    :param reference: actuator value at which the laser is at its free-running frequency.
    """

    kind: str
    device: str
    channel: int
    hz_per_unit: float
    reference: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ACTUATOR_KINDS:
            raise ValueError(f"actuator kind must be one of {ACTUATOR_KINDS}, got "
                             f"{self.kind!r}")
        if not np.isfinite(self.hz_per_unit) or self.hz_per_unit == 0:
            raise ValueError(f"hz_per_unit must be finite and non-zero, got "
                             f"{self.hz_per_unit!r}")
        self._times: list[int] = []
        self._values: list[float] = []

    def record(self, t_mu: int, value: float) -> None:
        """An actuator value taking effect at ``t_mu`` (any order; later submission wins at
        equal times)."""
        i = bisect.bisect_right(self._times, t_mu)
        self._times.insert(i, t_mu)
        self._values.insert(i, float(value))

    def discard_after(self, t_mu: int) -> None:
        """Forget the values recorded for times after ``t_mu`` (``core.reset()`` discarded
        their events)."""
        i = bisect.bisect_right(self._times, t_mu)
        del self._times[i:], self._values[i:]

    def value(self, t_mu: int) -> float:
        """Actuator value in effect at ``t_mu`` (``reference`` before the first event)."""
        i = bisect.bisect_right(self._times, t_mu)
        return self._values[i - 1] if i else self.reference

    def shift_hz(self, t_mu: int) -> float:
        """Optical frequency shift (Hz) at ``t_mu``."""
        return self.hz_per_unit * (self.value(t_mu) - self.reference)

    def integral_hz_s(self, t0_mu: int, t1_mu: int) -> float:
        """Exact integral (Hz x s) of :meth:`shift_hz` over ``[t0_mu, t1_mu]`` (0 if
        ``t1_mu <= t0_mu``): the shift is piecewise constant between recorded events."""
        if t1_mu <= t0_mu:
            return 0.0
        times, values, ref = self._times, self._values, self.reference
        k = bisect.bisect_right(times, t0_mu)
        v = values[k - 1] if k else ref
        t = t0_mu
        total = 0.0
        n = len(times)
        while k < n and times[k] < t1_mu:
            total += (v - ref) * (times[k] - t)
            t, v = times[k], values[k]
            k += 1
        total += (v - ref) * (t1_mu - t)
        return self.hz_per_unit * total * 1e-9


class NodeLasers:
    """Optical frequencies of the lasers of both nodes.

    :param lab_time_s: core timestamp (mu) -> lab time (s).
    :param resonance_dds_hz: ``(laser, node index, lab s) -> DDS Hz`` of the drifting
        free-running resonance (no actuator) for ``397``/``729``.
    :param aom_passes: laser -> AOM passes.
    :param seed: seed of the drifts of the other lasers.
    :param grid_step_s: drift grid step (the node file's ``drift.grid_step_s``).
    :param on_attach: called as ``on_attach(laser, node index, actuator)`` after
        :meth:`attach` (the network's ion physics follows the actuators through it).
    """

    def __init__(self, lab_time_s: Callable[[int], float],
                 resonance_dds_hz: Callable[[str, int, float], float],
                 aom_passes: dict[str, int], seed: int = 0, grid_step_s: float = 10.0,
                 on_attach: Callable[[str, int, Actuator], None] | None = None):
        self._on_attach = on_attach
        self._lab_time_s = lab_time_s
        self._resonance_dds_hz = resonance_dds_hz
        self._passes = dict(aom_passes)
        seqs = np.random.SeedSequence(seed).spawn(len(NODES) * len(FREE_RUNNING_DRIFT))
        self._drifts: dict[tuple[str, int], Drift] = {}
        k = 0
        for i in range(len(NODES)):
            for laser, (walk, amp, period) in FREE_RUNNING_DRIFT.items():
                self._drifts[laser, i] = Drift(np.random.default_rng(seqs[k]), grid_step_s,
                                               walk, amp, period)
                k += 1
        self._actuators: dict[tuple[str, int], Actuator] = {}
        self._by_device: dict[str, list[Actuator]] = {}

    @staticmethod
    def check(laser: str, node: str) -> int:
        """Validate names; return the node index."""
        if laser not in LINE_HZ:
            raise ValueError(f"unknown laser {laser!r}; known: {list(LASER_NAMES)}")
        if node not in NODES:
            raise ValueError(f"unknown node {node!r}; known: {list(NODES)}")
        return NODES.index(node)

    def free_running_hz(self, laser: str, node: str, t_mu: int) -> float:
        """Optical frequency (Hz) of the laser without its actuator at core time ``t_mu``."""
        i = self.check(laser, node)
        lab = self._lab_time_s(t_mu)
        if laser in self._passes:
            return LINE_HZ[laser] - self._passes[laser] * self._resonance_dds_hz(laser, i, lab)
        return LINE_HZ[laser] + self._drifts[laser, i](lab)

    def optical_frequency_hz(self, laser: str, node: str, t_mu: int) -> float:
        """Optical frequency (Hz) of the laser at core time ``t_mu``, actuator included."""
        f = self.free_running_hz(laser, node, t_mu)
        act = self._actuators.get((laser, self.check(laser, node)))
        return f + act.shift_hz(t_mu) if act is not None else f

    def attach(self, laser: str, node: str, actuator: Actuator) -> None:
        """Make ``actuator`` the laser's frequency actuator (replacing any previous one)."""
        i = self.check(laser, node)
        old = self._actuators.get((laser, i))
        if old is not None:
            self._by_device[old.device].remove(old)
        self._actuators[laser, i] = actuator
        self._by_device.setdefault(actuator.device, []).append(actuator)
        if self._on_attach is not None:
            self._on_attach(laser, i, actuator)

    def actuator(self, laser: str, node: str) -> Actuator | None:
        """The laser's actuator, or None."""
        return self._actuators.get((laser, self.check(laser, node)))

    def attached(self) -> dict[tuple[str, int], Actuator]:
        """``(laser, node index) -> actuator`` of every laser with one (a copy)."""
        return dict(self._actuators)

    def discard_after(self, t_mu: int) -> None:
        """``core.reset()`` at RTIO counter ``t_mu``: every actuator forgets its values
        after ``t_mu``."""
        for act in self._actuators.values():
            act.discard_after(t_mu)

    def observe(self, t_mu: int, device: str, attr: str, value: object) -> None:
        """An output event of the core (World.output arguments): record actuator values."""
        acts = self._by_device.get(device)
        if not acts:
            return
        for act in acts:
            if act.kind == "dac" and attr == "dac_v":
                channel, volts = value
                if channel == act.channel:
                    act.record(t_mu, volts)
            elif act.kind == "dds" and attr == "dds":
                act.record(t_mu, value.frequency_hz)
