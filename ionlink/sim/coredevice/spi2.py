"""Simulated SPI bus master (``artiq.coredevice.spi2.SPIMaster``, the MiSoC SPI core v2).

Timing as ARTIQ's driver: ``set_config_mu`` submits an event on the channel's config
address and advances the cursor by one coarse RTIO period (8 mu); ``write`` submits an
event on the data address and advances the cursor by the transfer duration
``xfer_duration_mu = ((length + 1) * div + 1) * 8`` mu, during which the channel is busy
(another event on the channel before its end is a gateware *busy* error). ``read`` does
not move the cursor; it blocks the CPU until the transfer that produced the data has
ended (its end timestamp).

What is on the other side of the bus is a :class:`SPIDeviceModel` attached by the
peripheral driver (Urukul CPLD, AD53xx, Sampler): it sees every accepted transfer in
order, with the chip select, length and flags in force, and returns the bits it shifts
out, which :meth:`SPIMaster.read` then returns for transfers made with ``SPI_INPUT``.
A bus without a model reads back zeros.

Limitations of the simulation (documented, not hidden):

- device models are updated when the CPU submits a transfer; a transfer recorded into
  a DMA trace reaches the model when the playback submits it (``RTIOEngine.defer``),
  also when the gateware drops that played-back event; ``SPI_INPUT`` data of recorded
  transfers is not kept (ARTIQ's DMA cannot read inputs).

``core.reset()``: a transfer starting after the RTIO counter never happens: a model with
``snapshot()``/``restore(state)`` goes back to its state before it
(``RTIOEngine.keep_for_reset``; a model with ``keep_for_reset(engine, start, cs)`` chooses
what to keep itself), as does the bus configuration; input data of transfers
that ended by the counter (in the cleared input FIFO) or start after it is dropped.
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

from artiq.language.core import delay_mu, kernel, now_mu, portable

from ionlink.sim.coredevice._naming import device_key

__all__ = [
    "SPI_DATA_ADDR", "SPI_CONFIG_ADDR",
    "SPI_OFFLINE", "SPI_END", "SPI_INPUT",
    "SPI_CS_POLARITY", "SPI_CLK_POLARITY", "SPI_CLK_PHASE",
    "SPI_LSB_FIRST", "SPI_HALF_DUPLEX",
    "SPIMaster", "SPIDeviceModel", "mosi_bits", "to_int32",
]

SPI_DATA_ADDR = 0
SPI_CONFIG_ADDR = 1

SPI_OFFLINE = 0x01
SPI_END = 0x02
SPI_INPUT = 0x04
SPI_CS_POLARITY = 0x08
SPI_CLK_POLARITY = 0x10
SPI_CLK_PHASE = 0x20
SPI_LSB_FIRST = 0x40
SPI_HALF_DUPLEX = 0x80


def to_int32(value: int) -> int:
    """Wrap an integer to a signed 32-bit value (what a kernel ``int32`` holds)."""
    value = int(value) & 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def mosi_bits(data: int, length: int, flags: int) -> int:
    """The ``length`` bits a transfer puts on the wire, first bit in the MSB.

    The first bit on MOSI is the MSB of the 32-bit data word (``SPI_LSB_FIRST``: its LSB),
    whatever the length, as in ARTIQ's SPI core.
    """
    data = int(data) & 0xFFFFFFFF
    if flags & SPI_LSB_FIRST:
        bits = 0
        for i in range(length):
            bits = (bits << 1) | ((data >> i) & 1)
        return bits
    return data >> (32 - length)


def miso_word(bits: int, length: int, flags: int) -> int:
    """Place ``length`` bits shifted in from MISO (first bit in the MSB of ``bits``) in the
    data word as ARTIQ's core does: the last bit in the LSB (``SPI_LSB_FIRST``: MSB)."""
    bits &= (1 << length) - 1
    if flags & SPI_LSB_FIRST:
        word = 0
        for i in range(length):
            word |= ((bits >> (length - 1 - i)) & 1) << (31 - i)
        return word
    return bits


class SPIDeviceModel(Protocol):
    """What a simulated SPI peripheral implements."""

    def spi_transfer(self, cs: int, bits: int, length: int, flags: int) -> int:
        """One transfer of ``length`` bits to chip select ``cs``.

        :param bits: the bits on MOSI, first bit in the MSB of the ``length``-bit value.
        :param flags: the configuration flags in force; ``flags & SPI_END`` ends the
            transaction (chip select deasserted after this transfer).
        :return: the ``length`` bits shifted out on MISO, first bit in the MSB.

        Called with the timeline cursor at the end of the transfer.
        """


def _transfer(engine, model, start: int, cs: int, bits: int, length: int,
              flags: int) -> int:
    """``model.spi_transfer`` for a transfer starting at ``start``, the model's state kept
    for ``core.reset()`` first where it can be restored."""
    keep = getattr(model, "keep_for_reset", None)
    if keep is not None:
        keep(engine, start, cs)         # the model keeps the parts the transfer can change
    elif hasattr(model, "snapshot"):
        engine.keep_for_reset(model, start)
    return model.spi_transfer(cs, bits, length, flags)


def submit_accepted(engine, target: int, data, busy_mu: int = 0) -> bool:
    """Submit an output event; True unless the gateware dropped it (collision, busy,
    sequence error). Underflows raise as usual."""
    before = engine.errors.total()
    engine.output(target, data, busy_mu=busy_mu)
    return engine.errors.total() == before


