"""Experiment environment (arguments, devices, datasets), as ``artiq.language.environment``.

Argument processors turn a submitted value into the value the experiment sees:
``process(value)`` validates and converts it, ``default()`` gives the default (or raises
:class:`DefaultMissing`) and ``describe()`` gives the dictionary the dashboard shows.

:class:`HasEnvironment` gives experiments access to the managers the runner supplies:
``managers_or_parent`` is either ``(device_mgr, dataset_mgr, argument_mgr,
scheduler_defaults)`` or a parent environment whose managers the child shares. The
managers are called exactly as ARTIQ's worker calls them:
``device_mgr.get(key)``, ``device_mgr.get_device_db()``,
``argument_mgr.get(key, processor, group, tooltip)``,
``argument_mgr.get_interactive(arglist, title)``,
``dataset_mgr.set(key, value, metadata, broadcast, persist, archive)``,
``dataset_mgr.mutate(key, index, value)``, ``dataset_mgr.append_to(key, value)``,
``dataset_mgr.get(key, archive)`` and ``dataset_mgr.get_metadata(key)``.

Differences from ARTIQ, all on bad input only: ``NumberValue.process`` enforces ``min`` and
``max``; the ``ndecimals`` deprecation is a :class:`DeprecationWarning` (ARTIQ prints it);
errors name the offending value.
"""

import warnings
from contextlib import contextmanager
from inspect import isclass
from types import SimpleNamespace

from ionlink.runner import pyon

from .core import rpc
from .units import scale_of_unit

__all__ = ["NoDefault", "DefaultMissing",
           "PYONValue", "BooleanValue", "EnumerationValue",
           "NumberValue", "StringValue",
           "HasEnvironment", "Experiment", "EnvExperiment",
           "CancelledArgsError"]


class NoDefault:
    """Marker for "no default value given"."""


class DefaultMissing(Exception):
    """Raised by an argument processor's ``default()`` when it has no default value."""


class CancelledArgsError(Exception):
    """Raised by :meth:`HasEnvironment.interactive` when the user cancels the request."""


def _deprecated_ndecimals(precision, ndecimals):
    """Return the precision to use, warning when the deprecated ``ndecimals`` is given."""
    if ndecimals is None:
        return precision
    warnings.warn("'ndecimals' is deprecated. Please use 'precision' instead.",
                  DeprecationWarning, stacklevel=3)
    return ndecimals


class _SimpleArgProcessor:
    """Base of the processors whose default is one value, passed through ``process``."""

    def __init__(self, default=NoDefault):
        if isinstance(default, list):
            raise NotImplementedError(
                f"{type(self).__name__}: a list of default values is not supported")
        if default is not NoDefault:
            self.default_value = self.process(default)

    def default(self):
        """Return the default value; raise DefaultMissing when there is none."""
        if not hasattr(self, "default_value"):
            raise DefaultMissing
        return self.default_value

    def process(self, x):
        """Return the value the experiment sees for the submitted value ``x``."""
        return x

    def describe(self):
        """Return the description the dashboard uses: ``{"ty": ..., "default": ...}``."""
        description = {"ty": type(self).__name__}
        if hasattr(self, "default_value"):
            description["default"] = self.default_value
        return description


class PYONValue(_SimpleArgProcessor):
    """An argument holding any PYON-serialisable value, submitted as PYON text."""

    def __init__(self, default=NoDefault):
        # The default is kept as given (not processed): lists are valid PYON values.
        if default is not NoDefault:
            self.default_value = default

    def process(self, x):
        """Decode the PYON text ``x``."""
        return pyon.decode(x)

    def describe(self):
        """Describe the argument; the default is given as PYON text."""
        description = {"ty": type(self).__name__}
        if hasattr(self, "default_value"):
            description["default"] = pyon.encode(self.default_value)
        return description


class BooleanValue(_SimpleArgProcessor):
    """A boolean argument (only ``True`` or ``False`` are accepted)."""

    def process(self, x):
        if type(x) is not bool:
            raise ValueError(f"Invalid BooleanValue value {x!r}: expected True or False")
        return x


