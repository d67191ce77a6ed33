"""Scan objects and the ``Scannable`` argument, as ``artiq.language.scan``.

A scan object is an iterable of numbers with a ``len`` and a ``describe()`` dictionary
(the form the dashboard submits, e.g. ``{"ty": "RangeScan", "start": 0.0, "stop": 1e-6,
"npoints": 11, "randomize": False, "seed": None}``). Iterating again gives the same
values; concurrent iterators are independent. Point values and orders are those ARTIQ
produces (randomised orders use :class:`random.Random` seeded with ``seed``, as ARTIQ).
"""

import inspect
import random
from itertools import product

from .environment import DefaultMissing, NoDefault, _deprecated_ndecimals
from .units import scale_of_unit

__all__ = ["ScanObject",
           "NoScan", "RangeScan", "CenterScan", "ExplicitScan",
           "Scannable", "MultiScanManager"]


class ScanObject:
    """A one-dimensional sweep: iterate over it to get the values to scan."""

    def __iter__(self):
        raise NotImplementedError

    def __len__(self):
        raise NotImplementedError

    def describe(self):
        raise NotImplementedError


class NoScan(ScanObject):
    """The single ``value``, yielded ``repetitions`` times."""

    def __init__(self, value, repetitions=1):
        self.value = value
        self.repetitions = repetitions

    def __iter__(self):
        return (self.value for _ in range(self.repetitions))

    def __len__(self):
        return self.repetitions

    def describe(self):
        return {"ty": "NoScan", "value": self.value, "repetitions": self.repetitions}


def _shuffled_if(values, randomize, seed):
    if randomize:
        random.Random(seed).shuffle(values)
    return values


class RangeScan(ScanObject):
    """``npoints`` evenly spaced values from ``start`` to ``stop`` inclusive (``[start]`` when
    ``npoints`` is 1), in random order when ``randomize`` (reproducible with ``seed``)."""

    def __init__(self, start, stop, npoints, randomize=False, seed=None):
        self.start = start
        self.stop = stop
        self.npoints = npoints
        self.randomize = randomize
        self.seed = seed
        if npoints == 1:
            values = [start]
        elif npoints <= 0:
            values = []
        else:
            spacing = (stop - start) / (npoints - 1)
            values = [i * spacing + start for i in range(npoints)]
        self.sequence = _shuffled_if(values, randomize, seed)

    def __iter__(self):
        return iter(self.sequence)

    def __len__(self):
        return self.npoints

    def describe(self):
        return {"ty": "RangeScan", "start": self.start, "stop": self.stop,
                "npoints": self.npoints, "randomize": self.randomize, "seed": self.seed}


class CenterScan(ScanObject):
    """Values ``step`` apart within ``span`` around ``center``.

    As in ARTIQ, the order is ``center, center - step, center + step, center - 2*step, ...``
    and values farther than ``span / 2`` from the center are left out; ``step == 0`` gives no
    values. In random order when ``randomize`` (reproducible with ``seed``).
    """

    def __init__(self, center, span, step, randomize=False, seed=None):
        self.center = center
        self.span = span
        self.step = step
        self.randomize = randomize
        self.seed = seed
        if step == 0.0:
            values = []
        else:
            steps_each_side = int(span / (2.0 * step))
            values = [center + 0 * step]  # as ARTIQ: a float when step is
            for i in range(1, steps_each_side + 1):
                values.append(center - i * step)
                values.append(center + i * step)
            if steps_each_side < 0:
                values = []
        self.sequence = _shuffled_if(values, randomize, seed)

    def __iter__(self):
        return iter(self.sequence)

    def __len__(self):
        return len(self.sequence)

    def describe(self):
        return {"ty": "CenterScan", "center": self.center, "step": self.step,
                "span": self.span, "randomize": self.randomize, "seed": self.seed}


class ExplicitScan(ScanObject):
    """The values of ``sequence``, in order."""

    def __init__(self, sequence):
        self.sequence = sequence

    def __iter__(self):
        return iter(self.sequence)

    def __len__(self):
        return len(self.sequence)

    def describe(self):
        return {"ty": "ExplicitScan", "sequence": self.sequence}


