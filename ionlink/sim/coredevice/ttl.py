"""Simulated TTL drivers: ``TTLOut``, ``TTLInOut``, ``TTLClockGen`` (ARTIQ's API).

Events go where ARTIQ's drivers put them: ``on``/``off`` at the cursor without moving it,
``pulse`` advancing it by the pulse length, ``gate_*`` opening the input's sensitivity at
the cursor and closing it after the duration (returning the end), ``count`` and
``timestamp_mu`` reading the input FIFO up to a timestamp plus the gate latency.
"""

from __future__ import annotations

import numpy as np
from artiq.language.core import delay, delay_mu, kernel, now_mu, portable

from ionlink.sim.coredevice._naming import device_key
from ionlink.sim.coredevice.rtio import (
    rtio_input_data,
    rtio_input_timestamp,
    rtio_output,
)


class TTLOut:
    """RTIO TTL output driver.

    :param channel: RTIO channel number.
    :param core_device: core device name.
    """

    kernel_invariants = {"core", "channel", "target_o"}

    def __init__(self, dmgr, channel, core_device="core"):
        self.core = dmgr.get(core_device)
        self.channel = channel
        self.target_o = channel << 8
        self.core.engine.register_channel(channel, device_key(dmgr, channel=channel))

    @staticmethod
    def get_rtio_channels(channel, **kwargs):
        return [(channel, None)]

    @kernel
    def output(self):
        pass

    @kernel
    def set_o(self, o):
        rtio_output(self.target_o, 1 if o else 0)

    @kernel
    def on(self):
        """Set the output high at the cursor (the cursor does not move)."""
        rtio_output(self.target_o, 1)

    @kernel
    def off(self):
        """Set the output low at the cursor (the cursor does not move)."""
        rtio_output(self.target_o, 0)

    @kernel
    def pulse_mu(self, duration):
        """High for ``duration`` machine units; advances the cursor by it."""
        rtio_output(self.target_o, 1)
        delay_mu(duration)
        rtio_output(self.target_o, 0)

    @kernel
    def pulse(self, duration):
        """High for ``duration`` seconds; advances the cursor by it."""
        rtio_output(self.target_o, 1)
        delay(duration)
        rtio_output(self.target_o, 0)


