"""Simulated AD9910 DDS channel on Urukul (``artiq.coredevice.ad9910.AD9910``).

Every register access is the SPI transaction ARTIQ's driver makes (same transfers, same
durations: ``write16`` 416 mu, ``write32`` 704 mu, ``write64`` 1248 mu at the default
dividers), sent on the Urukul bus to :class:`AD9910Chip`, a register model with the
chip's I/O buffers and active registers. An IO_UPDATE rising edge (the Urukul IO_UPDATE
TTL, or the CFG IO_UPDATE bit for chips with ``MASK_NU`` set) copies the buffers into the
active registers; reads return the active registers (the datasheet's default readback).

``set_mu`` follows ARTIQ's exactly: align the cursor to the coarse clock
(``now_mu() & ~7``); for absolute/tracking phase write CFR1 with ``phase_autoclear``
(704 mu) and add the tracking offset ``(int32(dt * ftw * sysclk_per_mu)) >> 16`` to the POW
(int32 arithmetic, ``dt = int32(now_mu()) - int32(ref_time_mu)``, tracking default
reference 0); write the profile (1248 mu); wait ``io_update_delay``; pulse IO_UPDATE for
8 mu; align again; for absolute/tracking write CFR1 back (704 mu, takes effect at the next
IO_UPDATE). Continuous mode advances the cursor by 1256 mu from the aligned start (IO_UPDATE
at +1248), absolute/tracking by 2664 mu (IO_UPDATE at +1952). It returns the POW after the
tracking offset (int32, not masked), as ARTIQ does.

What reaches the world: at every IO_UPDATE edge (and when the profile pins change), the
selected single-tone profile as ``(dds_key, "dds", DDSState(...))`` at that timestamp:
``frequency_hz`` from the FTW (unsigned, ``ftw * sysclk / 2**32``), ``amplitude`` from the
ASF (``asf / 0x3fff``; 0 when powered down), ``phase_turns = POW / 2**16`` as written
into the chip. When the phase accumulator is cleared at that IO_UPDATE (CFR1
``phase_autoclear``, i.e. absolute and tracking modes), ``ref_time_mu`` is the IO_UPDATE
timestamp: the output phase is then ``phase_turns + frequency_hz * (t - ref_time)``,
exactly what the chip produces (the tracking offset, computed by ARTIQ at the cursor
after the CFR1 write, is included in ``phase_turns``, so tracking-mode phase is
continuous across updates up to the POW's 2**-16 turn resolution, with the constant
offset of ``frequency * 1248 mu`` ARTIQ treats as pipeline latency). ``phase_mode``
is the mode of the ``set_mu`` call that programmed it (``PHASE_MODE_ABSOLUTE`` for a
clearing update made otherwise). Without a clear, ``phase_mode`` is
``PHASE_MODE_CONTINUOUS`` and ``ref_time_mu`` is -1. The DDS pipeline latency is not
modelled.

Not simulated (raise ``NotImplementedError``): RAM mode (``write_ram``, ``read_ram``,
``set_profile_ram``, an IO_UPDATE with CFR1 ``ram_enable``), the digital ramp generator
(an IO_UPDATE with CFR2 ``drg_enable``, hence ``measure_io_update_alignment``), the
SYNC/IO_UPDATE delay calibrations ``tune_sync_delay`` and ``tune_io_update_delay`` (the
simulated clocks are ideally aligned: ``init`` programs ``sync_delay_seed`` directly), and
EEPROM-stored sync data.

Conversions: ``frequency_to_ftw`` raises ``ValueError`` outside 0 <= f < sysclk/2 (ARTIQ
wraps to int32 silently in a kernel); ``turns_to_pow`` wraps modulo one turn as ARTIQ does;
``amplitude_to_asf`` raises outside [0, 1] as ARTIQ does.
"""

from __future__ import annotations

import logging

import numpy as np
from artiq.language.core import at_mu, delay, delay_mu, kernel, now_mu, portable
from artiq.language.types import TBool, TFloat, TInt32, TInt64, TList
from artiq.language.units import ms, us

from ionlink.sim import world as _world
from ionlink.sim.coredevice import spi2 as spi
from ionlink.sim.coredevice import urukul
from ionlink.sim.coredevice._naming import device_key
from ionlink.sim.coredevice.urukul import DEFAULT_PROFILE
from ionlink.sim.rf_switch import pair_switch

logger = logging.getLogger("ionlink.sim.ad9910")

__all__ = [
    "AD9910", "AD9910Chip",
    "PHASE_MODE_CONTINUOUS", "PHASE_MODE_ABSOLUTE", "PHASE_MODE_TRACKING",
    "RAM_DEST_FTW", "RAM_DEST_POW", "RAM_DEST_ASF", "RAM_DEST_POWASF",
    "RAM_MODE_DIRECTSWITCH", "RAM_MODE_RAMPUP", "RAM_MODE_BIDIR_RAMP",
    "RAM_MODE_CONT_BIDIR_RAMP", "RAM_MODE_CONT_RAMPUP",
]