_SCAN_TYPES = {"NoScan": NoScan, "RangeScan": RangeScan,
               "CenterScan": CenterScan, "ExplicitScan": ExplicitScan}


class Scannable:
    """An argument whose value is a scan object.

    :param default: the default scan object, or a list of them (the first is the default;
        the others preset the other scan types in a user interface).
    :param unit: unit shown to the user; when ``scale`` is not given it is the unit's
        multiplier from :mod:`.units` (unknown unit: KeyError).
    :param scale: factor from displayed values to the values the experiment sees.
    :param global_step: step of the up/down buttons (default ``scale / 10``).
    :param global_min: smallest value a user interface allows, for every scan type.
    :param global_max: largest value a user interface allows, for every scan type.
    :param precision: decimals a user interface shows.
    :param ndecimals: deprecated name of ``precision``.
    """

    def __init__(self, default=NoDefault, unit="", *, scale=None, global_step=None,
                 global_min=None, global_max=None, precision=2, ndecimals=None):
        precision = _deprecated_ndecimals(precision, ndecimals)
        if scale is None:
            scale = scale_of_unit(unit)
        if global_step is None:
            global_step = scale / 10.0
        if default is not NoDefault:
            self.default_values = default if isinstance(default, list) else [default]
        self.unit = unit
        self.scale = scale
        self.global_step = global_step
        self.global_min = global_min
        self.global_max = global_max
        self.precision = precision

    def default(self):
        """Return the default scan object; raise DefaultMissing when there is none."""
        if not hasattr(self, "default_values"):
            raise DefaultMissing
        return self.default_values[0]

    def process(self, x):
        """Build the scan object described by ``x``, e.g. ``{"ty": "RangeScan", "start": 0,
        "stop": 1, "npoints": 11}``; keys the scan type does not take are ignored. A scan
        object is returned unchanged."""
        if isinstance(x, ScanObject):
            return x
        if not isinstance(x, dict) or "ty" not in x:
            raise ValueError(f"Scannable value {x!r} is not a scan description "
                             "(a dict with a 'ty' key)")
        scan_type = _SCAN_TYPES.get(x["ty"])
        if scan_type is None:
            raise ValueError(f"unknown scan type {x['ty']!r}: expected one of "
                             f"{', '.join(_SCAN_TYPES)}")
        parameters = inspect.getfullargspec(scan_type).args[1:]
        given = {name: x[name] for name in parameters if name in x}
        try:
            return scan_type(**given)
        except TypeError as e:
            raise ValueError(f"invalid {x['ty']} description {x!r}: {e}") from None

    def describe(self):
        """Return the description the dashboard uses."""
        description = {"ty": "Scannable"}
        if hasattr(self, "default_values"):
            description["default"] = [scan.describe() for scan in self.default_values]
        description.update(unit=self.unit, scale=self.scale, global_step=self.global_step,
                           global_min=self.global_min, global_max=self.global_max,
                           precision=self.precision)
        return description


class MultiScanManager:
    """Iterate over every combination of several named scans (the Cartesian product, the
    last scan varying fastest).

    :param args: ``(name, scan_object)`` pairs. Each point yielded has one attribute per
        name holding that scan's value at the point.
    """

    def __init__(self, *args):
        self.names = [name for name, _ in args]
        self.scan_objects = [scan for _, scan in args]

        class ScanPoint:
            def __init__(self, **values):
                self.attr = set()
                for name, value in values.items():
                    setattr(self, name, value)
                    self.attr.add(name)

            def __repr__(self):
                inside = " ".join(f"{name}={getattr(self, name)}" for name in self.attr)
                return "<ScanPoint " + inside + ">"

        self.scan_point_cls = ScanPoint

    def __iter__(self):
        for values in product(*self.scan_objects):
            yield self.scan_point_cls(**dict(zip(self.names, values, strict=True)))
