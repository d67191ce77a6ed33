"""Simulated Urukul CPLD (``artiq.coredevice.urukul.CPLD``, protocol revision 9).

The CPLD routes the Urukul SPI bus by chip select: 1 the configuration register (CFG,
52 bits; reading it shifts out the status register), 2 the four digital step attenuators
(one 32-bit shift register, latched when chip select is released), 3 all DDS chips whose
``MASK_NU`` bit is clear, 4-7 one DDS chip each. The model behind the bus
(:class:`UrukulBusModel`) keeps those registers, so reads (``sta_read``, ``get_att_mu``,
DDS register reads) return what was written, as on hardware.

Timing is ARTIQ's: ``cfg_write`` is two SPI transfers (24 + 28 bits at divider 2:
8 + 408 + 8 + 472 = 896 mu); an attenuator write is one 32-bit transfer at divider 6
(8 + 1592 = 1600 mu).

What reaches the world (at the end of the SPI transfer that latches it):

- attenuation: ``(dds_key, "att_db", dB)`` for each channel whose setting changed (all
  four at the first latch);
- the CFG RF switch bits: ``(dds_key, "level", 0 or 1)`` for each channel whose bit
  changed (all four at the first CFG write). The RF switch of a channel is closed when
  this bit *or* the level of its ``sw`` TTL is 1, and that OR is what the world gets as
  the switch's ``(sw_key, "level", ...)`` (:mod:`ionlink.sim.rf_switch`, set up by the
  AD9910/AD9912 twins that have a ``sw_device``).

IO_UPDATE: the ``io_update`` attribute is the IO_UPDATE TTLOut wrapped so that a rising
edge applies the DDS chips' buffered registers at the edge's timestamp (chips whose
``MASK_NU`` bit is set ignore the TTL and follow the CFG IO_UPDATE bit instead, which is
how ARTIQ's ``RegIOUpdate`` and its tests use them). Profile pins (CFG PROFILE bits) switch
a chip's active single-tone profile at once.

Protocol revision 8 is not simulated (constructing it raises ``ValueError``).
"""

from __future__ import annotations

import logging

import numpy as np
from artiq.language.core import at_mu, delay, delay_mu, kernel, now_mu, portable
from artiq.language.types import TBool, TFloat, TInt32
from artiq.language.units import ms, us

from ionlink.sim.coredevice import spi2 as spi
from ionlink.sim.coredevice._naming import device_key
from ionlink.sim.coredevice.ttl import TTLOut

logger = logging.getLogger("ionlink.sim.urukul")

SPI_CONFIG = spi.SPI_CS_POLARITY

SPIT_CFG_WR = 2
SPIT_CFG_RD = 16
SPIT_ATT_WR = 6
SPIT_ATT_RD = 16
SPIT_DDS_WR = 2
SPIT_DDS_RD = 16

CFG_RF_SW = 0
CFG_LED = 4
CFG_PROFILE = 8

# Protocol revision 9 CFG bit offsets.
CFG_OSK = 20
CFG_DRCTL = 24
CFG_DRHOLD = 28
CFG_IO_UPDATE = 32
CFG_MASK_NU = 36
CFG_CLK_SEL0 = 40
CFG_SYNC_SEL = 41
CFG_RST = 42
CFG_IO_RST = 43
CFG_CLK_SEL1 = 44
CFG_CLK_DIV = 45
CFG_ATT_EN = 47
CFG_WIDTH = 52

STA_RF_SW = 0
STA_SMP_ERR = 4
STA_PLL_LOCK = 8
STA_IFC_MODE = 12
STA_PROTO_REV = 16
STA_DROVER = 23
STA_PROTO_REV_8 = 0x08
STA_PROTO_REV_9 = 0x09

CS_CFG = 1
CS_ATT = 2
CS_DDS_MULTI = 3
CS_DDS_CH0 = 4
CS_DDS_CH1 = 5
CS_DDS_CH2 = 6
CS_DDS_CH3 = 7

DEFAULT_PROFILE = 7


@portable
def urukul_sta_rf_sw(sta):
    """RF switch bits of a status register value."""
    return (sta >> STA_RF_SW) & 0xF


