"""Exceptions raised by an RPC target, packed for the wire and re-raised by the client.

Same packing as sipyco: built-in exception classes travel by name (and are re-raised as
that class); any other class becomes :class:`GenericRemoteException` whose message is the
``"ClassName: message"`` line of the original.
"""

from __future__ import annotations

import builtins
import inspect
import sys
import traceback
from typing import Any

__all__ = ["GenericRemoteException", "current_exc_packed", "raise_packed_exc"]


class GenericRemoteException(Exception):
    """A remote exception whose class is not a Python built-in."""


_BUILTIN_NAMES = {cls: name for name, cls in vars(builtins).items()
                  if inspect.isclass(cls) and issubclass(cls, BaseException)}


def current_exc_packed() -> dict[str, Any]:
    """Pack the exception being handled as ``{"class", "message", "traceback"}``."""
    exc_class, exc, tb = sys.exc_info()
    if exc_class in _BUILTIN_NAMES:
        name, message = _BUILTIN_NAMES[exc_class], str(exc)
    else:
        name = "GenericRemoteException"
        message = traceback.format_exception_only(exc_class, exc)[0].rstrip()
    return {"class": name, "message": message, "traceback": traceback.format_tb(tb)}


def raise_packed_exc(pack: dict[str, Any]) -> None:
    """Raise the exception described by a packed dict (remote traceback attached as
    ``parent_traceback``)."""
    name = pack["class"]
    cls = GenericRemoteException if name == "GenericRemoteException" else getattr(
        builtins, name, GenericRemoteException)
    exc = cls(pack["message"])
    exc.parent_traceback = pack.get("traceback", [])
    raise exc
