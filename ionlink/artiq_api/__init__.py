"""ionlink's stand-in for the ``artiq`` package, used only where ARTIQ is not installed.

When ``import artiq`` would fail, ionlink's import hook (:mod:`ionlink._artiq_fallback`)
serves ``artiq.X`` from ``ionlink.artiq_api.X`` (and ``artiq.coredevice.*`` from the
simulated drivers in :mod:`ionlink.sim.coredevice`). It provides ARTIQ's public language
API (``artiq.experiment``, ``artiq.language.*``) with the same names, signatures and
host-side behaviour as ARTIQ 9, so experiments written with ``from artiq.experiment import *``
run unchanged in the simulation. A real ARTIQ installation always takes precedence.
"""

import os

__version__ = "9.0+ionlink"

#: Marks this package as ionlink's stand-in (see ``ionlink._artiq_fallback.artiq_is_real``).
__ionlink_stand_in__ = True

__artiq_dir__ = os.path.dirname(os.path.abspath(__file__))
del os