@portable
def urukul_sta_smp_err(sta):
    """SMP_ERR bits of a status register value."""
    return (sta >> STA_SMP_ERR) & 0xF


@portable
def urukul_sta_pll_lock(sta):
    """PLL_LOCK bits of a status register value."""
    return (sta >> STA_PLL_LOCK) & 0xF


@portable
def urukul_sta_ifc_mode(sta):
    """IFC_MODE bits of a status register value."""
    return (sta >> STA_IFC_MODE) & 0xF


@portable
def urukul_sta_proto_rev(sta):
    """Protocol revision of a status register value."""
    return (sta >> STA_PROTO_REV) & 0x7F


@portable
def urukul_sta_drover(sta):
    """DROVER bits of a status register value."""
    return (sta >> STA_DROVER) & 0xF


def urukul_cfg(rf_sw, led, profile, osk, drctl, drhold, io_update, mask_nu, clk_sel,
               sync_sel, rst, io_rst, clk_div, att_en):
    """Build a protocol-revision-9 CFG register value (52 bits)."""
    return ((rf_sw << CFG_RF_SW) | (led << CFG_LED) | (profile << CFG_PROFILE)
            | (osk << CFG_OSK) | (drctl << CFG_DRCTL) | (drhold << CFG_DRHOLD)
            | (io_update << CFG_IO_UPDATE) | (mask_nu << CFG_MASK_NU)
            | ((clk_sel & 1) << CFG_CLK_SEL0) | ((clk_sel & 2) << (CFG_CLK_SEL1 - 1))
            | (sync_sel << CFG_SYNC_SEL) | (rst << CFG_RST) | (io_rst << CFG_IO_RST)
            | (clk_div << CFG_CLK_DIV) | (att_en << CFG_ATT_EN))


class _Transaction:
    """Bits shifted in during one chip-select transaction."""

    __slots__ = ("bits", "count")

    def __init__(self) -> None:
        self.bits = 0
        self.count = 0

    def add(self, bits: int, length: int) -> None:
        self.bits = (self.bits << length) | bits
        self.count += length


class InstructionSPIChip:
    """SPI framing shared by the Urukul DDS chips (AD9910, AD9912).

    A chip-select transaction starts with an ``INSTRUCTION_BITS``-bit instruction whose top
    bit selects a read; the data bits follow, MSB first, over one or more transfers.
    Subclasses set ``INSTRUCTION_BITS`` and implement ``_read_bits(instruction, start,
    length)`` (the ``length`` bits a read shifts out in a transfer that starts at bit
    ``start`` of the transaction) and ``_write(instruction, nbits, data)`` (called when a
    write transaction ends, with its ``nbits`` data bits). ``_bits``/``_count``/``_in_txn``
    hold the transaction under way (the chips' ``snapshot``/``restore`` keep them).
    """

    INSTRUCTION_BITS = 8
    _bits = 0
    _count = 0
    _in_txn = False

    def spi_transfer(self, bits: int, length: int, end: bool) -> int:
        """One SPI transfer (MSB first); returns the bits shifted out."""
        n = self.INSTRUCTION_BITS
        start = self._count if self._in_txn else 0
        if not self._in_txn:
            self._bits = 0
            self._in_txn = True
        self._bits = (self._bits << length) | bits
        self._count = start + length
        out = 0
        if self._count >= n:
            instruction = (self._bits >> (self._count - n)) & ((1 << n) - 1)
            if instruction >> (n - 1):
                out = self._read_bits(instruction, start, length)
        if end:
            self._in_txn = False
            if self._count >= n:
                instruction = (self._bits >> (self._count - n)) & ((1 << n) - 1)
                if not instruction >> (n - 1):
                    nbits = self._count - n
                    self._write(instruction, nbits, self._bits & ((1 << nbits) - 1))
        return out

    def _read_bits(self, instruction: int, start: int, length: int) -> int:
        raise NotImplementedError

    def _write(self, instruction: int, nbits: int, data: int) -> None:
        raise NotImplementedError