_PHASE_MODE_DEFAULT = -1
PHASE_MODE_CONTINUOUS = _world.PHASE_MODE_CONTINUOUS
PHASE_MODE_ABSOLUTE = _world.PHASE_MODE_ABSOLUTE
PHASE_MODE_TRACKING = _world.PHASE_MODE_TRACKING

_AD9910_REG_CFR1 = 0x00
_AD9910_REG_CFR2 = 0x01
_AD9910_REG_CFR3 = 0x02
_AD9910_REG_AUX_DAC = 0x03
_AD9910_REG_IO_UPDATE = 0x04
_AD9910_REG_FTW = 0x07
_AD9910_REG_POW = 0x08
_AD9910_REG_ASF = 0x09
_AD9910_REG_SYNC = 0x0A
_AD9910_REG_RAMP_LIMIT = 0x0B
_AD9910_REG_RAMP_STEP = 0x0C
_AD9910_REG_RAMP_RATE = 0x0D
_AD9910_REG_PROFILE0 = 0x0E
_AD9910_REG_PROFILE1 = 0x0F
_AD9910_REG_PROFILE2 = 0x10
_AD9910_REG_PROFILE3 = 0x11
_AD9910_REG_PROFILE4 = 0x12
_AD9910_REG_PROFILE5 = 0x13
_AD9910_REG_PROFILE6 = 0x14
_AD9910_REG_PROFILE7 = 0x15
_AD9910_REG_RAM = 0x16

RAM_DEST_FTW = 0
RAM_DEST_POW = 1
RAM_DEST_ASF = 2
RAM_DEST_POWASF = 3

RAM_MODE_DIRECTSWITCH = 0
RAM_MODE_RAMPUP = 1
RAM_MODE_BIDIR_RAMP = 2
RAM_MODE_CONT_BIDIR_RAMP = 3
RAM_MODE_CONT_RAMPUP = 4

_DEFAULT_PROFILE_RAM = 0
#: ``ref_time_mu`` default: no fiducial timestamp.
_NO_REF_TIME = np.int64(-1)

#: Register widths in bits (datasheet register map).
_REG_WIDTH = {0x00: 32, 0x01: 32, 0x02: 32, 0x03: 32, 0x04: 32, 0x07: 32, 0x08: 16,
              0x09: 32, 0x0A: 32, 0x0B: 64, 0x0C: 64, 0x0D: 32,
              **{_AD9910_REG_PROFILE0 + i: 64 for i in range(8)}}
#: Power-on values (datasheet); AUX_DAC 0x7f is what ``init`` checks for.
_REG_DEFAULT = {addr: 0 for addr in _REG_WIDTH}
_REG_DEFAULT.update({0x01: 0x00400820, 0x02: 0x1F3F4000, 0x03: 0x7F, 0x04: 0xFFFFFFFF})


def _i32(value: int) -> int:
    return spi.to_int32(int(value))


