"""PYON: the Python-literal serialisation ARTIQ uses (sipyco's format, a JSON superset).

:func:`encode` writes what ``sipyco.pyon.encode`` writes: ``null``/``true``/``false``,
numbers with ``repr`` (so ``inf``, ``nan``, ``1e-06``, ``(1+2j)``), strings in double
quotes, ``b"..."`` bytes, tuples (``(1, )`` for one element), lists, sets, dicts with any
PYON keys, ``slice(...)``, ``Fraction(n, d)``, ``OrderedDict([...])``, NumPy arrays as
``nparray(shape, dtype_str, b"<base64>")`` and NumPy scalars as
``npscalar(dtype_str, b"<base64>")``.

:func:`decode` and :class:`PYONDecodeError` are ``analysis.pyon``'s (the one PYON
decoder, re-exported here): it reads all of that, PYON v2 (sipyco's JSON with
``__jsonclass__``), plain JSON and Python literals, safely, without ``eval``, and names what
is wrong and where in malformed text.

Two deliberate differences from sipyco: an empty set encodes as ``set()`` (sipyco writes
``{}``, which reads back as a dict) and ``numpy.bool_`` encodes as ``true``/``false``
(sipyco refuses it). Arrays of Python objects are refused.
"""

from __future__ import annotations

import base64
import os
import tempfile
from collections import OrderedDict
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from analysis.pyon import PYONDecodeError, decode

__all__ = ["PYONDecodeError", "decode", "encode", "load_file", "store_file"]


# ---------------------------------------------------------------------------------------
# Encoding

# Other control characters as \uXXXX (as json.dumps writes them): a raw NUL is not Python.
_STRING_ESCAPES = {**{c: f"\\u{c:04x}" for c in range(0x20)},
                   ord('"'): '\\"', ord("\\"): "\\\\", ord("\n"): "\\n", ord("\r"): "\\r",
                   ord("\t"): "\\t"}

_NUMPY_SCALAR_TYPES = (np.int8, np.int16, np.int32, np.int64,
                       np.uint8, np.uint16, np.uint32, np.uint64,
                       np.float16, np.float32, np.float64,
                       np.complex64, np.complex128)


def encode(obj: Any, pretty: bool = False) -> str:
    """Serialise ``obj`` to a PYON string (one line unless ``pretty``).

    ``pretty`` puts each item of a dict with two or more items on its own indented line
    and sorts string keys, as sipyco does. Raises TypeError for unsupported objects.
    """
    return _Encoder(pretty).encode(obj, 0)


class _Encoder:
    def __init__(self, pretty: bool) -> None:
        self.pretty = pretty

    def encode(self, x: Any, level: int) -> str:
        kind = type(x)
        if x is None:
            return "null"
        if kind is bool or kind is np.bool_:
            return "true" if x else "false"
        if kind in (int, float, complex):
            return repr(x)
        if kind is str:
            return '"' + x.translate(_STRING_ESCAPES) + '"'
        if kind is bytes:
            return repr(x)
        if kind is tuple:
            return self._tuple(x, level)
        if kind is list:
            return "[" + ", ".join(self.encode(item, level) for item in x) + "]"
        if kind is set:
            if not x:
                return "set()"
            return "{" + ", ".join(self.encode(item, level) for item in x) + "}"
        if kind is dict:
            return self._dict(x, level)
        if kind is slice:
            return repr(x)
        if kind is Fraction:
            return f"Fraction({self.encode(x.numerator, level)}, " \
                   f"{self.encode(x.denominator, level)})"
        if kind is OrderedDict:
            return "OrderedDict(" + self.encode(list(x.items()), level) + ")"
        if kind is np.ndarray:
            return self._nparray(x)
        if kind in _NUMPY_SCALAR_TYPES:
            data = base64.b64encode(np.asarray(x).tobytes()).decode()
            return f'npscalar("{x.dtype.str}", b"{data}")'
        raise TypeError(f"`{x!r}` ({kind}) is not PYON serializable")

    def _tuple(self, x: tuple, level: int) -> str:
        if len(x) == 1:
            return "(" + self.encode(x[0], level) + ", )"
        return "(" + ", ".join(self.encode(item, level) for item in x) + ")"

    def _dict(self, x: dict, level: int) -> str:
        items = list(x.items())
        if self.pretty and all(type(k) is str for k in x):
            items.sort(key=lambda kv: kv[0])
        if not self.pretty or len(items) < 2:
            return "{" + ", ".join(f"{self.encode(k, level)}: {self.encode(v, level)}"
                                   for k, v in items) + "}"
        inner = "    " * (level + 1)
        lines = [f"{inner}{self.encode(k, level + 1)}: {self.encode(v, level + 1)}"
                 for k, v in items]
        return "{\n" + ",\n".join(lines) + "\n" + "    " * level + "}"

    def _nparray(self, x: np.ndarray) -> str:
        if x.dtype.hasobject:
            raise TypeError(f"NumPy array of dtype {x.dtype} (Python objects) "
                            "is not PYON serializable")
        if x.ndim > 0:
            x = np.ascontiguousarray(x)
        data = base64.b64encode(x.tobytes()).decode()
        return f'nparray({self._tuple(tuple(x.shape), 0)}, "{x.dtype.str}", b"{data}")'


# ---------------------------------------------------------------------------------------
# Files

def store_file(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as pretty PYON to ``path`` atomically (temporary file, then rename)."""
    path = Path(path)
    text = encode(obj, pretty=True) + "\n"
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=path.name + ".",
                                     suffix=".tmp", delete=False, encoding="utf-8") as f:
        f.write(text)
        temporary = f.name
    os.replace(temporary, path)


def load_file(path: str | os.PathLike) -> Any:
    """Read and decode the PYON file at ``path``."""
    with open(path, encoding="utf-8") as f:
        return decode(f.read())