class UrukulBusModel:
    """The Urukul behind its SPI bus: CFG/status, attenuators, DDS chips (see module doc)."""

    def __init__(self, cpld: CPLD):
        self.cpld = cpld
        self.cfg = None            # latched CFG value (None until first written)
        self.att_sr = 0            # attenuator shift register
        self.att_latched = 0       # attenuator settings in force
        self.chips: dict[int, object] = {}   # channel 0-3 -> DDS chip model
        self._cfg_txn: _Transaction | None = None
        self._cfg_out = 0
        self._att_delivered: list[int | None] = [None] * 4
        self._sw_delivered: list[int | None] = [None] * 4

    def snapshot(self) -> tuple:
        """CFG, attenuators, what the world was told and the DDS chips' states (for
        ``RTIOEngine.keep_for_reset``: a CFG write can update the chips)."""
        txn = self._cfg_txn
        return (self.cfg, self.att_sr, self.att_latched,
                None if txn is None else (txn.bits, txn.count), self._cfg_out,
                list(self._att_delivered), list(self._sw_delivered),
                {ch: chip.snapshot() for ch, chip in self.chips.items()
                 if hasattr(chip, "snapshot")})

    def keep_for_reset(self, engine, t_mu: int, cs: int) -> None:
        """Before a transfer to ``cs`` starting at ``t_mu``: keep what it can change for
        ``core.reset()`` (one chip, or the whole Urukul for CFG, ATT and multi-chip)."""
        if CS_DDS_CH0 <= cs <= CS_DDS_CH3:
            chip = self.chips.get(cs - CS_DDS_CH0)
            if chip is not None and hasattr(chip, "snapshot"):
                engine.keep_for_reset(chip, t_mu)
        else:
            engine.keep_for_reset(self, t_mu)

    def restore(self, state: tuple) -> None:
        (self.cfg, self.att_sr, self.att_latched, txn, self._cfg_out, self._att_delivered,
         self._sw_delivered, chips) = state
        self._cfg_txn = None
        if txn is not None:
            self._cfg_txn = _Transaction()
            self._cfg_txn.bits, self._cfg_txn.count = txn
        for ch, chip_state in chips.items():
            self.chips[ch].restore(chip_state)

    def status(self) -> int:
        """Status register: RF switch bits from CFG, all PLLs locked, no SMP_ERR,
        protocol revision 9."""
        cfg = self.cfg if self.cfg is not None else self.cpld.cfg_reg
        return (((cfg >> CFG_RF_SW) & 0xF) | (0xF << STA_PLL_LOCK)
                | (STA_PROTO_REV_9 << STA_PROTO_REV))

    def spi_transfer(self, cs: int, bits: int, length: int, flags: int) -> int:
        end = bool(flags & spi.SPI_END)
        if cs == CS_CFG:
            return self._cfg_transfer(bits, length, end)
        if cs == CS_ATT:
            out = self.att_sr >> (32 - length)
            self.att_sr = ((self.att_sr << length) | bits) & 0xFFFFFFFF
            if end:
                self._latch_att(self.att_sr)
            return out
        if cs == CS_DDS_MULTI:
            mask_nu = (self._cfg() >> CFG_MASK_NU) & 0xF
            out = 0
            for ch, chip in sorted(self.chips.items()):
                if not (mask_nu >> ch) & 1:
                    out |= chip.spi_transfer(bits, length, end)
            return out
        if CS_DDS_CH0 <= cs <= CS_DDS_CH3:
            chip = self.chips.get(cs - CS_DDS_CH0)
            return chip.spi_transfer(bits, length, end) if chip is not None else 0
        return 0

    def _cfg(self) -> int:
        return self.cfg if self.cfg is not None else int(self.cpld.cfg_reg)

    def _cfg_transfer(self, bits: int, length: int, end: bool) -> int:
        if self._cfg_txn is None:
            self._cfg_txn = _Transaction()
            self._cfg_out = self.status()  # shifted out in the last 28 of 52 bits
        txn = self._cfg_txn
        shift = CFG_WIDTH - txn.count - length
        out = (self._cfg_out >> shift) if shift >= 0 else (self._cfg_out << -shift)
        out &= (1 << length) - 1
        txn.add(bits, length)
        if end:
            self._cfg_txn = None
            if txn.count < CFG_WIDTH:
                logger.warning("Urukul CFG transaction of %d bits ignored (needs %d)",
                               txn.count, CFG_WIDTH)
            else:
                self._latch_cfg(txn.bits & ((1 << CFG_WIDTH) - 1))
        return out

    def _latch_cfg(self, new: int) -> None:
        old = self.cfg
        self.cfg = new
        engine = self.cpld.core.engine
        for ch in range(4):
            sw = (new >> (CFG_RF_SW + ch)) & 1
            if self._sw_delivered[ch] != sw:
                self._sw_delivered[ch] = sw
                engine.notify_world(self.cpld.dds_key(ch), "level", sw)
        mask_nu = (new >> CFG_MASK_NU) & 0xF
        for ch, chip in self.chips.items():
            profile = (new >> (CFG_PROFILE + 3 * ch)) & 7
            if old is None or ((old >> (CFG_PROFILE + 3 * ch)) & 7) != profile:
                chip.set_profile_pins(profile)
            rising = (new >> (CFG_IO_UPDATE + ch)) & 1 and not (
                old is not None and (old >> (CFG_IO_UPDATE + ch)) & 1)
            if rising and (mask_nu >> ch) & 1:
                chip.io_update()

    def _latch_att(self, reg: int) -> None:
        self.att_latched = reg
        engine = self.cpld.core.engine
        for ch in range(4):
            mu = (reg >> (8 * ch)) & 0xFF
            if self._att_delivered[ch] != mu:
                self._att_delivered[ch] = mu
                engine.notify_world(self.cpld.dds_key(ch), "att_db",
                                    self.cpld.mu_to_att(mu))

    def io_update_edge(self) -> None:
        """Rising edge of the IO_UPDATE TTL: chips not masked by ``MASK_NU`` update."""
        mask_nu = (self._cfg() >> CFG_MASK_NU) & 0xF
        for ch, chip in sorted(self.chips.items()):
            if not (mask_nu >> ch) & 1:
                chip.io_update()


