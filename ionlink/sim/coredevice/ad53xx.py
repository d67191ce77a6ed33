"""Simulated AD53xx multi-channel DAC (``artiq.coredevice.ad53xx.AD53xx``), e.g. the AD5372.

Writes are ARTIQ's 24-bit SPI words (one transfer each, ``xfer_duration_mu`` at
``div_write``: (25 * 4 + 1) * 8 = 808 mu); :class:`AD53xxModel` keeps the registers
(X1A input, gain M, offset C per channel; OFS0/OFS1; control) and computes each channel's
DAC register when X1 is written: ``code = X1 * (M + 1) / 2**16 + C - 2**15`` (datasheet
transfer function). ``load`` pulses LDAC low for 2 coarse periods (16 mu); at its falling
edge (LDAC is active low; ARTIQ's ``set_dac`` puts it at the cursor) every channel written
since the previous load reaches the world as ``(dac_key, "dac_v", (channel, volts))`` with
``volts = 4 * vref * (code - 4 * OFS) / 2**16`` (OFS0 for channels 0-7, OFS1 otherwise).
Voltages out of range raise ``ValueError`` in ``voltage_to_mu`` as ARTIQ's.
"""

from __future__ import annotations

import numpy as np
from artiq.language.core import at_mu, delay, delay_mu, kernel, now_mu, portable
from artiq.language.units import ns, us

from ionlink.sim.coredevice import spi2 as spi

SPI_AD53XX_CONFIG = (0 * spi.SPI_OFFLINE | 1 * spi.SPI_END | 0 * spi.SPI_INPUT
                     | 0 * spi.SPI_CS_POLARITY | 0 * spi.SPI_CLK_POLARITY
                     | 1 * spi.SPI_CLK_PHASE | 0 * spi.SPI_LSB_FIRST
                     | 0 * spi.SPI_HALF_DUPLEX)

AD53XX_CMD_DATA = 3 << 22
AD53XX_CMD_OFFSET = 2 << 22
AD53XX_CMD_GAIN = 1 << 22
AD53XX_CMD_SPECIAL = 0 << 22

AD53XX_SPECIAL_NOP = 0 << 16
AD53XX_SPECIAL_CONTROL = 1 << 16
AD53XX_SPECIAL_OFS0 = 2 << 16
AD53XX_SPECIAL_OFS1 = 3 << 16
AD53XX_SPECIAL_READ = 5 << 16
AD53XX_SPECIAL_AB0 = 6 << 16
AD53XX_SPECIAL_AB1 = 7 << 16
AD53XX_SPECIAL_AB2 = 8 << 16
AD53XX_SPECIAL_AB3 = 9 << 16
AD53XX_SPECIAL_AB = 11 << 16

AD53XX_READ_X1A = 0x008 << 7
AD53XX_READ_X1B = 0x048 << 7
AD53XX_READ_OFFSET = 0x088 << 7
AD53XX_READ_GAIN = 0x0C8 << 7
AD53XX_READ_CONTROL = 0x101 << 7
AD53XX_READ_OFS0 = 0x102 << 7
AD53XX_READ_OFS1 = 0x103 << 7
AD53XX_READ_AB0 = 0x106 << 7
AD53XX_READ_AB1 = 0x107 << 7
AD53XX_READ_AB2 = 0x108 << 7
AD53XX_READ_AB3 = 0x109 << 7

_N_CHANNELS = 40


@portable
def ad53xx_cmd_write_ch(channel, value, op):
    """The 24-bit word setting a channel register (``op``: DATA, OFFSET or GAIN)."""
    return op | (channel + 8) << 16 | (value & 0xFFFF)


@portable
def ad53xx_cmd_read_ch(channel, op):
    """The 24-bit word requesting a readback of a channel register."""
    return AD53XX_CMD_SPECIAL | AD53XX_SPECIAL_READ | (op + (channel << 7))


@portable
def voltage_to_mu(voltage, offset_dacs=0x2000, vref=5.0):
    """Volts to the 16-bit DAC code ``round(2**16 * V / (4 vref) + 4 * offset_dacs)``;
    ValueError outside 0..0xffff."""
    code = int(round((1 << 16) * (voltage / (4.0 * vref)) + offset_dacs * 0x4))
    if code < 0x0 or code > 0xFFFF:
        raise ValueError("Invalid DAC voltage!")
    return code


