"""Everything an experiment imports with ``from artiq.experiment import *``, as
``artiq.experiment``: the language API plus the RTIO exceptions ``RTIOUnderflow`` and
``RTIOOverflow`` (from the simulated core device, :mod:`ionlink.sim.coredevice`)."""

from ionlink.sim import coredevice  # noqa: F401 - artiq.experiment.coredevice, as in ARTIQ
from ionlink.sim.coredevice.exceptions import RTIOOverflow, RTIOUnderflow  # noqa: F401

from . import language
from .language import *  # noqa: F403

__all__ = []
__all__.extend(language.__all__)
__all__.extend(["RTIOUnderflow", "RTIOOverflow"])