class _IOUpdateTTL(TTLOut):
    """The IO_UPDATE TTLOut, telling the Urukul model of its rising edges.

    Same events and timing as the wrapped :class:`TTLOut`; the DDS chips apply their
    buffered registers at the rising edge's timestamp.
    """

    def __init__(self, ttl: TTLOut, model: UrukulBusModel):
        # Share the wrapped driver's state instead of registering the channel again.
        self.__dict__.update(ttl.__dict__)
        self._model = model
        self._level = 0

    def _drive(self, level: int) -> None:
        engine = self.core.engine
        accepted = spi.submit_accepted(engine, self.target_o, level)
        if accepted:
            if engine.recording is None:
                self._edge(level)
            else:  # a DMA trace: the chips see the edge when it is played back
                engine.defer(lambda: self._edge(level))

    def snapshot(self) -> int:
        """The line's level (for ``RTIOEngine.keep_for_reset``)."""
        return self._level

    def restore(self, state: int) -> None:
        self._level = state

    def _edge(self, level: int) -> None:
        """The IO_UPDATE line changes (at once, or at DMA playback when recorded)."""
        engine = self.core.engine
        if level != self._level:
            engine.keep_for_reset(self, engine.tm.now)
        if level and not self._level:
            for chip in self._model.chips.values():
                if chip.buffer != chip.active:      # (else the update changes nothing)
                    engine.keep_for_reset(chip, engine.tm.now)
            self._model.io_update_edge()
        self._level = level

    @kernel
    def set_o(self, o):
        self._drive(1 if o else 0)

    @kernel
    def on(self):
        """Set IO_UPDATE high at the cursor (a rising edge updates the DDS chips)."""
        self._drive(1)

    @kernel
    def off(self):
        """Set IO_UPDATE low at the cursor."""
        self._drive(0)

    @kernel
    def pulse_mu(self, duration):
        """IO_UPDATE high for ``duration`` mu; advances the cursor by it."""
        self._drive(1)
        delay_mu(duration)
        self._drive(0)

    @kernel
    def pulse(self, duration):
        """IO_UPDATE high for ``duration`` seconds; advances the cursor by it."""
        self._drive(1)
        delay(duration)
        self._drive(0)