class AD9910Chip(urukul.InstructionSPIChip):
    """Register model of one AD9910 behind the Urukul CPLD (see module docstring).

    :param engine: the RTIO engine (world notifications at the cursor).
    :param key: device_db key of the channel, naming it in world events.
    :param sysclk: DDS system clock in Hz.
    """

    def __init__(self, engine, key: str, sysclk: float):
        self.engine = engine
        self.key = key
        self.sysclk = sysclk
        self.buffer = dict(_REG_DEFAULT)
        self.active = dict(_REG_DEFAULT)
        self.profile = DEFAULT_PROFILE
        #: Phase mode of the last ``set_mu``, reported for accumulator-clearing updates.
        self.phase_mode_hint = PHASE_MODE_ABSOLUTE

    def snapshot(self) -> tuple:
        """The registers, profile pins and the transaction under way
        (``RTIOEngine.keep_for_reset``)."""
        return (dict(self.buffer), dict(self.active), self.profile, self.phase_mode_hint,
                self._bits, self._count, self._in_txn)

    def restore(self, state: tuple) -> None:
        (self.buffer, self.active, self.profile, self.phase_mode_hint, self._bits,
         self._count, self._in_txn) = state

    # SPI (framing: urukul.InstructionSPIChip, 8-bit instructions) --------------------

    def _read_bits(self, instruction: int, start: int, length: int) -> int:
        addr = instruction & 0x1F
        if addr == _AD9910_REG_RAM:
            raise NotImplementedError("AD9910 RAM readback is not simulated")
        width = _REG_WIDTH.get(addr, 32)
        value = self.active.get(addr, 0)
        out = 0
        for i in range(length):
            k = start + i - 8          # index of the data bit, MSB first
            bit = (value >> (width - 1 - k)) & 1 if 0 <= k < width else 0
            out = (out << 1) | bit
        return out

    def _write(self, instruction: int, nbits: int, data: int) -> None:
        addr = instruction & 0x1F
        if addr == _AD9910_REG_RAM:
            raise NotImplementedError("AD9910 RAM mode is not simulated")
        width = _REG_WIDTH.get(addr)
        if width is None:
            logger.warning("%s: write to unknown AD9910 register 0x%02x ignored",
                           self.key, addr)
            return
        if nbits != width:
            logger.warning("%s: %d-bit write to %d-bit AD9910 register 0x%02x ignored",
                           self.key, nbits, width, addr)
            return
        self.buffer[addr] = data

    # Pins -----------------------------------------------------------------------------

    def io_update(self) -> None:
        """IO_UPDATE edge at the cursor: buffers -> active registers, state to the world."""
        self.active.update(self.buffer)
        cfr1 = self.active[_AD9910_REG_CFR1]
        if (cfr1 >> 31) & 1:
            raise NotImplementedError("AD9910 RAM mode (CFR1 ram_enable) is not simulated")
        if (self.active[_AD9910_REG_CFR2] >> 19) & 1:
            raise NotImplementedError("AD9910 digital ramp generator is not simulated")
        self._emit(cleared=bool((cfr1 >> 13) & 1))

    def set_profile_pins(self, profile: int) -> None:
        """The CPLD changed this chip's PROFILE pins (at the cursor)."""
        self.profile = profile
        self._emit(cleared=False)

    def output_state(self, cleared: bool, t_mu: int) -> _world.DDSState:
        """The DDS output defined by the active registers (see module docstring)."""
        data = self.active[_AD9910_REG_PROFILE0 + self.profile]
        ftw = data & 0xFFFFFFFF
        pow_ = (data >> 32) & 0xFFFF
        cfr1 = self.active[_AD9910_REG_CFR1]
        cfr2 = self.active[_AD9910_REG_CFR2]
        if (cfr2 >> 24) & 1:
            asf = (data >> 48) & 0x3FFF
        elif (cfr1 >> 9) & 1:
            asf = (self.active[_AD9910_REG_ASF] >> 2) & 0x3FFF
        else:
            asf = 0x3FFF
        amplitude = asf / 0x3FFF
        if (cfr1 >> 4) & 0b1100:   # digital or DAC power-down
            amplitude = 0.0
        mode = self.phase_mode_hint if cleared else PHASE_MODE_CONTINUOUS
        if cleared and mode == PHASE_MODE_CONTINUOUS:
            mode = PHASE_MODE_ABSOLUTE
        return _world.DDSState(frequency_hz=ftw * self.sysclk / (1 << 32),
                               phase_turns=pow_ / (1 << 16), amplitude=amplitude,
                               phase_mode=mode, ref_time_mu=t_mu if cleared else -1)

    def _emit(self, cleared: bool) -> None:
        t = self.engine.tm.now
        self.engine.notify_world(self.key, "dds", self.output_state(cleared, t))


