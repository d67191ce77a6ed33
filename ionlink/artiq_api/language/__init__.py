"""ARTIQ's language API, as ``artiq.language``: core decorators and timeline functions,
types, environment (arguments, devices, datasets), units and scans."""

from . import core, environment, scan, types, units
from .core import *  # noqa: F403
from .environment import *  # noqa: F403
from .scan import *  # noqa: F403
from .types import *  # noqa: F403
from .units import *  # noqa: F403

__all__ = []
__all__.extend(core.__all__)
__all__.extend(types.__all__)
__all__.extend(environment.__all__)
__all__.extend(units.__all__)
__all__.extend(scan.__all__)
