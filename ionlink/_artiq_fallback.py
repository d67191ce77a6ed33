"""Serve ``artiq`` and ``sipyco`` from ionlink's stand-ins where they are not installed.

The finder serves a top-level ``artiq``/``sipyco`` only when Python's path finder finds no
real package of that name: a real ARTIQ or sipyco installation is always found and used,
and the stand-in never shadows it.

``artiq.coredevice.*`` is served by the simulated drivers (:mod:`ionlink.sim.coredevice`),
the rest of ``artiq.*`` by :mod:`ionlink.artiq_api`, and ``sipyco.*`` by
:mod:`ionlink.sipyco_api`. A served module is the stand-in module object itself, so
``artiq.coredevice.ttl.TTLOut is ionlink.sim.coredevice.ttl.TTLOut``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType

# Longest prefix first: the first match wins.
_PREFIX_MAP: tuple[tuple[str, str], ...] = (
    ("artiq.coredevice", "ionlink.sim.coredevice"),
    ("artiq", "ionlink.artiq_api"),
    ("sipyco", "ionlink.sipyco_api"),
)


def _stand_in_name(fullname: str) -> str | None:
    for prefix, target in _PREFIX_MAP:
        if fullname == prefix or fullname.startswith(prefix + "."):
            return target + fullname[len(prefix):]
    return None


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self._target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(self._target)

    def exec_module(self, module: ModuleType) -> None:
        """The stand-in module is already executed by its own import."""


def _is_stand_in(module: ModuleType) -> bool:
    return module.__name__.startswith("ionlink.")


class StandInFinder(importlib.abc.MetaPathFinder):
    """Meta-path finder that serves the stand-in modules where no real package exists.

    It sits first in ``sys.meta_path`` so that, once ``artiq`` is the stand-in, its
    submodules are the stand-in's own module objects (not second copies found on the
    stand-in package's ``__path__``). It serves a top-level name only when Python's path
    finder cannot find a real package of that name, and a submodule only when its
    top-level package is the stand-in.
    """

    def find_spec(self, fullname, path=None, target=None):
        stand_in = _stand_in_name(fullname)
        if stand_in is None:
            return None
        top = fullname.partition(".")[0]
        loaded_top = sys.modules.get(top)
        if loaded_top is not None:
            if not _is_stand_in(loaded_top):
                return None
        elif importlib.machinery.PathFinder.find_spec(top) is not None:
            return None             # a real installation exists: never shadow it
        if importlib.util.find_spec(stand_in) is None:
            return None
        is_package = hasattr(importlib.import_module(stand_in), "__path__")
        return importlib.machinery.ModuleSpec(
            fullname, _AliasLoader(stand_in), is_package=is_package)


def install() -> None:
    """Put the stand-in finder first in ``sys.meta_path`` (idempotent)."""
    if not any(isinstance(f, StandInFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, StandInFinder())


def artiq_is_real() -> bool:
    """True when ``artiq`` is a real ARTIQ installation, not ionlink's stand-in."""
    import artiq

    return not getattr(artiq, "__ionlink_stand_in__", False)
