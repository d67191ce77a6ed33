"""Import an experiment file by path as a fresh module (no ``sys.path`` change)."""

from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path
from types import ModuleType

_numbers = itertools.count()


class ModuleImportError(Exception):
    """The file cannot be imported; the message is one line naming the file and cause."""


def import_file(path: str | Path, prefix: str) -> ModuleType:
    """Import ``path`` under the unique name ``{prefix}_{n}_{stem}`` and return it."""
    path = Path(path)
    if not path.is_file():
        raise ModuleImportError(f"{path} does not exist")
    name = f"{prefix}_{next(_numbers)}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ModuleImportError(f"{path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        del sys.modules[name]
        message = str(e).splitlines()[0] if str(e) else ""
        raise ModuleImportError(f"{path} does not import: {type(e).__name__}: {message}") \
            from e
    return module