class EnumerationValue(_SimpleArgProcessor):
    """A string argument taking one of ``choices``.

    :param choices: the allowed strings.
    :param quickstyle: show the choices as buttons that submit the experiment.
    """

    def __init__(self, choices, default=NoDefault, quickstyle=False):
        self.choices = choices
        self.quickstyle = quickstyle
        super().__init__(default)

    def process(self, x):
        if x not in self.choices:
            raise ValueError(f"Invalid EnumerationValue value {x!r}: "
                             f"expected one of {list(self.choices)}")
        return x

    def describe(self):
        description = super().describe()
        description["choices"] = self.choices
        description["quickstyle"] = self.quickstyle
        return description


class NumberValue(_SimpleArgProcessor):
    """A numerical argument.

    With ``type="auto"`` the value is an ``int`` when ``precision == 0``, ``scale == 1`` and
    ``step`` is a whole number, otherwise a ``float``; ``type="int"`` requires those
    settings (ValueError otherwise); ``type="float"`` always gives a float.

    :param unit: unit shown to the user. When ``scale`` is not given it is the unit's
        multiplier from :mod:`.units` (``"ms"`` -> 0.001; no unit -> 1.0); an unknown unit
        then raises KeyError.
    :param scale: factor from the displayed number to the value the experiment sees.
    :param step: step of the up/down buttons (default ``scale / 10``).
    :param min: smallest allowed value (in experiment units), or None.
    :param max: largest allowed value (in experiment units), or None.
    :param precision: number of decimals a user interface shows.
    :param type: ``"auto"``, ``"int"`` or ``"float"``.
    :param ndecimals: deprecated name of ``precision``.
    """

    valid_types = ["auto", "float", "int"]

    def __init__(self, default=NoDefault, unit="", *, scale=None, step=None, min=None,
                 max=None, precision=2, type="auto", ndecimals=None):
        precision = _deprecated_ndecimals(precision, ndecimals)
        if scale is None:
            scale = scale_of_unit(unit)
        if step is None:
            step = scale / 10.0
        self.unit = unit
        self.scale = scale
        self.step = step
        self.min = min
        self.max = max
        self.precision = precision
        self.type = type

        if self.type not in NumberValue.valid_types:
            raise TypeError("type must be 'float', 'int' or 'auto'")
        if self.type == "int" and not self._is_int_compatible():
            raise ValueError("Value marked as integer but settings are not compatible. "
                             "Please set precision = 0, scale = 1 and step to an integer")
        super().__init__(default)

    def _is_int_compatible(self):
        """True when precision, step and scale allow the value to be an integer."""
        return self.precision == 0 and int(self.step) == self.step and self.scale == 1

    def _is_int(self):
        """True when processed values are ints."""
        return self.type == "int" or (self.type == "auto" and self._is_int_compatible())

    def process(self, x):
        value = int(x) if self._is_int() else float(x)
        if self.min is not None and value < self.min:
            raise ValueError(f"NumberValue value {value} is below its minimum {self.min}")
        if self.max is not None and value > self.max:
            raise ValueError(f"NumberValue value {value} is above its maximum {self.max}")
        return value

    def describe(self):
        description = {"ty": type(self).__name__}
        if hasattr(self, "default_value"):
            description["default"] = self.default_value
        description.update(unit=self.unit, scale=self.scale, step=self.step, min=self.min,
                           max=self.max, precision=self.precision, type=self.type)
        return description


class StringValue(_SimpleArgProcessor):
    """A string argument."""


