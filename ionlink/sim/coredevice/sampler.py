"""Simulated Sampler ADC (``artiq.coredevice.sampler.Sampler``): LTC2320-16 + PGIAs.

``sample_mu`` pulses CNV for 30 ns, waits 450 ns (t_CONV) and reads the 8 channels as
four 32-bit transfers (channel 7 first, two channels per word), as ARTIQ's driver does.
The input voltages are taken at the CNV rising edge from the world: if it has
``adc_volts(device, channel, t_mu)`` (volts at the PGIA input), else 0 V. Codes are
``round(V * gain / volt_per_lsb)`` clipped to int16, with ARTIQ's ``adc_mu_to_volt`` scale
(20.48 V / 2**16 at gain 1, divided by 10 per gain step; v2.1 hardware: 20 V).
"""

from __future__ import annotations

from artiq.language.core import delay, kernel, now_mu, portable
from artiq.language.units import ns

from ionlink.sim.coredevice import spi2 as spi

SPI_CONFIG = 0
SPI_CS_ADC = 0
SPI_CS_PGIA = 1


@portable
def adc_mu_to_volt(data, gain=0, corrected_fs=True):
    """ADC machine units to volts for a PGIA gain setting (0-3: x1, x10, x100, x1000)."""
    if not 0 <= gain <= 3:
        raise ValueError("invalid gain")
    full_scale = 20.48 if corrected_fs else 20.0
    return data * (full_scale / 10 ** gain / (1 << 16))


class _ADCModel:
    """The ADC's output shift register, loaded at each conversion."""

    def __init__(self) -> None:
        self.words: list[int] = []

    def snapshot(self) -> list[int]:
        """The words not shifted out yet (for ``RTIOEngine.keep_for_reset``)."""
        return list(self.words)

    def restore(self, state: list[int]) -> None:
        self.words = state

    def spi_transfer(self, cs: int, bits: int, length: int, flags: int) -> int:
        word = self.words.pop(0) if self.words else 0
        return word >> (32 - length)


class _PGIAModel:
    """The PGIA gain shift register (16 bit, latched at chip select release)."""

    def __init__(self, gains: int) -> None:
        self.sr = gains & 0xFFFF
        self.latched = self.sr

    def snapshot(self) -> tuple[int, int]:
        """Shift register and latched gains (for ``RTIOEngine.keep_for_reset``)."""
        return self.sr, self.latched

    def restore(self, state: tuple[int, int]) -> None:
        self.sr, self.latched = state

    def spi_transfer(self, cs: int, bits: int, length: int, flags: int) -> int:
        out = self.sr >> (16 - length) if length <= 16 else self.sr
        self.sr = ((self.sr << length) | bits) & 0xFFFF
        if flags & spi.SPI_END:
            self.latched = self.sr
        return out


class Sampler:
    """Sampler ADC (simulated).

    :param spi_adc_device: ADC SPI bus device name.
    :param spi_pgia_device: PGIA SPI bus device name.
    :param cnv_device: conversion TTLOut device name.
    :param div: SPI clock divider.
    :param gains: initial PGIA gains (2 bits per channel).
    :param hw_rev: hardware revision ("v2.1" uses the uncorrected 20 V full scale).
    """

    kernel_invariants = {"bus_adc", "bus_pgia", "core", "cnv", "div", "corrected_fs"}

    def __init__(self, dmgr, spi_adc_device, spi_pgia_device, cnv_device, div=8,
                 gains=0x0000, hw_rev="v2.2", core_device="core"):
        self.bus_adc = dmgr.get(spi_adc_device)
        self.bus_adc.update_xfer_duration_mu(div, 32)
        self.bus_pgia = dmgr.get(spi_pgia_device)
        self.bus_pgia.update_xfer_duration_mu(div, 16)
        self.core = dmgr.get(core_device)
        self.cnv = dmgr.get(cnv_device)
        self.div = div
        self.gains = gains
        self.corrected_fs = self.use_corrected_fs(hw_rev)
        self.key = getattr(dmgr, "creating", None) or "sampler_" + spi_adc_device
        self._adc = _ADCModel()
        self._pgia = _PGIAModel(gains)
        self.bus_adc.attach_model(self._adc)
        self.bus_pgia.attach_model(self._pgia)

    @staticmethod
    def use_corrected_fs(hw_rev):
        return hw_rev != "v2.1"

    @kernel
    def init(self):
        """Configure both SPI buses (two config writes, 16 mu)."""
        self.bus_adc.set_config_mu(SPI_CONFIG | spi.SPI_INPUT | spi.SPI_END, 32, self.div,
                                   SPI_CS_ADC)
        self.bus_pgia.set_config_mu(SPI_CONFIG | spi.SPI_END, 16, self.div, SPI_CS_PGIA)

    @kernel
    def set_gain_mu(self, channel, gain):
        """Set the PGIA gain (0-3) of ``channel`` (0-7): one 16-bit transfer."""
        if not 0 <= channel <= 7 or not 0 <= gain <= 3:
            raise ValueError("Sampler channel 0-7 and gain 0-3 expected")
        gains = self.gains
        gains &= ~(0b11 << (channel * 2))
        gains |= gain << (channel * 2)
        self.bus_pgia.write(gains << 16)
        self.gains = gains

    @kernel
    def get_gains_mu(self):
        """Read back the PGIA gains of all channels."""
        self.bus_pgia.set_config_mu(SPI_CONFIG | spi.SPI_END | spi.SPI_INPUT, 16, self.div,
                                    SPI_CS_PGIA)
        self.bus_pgia.write(self.gains << 16)
        self.bus_pgia.set_config_mu(SPI_CONFIG | spi.SPI_END, 16, self.div, SPI_CS_PGIA)
        self.gains = self.bus_pgia.read() & 0xFFFF
        return self.gains

    def _convert(self, t_mu: int) -> None:
        world = self.core.engine.world
        source = getattr(world, "adc_volts", None)
        codes = []
        for ch in range(8):
            volts = float(source(self.key, ch, t_mu)) if source is not None else 0.0
            gain = (self._pgia.latched >> (2 * ch)) & 3
            code = int(round(volts / adc_mu_to_volt(1, gain, self.corrected_fs)))
            codes.append(min(max(code, -0x8000), 0x7FFF))
        self._adc.words = [((codes[ch] & 0xFFFF) << 16) | (codes[ch - 1] & 0xFFFF)
                           for ch in (7, 5, 3, 1)]

    @kernel
    def sample_mu(self, data):
        """Convert and read ``len(data)`` channels (the last ones, channel 7 last) in
        machine units; advances the cursor by 480 mu + len(data)/2 transfers."""
        self._convert(int(now_mu()))
        self.cnv.pulse(30 * ns)
        delay(450 * ns)
        mask = 1 << 15
        for _ in range(len(data) // 2):
            self.bus_adc.write(0)
        for i in range(len(data) - 1, -1, -2):
            val = self.bus_adc.read()
            data[i] = val >> 16
            val &= 0xFFFF
            data[i - 1] = -(val & mask) + (val & ~mask)

    @kernel
    def sample(self, data):
        """As :meth:`sample_mu` with the results in volts."""
        n = len(data)
        adc_data = [0] * n
        self.sample_mu(adc_data)
        for i in range(n):
            channel = i + 8 - n
            gain = (self.gains >> (channel * 2)) & 0b11
            data[i] = adc_mu_to_volt(adc_data[i], gain, self.corrected_fs)