class SPIMaster:
    """Core device SPI bus master (simulated).

    :param channel: RTIO channel number of the SPI bus.
    :param div: initial clock divider (for :meth:`update_xfer_duration_mu`).
    :param length: initial transfer length in bits (for :meth:`update_xfer_duration_mu`).
    :param core_device: core device name.
    """

    kernel_invariants = {"core", "ref_period_mu", "channel"}

    def __init__(self, dmgr, channel, div=0, length=0, core_device="core"):
        self.core = dmgr.get(core_device)
        #: One coarse RTIO period in machine units (8 on Kasli).
        self.ref_period_mu = int(self.core.ref_multiplier)
        self.channel = channel
        self.update_xfer_duration_mu(div, length)
        self.engine = self.core.engine
        self.engine.register_channel(channel, device_key(dmgr, channel=channel),
                                     replace=False, forward_level=False)
        # Configuration register (gateware reset values).
        self._flags = SPI_OFFLINE | SPI_END
        self._length = 1
        self._div = 2
        self._cs = 0
        self._model: SPIDeviceModel | None = None
        # (end timestamp of the transfer, data word, start timestamp) not yet read.
        self._rx: deque[tuple[int, int, int]] = deque()
        self.engine.reset_hooks.append(self._reset_rx)

    @staticmethod
    def get_rtio_channels(channel, **kwargs):
        return [(channel, None)]

    def attach_model(self, model: SPIDeviceModel) -> None:
        """Attach the simulated peripheral behind this bus (one per bus)."""
        self._model = model

    @portable
    def frequency_to_div(self, f):
        """Convert a SPI clock frequency (Hz) to the closest SPI clock divider."""
        return int(round(1 / (f * self.core.mu_to_seconds(self.ref_period_mu))))

    @kernel
    def set_config(self, flags, length, freq, cs):
        """Set the configuration register with the SPI clock given in Hz.

        Advances the timeline by one coarse RTIO period (8 mu). See :meth:`set_config_mu`.
        """
        self.set_config_mu(flags, length, self.frequency_to_div(freq), cs)

    @kernel
    def set_config_mu(self, flags, length, div, cs):
        """Set the configuration register (takes effect at the next transfer).

        :param flags: bit map of ``SPI_*`` flags.
        :param length: bits per transfer, 1 to 32.
        :param div: RTIO clock divider for the SPI clock, 2 to 257.
        :param cs: chip select pattern (or number, when decoded downstream).

        Advances the timeline by one coarse RTIO period (8 mu).
        """
        if length > 32 or length < 1:
            raise ValueError("Invalid SPI transfer length")
        if div > 257 or div < 2:
            raise ValueError("Invalid SPI clock divider")
        word = flags | ((length - 1) << 8) | ((div - 2) << 16) | (cs << 24)
        if (flags, length, div, cs) != (self._flags, self._length, self._div, self._cs):
            self.engine.keep_for_reset(self, now_mu())
        if submit_accepted(self.engine, (self.channel << 8) | SPI_CONFIG_ADDR, word):
            self._flags = flags
            self._length = length
            self._div = div
            self._cs = cs
        self.update_xfer_duration_mu(div, length)
        delay_mu(self.ref_period_mu)

    @portable
    def update_xfer_duration_mu(self, div, length):
        """Set the transfer duration used by :meth:`write` to advance the timeline:
        ``((length + 1) * div + 1) * ref_period_mu`` machine units."""
        self.xfer_duration_mu = ((length + 1) * div + 1) * self.ref_period_mu

    @kernel
    def write(self, data):
        """Write the data register and start a transfer.

        Advances the timeline by :attr:`xfer_duration_mu`; the channel is busy meanwhile.
        With ``SPI_INPUT`` set, the bits shifted in are queued for :meth:`read`.
        """
        duration = self.xfer_duration_mu
        data = int(data)
        start = now_mu()
        accepted = submit_accepted(self.engine, (self.channel << 8) | SPI_DATA_ADDR,
                                   to_int32(data), busy_mu=duration)
        delay_mu(duration)
        if not accepted:
            return
        flags = self._flags
        length = self._length
        returned = 0
        model = self._model
        if model is not None:
            cs, bits = self._cs, mosi_bits(data, length, flags)
            engine = self.engine
            if engine.recording is not None:
                # Recorded into a DMA trace: the device sees it when the trace plays.
                def transfer():
                    _transfer(engine, model, engine.tm.now - duration, cs, bits, length,
                              flags)
                engine.defer(transfer)
                return
            returned = _transfer(engine, model, start, cs, bits, length, flags)
        if flags & SPI_INPUT:
            self._rx.append((now_mu(), to_int32(miso_word(returned, length, flags)), start))

    @kernel
    def read(self):
        """Return the data of the oldest unread ``SPI_INPUT`` transfer (signed 32 bit).

        Does not move the cursor; the CPU waits until that transfer has ended.
        """
        engine = self.engine
        engine.charge(engine.costs.rtio_input_ns)
        if not self._rx:
            name = engine.channel_name(self.channel)
            raise RuntimeError(f"SPI read on channel {name} without a pending SPI_INPUT "
                               "transfer: the real kernel would block forever")
        t_end, value, _start = self._rx.popleft()
        engine.wait_until(t_end)
        return value

    def snapshot(self) -> tuple:
        """The configuration register (for ``RTIOEngine.keep_for_reset``)."""
        return self._flags, self._length, self._div, self._cs

    def restore(self, state: tuple) -> None:
        self._flags, self._length, self._div, self._cs = state

    def _reset_rx(self, counter: int) -> None:
        """``core.reset()`` at ``counter``: input data of transfers that ended by then
        was in the cleared FIFO, transfers starting after it never happen."""
        self._rx = deque(e for e in self._rx if e[2] <= counter < e[0])
