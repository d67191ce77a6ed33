"""ARTIQ's core language extensions (decorators, timeline functions), as ``artiq.language.core``.

On the host these do what ARTIQ's do when a kernel is interpreted rather than compiled:

- ``@kernel`` replaces a method by a wrapper that hands the call to the core device driver:
  ``getattr(self, core_name).run(wrapper, (self,) + args, kwargs)``. The wrapper carries
  ``artiq_embedded``, an ``_ARTIQEmbeddedInfo`` whose ``function`` is the undecorated
  function; the (simulated) core device runs that function.
- ``@portable`` and ``@rpc`` leave the function callable directly on the host.
- Timeline functions (``delay``, ``now_mu``, ``at_mu``, ``parallel``, ...) forward to the
  time manager installed with :func:`set_time_manager`. Without one they raise
  ``NotImplementedError("Attempted to interpret kernel without a time manager")``.

Durations are in seconds (``delay``) or machine units (``delay_mu``, ``now_mu``, ``at_mu``).
"""

from collections import namedtuple
from functools import wraps

__all__ = ["kernel", "portable", "rpc", "subkernel", "syscall", "host_only",
           "kernel_from_string", "set_time_manager", "set_watchdog_factory",
           "TerminationRequested"]

#: Names that kernels may use without importing them (ARTIQ's kernel global namespace).
kernel_globals = ("sequential", "parallel", "interleave",
                  "delay_mu", "now_mu", "at_mu", "delay",
                  "watchdog")
__all__.extend(kernel_globals)


_ARTIQEmbeddedInfo = namedtuple(
    "_ARTIQEmbeddedInfo",
    "core_name portable function syscall forbidden destination flags")


def _embedded_info(*, core_name=None, portable=False, function=None, syscall=None,
                   forbidden=False, destination=None, flags=()):
    return _ARTIQEmbeddedInfo(core_name=core_name, portable=portable, function=function,
                              syscall=syscall, forbidden=forbidden,
                              destination=destination, flags=set(flags))


def _kernel_on(core_name, flags):
    """Decorator factory: mark a method as a kernel run by ``self.<core_name>``."""
    def decorate(function):
        @wraps(function)
        def run_on_core(self, *k_args, **k_kwargs):
            return getattr(self, core_name).run(run_on_core, (self,) + k_args, k_kwargs)
        run_on_core.artiq_embedded = _embedded_info(
            core_name=core_name, function=function, flags=flags)
        return run_on_core
    return decorate


def kernel(arg=None, flags={}):  # noqa: B006 - ARTIQ's signature; flags is only read
    """Mark a method for execution on the core device.

    Usable as ``@kernel``, ``@kernel()``, ``@kernel("core_name")`` or
    ``@kernel(flags={"fast-math"})``. Calling the decorated method calls
    ``self.<core_name>.run(wrapper, (self,) + args, kwargs)``; ``core_name`` defaults
    to ``"core"``.
    """
    if isinstance(arg, str):
        return _kernel_on(arg, flags)
    if arg is None:
        return lambda function: kernel(function, flags)
    return _kernel_on("core", flags)(arg)


def subkernel(arg=None, destination=0, flags={}):  # noqa: B006 - ARTIQ's signature
    """Mark a method for execution on a DRTIO satellite (``destination`` 1..255).

    Calling the decorated method asks the core driver to prepare and start it:
    ``core.prepare_subkernel(destination, wrapper, (self,) + args, kwargs)`` returns a
    subkernel id that is passed to ``core.run_subkernel(sid)``.
    """
    if isinstance(arg, str):
        core_name = arg

        def decorate(function):
            @wraps(function)
            def run_subkernel(self, *k_args, **k_kwargs):
                core = getattr(self, core_name)
                sid = core.prepare_subkernel(destination, run_subkernel,
                                             (self,) + k_args, k_kwargs)
                core.run_subkernel(sid)
            run_subkernel.artiq_embedded = _embedded_info(
                core_name=core_name, function=function, destination=destination,
                flags=flags)
            return run_subkernel
        return decorate
    if arg is None:
        return lambda function: subkernel(function, destination, flags)
    return subkernel("core", destination, flags)(arg)


def portable(arg=None, flags={}):  # noqa: B006 - ARTIQ's signature
    """Mark a function to run where its caller runs (host stays host, kernel stays kernel)."""
    if arg is None:
        return lambda function: portable(function, flags)
    arg.artiq_embedded = _embedded_info(portable=True, function=arg, flags=flags)
    return arg


def rpc(arg=None, flags={}):  # noqa: B006 - ARTIQ's signature
    """Mark a function as executed on the host when called from a kernel.

    Host functions are RPCs by default; this decorator only adds flags such as
    ``{"async"}`` (the kernel does not wait for the call to finish).
    """
    if arg is None:
        return lambda function: rpc(function, flags)
    arg.artiq_embedded = _embedded_info(function=arg, flags=flags)
    return arg