class AD53xxModel:
    """Registers of an AD53xx behind its SPI bus (see module docstring)."""

    def __init__(self, dac: AD53xx):
        self.dac = dac
        self.x1a = [0] * _N_CHANNELS
        self.x1b = [0] * _N_CHANNELS
        self.gain = [0xFFFF] * _N_CHANNELS
        self.offset = [0x8000] * _N_CHANNELS
        self.code = [0] * _N_CHANNELS
        self.ofs = [0x2000, 0x2000]
        self.control = 0
        self.pending: set[int] = set()
        self._readback = 0
        self.leds = 0

    def snapshot(self) -> tuple:
        """The registers (for ``RTIOEngine.keep_for_reset``)."""
        return (list(self.x1a), list(self.x1b), list(self.gain), list(self.offset),
                list(self.code), list(self.ofs), self.control, set(self.pending),
                self._readback, self.leds)

    def restore(self, state: tuple) -> None:
        (self.x1a, self.x1b, self.gain, self.offset, self.code, self.ofs, self.control,
         self.pending, self._readback, self.leds) = state

    def spi_transfer(self, cs: int, bits: int, length: int, flags: int) -> int:
        if cs == self.dac.led_chip_select:
            self.leds = bits & 0xFF
            return 0
        if cs != self.dac.chip_select or length != 24:
            return 0
        out, self._readback = self._readback, 0
        mode = (bits >> 22) & 3
        addr = (bits >> 16) & 0x3F
        value = bits & 0xFFFF
        if mode == 0:
            self._special(addr, value)
        else:
            for ch in self._channels(addr):
                if mode == 3:
                    self.x1a[ch] = value
                    self.code[ch] = min(max(
                        (value * (self.gain[ch] + 1) >> 16) + self.offset[ch] - 0x8000, 0),
                        0xFFFF)
                    self.pending.add(ch)
                elif mode == 2:
                    self.offset[ch] = value
                else:
                    self.gain[ch] = value
        return out

    @staticmethod
    def _channels(addr: int) -> list[int]:
        group, ch = addr >> 3, addr & 7
        if 1 <= group <= 5:
            return [(group - 1) * 8 + ch]
        if addr == 0:
            return list(range(_N_CHANNELS))
        return []

    def _special(self, function: int, value: int) -> None:
        if function == 1:
            self.control = value & 0x1F
        elif function in (2, 3):
            self.ofs[function - 2] = value & 0x3FFF
        elif function == 5:
            reg, ch_addr = value >> 13, (value >> 7) & 0x3F
            chans = self._channels(ch_addr)
            if reg == 4:
                self._readback = {1: self.control, 2: self.ofs[0],
                                  3: self.ofs[1]}.get(ch_addr, 0)
            elif chans:
                table = [self.x1a, self.x1b, self.offset, self.gain][reg]
                self._readback = table[chans[0]]

    def volts(self, ch: int) -> float:
        ofs = self.ofs[0] if ch < 8 else self.ofs[1]
        return 4 * self.dac.vref * (self.code[ch] - 4 * ofs) / (1 << 16)


class _DummyTTL:
    def on(self):
        return None

    def off(self):
        return None


