"""Simulated edge counter (``artiq.coredevice.edge_counter.EdgeCounter``).

``set_config`` is an output event at the cursor; ``gate_*`` open the counter at the
cursor (resetting it), advance by the duration and close it with a count request at the
end, returning that time. ``fetch_count``/``fetch_timestamped_count`` block the CPU until
the request's timestamp plus one coarse period and then count the world's edges of the
device (``world.input_edges``) over the windows the counter was sensitive in: rising
edges in the window; falling edges of pulses (``input_pulse_width_mu``) whose rising edge
and fall are both in the window. The world is asked only once the CPU has reached the
window's end, as the world contract requires.

Limitation: gate configuration recorded into a DMA trace is applied at recording time.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from artiq.language.core import delay_mu, kernel, now_mu
from artiq.language.types import TBool

from ionlink.sim.coredevice import spi2 as spi
from ionlink.sim.coredevice._naming import device_key

CONFIG_COUNT_RISING = 0b0001
CONFIG_COUNT_FALLING = 0b0010
CONFIG_SEND_COUNT_EVENT = 0b0100
CONFIG_RESET_TO_ZERO = 0b1000

_WAIT_FOREVER = np.int64(-1)


class CounterOverflow(Exception):
    """Raised when a count may have overflowed the gateware counter."""


class EdgeCounter:
    """RTIO TTL edge counter (simulated).

    :param channel: RTIO channel number.
    :param gateware_width: counter width in bits (overflow detection).
    """

    kernel_invariants = {"core", "channel", "counter_max"}

    def __init__(self, dmgr, channel, gateware_width=31, core_device="core"):
        self.core = dmgr.get(core_device)
        self.channel = channel
        self.counter_max = (1 << (gateware_width - 1)) - 1
        self.key = device_key(dmgr, channel=channel)
        self.core.engine.register_channel(channel, self.key, forward_level=False,
                                          is_input=True)
        self._configs: deque[tuple[int, int]] = deque()   # (t_mu, config) not evaluated
        self._sens = 0
        self._since = 0
        self._count = 0

    @staticmethod
    def get_rtio_channels(channel, **kwargs):
        return [(channel, None)]

    @kernel
    def gate_rising(self, duration):
        """Count rising edges for ``duration`` seconds; returns the gate's end (mu)."""
        return self.gate_rising_mu(self.core.seconds_to_mu(duration))

    @kernel
    def gate_falling(self, duration):
        """Count falling edges for ``duration`` seconds; returns the gate's end (mu)."""
        return self.gate_falling_mu(self.core.seconds_to_mu(duration))

    @kernel
    def gate_both(self, duration):
        """Count both edges for ``duration`` seconds; returns the gate's end (mu)."""
        return self.gate_both_mu(self.core.seconds_to_mu(duration))

    @kernel
    def gate_rising_mu(self, duration_mu):
        """Count rising edges for ``duration_mu``; returns the gate's end."""
        return self._gate_mu(duration_mu, True, False)

    @kernel
    def gate_falling_mu(self, duration_mu):
        """Count falling edges for ``duration_mu``; returns the gate's end."""
        return self._gate_mu(duration_mu, False, True)

    @kernel
    def gate_both_mu(self, duration_mu):
        """Count both edges for ``duration_mu``; returns the gate's end."""
        return self._gate_mu(duration_mu, True, True)

    @kernel
    def _gate_mu(self, duration_mu, count_rising, count_falling):
        self.set_config(count_rising=count_rising, count_falling=count_falling,
                        send_count_event=False, reset_to_zero=True)
        delay_mu(duration_mu)
        self.set_config(count_rising=False, count_falling=False, send_count_event=True,
                        reset_to_zero=False)
        return now_mu()

    @kernel
    def set_config(self, count_rising: TBool, count_falling: TBool,
                   send_count_event: TBool, reset_to_zero: TBool):
        """Submit a configuration event at the cursor."""
        config = ((CONFIG_COUNT_RISING if count_rising else 0)
                  | (CONFIG_COUNT_FALLING if count_falling else 0)
                  | (CONFIG_SEND_COUNT_EVENT if send_count_event else 0)
                  | (CONFIG_RESET_TO_ZERO if reset_to_zero else 0))
        t = int(now_mu())
        if spi.submit_accepted(self.core.engine, self.channel << 8, config):
            self._configs.append((t, config))

    def _next_count_event(self, timeout_mu: int | None) -> tuple[int, int] | None:
        """Evaluate configurations up to the next count request (None if none before
        ``timeout_mu``); blocks the CPU until the request's result arrives."""
        engine = self.core.engine
        world = engine.world
        while self._configs:
            t, config = self._configs[0]
            if config & CONFIG_SEND_COUNT_EVENT and timeout_mu is not None \
                    and t >= timeout_mu:
                return None
            self._configs.popleft()
            engine.wait_until(t + self.core.ref_multiplier)
            if self._sens and t > self._since:
                edges = world.input_edges(self.key, max(self._since, 0), t)
                if self._sens & CONFIG_COUNT_RISING:
                    self._count += len(edges)
                if self._sens & CONFIG_COUNT_FALLING and len(edges):
                    width = world.input_pulse_width_mu(self.key)
                    self._count += int(np.count_nonzero(np.asarray(edges) + width < t))
            result = self._count
            if config & CONFIG_RESET_TO_ZERO:
                self._count = 0
            self._sens = config & (CONFIG_COUNT_RISING | CONFIG_COUNT_FALLING)
            self._since = t
            if config & CONFIG_SEND_COUNT_EVENT:
                return t, min(result, self.counter_max)
        return None

    @kernel
    def fetch_count(self):
        """Wait for and return the count of the oldest unread count request."""
        engine = self.core.engine
        engine.charge(engine.costs.rtio_input_ns)
        event = self._next_count_event(None)
        if event is None:
            name = engine.channel_name(self.channel)
            raise RuntimeError(f"EdgeCounter.fetch_count on channel {name} without a count "
                               "request: the real kernel would block forever")
        if event[1] == self.counter_max:
            raise CounterOverflow(f"Input edge counter overflow on RTIO channel {self.channel}")
        return np.int32(event[1])

    @kernel
    def fetch_timestamped_count(self, timeout_mu=_WAIT_FOREVER):
        """``(timestamp, count)`` of the oldest count request, or ``(-1, 0)`` if none
        arrives before ``timeout_mu`` (-1: wait forever)."""
        engine = self.core.engine
        engine.charge(engine.costs.rtio_input_ns)
        timeout = None if timeout_mu < 0 else int(timeout_mu)
        event = self._next_count_event(timeout)
        if event is None:
            if timeout is None:
                raise RuntimeError("EdgeCounter.fetch_timestamped_count without a count "
                                   "request: the real kernel would block forever")
            engine.wait_until(timeout)
            return np.int64(-1), np.int32(0)
        if event[1] == self.counter_max:
            raise CounterOverflow(f"Input edge counter overflow on RTIO channel {self.channel}")
        return np.int64(event[0]), np.int32(event[1])