class _RegIOUpdate:
    """IO_UPDATE through the CFG register (no IO_UPDATE TTL): as ARTIQ's ``RegIOUpdate``."""

    def __init__(self, cpld: CPLD, chip_select: int):
        self.cpld = cpld
        self.core = cpld.core
        self.chip_select = chip_select

    @kernel
    def pulse_mu(self, duration):
        """Raise the CFG IO_UPDATE bit(s), wait ``duration`` mu, restore CFG."""
        cfg = self.cpld.cfg_reg
        if self.chip_select == CS_DDS_MULTI:
            self.cpld.cfg_io_update_all(0xF)
        else:
            self.cpld.cfg_io_update(self.chip_select & 3, True)
        delay_mu(duration)
        self.cpld.cfg_write(cfg)

    @kernel
    def pulse(self, duration):
        """Raise the CFG IO_UPDATE bit(s), wait ``duration`` s, restore CFG."""
        self.pulse_mu(self.core.seconds_to_mu(duration))


class _DummySync:
    """Stands for the SYNC clock generator when the CPLD has none: nothing to set."""

    def set_mu(self, ftw):
        return None


class CPLD:
    """Urukul CPLD SPI router and configuration interface (simulated).

    :param spi_device: SPI bus device name.
    :param io_update_device: IO_UPDATE TTLOut device name (None: IO_UPDATE via CFG).
    :param dds_reset_device: DDS reset TTLOut device name.
    :param sync_device: SYNC_IN TTLClockGen device name.
    :param sync_sel: SYNC source selection.
    :param clk_sel: reference clock selection.
    :param clk_div: reference clock divider code (0 variant default, 1: /1, 2: /2, 3: /4).
    :param rf_sw: initial CFG RF switch bits.
    :param refclk: reference clock frequency in Hz.
    :param att: initial attenuator register value (machine units, 8 bits per channel).
    :param sync_div: SYNC_IN divider (default 2 with a sync device).
    :param proto_rev: CPLD protocol revision (only 9 is simulated).
    """

    kernel_invariants = {"refclk", "bus", "core", "io_update", "clk_div", "proto_rev"}

    def __init__(self, dmgr, spi_device, io_update_device=None, dds_reset_device=None,
                 sync_device=None, sync_sel=0, clk_sel=0, clk_div=0, rf_sw=0,
                 refclk=125e6, att=0x00000000, sync_div=None, proto_rev=0x09,
                 core_device="core"):
        self.core = dmgr.get(core_device)
        self.refclk = refclk
        if not 0 <= clk_div <= 3:
            raise ValueError(f"Urukul clk_div must be 0 to 3, got {clk_div}")
        self.clk_div = clk_div
        if proto_rev == STA_PROTO_REV_8:
            raise ValueError("Urukul proto_rev 8 is not simulated (use proto_rev 9)")
        if proto_rev != STA_PROTO_REV_9:
            raise ValueError(f"Urukul unsupported proto_rev: {proto_rev}")
        self.proto_rev = proto_rev
        self.key = device_key(dmgr, spi_device=spi_device)
        self._dmgr = dmgr
        self._dds_keys: dict[int, str] = {}
        self.bus = dmgr.get(spi_device)
        self.model = UrukulBusModel(self)
        self.bus.attach_model(self.model)
        if io_update_device is not None:
            self.io_update = _IOUpdateTTL(dmgr.get(io_update_device), self.model)
        else:
            self.io_update = None
        if dds_reset_device is not None:
            self.dds_reset = dmgr.get(dds_reset_device)
        if sync_device is not None:
            self.sync = dmgr.get(sync_device)
            if sync_div is None:
                sync_div = 2
        else:
            self.sync = _DummySync()
            if sync_div is not None:
                raise ValueError("sync_div needs a sync_device")
            sync_div = 0
        profile = (DEFAULT_PROFILE << 9) | (DEFAULT_PROFILE << 6) | (DEFAULT_PROFILE << 3) \
            | DEFAULT_PROFILE
        #: Shadow of the CFG register (52 bits), as in ARTIQ.
        self.cfg_reg = np.int64(urukul_cfg(
            rf_sw=rf_sw, led=0, profile=profile, osk=0, drctl=0, drhold=0, io_update=0,
            mask_nu=0, clk_sel=clk_sel, sync_sel=sync_sel, rst=0, io_rst=0,
            clk_div=clk_div, att_en=0b1111))
        #: Shadow of the attenuator register (32 bits, 8 per channel).
        self.att_reg = np.int32(spi.to_int32(int(att)))
        self.sync_div = sync_div

    # -- simulation plumbing ----------------------------------------------------------

    def register_dds(self, channel: int, key: str, chip) -> None:
        """Called by a DDS driver: its device key and register model for ``channel``."""
        self._dds_keys[channel] = key
        self.model.chips[channel] = chip

    def dds_key(self, channel: int) -> str:
        """device_db key of the DDS on ``channel`` (0-3), for world events."""
        key = self._dds_keys.get(channel)
        if key is not None:
            return key
        try:
            ddb = self._dmgr.get_device_db()
        except Exception:
            ddb = {}
        for name, desc in ddb.items():
            args = desc.get("arguments", {}) if isinstance(desc, dict) else {}
            if args.get("cpld_device") == self.key and \
                    args.get("chip_select") == CS_DDS_CH0 + channel:
                self._dds_keys[channel] = name
                return name
        return f"{self.key}_ch{channel}"

    # -- CFG and status -------------------------------------------------------------

    @kernel
    def cfg_write(self, cfg):
        """Write the 52-bit CFG register (two SPI transfers, 896 mu); stored in
        :attr:`cfg_reg`."""
        cfg = int(cfg)
        self.bus.set_config_mu(SPI_CONFIG, 24, SPIT_CFG_WR, CS_CFG)
        self.bus.write(((cfg >> 28) & 0xFFFFFF) << 8)
        self.bus.set_config_mu(SPI_CONFIG | spi.SPI_END, 28, SPIT_CFG_WR, CS_CFG)
        self.bus.write((cfg & 0xFFFFFFF) << 4)
        self.cfg_reg = np.int64(cfg)

    @kernel
    def sta_read(self):
        """Read the status register (re-writes :attr:`cfg_reg` while shifting it out)."""
        cfg = int(self.cfg_reg)
        self.bus.set_config_mu(SPI_CONFIG, 24, SPIT_CFG_WR, CS_CFG)
        self.bus.write(((cfg >> 28) & 0xFFFFFF) << 8)
        self.bus.set_config_mu(SPI_CONFIG | spi.SPI_END | spi.SPI_INPUT, 28,
                               SPIT_CFG_RD, CS_CFG)
        self.bus.write((cfg & 0xFFFFFFF) << 4)
        return self.bus.read()

    @kernel
    def init(self, blind=False):
        """Initialize the Urukul: check the protocol revision (unless ``blind``), pulse
        IO_RST, write CFG, start SYNC if configured; ends 1 ms after (DDS wake-up)."""
        cfg = int(self.cfg_reg)
        self.cfg_reg = np.int64(cfg | (1 << CFG_IO_RST))
        self.bus.set_config_mu(SPI_CONFIG, 24, SPIT_CFG_WR, CS_CFG)
        delay(1 * us)
        if blind:
            self.cfg_write(self.cfg_reg)
        elif urukul_sta_proto_rev(self.sta_read()) != STA_PROTO_REV_9:
            raise ValueError("Urukul proto_rev mismatch")
        delay(100 * us)
        self.cfg_write(cfg)
        if self.sync_div:
            at_mu(now_mu() & ~0xF)
            self.set_sync_div(self.sync_div)
        delay(1 * ms)

    @kernel
    def io_rst(self):
        """Pulse IO_RST (two CFG writes)."""
        self.cfg_write(int(self.cfg_reg) | (1 << CFG_IO_RST))
        self.cfg_write(int(self.cfg_reg) & ~(1 << CFG_IO_RST))

    @kernel
    def set_profile(self, channel: TInt32, profile: TInt32):
        """Set the PROFILE pins of ``channel`` (0-3) to ``profile`` (0-7)."""
        _check_channel(channel)
        shift = CFG_PROFILE + 3 * channel
        cfg = int(self.cfg_reg) & ~(7 << shift)
        cfg |= (profile & 7) << shift
        self.cfg_write(cfg)

    @kernel
    def _configure_bit(self, bit_offset: TInt32, channel: TInt32, on: TBool):
        _check_channel(channel)
        c = int(self.cfg_reg)
        if on:
            c |= 1 << (bit_offset + channel)
        else:
            c &= ~(1 << (bit_offset + channel))
        self.cfg_write(c)

    @kernel
    def _configure_all_bits(self, bit_offset: TInt32, state: TInt32):
        self.cfg_write((int(self.cfg_reg) & ~(0xF << bit_offset))
                       | ((state & 0xF) << bit_offset))

    @kernel
    def cfg_mask_nu(self, channel: TInt32, on: TBool):
        """Set the MASK_NU bit of ``channel``."""
        self._configure_bit(CFG_MASK_NU, channel, on)

    @kernel
    def cfg_mask_nu_all(self, state: TInt32):
        """Set all four MASK_NU bits."""
        self._configure_all_bits(CFG_MASK_NU, state)

    @kernel
    def cfg_att_en(self, channel: TInt32, on: TBool):
        """Set the ATT_EN bit of ``channel``."""
        self._configure_bit(CFG_ATT_EN, channel, on)

    @kernel
    def cfg_att_en_all(self, state: TInt32):
        """Set all four ATT_EN bits."""
        self._configure_all_bits(CFG_ATT_EN, state)

    @kernel
    def cfg_osk(self, channel: TInt32, on: TBool):
        """Set the OSK bit of ``channel``."""
        self._configure_bit(CFG_OSK, channel, on)

    @kernel
    def cfg_osk_all(self, state: TInt32):
        """Set all four OSK bits."""
        self._configure_all_bits(CFG_OSK, state)

    @kernel
    def cfg_drctl(self, channel: TInt32, on: TBool):
        """Set the DRCTL bit of ``channel``."""
        self._configure_bit(CFG_DRCTL, channel, on)

    @kernel
    def cfg_drctl_all(self, state: TInt32):
        """Set all four DRCTL bits."""
        self._configure_all_bits(CFG_DRCTL, state)

    @kernel
    def cfg_drhold(self, channel: TInt32, on: TBool):
        """Set the DRHOLD bit of ``channel``."""
        self._configure_bit(CFG_DRHOLD, channel, on)

    @kernel
    def cfg_drhold_all(self, state: TInt32):
        """Set all four DRHOLD bits."""
        self._configure_all_bits(CFG_DRHOLD, state)

    @kernel
    def cfg_io_update(self, channel: TInt32, on: TBool):
        """Set the CFG IO_UPDATE bit of ``channel``."""
        self._configure_bit(CFG_IO_UPDATE, channel, on)

    @kernel
    def cfg_io_update_all(self, state: TInt32):
        """Set all four CFG IO_UPDATE bits."""
        self._configure_all_bits(CFG_IO_UPDATE, state)

    @kernel
    def cfg_sw(self, channel: TInt32, on: TBool):
        """Set the CFG RF switch bit of ``channel`` (OR-ed with its ``sw`` TTL)."""
        _check_channel(channel)
        c = int(self.cfg_reg)
        if on:
            c |= 1 << channel
        else:
            c &= ~(1 << channel)
        self.cfg_write(c)

    @kernel
    def cfg_switches(self, state: TInt32):
        """Set all four CFG RF switch bits."""
        self.cfg_write((int(self.cfg_reg) & ~0xF) | (state & 0xF))

    # -- attenuators ------------------------------------------------------------------

    @portable
    def mu_to_att(self, att_mu: TInt32) -> TFloat:
        """Attenuator machine units (255 = 0 dB, 0 = 31.5 dB) to dB."""
        return (255 - (att_mu & 0xFF)) / 8

    @portable
    def att_to_mu(self, att: TFloat) -> TInt32:
        """Attenuation in dB (0 to 31.5 dB, rounded to the nearest 1/8 dB step) to
        machine units; ValueError outside the range."""
        code = 255 - int(round(att * 8))
        if code < 0 or code > 255:
            raise ValueError("Invalid urukul.CPLD attenuation!")
        return np.int32(code)

    @kernel
    def set_att_mu(self, channel: TInt32, att: TInt32):
        """Set the attenuator of ``channel`` in machine units (writes all four from
        :attr:`att_reg`)."""
        _check_channel(channel)
        if not 0 <= att <= 255:
            raise ValueError(f"Invalid urukul.CPLD attenuation machine units: {att}")
        a = int(self.att_reg) & ~(0xFF << (channel * 8))
        a |= att << (channel * 8)
        self.set_all_att_mu(a)

    @kernel
    def set_all_att_mu(self, att_reg: TInt32):
        """Set all four attenuators from a 32-bit register value (1600 mu)."""
        self.bus.set_config_mu(SPI_CONFIG | spi.SPI_END, 32, SPIT_ATT_WR, CS_ATT)
        self.bus.write(att_reg)
        self.att_reg = np.int32(spi.to_int32(att_reg))

    @kernel
    def set_att(self, channel: TInt32, att: TFloat):
        """Set the attenuator of ``channel`` in dB."""
        self.set_att_mu(channel, self.att_to_mu(att))

    @kernel
    def get_att_mu(self) -> TInt32:
        """Read back all four attenuators (machine units), store in :attr:`att_reg`."""
        self.bus.set_config_mu(SPI_CONFIG | spi.SPI_INPUT, 32, SPIT_ATT_RD, CS_ATT)
        self.bus.write(0)
        self.bus.set_config_mu(SPI_CONFIG | spi.SPI_END, 32, SPIT_ATT_WR, CS_ATT)
        delay(10 * us)
        self.att_reg = np.int32(self.bus.read())
        self.bus.write(int(self.att_reg))
        return self.att_reg

    @kernel
    def get_channel_att_mu(self, channel: TInt32) -> TInt32:
        """Read back the attenuator of ``channel`` in machine units."""
        _check_channel(channel)
        return np.int32((int(self.get_att_mu()) >> (channel * 8)) & 0xFF)

    @kernel
    def get_channel_att(self, channel: TInt32) -> TFloat:
        """Read back the attenuator of ``channel`` in dB."""
        return self.mu_to_att(self.get_channel_att_mu(channel))

    @kernel
    def set_sync_div(self, div: TInt32):
        """Set the SYNC_IN divider (a power of two, 2 to 16) on the sync clock generator."""
        ftw_max = 1 << 4
        ftw = ftw_max // div
        if ftw * div != ftw_max:
            raise ValueError("SYNC_IN divider must be a power of two from 2 to 16")
        self.sync.set_mu(ftw)


