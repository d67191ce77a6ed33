"""Simulated AD9912 DDS channel on Urukul (``artiq.coredevice.ad9912.AD9912``).

Register access is ARTIQ's SPI transactions (16-bit instruction: read bit, byte count
W1:W0 with 3 = streaming, 13-bit start address; bytes MSB first at descending addresses)
sent to :class:`AD9912Chip`, a byte-addressed model with I/O buffers and active
registers. An IO_UPDATE rising edge copies the buffers to the active registers (reads
return the active registers, the datasheet's default) and delivers
``(dds_key, "dds", DDSState(f, phase, 1.0, PHASE_MODE_CONTINUOUS, -1))`` at that time:
``f = ftw * sysclk / 2**48`` (48-bit FTW), ``phase = (POW & 0x3fff) / 2**14``. The AD9912
has no amplitude scale factor (amplitude is always 1.0; the DAC full-scale current
register is not modelled). ``set_mu`` takes 1376 mu of SPI transfers, then a 10 ns
IO_UPDATE pulse (1386 mu in all), as ARTIQ's.

``frequency_to_ftw`` raises ``ValueError`` outside 0 <= f < sysclk/2 (ARTIQ masks to 48
bits silently); ``turns_to_pow`` wraps as ARTIQ's (``round(2**14 * turns) & 0xffff``).
"""

from __future__ import annotations

import numpy as np
from artiq.language.core import delay, kernel, portable
from artiq.language.types import TFloat, TInt32, TInt64
from artiq.language.units import ms, ns, us

from ionlink.sim import world as _world
from ionlink.sim.coredevice import spi2 as spi
from ionlink.sim.coredevice import urukul
from ionlink.sim.coredevice._naming import device_key
from ionlink.sim.rf_switch import pair_switch

AD9912_SER_CONF = 0x000
AD9912_PRODIDL = 0x002
AD9912_PRODIDH = 0x003
AD9912_SER_OPT1 = 0x004
AD9912_SER_OPT2 = 0x005
AD9912_PWRCNTRL1 = 0x010
AD9912_PWRCNTRL2 = 0x012
AD9912_PWRCNTRL3 = 0x013
AD9912_N_DIV = 0x020
AD9912_PLLCFG = 0x022
AD9912_S_DIVL = 0x104
AD9912_S_DIVH = 0x105
AD9912_S_DIV_CFG = 0x106
AD9912_FTW0 = 0x1A6
AD9912_FTW1 = 0x1A7
AD9912_FTW2 = 0x1A8
AD9912_FTW3 = 0x1A9
AD9912_FTW4 = 0x1AA
AD9912_FTW5 = 0x1AB
AD9912_POW0 = 0x1AC
AD9912_POW1 = 0x1AD
AD9912_HSTL = 0x200
AD9912_CMOS = 0x201
AD9912_FSC0 = 0x40B
AD9912_FSC1 = 0x40C
AD9912_HSR_A_CFG = 0x500
AD9912_HSR_A_MAG = 0x501
AD9912_HSR_A_POW0 = 0x503
AD9912_HSR_A_POW1 = 0x504
AD9912_HSR_B_CFG = 0x505
AD9912_HSR_B_MAG = 0x506
AD9912_HSR_B_POW0 = 0x508
AD9912_HSR_B_POW1 = 0x509

#: Product ID read back by ``init`` (0x1982; ARTIQ also accepts 0x1902).
_PRODUCT_ID = 0x1982