class AD9910(urukul.UrukulChannel):
    """AD9910 DDS channel on Urukul (simulated).

    :param chip_select: 4-7 for one channel, 3 for all channels not masked by MASK_NU.
    :param cpld_device: name of the Urukul CPLD device.
    :param sw_device: name of the RF switch TTLOut (the ``sw`` attribute).
    :param pll_n: PLL multiplier: sysclk = refclk / clk_div * pll_n (Hz).
    :param pll_cp: PLL charge pump setting (0-7).
    :param pll_vco: PLL VCO range (0-5).
    :param sync_delay_seed: SYNC_IN delay tap, -1 for no synchronisation.
    :param io_update_delay: IO_UPDATE delay in machine units.
    :param pll_en: 1 to use the PLL, 0 to bypass it.
    """

    def __init__(self, dmgr, chip_select, cpld_device, sw_device=None, pll_n=40, pll_cp=7,
                 pll_vco=5, sync_delay_seed=-1, io_update_delay=0, pll_en=1):
        self.kernel_invariants = {"cpld", "core", "bus", "chip_select", "pll_en", "pll_n",
                                  "pll_vco", "pll_cp", "ftw_per_hz", "sysclk_per_mu",
                                  "sysclk", "sync_data"}
        self.cpld = dmgr.get(cpld_device)
        self.core = self.cpld.core
        self.bus = self.cpld.bus
        if not 3 <= chip_select <= 7:
            raise ValueError(f"AD9910 chip_select must be 3 to 7, got {chip_select}")
        self.chip_select = chip_select
        if sw_device:
            self.sw = dmgr.get(sw_device)
            self.kernel_invariants.add("sw")
        clk = self.cpld.refclk / [4, 1, 2, 4][self.cpld.clk_div]
        self.pll_en = pll_en
        self.pll_n = pll_n
        self.pll_vco = pll_vco
        self.pll_cp = pll_cp
        if pll_en:
            sysclk = clk * pll_n
            if clk > 60e6:
                raise ValueError(f"AD9910 PLL reference {clk} Hz above 60 MHz")
            if not 12 <= pll_n <= 127:
                raise ValueError(f"AD9910 pll_n must be 12 to 127, got {pll_n}")
            if not 0 <= pll_vco <= 5:
                raise ValueError(f"AD9910 pll_vco must be 0 to 5, got {pll_vco}")
            vco_min, vco_max = [(370, 510), (420, 590), (500, 700), (600, 880), (700, 950),
                                (820, 1150)][pll_vco]
            if not vco_min <= sysclk / 1e6 <= vco_max:
                raise ValueError(f"AD9910 sysclk {sysclk / 1e6} MHz outside VCO range "
                                 f"{pll_vco} ({vco_min}-{vco_max} MHz)")
            if not 0 <= pll_cp <= 7:
                raise ValueError(f"AD9910 pll_cp must be 0 to 7, got {pll_cp}")
        else:
            sysclk = clk
        if sysclk > 1e9:
            raise ValueError(f"AD9910 sysclk {sysclk} Hz above 1 GHz")
        #: Frequency tuning words per Hz (2**32 / sysclk).
        self.ftw_per_hz = (1 << 32) / sysclk
        #: DDS clock cycles per machine unit (1 at 1 GHz and 1 ns).
        self.sysclk_per_mu = int(round(sysclk * self.core.ref_period))
        self.sysclk = sysclk
        if isinstance(sync_delay_seed, str) or isinstance(io_update_delay, str):
            raise ValueError("AD9910 sync data from an EEPROM is not simulated; give "
                             "sync_delay_seed and io_update_delay as numbers")
        self.sync_delay_seed = sync_delay_seed
        self.io_update_delay = io_update_delay
        self.sync_data = self
        if not self.cpld.io_update:
            self.io_update = urukul.RegIOUpdate(self.cpld, self.chip_select)
        else:
            self.io_update = self.cpld.io_update
        self.phase_mode = PHASE_MODE_CONTINUOUS
        self.key = device_key(dmgr, cpld=cpld_device, chip_select=chip_select)
        self.chip: AD9910Chip | None = None
        if chip_select >= urukul.CS_DDS_CH0:
            self.chip = AD9910Chip(self.core.engine, self.key, sysclk)
            self.cpld.register_dds(chip_select - urukul.CS_DDS_CH0, self.key, self.chip)
            if sw_device:
                # the RF switch is the sw TTL OR the CPLD's CFG bit (Urukul hardware)
                engine = self.core.engine
                pair_switch(engine, engine.channels[self.sw.channel].device, self.key)

    @kernel
    def set_phase_mode(self, phase_mode: TInt32):
        """Default phase mode of later :meth:`set`/:meth:`set_mu` calls
        (``PHASE_MODE_CONTINUOUS``, ``_ABSOLUTE`` or ``_TRACKING``)."""
        if phase_mode not in (PHASE_MODE_CONTINUOUS, PHASE_MODE_ABSOLUTE,
                              PHASE_MODE_TRACKING):
            raise ValueError(f"invalid AD9910 phase mode {phase_mode}")
        self.phase_mode = phase_mode

    # Register access ------------------------------------------------------------------

    @kernel
    def write16(self, addr: TInt32, data: TInt32):
        """Write a 16-bit register (one 24-bit transfer, 416 mu)."""
        self.bus.set_config_mu(urukul.SPI_CONFIG | spi.SPI_END, 24, urukul.SPIT_DDS_WR,
                               self.chip_select)
        self.bus.write((addr << 24) | ((data & 0xFFFF) << 8))

    @kernel
    def write32(self, addr: TInt32, data: TInt32):
        """Write a 32-bit register (8 + 32 bit transfers, 704 mu)."""
        self.bus.set_config_mu(urukul.SPI_CONFIG, 8, urukul.SPIT_DDS_WR, self.chip_select)
        self.bus.write(addr << 24)
        self.bus.set_config_mu(urukul.SPI_CONFIG | spi.SPI_END, 32, urukul.SPIT_DDS_WR,
                               self.chip_select)
        self.bus.write(data)

    @kernel
    def read16(self, addr: TInt32) -> TInt32:
        """Read a 16-bit register."""
        self.bus.set_config_mu(urukul.SPI_CONFIG, 8, urukul.SPIT_DDS_WR, self.chip_select)
        self.bus.write((addr | 0x80) << 24)
        self.bus.set_config_mu(urukul.SPI_CONFIG | spi.SPI_END | spi.SPI_INPUT, 16,
                               urukul.SPIT_DDS_RD, self.chip_select)
        self.bus.write(0)
        return self.bus.read()

    @kernel
    def read32(self, addr: TInt32) -> TInt32:
        """Read a 32-bit register (signed int32, as a kernel sees it)."""
        self.bus.set_config_mu(urukul.SPI_CONFIG, 8, urukul.SPIT_DDS_WR, self.chip_select)
        self.bus.write((addr | 0x80) << 24)
        self.bus.set_config_mu(urukul.SPI_CONFIG | spi.SPI_END | spi.SPI_INPUT, 32,
                               urukul.SPIT_DDS_RD, self.chip_select)
        self.bus.write(0)
        return self.bus.read()

    @kernel
    def read64(self, addr: TInt32) -> TInt64:
        """Read a 64-bit register."""
        self.bus.set_config_mu(urukul.SPI_CONFIG, 8, urukul.SPIT_DDS_WR, self.chip_select)
        self.bus.write((addr | 0x80) << 24)
        self.bus.set_config_mu(urukul.SPI_CONFIG | spi.SPI_INPUT, 32, urukul.SPIT_DDS_RD,
                               self.chip_select)
        self.bus.write(0)
        self.bus.set_config_mu(urukul.SPI_CONFIG | spi.SPI_END | spi.SPI_INPUT, 32,
                               urukul.SPIT_DDS_RD, self.chip_select)
        self.bus.write(0)
        hi = self.bus.read()
        lo = self.bus.read()
        return np.int64((int(hi) << 32) | (int(lo) & 0xFFFFFFFF))

    @kernel
    def write64(self, addr: TInt32, data_high: TInt32, data_low: TInt32):
        """Write a 64-bit register (8 + 32 + 32 bit transfers, 1248 mu)."""
        self.bus.set_config_mu(urukul.SPI_CONFIG, 8, urukul.SPIT_DDS_WR, self.chip_select)
        self.bus.write(addr << 24)
        self.bus.set_config_mu(urukul.SPI_CONFIG, 32, urukul.SPIT_DDS_WR, self.chip_select)
        self.bus.write(data_high)
        self.bus.set_config_mu(urukul.SPI_CONFIG | spi.SPI_END, 32, urukul.SPIT_DDS_WR,
                               self.chip_select)
        self.bus.write(data_low)

    @kernel
    def write_ram(self, data: TList(TInt32)):
        """RAM mode is not simulated."""
        raise NotImplementedError("AD9910 RAM mode (write_ram) is not simulated")

    @kernel
    def read_ram(self, data: TList(TInt32)):
        """RAM mode is not simulated."""
        raise NotImplementedError("AD9910 RAM mode (read_ram) is not simulated")

    @kernel
    def set_cfr1(self, power_down: TInt32 = 0b0000, phase_autoclear: TInt32 = 0,
                 drg_load_lrr: TInt32 = 0, drg_autoclear: TInt32 = 0,
                 phase_clear: TInt32 = 0, internal_profile: TInt32 = 0,
                 ram_destination: TInt32 = 0, ram_enable: TInt32 = 0,
                 manual_osk_external: TInt32 = 0, osk_enable: TInt32 = 0,
                 select_auto_osk: TInt32 = 0):
        """Write CFR1 (SDIO input only, MSB first); takes effect at the next IO_UPDATE."""
        self.write32(_AD9910_REG_CFR1,
                     (ram_enable << 31) | (ram_destination << 29)
                     | (manual_osk_external << 23) | (internal_profile << 17)
                     | (drg_load_lrr << 15) | (drg_autoclear << 14)
                     | (phase_autoclear << 13) | (phase_clear << 11) | (osk_enable << 9)
                     | (select_auto_osk << 8) | (power_down << 4) | 2)

    @kernel
    def set_cfr2(self, asf_profile_enable: TInt32 = 1, drg_destination: TInt32 = 0,
                 drg_enable: TInt32 = 0, drg_nodwell_high: TInt32 = 0,
                 drg_nodwell_low: TInt32 = 0, effective_ftw: TInt32 = 1,
                 sync_validation_disable: TInt32 = 0, matched_latency_enable: TInt32 = 0):
        """Write CFR2; takes effect at the next IO_UPDATE."""
        self.write32(_AD9910_REG_CFR2,
                     (asf_profile_enable << 24) | (drg_destination << 20)
                     | (drg_enable << 19) | (drg_nodwell_high << 18)
                     | (drg_nodwell_low << 17) | (effective_ftw << 16)
                     | (matched_latency_enable << 7) | (sync_validation_disable << 5))

    @kernel
    def init(self, blind: TBool = False, dds_channel_idx: TInt32 = 0):
        """Initialize the DDS as ARTIQ does: SPI mode, identity check (AUX_DAC),
        CFR2, PLL configuration and lock wait; about 53 ms of timeline (blind: 152 ms)."""
        if self.sync_delay_seed >= 0 and not self.cpld.sync_div:
            raise ValueError("parent CPLD does not drive SYNC")
        if self.sync_delay_seed >= 0:
            if self.sysclk_per_mu != self.sysclk * self.core.ref_period:
                raise ValueError("incorrect clock ratio for synchronization")
        delay(50 * ms)
        self.set_cfr1()
        self.io_update.pulse(1 * ms)
        delay(1 * ms)
        if not blind:
            aux_dac = self.read32(_AD9910_REG_AUX_DAC)
            if aux_dac & 0xFF != 0x7F:
                raise ValueError("Urukul AD9910 AUX_DAC mismatch")
            delay(50 * us)
        self.set_cfr2(sync_validation_disable=1)
        self.io_update.pulse(1 * ms)
        cfr3 = (0x0807C000 | (self.pll_vco << 24) | (self.pll_cp << 19)
                | (self.pll_en << 8) | (self.pll_n << 1))
        self.write32(_AD9910_REG_CFR3, cfr3 | 0x400)
        self.io_update.pulse(1 * us)
        if self.pll_en:
            self.write32(_AD9910_REG_CFR3, cfr3)
            self.io_update.pulse(1 * ms)
            if blind:
                delay(100 * ms)
            else:
                lock_bit = dds_channel_idx if self.chip_select == 3 else self.chip_select - 4
                for i in range(100):
                    lock = urukul.urukul_sta_pll_lock(self.cpld.sta_read())
                    delay(1 * ms)
                    if lock & (1 << lock_bit):
                        break
                    if i >= 100 - 1:
                        raise ValueError("PLL lock timeout")
        delay(10 * us)
        if self.sync_delay_seed >= 0 and not blind and self.chip_select != 3:
            # The simulated SYNC_IN is ideal: program the seed instead of scanning.
            self.set_sync(self.sync_delay_seed, 0)
            self.clear_smp_err()
        delay(1 * ms)
        self.cpld.cfg_write(self.cpld.cfg_reg)

    @kernel
    def power_down(self, bits: TInt32 = 0b1111):
        """Power down DDS blocks (CFR1 power-down bits) and pulse IO_UPDATE for 1 us."""
        self.set_cfr1(power_down=bits)
        self.io_update.pulse(1 * us)

    # Single tone ----------------------------------------------------------------------

    @kernel
    def set_mu(self, ftw: TInt32 = 0, pow_: TInt32 = 0, asf: TInt32 = 0x3FFF,
               phase_mode: TInt32 = _PHASE_MODE_DEFAULT,
               ref_time_mu: TInt64 = _NO_REF_TIME, profile: TInt32 = DEFAULT_PROFILE,
               ram_destination: TInt32 = -1) -> TInt32:
        """Set a single-tone profile in machine units and pulse IO_UPDATE.

        :param ftw: frequency tuning word (32 bit; -2**31 to 2**32 - 1 accepted).
        :param pow_: phase offset word (16 bit; higher bits wrap).
        :param asf: amplitude scale factor, 0 to 0x3fff.
        :param phase_mode: overrides the default phase mode for this call.
        :param ref_time_mu: fiducial timestamp (mu) for absolute/tracking phase.
        :param profile: profile 0-7.
        :param ram_destination: -1, or the RAM destination whose registers are skipped
            when writing FTW/POW/ASF registers instead of a profile.
        :return: the POW after the tracking offset (int32), as ARTIQ returns it.

        Timeline: see the module docstring (1256 mu continuous, 2664 mu otherwise).
        """
        if not -(1 << 31) <= ftw < (1 << 32):
            raise ValueError(f"AD9910 FTW {ftw} out of 32-bit range")
        if not 0 <= asf <= 0x3FFF:
            raise ValueError(f"AD9910 ASF {asf} outside 0..0x3fff")
        if not 0 <= profile <= 7:
            raise ValueError(f"AD9910 profile must be 0 to 7, got {profile}")
        if phase_mode == _PHASE_MODE_DEFAULT:
            phase_mode = self.phase_mode
        ftw = _i32(ftw)
        pow_ = _i32(pow_)
        asf = int(asf)
        at_mu(now_mu() & ~7)
        if phase_mode != PHASE_MODE_CONTINUOUS:
            self.set_cfr1(phase_autoclear=1)
            if phase_mode == PHASE_MODE_TRACKING and ref_time_mu < 0:
                ref_time_mu = 0
            if ref_time_mu >= 0:
                dt = _i32(_i32(now_mu()) - _i32(ref_time_mu))
                pow_ = _i32(pow_ + (_i32(dt * ftw * self.sysclk_per_mu) >> 16))
        if ram_destination == -1:
            self.write64(_AD9910_REG_PROFILE0 + profile, (asf << 16) | (pow_ & 0xFFFF), ftw)
        else:
            if ram_destination != RAM_DEST_FTW:
                self.set_ftw(ftw)
            if ram_destination != RAM_DEST_POWASF:
                if ram_destination != RAM_DEST_ASF:
                    self.set_asf(asf)
                if ram_destination != RAM_DEST_POW:
                    self.set_pow(pow_ & 0xFFFF)
        delay_mu(np.int64(self.io_update_delay))
        chip = self.chip
        if chip is not None:
            if self.core.engine.recording is None:
                chip.phase_mode_hint = phase_mode
            else:  # recorded by DMA: the mode goes with the IO_UPDATE at playback
                self.core.engine.defer(lambda: setattr(chip, "phase_mode_hint", phase_mode))
        self.io_update.pulse_mu(8)
        at_mu(now_mu() & ~7)
        if phase_mode != PHASE_MODE_CONTINUOUS:
            self.set_cfr1()
        return np.int32(pow_)

    @kernel
    def get_mu(self, profile: TInt32 = DEFAULT_PROFILE):
        """Read back a profile: ``(ftw, pow, asf)`` (FTW as signed int32, as ARTIQ)."""
        if not 0 <= profile <= 7:
            raise ValueError(f"AD9910 profile must be 0 to 7, got {profile}")
        data = int(self.read64(_AD9910_REG_PROFILE0 + profile))
        ftw = np.int32(_i32(data))
        pow_ = np.int32((data >> 32) & 0xFFFF)
        asf = np.int32((data >> 48) & 0x3FFF)
        return ftw, pow_, asf

    @kernel
    def set_profile_ram(self, start: TInt32, end: TInt32, step: TInt32 = 1,
                        profile: TInt32 = _DEFAULT_PROFILE_RAM, nodwell_high: TInt32 = 0,
                        zero_crossing: TInt32 = 0, mode: TInt32 = 1):
        """RAM profiles are not simulated."""
        raise NotImplementedError("AD9910 RAM profiles (set_profile_ram) are not simulated")

    @kernel
    def set_ftw(self, ftw: TInt32):
        """Write the FTW register (used in RAM/ramp modes; single tone uses profiles)."""
        self.write32(_AD9910_REG_FTW, ftw)

    @kernel
    def set_asf(self, asf: TInt32):
        """Write the ASF register (0 to 0x3fff)."""
        if not 0 <= asf <= 0x3FFF:
            raise ValueError(f"AD9910 ASF {asf} outside 0..0x3fff")
        self.write32(_AD9910_REG_ASF, asf << 2)

    @kernel
    def set_pow(self, pow_: TInt32):
        """Write the POW register (16 bit)."""
        self.write16(_AD9910_REG_POW, pow_)

    @kernel
    def get_ftw(self) -> TInt32:
        """Read the FTW register (signed int32)."""
        return self.read32(_AD9910_REG_FTW)

    @kernel
    def get_asf(self) -> TInt32:
        """Read the ASF register's amplitude scale factor."""
        return self.read32(_AD9910_REG_ASF) >> 2

    @kernel
    def get_pow(self) -> TInt32:
        """Read the POW register."""
        return self.read16(_AD9910_REG_POW)

    # Conversions ----------------------------------------------------------------------

    @portable
    def frequency_to_ftw(self, frequency: TFloat) -> TInt32:
        """Frequency in Hz to FTW: ``round(frequency * 2**32 / sysclk)``.

        ValueError outside 0 <= frequency < sysclk / 2 (ARTIQ wraps silently).
        """
        ftw = int(round(self.ftw_per_hz * frequency))
        if ftw < 0 or ftw > 0x7FFFFFFF:
            raise ValueError(f"AD9910 frequency {frequency} Hz outside 0 to {self.sysclk / 2} Hz")
        return np.int32(ftw)

    @portable
    def ftw_to_frequency(self, ftw: TInt32) -> TFloat:
        """FTW to frequency in Hz: ``ftw * sysclk / 2**32``."""
        return ftw / self.ftw_per_hz

    @portable
    def turns_to_pow(self, turns: TFloat) -> TInt32:
        """Phase in turns to POW: ``round(turns * 2**16) & 0xffff`` (wraps, as ARTIQ)."""
        return np.int32(int(round(turns * 0x10000)) & 0xFFFF)

    @portable
    def pow_to_turns(self, pow_: TInt32) -> TFloat:
        """POW to phase in turns: ``pow / 2**16``."""
        return pow_ / 0x10000

    @portable
    def amplitude_to_asf(self, amplitude: TFloat) -> TInt32:
        """Amplitude (fraction of full scale) to ASF: ``round(amplitude * 0x3fff)``;
        ValueError outside [0, 1]."""
        code = int(round(amplitude * 0x3FFF))
        if code < 0 or code > 0x3FFF:
            raise ValueError("Invalid AD9910 fractional amplitude!")
        return np.int32(code)

    @portable
    def asf_to_amplitude(self, asf: TInt32) -> TFloat:
        """ASF to amplitude: ``asf / 0x3fff``."""
        return asf / float(0x3FFF)

    @portable
    def frequency_to_ram(self, frequency: TList(TFloat), ram: TList(TInt32)):
        """Frequencies (Hz) to RAM words for ``RAM_DEST_FTW``."""
        for i in range(len(ram)):
            ram[i] = self.frequency_to_ftw(frequency[i])

    @portable
    def turns_to_ram(self, turns: TList(TFloat), ram: TList(TInt32)):
        """Phases (turns) to RAM words for ``RAM_DEST_POW``."""
        for i in range(len(ram)):
            ram[i] = _i32(int(self.turns_to_pow(turns[i])) << 16)

    @portable
    def amplitude_to_ram(self, amplitude: TList(TFloat), ram: TList(TInt32)):
        """Amplitudes to RAM words for ``RAM_DEST_ASF``."""
        for i in range(len(ram)):
            ram[i] = _i32(int(self.amplitude_to_asf(amplitude[i])) << 18)

    @portable
    def turns_amplitude_to_ram(self, turns: TList(TFloat), amplitude: TList(TFloat),
                               ram: TList(TInt32)):
        """Phases and amplitudes to RAM words for ``RAM_DEST_POWASF``."""
        for i in range(len(ram)):
            ram[i] = _i32((int(self.turns_to_pow(turns[i])) << 16)
                          | (int(self.amplitude_to_asf(amplitude[i])) << 2))

    @kernel
    def set_frequency(self, frequency: TFloat):
        """Write the FTW register from a frequency in Hz (no IO_UPDATE)."""
        self.set_ftw(self.frequency_to_ftw(frequency))

    @kernel
    def set_amplitude(self, amplitude: TFloat):
        """Write the ASF register from an amplitude (no IO_UPDATE)."""
        self.set_asf(self.amplitude_to_asf(amplitude))

    @kernel
    def set_phase(self, turns: TFloat):
        """Write the POW register from a phase in turns (no IO_UPDATE)."""
        self.set_pow(self.turns_to_pow(turns))

    @kernel
    def get_frequency(self) -> TFloat:
        """Read the FTW register as a frequency in Hz."""
        return self.ftw_to_frequency(self.get_ftw())

    @kernel
    def get_amplitude(self) -> TFloat:
        """Read the ASF register as an amplitude."""
        return self.asf_to_amplitude(self.get_asf())

    @kernel
    def get_phase(self) -> TFloat:
        """Read the POW register as a phase in turns."""
        return self.pow_to_turns(self.get_pow())

    @kernel
    def set(self, frequency: TFloat = 0.0, phase: TFloat = 0.0, amplitude: TFloat = 1.0,
            phase_mode: TInt32 = _PHASE_MODE_DEFAULT, ref_time_mu: TInt64 = _NO_REF_TIME,
            profile: TInt32 = DEFAULT_PROFILE, ram_destination: TInt32 = -1) -> TFloat:
        """Set a single-tone profile in SI units (Hz, turns, fraction of full scale) and
        pulse IO_UPDATE; returns the resulting phase offset in turns (see :meth:`set_mu`)."""
        return self.pow_to_turns(self.set_mu(
            self.frequency_to_ftw(frequency), self.turns_to_pow(phase),
            self.amplitude_to_asf(amplitude), phase_mode, ref_time_mu, profile,
            ram_destination))

    @kernel
    def get(self, profile: TInt32 = DEFAULT_PROFILE):
        """Read back a profile: ``(frequency Hz, phase turns, amplitude)``."""
        ftw, pow_, asf = self.get_mu(profile)
        return (self.ftw_to_frequency(ftw), self.pow_to_turns(pow_),
                self.asf_to_amplitude(asf))

    # Urukul CPLD pass-throughs ----------------------------------------------------------

    @kernel
    def cfg_osk(self, state: TBool):
        """Set the CPLD CFG OSK bit of this channel."""
        self.cpld.cfg_osk(self.chip_select - 4, state)

    @kernel
    def cfg_drctl(self, state: TBool):
        """Set the CPLD CFG DRCTL bit of this channel."""
        self.cpld.cfg_drctl(self.chip_select - 4, state)

    @kernel
    def cfg_drhold(self, state: TBool):
        """Set the CPLD CFG DRHOLD bit of this channel."""
        self.cpld.cfg_drhold(self.chip_select - 4, state)

    @kernel
    def set_profile(self, profile: TInt32):
        """Set this channel's PROFILE pins (0-7) through the CPLD."""
        self.cpld.set_profile(self.chip_select - 4, profile)

    @kernel
    def set_sync(self, in_delay: TInt32, window: TInt32, en_sync_gen: TInt32 = 0):
        """Write the multi-device synchronisation register."""
        self.write32(_AD9910_REG_SYNC,
                     (window << 28) | (1 << 27) | (en_sync_gen << 26) | (in_delay << 3))

    @kernel
    def clear_smp_err(self):
        """Clear SMP_ERR and enable its monitoring (two CFR2 writes and IO_UPDATEs)."""
        self.set_cfr2(sync_validation_disable=1)
        self.io_update.pulse(1 * us)
        delay(10 * us)
        self.set_cfr2(sync_validation_disable=0)
        self.io_update.pulse(1 * us)

    @kernel
    def tune_sync_delay(self, search_seed: TInt32 = 15, dds_channel_idx=0):
        """Not simulated: the simulated SYNC_IN has no sampling errors to scan."""
        if not self.cpld.sync_div:
            raise ValueError("parent cpld does not drive SYNC")
        raise NotImplementedError("AD9910.tune_sync_delay is not simulated (ideal SYNC)")

    @kernel
    def measure_io_update_alignment(self, delay_start: TInt64, delay_stop: TInt64):
        """Not simulated (needs the digital ramp generator)."""
        raise NotImplementedError(
            "AD9910.measure_io_update_alignment is not simulated (no ramp generator)")

    @kernel
    def tune_io_update_delay(self):
        """Not simulated: the simulated IO_UPDATE is ideally aligned (use delay 0)."""
        raise NotImplementedError(
            "AD9910.tune_io_update_delay is not simulated (ideal alignment, use 0)")