class HasEnvironment:
    """Gives access to the environment of an experiment: arguments, devices, datasets.

    :param managers_or_parent: ``(device_mgr, dataset_mgr, argument_mgr,
        scheduler_defaults)`` for a top-level experiment, or the parent
        :class:`HasEnvironment` for a child (which shares the parent's managers and is
        registered with it).
    Further positional and keyword arguments are passed to :meth:`build`.
    """

    def __init__(self, managers_or_parent, *args, **kwargs):
        self.children = []
        if isinstance(managers_or_parent, tuple):
            if len(managers_or_parent) != 4:
                raise TypeError("managers_or_parent must be (device_mgr, dataset_mgr, "
                                "argument_mgr, scheduler_defaults), got a tuple of "
                                f"{len(managers_or_parent)} items")
            (self.__device_mgr, self.__dataset_mgr, self.__argument_mgr,
             self.__scheduler_defaults) = managers_or_parent
        elif isinstance(managers_or_parent, HasEnvironment):
            self.__device_mgr = managers_or_parent.__device_mgr
            self.__dataset_mgr = managers_or_parent.__dataset_mgr
            self.__argument_mgr = managers_or_parent.__argument_mgr
            self.__scheduler_defaults = {}
            managers_or_parent.register_child(self)
        else:
            raise TypeError("managers_or_parent must be a tuple of managers or a parent "
                            f"HasEnvironment, not {type(managers_or_parent).__name__}")

        self.__in_build = True
        self.build(*args, **kwargs)
        self.__in_build = False

    def register_child(self, child):
        """Record ``child`` for :meth:`call_child_method`."""
        self.children.append(child)

    def call_child_method(self, method, *args, **kwargs):
        """Call ``method`` (a name) on every registered child that has it, in registration
        order, with the given arguments."""
        for child in self.children:
            child_method = getattr(child, method, None)
            if child_method is not None:
                child_method(*args, **kwargs)

    def build(self):
        """Request arguments and devices; override in experiments.

        Called from the constructor with its leftover arguments. When the repository is
        scanned, devices are dummies and arguments their defaults (or None): do not
        operate on them here. Datasets are read-only here.
        """

    def get_argument(self, key, processor, group=None, tooltip=None):
        """Return the value of argument ``key`` as ``processor`` makes it (only in build).

        :param processor: e.g. ``NumberValue(...)``, ``BooleanValue(...)``, ``Scannable(...)``.
        :param group: optional group name for user interfaces.
        :param tooltip: optional longer description for user interfaces.
        """
        if not self.__in_build:
            raise TypeError("get_argument() should only be called from build()")
        return self.__argument_mgr.get(key, processor, group, tooltip)

    def setattr_argument(self, key, processor=None, group=None, tooltip=None):
        """Set attribute ``key`` to the argument's value and add ``key`` to the kernel
        invariants."""
        setattr(self, key, self.get_argument(key, processor, group, tooltip))
        self.kernel_invariants = getattr(self, "kernel_invariants", set()) | {key}

    @contextmanager
    def interactive(self, title=""):
        """Ask the user for arguments while the experiment runs.

        Inside the ``with`` block call ``setattr_argument`` on the yielded namespace; at the
        end of the block the argument manager's ``get_interactive(arglist, title)`` supplies
        the values, which become attributes of the namespace. A cancelled request raises
        :class:`CancelledArgsError`. ionlink's own argument managers run without a user and
        raise NotImplementedError here.
        """
        requested = []
        namespace = SimpleNamespace()

        def setattr_argument(key, processor=None, group=None, tooltip=None):
            requested.append((key, processor, group, tooltip))

        namespace.setattr_argument = setattr_argument
        yield namespace
        del namespace.setattr_argument
        values = self.__argument_mgr.get_interactive(requested, title)
        if values is None:
            raise CancelledArgsError
        for key, value in values.items():
            setattr(namespace, key, value)

    def get_device_db(self):
        """Return the full contents of the device database."""
        return self.__device_mgr.get_device_db()

    def get_device(self, key):
        """Return the driver (or controller client) of device ``key``."""
        return self.__device_mgr.get(key)

    def setattr_device(self, key):
        """Set attribute ``key`` to device ``key`` and add it to the kernel invariants."""
        setattr(self, key, self.get_device(key))
        self.kernel_invariants = getattr(self, "kernel_invariants", set()) | {key}

    @rpc(flags={"async"})
    def set_dataset(self, key, value, *, unit=None, scale=None, precision=None,
                    broadcast=False, persist=False, archive=True):
        """Set dataset ``key`` to ``value`` and how it is kept.

        :param unit: unit name shown with the value.
        :param scale: factor the value is divided by for display.
        :param precision: decimals shown (None: as many as needed).
        :param broadcast: publish the value live to the master's dataset database.
        :param persist: keep the value in the database across runs (implies broadcast).
        :param archive: store the value in this run's HDF5 results file.
        """
        metadata = {}
        if unit is not None:
            metadata["unit"] = unit
        if scale is not None:
            metadata["scale"] = scale
        if precision is not None:
            metadata["precision"] = precision
        self.__dataset_mgr.set(key, value, metadata, broadcast, persist, archive)

    @rpc(flags={"async"})
    def mutate_dataset(self, key, index, value):
        """Set ``dataset[index] = value`` in a dataset set earlier by this experiment.

        A tuple of integers as ``index`` means ``slice(*index)``; a tuple of tuples means one
        slice per dimension. Broadcast datasets publish the change at once.
        """
        self.__dataset_mgr.mutate(key, index, value)

    @rpc(flags={"async"})
    def append_to_dataset(self, key, value):
        """Append ``value`` to a list dataset set earlier by this experiment (its
        broadcast/persist/archive modes are kept)."""
        self.__dataset_mgr.append_to(key, value)

    def get_dataset(self, key, default=NoDefault, archive=True):
        """Return dataset ``key``: this run's own value first, else the database's.

        :param default: returned when the dataset does not exist (else KeyError).
        :param archive: record a value read from the database in the results file
            (only the first read is archived).
        """
        try:
            return self.__dataset_mgr.get(key, archive)
        except KeyError:
            if default is NoDefault:
                raise
            return default

    def get_dataset_metadata(self, key, default=NoDefault):
        """Return the metadata dict (``unit``, ``scale``, ``precision``) of dataset ``key``.

        :param default: returned when the dataset does not exist (else KeyError).
        """
        try:
            return self.__dataset_mgr.get_metadata(key)
        except KeyError:
            if default is NoDefault:
                raise
            return default

    def setattr_dataset(self, key, default=NoDefault, archive=True):
        """Set attribute ``key`` to dataset ``key`` (see :meth:`get_dataset`)."""
        setattr(self, key, self.get_dataset(key, default, archive))

    def set_default_scheduling(self, priority=None, pipeline_name=None, flush=None):
        """Set the default priority, pipeline and flush of the experiment (only in build)."""
        if not self.__in_build:
            raise TypeError("set_default_scheduling() should only be called from build()")
        if priority is not None:
            self.__scheduler_defaults["priority"] = int(priority)
        if pipeline_name is not None:
            self.__scheduler_defaults["pipeline_name"] = pipeline_name
        if flush is not None:
            self.__scheduler_defaults["flush"] = flush


