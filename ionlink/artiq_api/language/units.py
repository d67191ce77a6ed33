"""SI unit multipliers, as ``artiq.language.units`` defines them.

Each name is the value of one unit in SI base units: ``10*us == 1e-5`` (seconds),
``MHz == 1e6`` (hertz). ``dB`` is 1.0 (a plain marker used for display).
"""

__all__ = ["ps", "ns", "us", "ms", "s",
           "mHz", "Hz", "kHz", "MHz", "GHz",
           "dB",
           "uV", "mV", "V", "kV",
           "uA", "mA", "A",
           "nW", "uW", "mW", "W"]

# Time, in seconds.
ps = 1e-12
ns = 1e-9
us = 1e-6
ms = 1e-3
s = 1.0

# Frequency, in hertz.
mHz = 1e-3
Hz = 1.0
kHz = 1e3
MHz = 1e6
GHz = 1e9

# Ratio marker (no scaling).
dB = 1.0

# Voltage, in volts.
uV = 1e-6
mV = 1e-3
V = 1.0
kV = 1e3

# Current, in amperes.
uA = 1e-6
mA = 1e-3
A = 1.0

# Power, in watts.
nW = 1e-9
uW = 1e-6
mW = 1e-3
W = 1.0


def scale_of_unit(unit: str) -> float:
    """Return the multiplier of a unit name from this module ("ms" -> 0.001, "" -> 1.0).

    Raises KeyError, as ARTIQ's argument processors do, for a name that is not a unit here.
    """
    if unit == "":
        return 1.0
    if unit not in __all__:
        raise KeyError(f"Unit {unit} is unknown, you must specify the scale manually")
    return globals()[unit]
