"""Simulated Zotino (``artiq.coredevice.zotino.Zotino``): an AD5372 (:mod:`.ad53xx`)
and 8 LEDs on one SPI bus (chip select 1 the DAC, 2 the LED shift register)."""

from __future__ import annotations

from artiq.language.core import kernel

from ionlink.sim.coredevice import spi2 as spi
from ionlink.sim.coredevice.ad53xx import SPI_AD53XX_CONFIG, AD53xx

_SPI_SR_CONFIG = spi.SPI_END
_SPI_CS_DAC = 1
_SPI_CS_SR = 2


class Zotino(AD53xx):
    """Zotino 32-channel 16-bit DAC (simulated); see :class:`AD53xx`."""

    led_chip_select = _SPI_CS_SR

    def __init__(self, dmgr, spi_device, ldac_device=None, clr_device=None, div_write=4,
                 div_read=16, vref=5.0, core="core"):
        AD53xx.__init__(self, dmgr=dmgr, spi_device=spi_device, ldac_device=ldac_device,
                        clr_device=clr_device, chip_select=_SPI_CS_DAC,
                        div_write=div_write, div_read=div_read, vref=vref, core=core)

    @kernel
    def set_leds(self, leds):
        """Set the 8 user LEDs (one 8-bit transfer, then reconfigure for the DAC)."""
        self.bus.set_config_mu(_SPI_SR_CONFIG, 8, self.div_write, _SPI_CS_SR)
        self.bus.write(leds << 24)
        self.bus.set_config_mu(SPI_AD53XX_CONFIG, 24, self.div_write, self.chip_select)