class Experiment:
    """Base class of top-level experiments (makes them discoverable in a module)."""

    def prepare(self):
        """Pre-compute what the run needs; must not touch the hardware."""

    def run(self):
        """The experiment's main control flow; may use the hardware. Must be overridden."""
        raise NotImplementedError

    def analyze(self):
        """Analyse the results after the run; must not touch the hardware."""


class EnvExperiment(Experiment, HasEnvironment):
    """Base class of most experiments: an :class:`Experiment` with an environment."""

    def prepare(self):
        """Call ``prepare`` of every child, in registration order."""
        self.call_child_method("prepare")


def is_experiment(o):
    """True when ``o`` is a top-level experiment class (not the base classes)."""
    return (isclass(o) and issubclass(o, Experiment)
            and o is not Experiment and o is not EnvExperiment)


def is_public_experiment(o):
    """True when ``o`` is a top-level experiment class whose name has no leading ``_``."""
    return is_experiment(o) and not o.__name__.startswith("_")


def __getattr__(name):
    """Serve ``TraceArgumentManager`` and ``ProcessArgumentManager`` (which ARTIQ defines
    here) from :mod:`ionlink.runner.arguments`, imported on first use."""
    if name in ("TraceArgumentManager", "ProcessArgumentManager"):
        from ionlink.runner import arguments
        return getattr(arguments, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
