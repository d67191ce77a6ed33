"""PYON: the Python-literal serialisation ARTIQ uses (sipyco's format, a JSON superset).

:func:`encode` writes what ``sipyco.pyon.encode`` writes: ``null``/``true``/``false``,
numbers with ``repr`` (so ``inf``, ``nan``, ``1e-06``, ``(1+2j)``), strings in double
quotes, ``b"..."`` bytes, tuples (``(1, )`` for one element), lists, sets, dicts with any
PYON keys, ``slice(...)``, ``Fraction(n, d)``, ``OrderedDict([...])``, NumPy arrays as
``nparray(shape, dtype_str, b"<base64>")`` and NumPy scalars as
``npscalar(dtype_str, b"<base64>")``.

:func:`decode` reads all of that, plain JSON, and Python literals (``None``, ``True``) —
safely: the text is parsed with :mod:`ast` and only literal nodes and the few known
constructors are accepted; nothing is evaluated. Malformed text raises
:class:`PYONDecodeError` naming what is wrong.

Two deliberate differences from sipyco: an empty set encodes as ``set()`` (sipyco writes
``{}``, which reads back as a dict) and ``numpy.bool_`` encodes as ``true``/``false``
(sipyco refuses it). Arrays of Python objects are refused.
"""

from __future__ import annotations

import ast
import base64
import os
import tempfile
from collections import OrderedDict
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["PYONDecodeError", "decode", "encode", "load_file", "store_file"]


class PYONDecodeError(ValueError):
    """Text that is not valid PYON."""


# ---------------------------------------------------------------------------------------
# Encoding

_STRING_ESCAPES = {ord('"'): '\\"', ord("\\"): "\\\\", ord("\n"): "\\n", ord("\r"): "\\r"}

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
# Decoding

_NAMED_CONSTANTS = {"null": None, "true": True, "false": False,
                    "inf": float("inf"), "nan": float("nan")}


def decode(text: str) -> Any:
    """Parse a PYON (or JSON, or Python-literal) string and return the object it describes.

    Raises PYONDecodeError for malformed text or for any construct that is not a literal
    or one of ``nparray``, ``npscalar``, ``slice``, ``Fraction``, ``OrderedDict``, ``set``.
    """
    if not isinstance(text, str):
        raise PYONDecodeError(f"PYON input must be a str, not {type(text).__name__}")
    if not text.strip():
        raise PYONDecodeError("malformed PYON: the text is empty")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        raise PYONDecodeError(f"malformed PYON {_clip(text)}: {e.msg} "
                              f"(line {e.lineno}, column {e.offset})") from None
    except (ValueError, MemoryError, RecursionError) as e:
        raise PYONDecodeError(f"malformed PYON {_clip(text)}: {e}") from None
    try:
        return _Decoder(text).value(tree.body)
    except RecursionError:
        raise PYONDecodeError(f"PYON {_clip(text)} is nested too deeply") from None
    except TypeError as e:  # an unhashable dict key or set element
        raise PYONDecodeError(f"invalid PYON {_clip(text)}: {e}") from None


def _clip(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


class _Decoder:
    def __init__(self, text: str) -> None:
        self.text = text

    def fail(self, node: ast.AST, what: str) -> PYONDecodeError:
        where = f"line {getattr(node, 'lineno', '?')}, column " \
                f"{getattr(node, 'col_offset', -1) + 1}"
        return PYONDecodeError(f"{what} in PYON {_clip(self.text)} ({where})")

    def value(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            if node.value is Ellipsis:
                raise self.fail(node, "'...' is not allowed")
            return node.value
        if isinstance(node, ast.Name):
            if node.id in _NAMED_CONSTANTS:
                return _NAMED_CONSTANTS[node.id]
            raise self.fail(node, f"unknown name '{node.id}'")
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            operand = self.number(node.operand)
            return -operand if isinstance(node.op, ast.USub) else +operand
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
            return self.complex_literal(node)
        if isinstance(node, ast.Tuple):
            return tuple(self.value(e) for e in node.elts)
        if isinstance(node, ast.List):
            return [self.value(e) for e in node.elts]
        if isinstance(node, ast.Set):
            return {self.value(e) for e in node.elts}
        if isinstance(node, ast.Dict):
            if any(k is None for k in node.keys):
                raise self.fail(node, "'**' unpacking is not allowed")
            pairs = zip(node.keys, node.values, strict=True)
            return {self.value(k): self.value(v) for k, v in pairs}
        if isinstance(node, ast.Call):
            return self.call(node)
        raise self.fail(node, f"unsupported construct '{type(node).__name__}'")

    def number(self, node: ast.AST) -> int | float | complex:
        result = self.value(node)
        if type(result) not in (int, float, complex):
            raise self.fail(node, "a sign may only precede a number")
        return result

    def complex_literal(self, node: ast.BinOp) -> complex:
        real = self.number(node.left)
        imag = self.value(node.right)
        if type(real) not in (int, float) or type(imag) is not complex or imag.real != 0:
            raise self.fail(node, "arithmetic is not allowed (only complex literals a+bj)")
        return real + imag if isinstance(node.op, ast.Add) else real - imag

    def call(self, node: ast.Call) -> Any:
        if not isinstance(node.func, ast.Name):
            raise self.fail(node, "only calls to known constructors are allowed")
        name = node.func.id
        if name not in _CONSTRUCTORS:
            raise self.fail(node, f"unknown constructor '{name}'")
        if node.keywords:
            raise self.fail(node, f"keyword arguments to {name}() are not allowed")
        args = [self.value(a) for a in node.args]
        try:
            if name == "nparray":
                return _make_nparray(*args)
            if name == "npscalar":
                return _make_npscalar(*args)
            if name == "slice":
                return slice(*args)
            if name == "Fraction":
                return Fraction(*args)
            if name == "OrderedDict":
                return OrderedDict(*args)
            if name == "set":
                return set(*args)
        except (TypeError, ValueError, ZeroDivisionError) as e:
            raise self.fail(node, f"invalid {name}(...): {e}") from None
        raise AssertionError(f"constructor {name} listed but not handled")


_CONSTRUCTORS = ("nparray", "npscalar", "slice", "Fraction", "OrderedDict", "set")


def _base64_payload(data: str | bytes) -> bytes:
    if not isinstance(data, (str, bytes)):
        raise TypeError(f"data must be base64 text, not {type(data).__name__}")
    return base64.b64decode(data, validate=True)


def _make_nparray(shape, dtype, data) -> np.ndarray:
    if np.dtype(dtype).hasobject:
        raise ValueError("object arrays are not allowed")
    flat = np.frombuffer(_base64_payload(data), dtype=np.dtype(dtype))
    return flat.copy().reshape(shape)


def _make_npscalar(dtype, data) -> np.generic:
    if np.dtype(dtype).hasobject:
        raise ValueError("object scalars are not allowed")
    values = np.frombuffer(_base64_payload(data), dtype=np.dtype(dtype))
    if values.size != 1:
        raise ValueError("npscalar data must hold exactly one number")
    return values[0]


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
