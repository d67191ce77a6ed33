"""Safe decoder for PYON, the Python-literal format ARTIQ uses for `/expid` in results files.

The ARTIQ worker writes ``f["expid"] = pyon.encode(expid)`` (sipyco.pyon). PYON is Python
expression syntax with these forms, all supported here without ``eval``:

- ``null``, ``true``, ``false``, ``inf``, ``nan`` (names) and numbers as ``repr`` writes them
  (ints, floats, ``-inf``, complex such as ``(1+2j)``);
- strings in double quotes, bytes ``b'...'``;
- tuples ``(x, )`` / ``(x, y)``, lists, sets ``{x, y}``, dicts with any literal keys;
- calls ``slice(a, b, c)``, ``Fraction(n, d)``, ``OrderedDict([(k, v), ...])``,
  ``nparray(shape, dtype_str, b"<base64>")`` and ``npscalar(dtype_str, b"<base64>")``;
  also ``set()`` / ``set([...])``, which ionlink's runner writes for an empty set (sipyco
  writes ``{}``, which reads back as a dict).

Anything else (attribute access, other names or calls, operators beyond unary sign and
complex literals) raises `PyonError` naming the offending construct.
"""

from __future__ import annotations

import ast
import base64
import binascii
from collections import OrderedDict
from fractions import Fraction
from typing import Any

import numpy as np

from analysis.errors import AnalysisError

__all__ = ["PyonError", "decode"]

_NAMES: dict[str, Any] = {"null": None, "true": True, "false": False, "inf": float("inf"),
                          "nan": float("nan"), "None": None, "True": True, "False": False}


class PyonError(AnalysisError, ValueError):
    """Text is not valid PYON (or uses a construct this decoder does not accept)."""


def decode(text: str) -> Any:
    """Decode one PYON value from `text` (str or UTF-8 bytes)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    if not isinstance(text, str):
        raise PyonError(f"PYON input must be str or bytes, got {type(text).__name__}")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as error:
        raise PyonError(f"not valid PYON: {error.msg} at offset {error.offset}") from error
    return _value(tree.body)


def _value(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, (str, bytes, int, float, complex)) or node.value is None:
            return node.value
        raise PyonError(f"unsupported PYON constant {node.value!r}")
    if isinstance(node, ast.Name):
        if node.id in _NAMES:
            return _NAMES[node.id]
        raise PyonError(f"unknown PYON name {node.id!r}")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = _value(node.operand)
        if isinstance(operand, bool) or not isinstance(operand, (int, float, complex)):
            raise PyonError("unary sign applied to a non-number in PYON")
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
        return _complex(node)
    if isinstance(node, ast.Tuple):
        return tuple(_value(item) for item in node.elts)
    if isinstance(node, ast.List):
        return [_value(item) for item in node.elts]
    if isinstance(node, ast.Set):
        return {_value(item) for item in node.elts}
    if isinstance(node, ast.Dict):
        if any(key is None for key in node.keys):
            raise PyonError("dict unpacking (**) is not PYON")
        return {_value(k): _value(v) for k, v in zip(node.keys, node.values, strict=True)}
    if isinstance(node, ast.Call):
        return _call(node)
    raise PyonError(f"unsupported PYON construct {type(node).__name__}")


def _complex(node: ast.BinOp) -> complex:
    """`repr(complex)` writes e.g. ``(1+2j)`` or ``(-0-1j)``: real +/- imaginary literal."""
    left, right = _value(node.left), _value(node.right)
    if (isinstance(left, bool) or not isinstance(left, (int, float))
            or not isinstance(right, complex) or right.real != 0):
        raise PyonError("only complex literals (real +/- imaginary j) may use + or - in PYON")
    return complex(left + right) if isinstance(node.op, ast.Add) else complex(left - right)


def _call(node: ast.Call) -> Any:
    if not isinstance(node.func, ast.Name):
        raise PyonError("only plain PYON constructor calls are allowed")
    if node.keywords:
        raise PyonError(f"keyword arguments in PYON call {node.func.id}()")
    args = [_value(arg) for arg in node.args]
    name = node.func.id
    try:
        if name == "slice":
            return slice(*args)
        if name == "Fraction":
            return Fraction(*args)
        if name == "OrderedDict":
            return OrderedDict(*args)
        if name == "set":
            return set(*args)
        if name == "nparray":
            shape, dtype, data = args
            return np.frombuffer(_b64(data), dtype=np.dtype(dtype)).copy().reshape(shape)
        if name == "npscalar":
            dtype, data = args
            return np.frombuffer(_b64(data), dtype=np.dtype(dtype))[0]
    except PyonError:
        raise
    except (TypeError, ValueError, IndexError) as error:
        raise PyonError(f"bad arguments to PYON {name}(): {error}") from error
    raise PyonError(f"unknown PYON constructor {name!r}")


def _b64(data: Any) -> bytes:
    if not isinstance(data, (bytes, str)):
        raise PyonError("PYON array data must be base64 bytes")
    try:
        return base64.b64decode(data, validate=True)
    except binascii.Error as error:
        raise PyonError(f"PYON array data is not base64: {error}") from error