def syscall(arg=None, flags={}):  # noqa: B006 - ARTIQ's signature
    """Mark a function as a core-device firmware call named ``arg`` (default: its own name).

    On the host the Python function is called as usual.
    """
    if isinstance(arg, str):
        def decorate(function):
            function.artiq_embedded = _embedded_info(syscall=arg, flags=flags)
            return function
        return decorate
    if arg is None:
        return lambda function: syscall(function.__name__, flags)(function)
    return syscall(arg.__name__)(arg)


def host_only(function):
    """Mark a function as callable only from the host interpreter, never from a kernel."""
    function.artiq_embedded = _ARTIQEmbeddedInfo(
        core_name=None, portable=False, function=None, syscall=None,
        forbidden=True, destination=None, flags={})
    return function


def kernel_from_string(parameters, body_code, decorator=kernel):
    """Build a function from source text, decorated with ``decorator`` (``kernel`` by default).

    :param parameters: parameter names; an entry may be a ``(name, annotation)`` tuple of
        strings.
    :param body_code: the function body (without indentation); ``return`` works as usual.
    :param decorator: ``kernel`` or ``portable``, optionally already given its arguments.
    :return: the decorated function. No globals are visible inside the body: pass every
        object it needs as a parameter. ``artiq_embedded.function`` holds the source text,
        as in ARTIQ (the compiler reads it from there).
    """
    declared = []
    for parameter in parameters:
        if isinstance(parameter, tuple):
            name, annotation = parameter
            declared.append(f"{name}: {annotation}")
        else:
            declared.append(parameter)
    source = "def kernel_from_string_fn(" + "".join(p + "," for p in declared) + "):\n"
    source += "\n".join("    " + line for line in body_code.split("\n"))

    namespace = {}
    try:
        exec(source, namespace)
    except SyntaxError:
        raise SyntaxError(f"Error parsing kernel function: '{source}'") from None
    function = decorator(namespace["kernel_from_string_fn"])
    function.artiq_embedded = function.artiq_embedded._replace(function=source)
    return function


class _NoTimeManager:
    """Time manager in force until one is installed: every call raises NotImplementedError."""

    def _refuse(self, *args, **kwargs):
        raise NotImplementedError("Attempted to interpret kernel without a time manager")

    enter_sequential = _refuse
    enter_parallel = _refuse
    exit = _refuse
    take_time_mu = _refuse
    take_time = _refuse
    get_time_mu = _refuse
    set_time_mu = _refuse


_time_manager = _NoTimeManager()


def set_time_manager(time_manager):
    """Install the object that interprets timeline operations on the host.

    It must provide ``enter_sequential()``, ``enter_parallel()``, ``exit()``,
    ``take_time_mu(mu)``, ``take_time(seconds)``, ``get_time_mu()`` and ``set_time_mu(mu)``.
    """
    global _time_manager
    _time_manager = time_manager


class _Sequential:
    """Context manager: statements inside run one after the other on the timeline."""

    def __enter__(self):
        _time_manager.enter_sequential()

    def __exit__(self, exc_type, exc_value, traceback):
        _time_manager.exit()


class _Parallel:
    """Context manager: top-level statements inside start at the same time; the block
    lasts as long as its longest statement."""

    def __enter__(self):
        _time_manager.enter_parallel()

    def __exit__(self, exc_type, exc_value, traceback):
        _time_manager.exit()


sequential = _Sequential()
parallel = _Parallel()
#: On the host ``interleave`` means the same as ``parallel``.
interleave = _Parallel()


def delay_mu(duration):
    """Advance the timeline cursor by ``duration`` machine units."""
    _time_manager.take_time_mu(duration)


def now_mu():
    """Return the timeline cursor, in machine units (not the RTIO counter)."""
    return _time_manager.get_time_mu()


def at_mu(time):
    """Set the timeline cursor to ``time`` machine units."""
    _time_manager.set_time_mu(time)


def delay(duration):
    """Advance the timeline cursor by ``duration`` seconds."""
    _time_manager.take_time(duration)


class _NoWatchdog:
    """Default watchdog: not enforced."""

    def __init__(self, timeout):
        self.timeout = timeout

    def __enter__(self):
        pass

    def __exit__(self, exc_type, exc_value, traceback):
        pass


_watchdog_factory = _NoWatchdog


def set_watchdog_factory(f):
    """Install ``f``, the callable that ``watchdog(timeout)`` uses to build its context
    manager."""
    global _watchdog_factory
    _watchdog_factory = f


def watchdog(timeout):
    """Return a context manager guarding a block with a watchdog of ``timeout`` seconds."""
    return _watchdog_factory(timeout)


class TerminationRequested(Exception):
    """Raised by the scheduler's ``pause()`` when termination of the run was requested."""