class TTLInOut:
    """RTIO TTL input/output driver.

    :param channel: RTIO channel number.
    :param gate_latency_mu: latency from the end of a gate to the last event it can
        register, in machine units (default 13 coarse periods = 104 mu).
    """

    kernel_invariants = {"core", "channel", "gate_latency_mu",
                         "target_o", "target_oe", "target_sens", "target_sample"}

    def __init__(self, dmgr, channel, gate_latency_mu=None, core_device="core"):
        self.core = dmgr.get(core_device)
        self.channel = channel
        if gate_latency_mu is None:
            gate_latency_mu = 13 * self.core.ref_multiplier
        self.gate_latency_mu = gate_latency_mu
        self.target_o = (channel << 8) + 0
        self.target_oe = (channel << 8) + 1
        self.target_sens = (channel << 8) + 2
        self.target_sample = (channel << 8) + 3
        self.core.engine.register_channel(channel, device_key(dmgr, channel=channel),
                                          is_input=True)

    @staticmethod
    def get_rtio_channels(channel, **kwargs):
        return [(channel, None)]

    @kernel
    def set_oe(self, oe):
        rtio_output(self.target_oe, 1 if oe else 0)

    @kernel
    def output(self):
        """Configure the pad as an output (at the cursor)."""
        self.set_oe(True)

    @kernel
    def input(self):
        """Configure the pad as an input (at the cursor)."""
        self.set_oe(False)

    @kernel
    def set_o(self, o):
        rtio_output(self.target_o, 1 if o else 0)

    @kernel
    def on(self):
        rtio_output(self.target_o, 1)

    @kernel
    def off(self):
        rtio_output(self.target_o, 0)

    @kernel
    def pulse_mu(self, duration):
        rtio_output(self.target_o, 1)
        delay_mu(duration)
        rtio_output(self.target_o, 0)

    @kernel
    def pulse(self, duration):
        rtio_output(self.target_o, 1)
        delay(duration)
        rtio_output(self.target_o, 0)

    @kernel
    def _set_sensitivity(self, value):
        rtio_output(self.target_sens, value)

    @kernel
    def gate_rising_mu(self, duration):
        """Register rising edges for ``duration`` mu; returns the gate's end (the cursor)."""
        rtio_output(self.target_sens, 1)
        delay_mu(duration)
        rtio_output(self.target_sens, 0)
        return now_mu()

    @kernel
    def gate_falling_mu(self, duration):
        """Register falling edges for ``duration`` mu; returns the gate's end."""
        rtio_output(self.target_sens, 2)
        delay_mu(duration)
        rtio_output(self.target_sens, 0)
        return now_mu()

    @kernel
    def gate_both_mu(self, duration):
        """Register both edges for ``duration`` mu; returns the gate's end."""
        rtio_output(self.target_sens, 3)
        delay_mu(duration)
        rtio_output(self.target_sens, 0)
        return now_mu()

    @kernel
    def gate_rising(self, duration):
        """Register rising edges for ``duration`` seconds; returns the gate's end (mu)."""
        rtio_output(self.target_sens, 1)
        delay(duration)
        rtio_output(self.target_sens, 0)
        return now_mu()

    @kernel
    def gate_falling(self, duration):
        """Register falling edges for ``duration`` seconds; returns the gate's end (mu)."""
        rtio_output(self.target_sens, 2)
        delay(duration)
        rtio_output(self.target_sens, 0)
        return now_mu()

    @kernel
    def gate_both(self, duration):
        """Register both edges for ``duration`` seconds; returns the gate's end (mu)."""
        rtio_output(self.target_sens, 3)
        delay(duration)
        rtio_output(self.target_sens, 0)
        return now_mu()

    @kernel
    def count(self, up_to_timestamp_mu):
        """Number of registered events up to ``up_to_timestamp_mu`` (blocks until the
        RTIO counter passes it plus the gate latency), draining the FIFO."""
        return self.core.engine.input_count(up_to_timestamp_mu + self.gate_latency_mu,
                                            self.channel)

    @kernel
    def timestamp_mu(self, up_to_timestamp_mu):
        """Timestamp of the next registered event, or -1 if none before
        ``up_to_timestamp_mu`` (plus the gate latency)."""
        return np.int64(rtio_input_timestamp(up_to_timestamp_mu + self.gate_latency_mu,
                                             self.channel))

    @kernel
    def sample_input(self):
        """Sample the input level at the cursor; read it with :meth:`sample_get`."""
        rtio_output(self.target_sample, 0)

    @kernel
    def sample_get(self):
        """The level sampled by the last :meth:`sample_input`."""
        return rtio_input_data(self.channel)

    @kernel
    def sample_get_nonrt(self):
        """Sample now, return the level, and break realtime."""
        self.sample_input()
        r = self.sample_get()
        self.core.break_realtime()
        return r

    @kernel
    def watch_stay_on(self):
        """Start watching for the input to stay high; True if it is high now."""
        rtio_output(self.target_sample, 2)
        return rtio_input_data(self.channel) == 1

    @kernel
    def watch_stay_off(self):
        """Start watching for the input to stay low; True if it is low now."""
        rtio_output(self.target_sample, 1)
        return rtio_input_data(self.channel) == 0

    @kernel
    def watch_done(self):
        """Stop watching at the cursor; True if the input did not change meanwhile."""
        rtio_output(self.target_sens, 0)
        success = True
        try:
            while rtio_input_timestamp(now_mu() + self.gate_latency_mu, self.channel) != -1:
                success = False
        except Exception:
            success = False
        return success


class TTLClockGen:
    """RTIO TTL clock generator driver (a DDS-like phase accumulator on a TTL).

    :param channel: RTIO channel number.
    :param acc_width: width of the phase accumulator in bits.
    """

    kernel_invariants = {"core", "channel", "target", "acc_width"}

    def __init__(self, dmgr, channel, acc_width=24, core_device="core"):
        self.core = dmgr.get(core_device)
        self.channel = channel
        self.target = channel << 8
        self.acc_width = np.int64(acc_width)
        self.core.engine.register_channel(channel, device_key(dmgr, channel=channel),
                                          forward_level=False)

    @staticmethod
    def get_rtio_channels(channel, **kwargs):
        return [(channel, None)]

    @portable
    def frequency_to_ftw(self, frequency):
        """Frequency in Hz to frequency tuning word."""
        return round(2 ** self.acc_width * frequency * self.core.coarse_ref_period)

    @portable
    def ftw_to_frequency(self, ftw):
        """Frequency tuning word to frequency in Hz."""
        return ftw / self.core.coarse_ref_period / 2 ** self.acc_width

    @kernel
    def set_mu(self, frequency):
        """Set the output frequency as a tuning word, at the cursor."""
        self.core.engine.output(self.target, frequency,
                                world_event=(self.core.engine.channels[self.channel].device,
                                             "clock_hz", self.ftw_to_frequency(frequency)))

    @kernel
    def set(self, frequency):
        """Set the output frequency in Hz, at the cursor."""
        self.set_mu(self.frequency_to_ftw(frequency))

    @kernel
    def stop(self):
        """Stop the clock (frequency 0)."""
        self.set_mu(0)