class UrukulChannel:
    """The CPLD pass-throughs every Urukul DDS channel driver offers (AD9910, AD9912):
    attenuator and CFG bits of channel ``chip_select - 4``. Needs ``self.cpld`` and
    ``self.chip_select``."""

    @kernel
    def set_att_mu(self, att: TInt32):
        """Set this channel's attenuator in machine units (writes all four)."""
        self.cpld.set_att_mu(self.chip_select - 4, att)

    @kernel
    def set_att(self, att: TFloat):
        """Set this channel's attenuator in dB."""
        self.cpld.set_att(self.chip_select - 4, att)

    @kernel
    def get_att_mu(self) -> TInt32:
        """Read back this channel's attenuator in machine units."""
        return self.cpld.get_channel_att_mu(self.chip_select - 4)

    @kernel
    def get_att(self) -> TFloat:
        """Read back this channel's attenuator in dB."""
        return self.cpld.get_channel_att(self.chip_select - 4)

    @kernel
    def cfg_sw(self, state: TBool):
        """Set the CPLD CFG RF switch bit of this channel."""
        self.cpld.cfg_sw(self.chip_select - 4, state)

    @kernel
    def cfg_mask_nu(self, state: TBool):
        """Set the CPLD CFG MASK_NU bit of this channel."""
        self.cpld.cfg_mask_nu(self.chip_select - 4, state)

    @kernel
    def cfg_att_en(self, state: TBool):
        """Set the CPLD CFG ATT_EN bit of this channel."""
        self.cpld.cfg_att_en(self.chip_select - 4, state)


def _check_channel(channel: int) -> None:
    if not 0 <= channel <= 3:
        raise ValueError(f"Urukul channel must be 0 to 3, got {channel}")


# Kept for drivers written against ARTIQ's module layout.
RegIOUpdate = _RegIOUpdate
__all__ = ["CPLD", "RegIOUpdate", "UrukulBusModel", "urukul_cfg"]
