"""ionlink: control and data acquisition for a trapped-ion quantum-network node.

Importing :mod:`ionlink` makes ``artiq`` and ``sipyco`` importable where they are not
installed, served by ionlink's simulation (see :mod:`ionlink._artiq_fallback`); a real
installation always takes precedence.
"""

from ionlink import _artiq_fallback

_artiq_fallback.install()

__version__ = "0.1.0"