class AD53xx:
    """AD53[67][0123] multi-channel DAC (simulated).

    :param spi_device: SPI bus device name.
    :param ldac_device: LDAC TTLOut device name.
    :param clr_device: CLR TTLOut device name.
    :param chip_select: SPI chip select of the DAC.
    :param div_write: SPI clock divider for writes.
    :param div_read: SPI clock divider for reads.
    :param vref: reference voltage in volts.
    :param offset_dacs: initial offset DAC value (machine units).
    """

    kernel_invariants = {"bus", "ldac", "clr", "chip_select", "div_write", "div_read",
                         "vref", "core"}

    #: chip select of a LED shift register on the same bus (Zotino), or -1.
    led_chip_select = -1

    def __init__(self, dmgr, spi_device, ldac_device=None, clr_device=None, chip_select=1,
                 div_write=4, div_read=16, vref=5.0, offset_dacs=8192, core="core"):
        self.bus = dmgr.get(spi_device)
        self.bus.update_xfer_duration_mu(div_write, 24)
        self.ldac = dmgr.get(ldac_device) if ldac_device is not None else _DummyTTL()
        self.clr = dmgr.get(clr_device) if clr_device is not None else _DummyTTL()
        self.chip_select = chip_select
        self.div_write = div_write
        self.div_read = div_read
        self.vref = vref
        self.offset_dacs = offset_dacs
        self.core = dmgr.get(core)
        self.key = getattr(dmgr, "creating", None) or "ad53xx_" + spi_device
        self.model = AD53xxModel(self)
        self.model.ofs = [offset_dacs & 0x3FFF] * 2
        self.bus.attach_model(self.model)

    @kernel
    def init(self, blind=False):
        """Configure the bus, drive LDAC and CLR high, program the offset DACs and
        enable overtemperature shutdown (checking the control register unless blind)."""
        self.ldac.on()
        self.clr.on()
        self.bus.set_config_mu(SPI_AD53XX_CONFIG, 24, self.div_write, self.chip_select)
        self.write_offset_dacs_mu(self.offset_dacs)
        if not blind:
            ctrl = self.read_reg(channel=0, op=AD53XX_READ_CONTROL)
            if ctrl == 0xFFFF:
                raise ValueError("DAC not found")
            if ctrl & 0b10000:
                raise ValueError("DAC over temperature")
            delay(25 * us)
        self.bus.write((AD53XX_CMD_SPECIAL | AD53XX_SPECIAL_CONTROL | 0b0010) << 8)
        if not blind:
            ctrl = self.read_reg(channel=0, op=AD53XX_READ_CONTROL)
            if (ctrl & 0b10111) != 0b00010:
                raise ValueError("DAC CONTROL readback mismatch")
            delay(15 * us)

    @kernel
    def read_reg(self, channel=0, op=AD53XX_READ_X1A):
        """Read a DAC register (two transfers, the second at ``div_read``)."""
        self.bus.write(ad53xx_cmd_read_ch(channel, op) << 8)
        self.bus.set_config_mu(SPI_AD53XX_CONFIG | spi.SPI_INPUT, 24, self.div_read,
                               self.chip_select)
        delay(270 * ns)
        self.bus.write((AD53XX_CMD_SPECIAL | AD53XX_SPECIAL_NOP) << 8)
        self.bus.set_config_mu(SPI_AD53XX_CONFIG, 24, self.div_write, self.chip_select)
        return self.bus.read() & 0xFFFF

    @kernel
    def write_offset_dacs_mu(self, value):
        """Program OFS0 and OFS1 (14 bit); two transfers."""
        value &= 0x3FFF
        self.offset_dacs = value
        self.bus.write((AD53XX_CMD_SPECIAL | AD53XX_SPECIAL_OFS0 | value) << 8)
        self.bus.write((AD53XX_CMD_SPECIAL | AD53XX_SPECIAL_OFS1 | value) << 8)

    @kernel
    def write_gain_mu(self, channel, gain=0xFFFF):
        """Program a channel's gain register."""
        self.bus.write(ad53xx_cmd_write_ch(channel, gain, AD53XX_CMD_GAIN) << 8)

    @kernel
    def write_offset_mu(self, channel, offset=0x8000):
        """Program a channel's offset register."""
        self.bus.write(ad53xx_cmd_write_ch(channel, offset, AD53XX_CMD_OFFSET) << 8)

    @kernel
    def write_offset(self, channel, voltage):
        """Program a channel's offset register from volts."""
        self.write_offset_mu(channel, voltage_to_mu(voltage, self.offset_dacs, self.vref))

    @kernel
    def write_dac_mu(self, channel, value):
        """Program a channel's input register (output changes at the next LDAC)."""
        if not 0 <= channel < _N_CHANNELS:
            raise ValueError(f"AD53xx channel must be 0 to 39, got {channel}")
        self.bus.write(ad53xx_cmd_write_ch(channel, value, AD53XX_CMD_DATA) << 8)

    @kernel
    def write_dac(self, channel, voltage):
        """Program a channel's input register from volts."""
        self.write_dac_mu(channel, voltage_to_mu(voltage, self.offset_dacs, self.vref))

    @kernel
    def load(self):
        """Pulse LDAC low for 16 mu; written channels change at its falling edge."""
        self.ldac.off()
        engine = self.core.engine
        engine.keep_for_reset(self.model, now_mu())
        for ch in sorted(self.model.pending):
            engine.notify_world(self.key, "dac_v", (ch, self.model.volts(ch)))
        self.model.pending.clear()
        delay_mu(2 * self.bus.ref_period_mu)
        self.ldac.on()

    @kernel
    def set_dac_mu(self, values, channels=list(range(40))):  # noqa: B006 - ARTIQ's
        """Write several channels before the cursor, so that LDAC falls 1.5 us after the
        last write, at the cursor (the outputs change then); the cursor does not move."""
        t0 = now_mu()
        t_10 = self.core.seconds_to_mu(1500 * ns)
        delay_mu(-t_10 - len(values) * self.bus.xfer_duration_mu)
        for i in range(len(values)):
            self.write_dac_mu(channels[i], values[i])
        delay_mu(t_10)
        self.load()
        at_mu(t0)

    @kernel
    def set_dac(self, voltages, channels=list(range(40))):  # noqa: B006 - ARTIQ's
        """As :meth:`set_dac_mu` with voltages in volts."""
        values = [voltage_to_mu(v, self.offset_dacs, self.vref) for v in voltages]
        self.set_dac_mu(values, channels)

    @kernel
    def calibrate(self, channel, vzs, vfs):
        """Two-point calibration from the measured zero-scale and full-scale volts."""
        offset_err = voltage_to_mu(vzs, self.offset_dacs, self.vref)
        gain_err = voltage_to_mu(vfs, self.offset_dacs, self.vref) - (offset_err + 0xFFFF)
        if offset_err > 0 or gain_err < 0:
            raise ValueError("AD53xx calibration needs vzs at code 0 and vfs at 0xffff")
        self.core.break_realtime()
        self.write_offset_mu(channel, 0x8000 - offset_err)
        self.write_gain_mu(channel, 0xFFFF - gain_err)

    @portable
    def voltage_to_mu(self, voltage):
        """Volts to DAC code with this DAC's offset DACs and reference."""
        return np.int32(voltage_to_mu(voltage, self.offset_dacs, self.vref))