class AD9912Chip(urukul.InstructionSPIChip):
    """Byte-addressed register model of one AD9912 (see module docstring)."""

    def __init__(self, engine, key: str, sysclk: float):
        self.engine = engine
        self.key = key
        self.sysclk = sysclk
        self.buffer: dict[int, int] = {AD9912_PRODIDH: _PRODUCT_ID >> 8,
                                       AD9912_PRODIDL: _PRODUCT_ID & 0xFF}
        self.active = dict(self.buffer)

    def snapshot(self) -> tuple:
        """The registers and the transaction under way (``RTIOEngine.keep_for_reset``)."""
        return dict(self.buffer), dict(self.active), self._bits, self._count, self._in_txn

    def restore(self, state: tuple) -> None:
        self.buffer, self.active, self._bits, self._count, self._in_txn = state

    INSTRUCTION_BITS = 16   # R/W bit, 2 byte-count bits, 13-bit address

    def _read_bits(self, instruction: int, start: int, length: int) -> int:
        """Bytes read from the address down, MSB first."""
        addr = instruction & 0x1FFF
        out = 0
        for i in range(length):
            k = start + i - 16         # index of the data bit
            bit = 0
            if k >= 0:
                byte = self.active.get(addr - k // 8, 0)
                bit = (byte >> (7 - k % 8)) & 1
            out = (out << 1) | bit
        return out

    def _write(self, instruction: int, nbits: int, data: int) -> None:
        """Whole bytes written from the address down (a trailing partial byte is dropped)."""
        addr = instruction & 0x1FFF
        nbytes = nbits // 8
        data >>= nbits - 8 * nbytes
        for k in range(nbytes):
            self.buffer[addr - k] = (data >> (8 * (nbytes - 1 - k))) & 0xFF

    def io_update(self) -> None:
        """IO_UPDATE edge at the cursor: buffers -> active, state to the world."""
        self.active.update(self.buffer)
        ftw = 0
        for k in range(6):
            ftw |= self.active.get(AD9912_FTW0 + k, 0) << (8 * k)
        pow_ = ((self.active.get(AD9912_POW1, 0) << 8) | self.active.get(AD9912_POW0, 0))
        state = _world.DDSState(frequency_hz=ftw * self.sysclk / (1 << 48),
                                phase_turns=(pow_ & 0x3FFF) / (1 << 14), amplitude=1.0,
                                phase_mode=_world.PHASE_MODE_CONTINUOUS, ref_time_mu=-1)
        self.engine.notify_world(self.key, "dds", state)

    def set_profile_pins(self, profile: int) -> None:
        """The AD9912 has no profiles: profile pins change nothing."""


class AD9912(urukul.UrukulChannel):
    """AD9912 DDS channel on Urukul (simulated).

    :param chip_select: 4-7.
    :param cpld_device: name of the Urukul CPLD device.
    :param sw_device: name of the RF switch TTLOut (the ``sw`` attribute).
    :param pll_n: PLL multiplier: sysclk = refclk / clk_div * pll_n (Hz).
    :param pll_en: 1 to use the PLL, 0 to bypass it.
    """

    def __init__(self, dmgr, chip_select, cpld_device, sw_device=None, pll_n=10, pll_en=1):
        self.kernel_invariants = {"cpld", "core", "bus", "chip_select", "pll_n", "pll_en",
                                  "ftw_per_hz"}
        self.cpld = dmgr.get(cpld_device)
        self.core = self.cpld.core
        self.bus = self.cpld.bus
        if not 4 <= chip_select <= 7:
            raise ValueError(f"AD9912 chip_select must be 4 to 7, got {chip_select}")
        self.chip_select = chip_select
        if sw_device:
            self.sw = dmgr.get(sw_device)
            self.kernel_invariants.add("sw")
        self.pll_en = pll_en
        self.pll_n = pll_n
        if pll_en:
            refclk = self.cpld.refclk
            if refclk < 11e6:
                refclk = refclk * 2
            sysclk = refclk / [1, 1, 2, 4][self.cpld.clk_div] * pll_n
        else:
            sysclk = self.cpld.refclk
        if sysclk > 1e9:
            raise ValueError(f"AD9912 sysclk {sysclk} Hz above 1 GHz")
        self.sysclk = sysclk
        #: Frequency tuning words per Hz (2**48 / sysclk).
        self.ftw_per_hz = 1 / sysclk * (1 << 48)
        if not self.cpld.io_update:
            self.io_update = urukul.RegIOUpdate(self.cpld, self.chip_select)
        else:
            self.io_update = self.cpld.io_update
        self.key = device_key(dmgr, cpld=cpld_device, chip_select=chip_select)
        self.chip = AD9912Chip(self.core.engine, self.key, sysclk)
        self.cpld.register_dds(chip_select - 4, self.key, self.chip)
        if sw_device:
            # the RF switch is the sw TTL OR the CPLD's CFG bit (Urukul hardware)
            engine = self.core.engine
            pair_switch(engine, engine.channels[self.sw.channel].device, self.key)

    @kernel
    def write(self, addr: TInt32, data: TInt32, length: TInt32):
        """Write 1-4 bytes starting at ``addr`` (16-bit instruction + data)."""
        if not 1 <= length <= 4:
            raise ValueError("AD9912 write length must be 1 to 4 bytes")
        self.bus.set_config_mu(urukul.SPI_CONFIG, 16, urukul.SPIT_DDS_WR, self.chip_select)
        self.bus.write((addr | ((length - 1) << 13)) << 16)
        self.bus.set_config_mu(urukul.SPI_CONFIG | spi.SPI_END, length * 8,
                               urukul.SPIT_DDS_WR, self.chip_select)
        self.bus.write(data << (32 - length * 8))

    @kernel
    def read(self, addr: TInt32, length: TInt32) -> TInt32:
        """Read 1-4 bytes starting at ``addr``."""
        if not 1 <= length <= 4:
            raise ValueError("AD9912 read length must be 1 to 4 bytes")
        self.bus.set_config_mu(urukul.SPI_CONFIG, 16, urukul.SPIT_DDS_WR, self.chip_select)
        self.bus.write((addr | ((length - 1) << 13) | 0x8000) << 16)
        self.bus.set_config_mu(urukul.SPI_CONFIG | spi.SPI_END | spi.SPI_INPUT, length * 8,
                               urukul.SPIT_DDS_RD, self.chip_select)
        self.bus.write(0)
        data = self.bus.read()
        if length < 4:
            data &= (1 << (length * 8)) - 1
        return data

    @kernel
    def init(self):
        """SPI mode, product ID check, power-down of unused outputs, PLL setup."""
        self.write(AD9912_SER_CONF, 0x99, length=1)
        self.io_update.pulse(2 * us)
        prodid = self.read(AD9912_PRODIDH, length=2)
        if prodid != 0x1982 and prodid != 0x1902:
            raise ValueError("Urukul AD9912 product id mismatch")
        delay(50 * us)
        self.write(AD9912_PWRCNTRL1, 0x80 | ((~self.pll_en & 1) << 4), length=1)
        self.io_update.pulse(2 * us)
        if self.pll_en:
            self.write(AD9912_N_DIV, self.pll_n // 2 - 2, length=1)
            self.io_update.pulse(2 * us)
            if self.cpld.refclk < 11e6:
                self.write(AD9912_PLLCFG, 0b00001101, length=1)
            else:
                self.write(AD9912_PLLCFG, 0b00000101, length=1)
            self.io_update.pulse(2 * us)
        delay(1 * ms)

    @kernel
    def set_mu(self, ftw: TInt64, pow_: TInt32 = 0):
        """Write FTW (48 bit) and POW (14 bit) in one streaming transfer, then pulse
        IO_UPDATE for 10 ns (1386 mu in all)."""
        if not 0 <= ftw < (1 << 48):
            raise ValueError(f"AD9912 FTW {ftw} outside 48 bits")
        ftw = int(ftw)
        self.bus.set_config_mu(urukul.SPI_CONFIG, 16, urukul.SPIT_DDS_WR, self.chip_select)
        self.bus.write((AD9912_POW1 << 16) | (3 << 29))
        self.bus.set_config_mu(urukul.SPI_CONFIG, 32, urukul.SPIT_DDS_WR, self.chip_select)
        self.bus.write(((pow_ & 0xFFFF) << 16) | ((ftw >> 32) & 0xFFFF))
        self.bus.set_config_mu(urukul.SPI_CONFIG | spi.SPI_END, 32, urukul.SPIT_DDS_WR,
                               self.chip_select)
        self.bus.write(spi.to_int32(ftw))
        self.io_update.pulse(10 * ns)

    @kernel
    def get_mu(self):
        """Read back ``(ftw, pow)``; breaks realtime between the two reads, as ARTIQ."""
        high = self.read(AD9912_POW1, 4)
        self.core.break_realtime()
        low = self.read(AD9912_FTW3, 4)
        ftw = np.int64(((int(high) & 0xFFFF) << 32) | (int(low) & 0xFFFFFFFF))
        pow_ = np.int32((int(high) >> 16) & 0x3FFF)
        return ftw, pow_

    @portable
    def frequency_to_ftw(self, frequency: TFloat) -> TInt64:
        """Frequency in Hz to the 48-bit FTW ``round(frequency * 2**48 / sysclk)``;
        ValueError outside 0 <= f < sysclk / 2."""
        ftw = int(round(self.ftw_per_hz * frequency))
        if ftw < 0 or ftw >= (1 << 47):
            raise ValueError(f"AD9912 frequency {frequency} Hz outside 0 to {self.sysclk / 2} Hz")
        return np.int64(ftw)

    @portable
    def ftw_to_frequency(self, ftw: TInt64) -> TFloat:
        """48-bit FTW to frequency in Hz."""
        return ftw / self.ftw_per_hz

    @portable
    def turns_to_pow(self, phase: TFloat) -> TInt32:
        """Phase in turns to POW: ``round(2**14 * phase) & 0xffff`` (as ARTIQ)."""
        return np.int32(int(round((1 << 14) * phase)) & 0xFFFF)

    @portable
    def pow_to_turns(self, pow_: TInt32) -> TFloat:
        """POW to phase in turns: ``pow / 2**14``."""
        return pow_ / (1 << 14)

    @kernel
    def set(self, frequency: TFloat, phase: TFloat = 0.0):
        """Set frequency (Hz) and phase (turns), then pulse IO_UPDATE."""
        self.set_mu(self.frequency_to_ftw(frequency), self.turns_to_pow(phase))

    @kernel
    def get(self):
        """Read back ``(frequency Hz, phase turns)``."""
        ftw, pow_ = self.get_mu()
        return self.ftw_to_frequency(ftw), self.pow_to_turns(pow_)



