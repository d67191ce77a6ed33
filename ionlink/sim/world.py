"""The boundary between the simulated core device and whatever is behind its channels.

The RTIO engine only moves events. Physics lives behind a :class:`World`: it is told of
every output event that reaches a channel (TTL levels, DDS settings, DAC voltages) and is
asked for the input edges a TTL input sees while it is gated. The virtual node implements
this interface; tests attach the simple worlds defined here.

Contract the engine keeps:

- ``output`` is called once per output event that the gateware accepts (underflows,
  collisions and sequence errors are not delivered), in *submission* order, which is not
  time order. Events at the same timestamp on the same device arrive in submission order;
  the later one wins (ARTIQ's replacement rule: ``on()`` then ``off()`` at one time leaves
  no pulse).
- ``input_edges(device, t_from_mu, t_to_mu)`` is only called when every output event with a
  timestamp below ``t_to_mu`` has already been delivered (the CPU is blocked until the
  RTIO counter reaches ``t_to_mu``, so later submissions are later in time or underflow).
- Inputs are continuous click records: ``input_edges`` does not consume. Overlapping or
  repeated windows of one device return the same edges; every reader (the engine's TTL
  gates, a time tagger reading all clicks in consecutive windows, by device key or alias)
  sees one record, with dark counts and dead time applied once on the continuous stream
  whether or not a gate was open. A world may drop clicks older than a documented
  retention behind the newest window it was asked for (the virtual node: 5 s of node
  time by default) and then raises ``ValueError`` for windows reaching back that far.
- Devices are named by their ``device_db`` key (not alias), e.g. ``"ttl0"``, ``"urukul0_ch2"``.
- ``discard_after(t_mu)`` (optional: the engine calls it only where a world has it) is
  ``core.reset()``: every output event delivered so far with a timestamp ``> t_mu`` (the
  RTIO counter at the reset) never happens -- forget it, as if ``output`` had never been
  called for it; events at or before ``t_mu`` are kept (they have executed). A world that
  has already *acted* on an event after ``t_mu`` cannot take it back and raises
  :class:`ResetAfterProcessingError` (an internal error of the simulation: the engine only
  makes a world act on events before the times it asks inputs for, and ``Core.run`` flushes
  a world at a kernel's end only up to the earliest counter the next kernel can reset at).

Boundary of a reset (ARTIQ gateware, ``artiq/gateware/rtio``): ``core.reset()`` runs
``rtio_init``, which pulses ``rtio_core.reset``; that resets the ``rio`` clock domain -- the
SED lane FIFOs, the gates and the output network -- but not ``rio_phy`` (TTL levels, OE,
DDS and SPI state persist). An event leaves its lane FIFO at the gate when the coarse
counter equals its coarse timestamp (``sed/gates.py``) and then reaches its PHY after the
fixed output pipeline. So an event whose timestamp the counter has reached has left the
FIFO and executes; one the counter has not reached is still queued and is lost. The
simulation, which counts in 1 mu rather than 8 mu coarse cycles and models no pipeline
latency, keeps the event exactly at the counter (``t_mu <= counter`` executes, as an output
at ``t == counter`` is accepted and an SED lane entry at the counter has left its lane) and
discards the ones after it.


Output attributes and values:

============  ======================================================================
``"level"``   TTL output or RF switch level, 0 or 1.
``"dds"``     :class:`DDSState` taking effect at that timestamp (the IO_UPDATE edge).
``"att_db"``  DDS channel attenuation in dB (float), effective at that timestamp.
``"dac_v"``   ``(channel, volts)`` for a DAC channel, effective at LDAC.
``"clock_hz"`` TTLClockGen output frequency in Hz (0 = stopped).
============  ======================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

PHASE_MODE_CONTINUOUS = 0
PHASE_MODE_ABSOLUTE = 1
PHASE_MODE_TRACKING = 2


@dataclass(frozen=True)
class DDSState:
    """One DDS profile as it takes effect at an IO_UPDATE.

    The output phase at time ``t`` (seconds) is, in turns:

    - tracking and absolute mode: ``phase_turns + frequency_hz * (t - ref_time)``,
      with ``ref_time = ref_time_mu * 1 ns`` (the phase is that of a tone that has run
      since ``ref_time``; in tracking mode ARTIQ's default reference is t = 0);
    - continuous mode: the accumulator keeps running through frequency changes and
      ``phase_turns`` is an offset added to it (``ref_time_mu`` is -1).
    """

    frequency_hz: float
    phase_turns: float
    amplitude: float
    phase_mode: int
    ref_time_mu: int


class ResetAfterProcessingError(RuntimeError):
    """A world was asked to discard output events (``core.reset()``) that it has already
    acted on: the simulation would diverge from the hardware (an internal error)."""


class World(Protocol):
    """What a simulated core device needs from the physical world behind it.

    Optional: ``discard_after(t_mu: int) -> None`` (see the module docstring), called by
    ``core.reset()`` where a world has it; ``flush(t_mu)`` (process events before
    ``t_mu``), called at a kernel's end."""

    def output(self, t_mu: int, device: str, attr: str, value: Any) -> None:
        """An output event reaching a channel (see module docstring)."""

    def input_edges(self, device: str, t_from_mu: int, t_to_mu: int) -> np.ndarray:
        """Rising-edge timestamps (int64, sorted, machine units) seen by a TTL input
        ``device`` in ``[t_from_mu, t_to_mu)``."""

    def input_pulse_width_mu(self, device: str) -> int:
        """Width of the pulses the input sees, in machine units (falling edge = rising
        edge + width)."""


class QuietWorld:
    """A world with nothing behind the channels: inputs never see an edge."""

    def output(self, t_mu: int, device: str, attr: str, value: Any) -> None:
        pass

    def input_edges(self, device: str, t_from_mu: int, t_to_mu: int) -> np.ndarray:
        return np.empty(0, dtype=np.int64)

    def input_pulse_width_mu(self, device: str) -> int:
        return 10


class ScriptedInputs(QuietWorld):
    """Inputs play back fixed rising-edge timestamps per device; outputs are recorded.

    :param edges_mu: device name -> rising-edge timestamps in machine units.
    :param pulse_width_mu: width of every input pulse in machine units.
    """

    def __init__(self, edges_mu: dict[str, Any] | None = None, pulse_width_mu: int = 10):
        self.edges_mu = {k: np.sort(np.asarray(v, dtype=np.int64))
                         for k, v in (edges_mu or {}).items()}
        self.pulse_width = int(pulse_width_mu)
        self.outputs: list[tuple[int, str, str, Any]] = []

    def output(self, t_mu: int, device: str, attr: str, value: Any) -> None:
        self.outputs.append((t_mu, device, attr, value))

    def discard_after(self, t_mu: int) -> None:
        """``core.reset()`` at counter ``t_mu``: forget recorded outputs after ``t_mu``."""
        self.outputs = [e for e in self.outputs if e[0] <= t_mu]

    def input_edges(self, device: str, t_from_mu: int, t_to_mu: int) -> np.ndarray:
        edges = self.edges_mu.get(device)
        if edges is None:
            return np.empty(0, dtype=np.int64)
        lo, hi = np.searchsorted(edges, [t_from_mu, t_to_mu])
        return edges[lo:hi]

    def input_pulse_width_mu(self, device: str) -> int:
        return self.pulse_width


class PoissonInputs(QuietWorld):
    """Inputs see Poissonian clicks at a fixed rate per device, reproducible from a seed.

    :param rates_hz: device name -> click rate in Hz.
    :param seed: seed of the random generator.
    :param pulse_width_mu: width of every input pulse in machine units.
    """

    def __init__(self, rates_hz: dict[str, float], seed: int = 0, pulse_width_mu: int = 10):
        self.rates_hz = dict(rates_hz)
        self.rng = np.random.default_rng(seed)
        self.pulse_width = int(pulse_width_mu)

    def input_edges(self, device: str, t_from_mu: int, t_to_mu: int) -> np.ndarray:
        rate = self.rates_hz.get(device, 0.0)
        span = t_to_mu - t_from_mu
        if rate <= 0 or span <= 0:
            return np.empty(0, dtype=np.int64)
        n = self.rng.poisson(rate * span * 1e-9)
        return np.sort(self.rng.integers(t_from_mu, t_to_mu, size=n, dtype=np.int64))

    def input_pulse_width_mu(self, device: str) -> int:
        return self.pulse_width
