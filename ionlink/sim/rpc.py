"""Charging remote procedure calls: host methods called from a kernel cost CPU time.

In a compiled kernel, calling a method of a host object that is not a kernel or portable
function is an RPC: the core device CPU sends the call to the host and (unless the method
is ``@rpc(flags={"async"})``) waits for the reply, while the RTIO counter keeps running.
On the host simulation every call is a plain Python call, so the simulated core marks
them: when a kernel of an object runs, that object's class (and its bases, outside the
simulated drivers) gets its host methods wrapped until the kernel ends, and a wrapped
method called while a kernel runs, and not from inside another host call, charges
``rpc_ns`` (synchronous) or ``rpc_async_ns`` (async) to the engine's CPU clock. Between
kernels every class is restored, so nothing else (ARTIQ's compiler, say) sees a wrapper.

Not charged: plain module-level functions and methods of objects none of whose kernels
ran (calls that go through no class the core has seen), and ``print``.
"""

from __future__ import annotations

import functools
from typing import Any

#: The engine of the kernel running now (None between kernels); set by the core.
running_engine: Any = None
_in_host = 0
#: Classes whose host methods are wrapped now (only while a kernel runs).
active: set[type] = set()
_active_order: list[type] = []
#: Per class: (name, original, wrapper) of each host method, built once.
_wrappers: dict[type, list[tuple[str, Any, Any]]] = {}

#: Classes defined in these module prefixes are drivers: their plain methods are kernel
#: helpers of the simulation, not RPCs.
_DRIVER_PREFIXES = ("ionlink.sim.", "artiq.coredevice.", "builtins")


def _rpc_kind(function) -> str | None:
    """"sync", "async" or None (a kernel, portable or host-only function: no RPC)."""
    embedded = getattr(function, "artiq_embedded", None)
    if embedded is None:
        return "sync"
    if embedded.core_name is not None or embedded.portable or embedded.forbidden \
            or embedded.syscall is not None or embedded.function is None:
        return None
    return "async" if "async" in embedded.flags else "sync"


def _wrap(function, is_async: bool):
    @functools.wraps(function)
    def host_method(*args, **kwargs):
        global _in_host
        engine = running_engine
        if engine is None or _in_host:
            return function(*args, **kwargs)
        costs = engine.costs
        engine.cpu += costs.rpc_async_ns if is_async else costs.rpc_ns
        _in_host += 1
        try:
            return function(*args, **kwargs)
        finally:
            _in_host -= 1

    return host_method


def _build(klass: type) -> list[tuple[str, Any, Any]]:
    if klass is object or klass.__module__.startswith(_DRIVER_PREFIXES):
        return []
    entries = []
    for name, value in list(vars(klass).items()):
        if name.startswith("__") or isinstance(value, type) or not callable(value) \
                or not hasattr(value, "__code__"):
            continue
        kind = _rpc_kind(value)
        if kind is not None:
            entries.append((name, value, _wrap(value, kind == "async")))
    return entries


def instrument(cls: type) -> None:
    """Wrap the host methods of ``cls`` and its bases until the kernel ends.

    The wrappers are removed again by :func:`stop`: between kernels every class is as its
    module defined it (so ARTIQ's compiler, in the same process, sees the originals).
    """
    for klass in cls.__mro__:
        if klass in active:
            continue
        active.add(klass)
        entries = _wrappers.get(klass)
        if entries is None:
            entries = _wrappers[klass] = _build(klass)
        if entries:
            for name, _original, wrapper in entries:
                setattr(klass, name, wrapper)
            _active_order.append(klass)


def start(engine) -> None:
    """A kernel starts on ``engine``: host methods called from now on are RPCs."""
    global running_engine, _in_host
    running_engine = engine
    _in_host = 0


def stop() -> None:
    """The kernel ended: restore every wrapped class."""
    global running_engine
    running_engine = None
    for klass in _active_order:
        for name, original, _wrapper in _wrappers[klass]:
            setattr(klass, name, original)
    _active_order.clear()
    active.clear()
