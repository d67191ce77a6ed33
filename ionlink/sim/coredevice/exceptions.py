"""Core-device exceptions, as ``artiq.coredevice.exceptions`` defines them.

Served as ``artiq.coredevice.exceptions`` when ARTIQ is not installed. Where ARTIQ is
installed the simulated drivers import ``artiq.coredevice.exceptions`` and so raise
ARTIQ's own classes, and experiments that catch them work unchanged under both.
"""

import builtins

AssertionError = builtins.AssertionError
AttributeError = builtins.AttributeError
IndexError = builtins.IndexError
IOError = builtins.IOError
KeyError = builtins.KeyError
NotImplementedError = builtins.NotImplementedError
OverflowError = builtins.OverflowError
RuntimeError = builtins.RuntimeError
TimeoutError = builtins.TimeoutError
TypeError = builtins.TypeError
ValueError = builtins.ValueError
ZeroDivisionError = builtins.ZeroDivisionError
OSError = builtins.OSError


class RTIOUnderflow(Exception):
    """Raised when the CPU or DMA core fails to submit a RTIO event early enough
    (with respect to the event's timestamp).

    The offending event is discarded and the RTIO core keeps operating.
    """

    artiq_builtin = True


class RTIOOverflow(Exception):
    """Raised when at least one event could not be registered into the RTIO input
    FIFO because it was full (CPU not reading fast enough).

    This does not interrupt operations further than cancelling the current read
    attempt and discarding some events. Reading can be reattempted after the
    exception is caught, and events will be partially retrieved.
    """

    artiq_builtin = True


class RTIODestinationUnreachable(Exception):
    """Raised when a RTIO operation could not be completed due to a DRTIO link
    being down."""

    artiq_builtin = True


class DMAError(Exception):
    """Raised when performing an invalid DMA operation."""

    artiq_builtin = True


class ClockFailure(Exception):
    """Raised when RTIO PLL has lost lock."""

    artiq_builtin = True


class I2CError(Exception):
    """Raised when a I2C transaction fails."""

    artiq_builtin = True


class SPIError(Exception):
    """Raised when a SPI transaction fails."""

    artiq_builtin = True


class CacheError(Exception):
    """Raised when putting a value into a cache row would violate memory safety."""

    artiq_builtin = True


class SubkernelError(Exception):
    """Raised when an operation regarding a subkernel is invalid or cannot be completed."""

    artiq_builtin = True
