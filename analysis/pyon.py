"""The PYON decoder: ARTIQ's serialisation (sipyco.pyon) read safely, without ``eval``.

This is ionlink's only PYON decoder. ``analysis.results`` reads ``/expid`` of results files
with it; ``ionlink.runner.pyon`` (the encoder and file helpers, used by the runner, datasets,
arguments, applets and the sipyco stand-in) re-exports :func:`decode` and
:class:`PYONDecodeError` from here. It lives in ``analysis`` because ``analysis`` must never
import ``ionlink`` (which installs an ``artiq`` import hook), while ``ionlink`` may import
``analysis``.

Accepted, in any mix:

- PYON v1 (``sipyco.pyon_v1``, what ARTIQ 8 and ionlink's encoder write): Python expression
  syntax with ``null``/``true``/``false``/``inf``/``nan``, numbers as ``repr`` writes them
  (``-inf``, ``1e-06``, complex ``(1+2j)``), strings, bytes ``b'...'``, tuples ``(x, )``,
  lists, sets ``{x, y}``, dicts with any literal keys, and the constructors
  ``slice(a, b, c)``, ``Fraction(n, d)``, ``OrderedDict([(k, v), ...])``,
  ``nparray(shape, dtype_str, b"<base64>")``, ``npscalar(dtype_str, b"<base64>")`` and
  ``set()`` / ``set([...])`` (ionlink writes ``set()`` for an empty set; sipyco writes ``{}``,
  which reads back as a dict);
- PYON v2 (``sipyco.pyon`` since 2025, what ARTIQ master writes): JSON in which
  ``{"__jsonclass__": [name, args]}`` stands for ``name(*args)`` with ``name`` one of
  ``tuple``, ``dict``, ``complex``, ``bytes`` (base64 text), ``set``, ``slice``,
  ``Fraction``, ``OrderedDict``, ``nparray``, ``npscalar``; ``NaN``/``Infinity`` as
  ``json.dumps`` writes them;
- plain JSON and Python literals (``None``, ``True``, ``False``). ``\\uXXXX`` surrogate
  pairs in strings (``json.dumps`` escapes characters beyond U+FFFF so) are joined.

Anything else (names, attribute access, other calls, keyword arguments, operators beyond a
sign and complex literals, comprehensions, ``**``, ``...``) raises :class:`PYONDecodeError`
naming the construct, its line and column, and quoting the text around it.
"""

from __future__ import annotations

import ast
import base64
import re
from collections import OrderedDict
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np

from analysis.errors import AnalysisError

__all__ = ["PYONDecodeError", "PyonError", "decode"]


class PYONDecodeError(AnalysisError, ValueError):
    """Text that is not valid PYON (or uses a construct the decoder does not accept).

    The message names what is wrong and where (line, column and the text around it).
    """


#: The name ``analysis.results`` catches; the same class.
PyonError = PYONDecodeError

_NAMED_CONSTANTS: dict[str, Any] = {
    "null": None, "true": True, "false": False, "inf": float("inf"), "nan": float("nan"),
    "Infinity": float("inf"), "NaN": float("nan"),
}

_JSONCLASS = "__jsonclass__"
_EXCERPT = 60  # characters of the offending line quoted in a message
_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # what the Python tokenizer counts as a new line


def decode(text: str | bytes) -> Any:
    """Decode one PYON (v1 or v2), JSON or Python-literal value from ``text``.

    :param text: the PYON text, as str or UTF-8 bytes.
    :raises PYONDecodeError: malformed text or a construct that is not a literal or a known
        constructor; the message names what is wrong and where.
    """
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as e:
            raise PYONDecodeError(f"PYON bytes are not UTF-8: {e}") from None
    if not isinstance(text, str):
        raise PYONDecodeError(f"PYON input must be str or bytes, not {type(text).__name__}")
    source = _Source(text)
    if not source.body:
        raise PYONDecodeError("malformed PYON: the text is empty")
    try:
        tree = ast.parse(source.body, mode="eval")
    except SyntaxError as e:
        line, column = source.position(e.lineno or 1, (e.offset or 1) - 1)
        raise PYONDecodeError(f"malformed PYON {source.excerpt(line, column)!r}: {e.msg} "
                              f"(line {line}, column {column + 1})") from None
    except (ValueError, MemoryError, RecursionError) as e:  # NUL bytes, absurd nesting
        raise PYONDecodeError(f"malformed PYON {source.excerpt(*source.position(1, 0))!r}: "
                              f"{type(e).__name__}: {e}") from None
    try:
        return _Decoder(source).value(tree.body)
    except RecursionError:
        start = source.excerpt(*source.position(1, 0))
        raise PYONDecodeError(f"PYON {start!r} is nested too deeply") from None


class _Source:
    """The text being decoded: maps parser positions (in the stripped text, columns in
    UTF-8 bytes for nodes) back to lines and character columns of the text as given."""

    def __init__(self, text: str) -> None:
        self.body = text.strip()
        lead = text[:len(text) - len(text.lstrip())]
        self.line_shift = lead.count("\n")
        self.column_shift = len(lead) - (lead.rfind("\n") + 1)
        self.lines = _LINE_BREAK.split(text)
        self.body_lines = _LINE_BREAK.split(self.body)

    def position(self, line: int, column: int) -> tuple[int, int]:
        """(line, 0-based character column) in the given text of a parser position."""
        return line + self.line_shift, column + (self.column_shift if line == 1 else 0)

    def node_position(self, node: ast.AST) -> tuple[int, int]:
        line = getattr(node, "lineno", 1)
        body_line = self.body_lines[min(line, len(self.body_lines)) - 1]
        column = len(body_line.encode()[:getattr(node, "col_offset", 0)]
                     .decode("utf-8", errors="ignore"))
        return self.position(line, column)

    def excerpt(self, line: int, column: int) -> str:
        """The given line, or ~60 characters of it around ``column``."""
        text = self.lines[min(line, len(self.lines)) - 1]
        if len(text) <= _EXCERPT:
            return text
        start = max(0, min(column - _EXCERPT // 2, len(text) - _EXCERPT))
        end = start + _EXCERPT
        return ("..." if start else "") + text[start:end] + ("..." if end < len(text) else "")


class _Decoder:
    def __init__(self, source: _Source) -> None:
        self.source = source

    def fail(self, node: ast.AST, what: str) -> PYONDecodeError:
        line, column = self.source.node_position(node)
        return PYONDecodeError(f"{what} in PYON {self.source.excerpt(line, column)!r} "
                               f"(line {line}, column {column + 1})")

    def value(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            if node.value is Ellipsis:
                raise self.fail(node, "'...' is not allowed")
            if isinstance(node.value, str):
                return _join_surrogates(node.value)
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
            return self.hashed(node, lambda: {self.value(e) for e in node.elts})
        if isinstance(node, ast.Dict):
            return self.mapping(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        raise self.fail(node, f"unsupported construct '{type(node).__name__}'")

    def number(self, node: ast.AST) -> int | float | complex:
        result = self.value(node)
        if type(result) not in (int, float, complex):
            raise self.fail(node, "a sign may only precede a number")
        return result

    def complex_literal(self, node: ast.BinOp) -> complex:
        """``repr(complex)`` writes e.g. ``(1+2j)`` or ``(-0-1j)``: real +/- imaginary."""
        real = self.number(node.left)
        imag = self.value(node.right)
        if type(real) not in (int, float) or type(imag) is not complex or imag.real != 0:
            raise self.fail(node, "arithmetic is not allowed (only complex literals a+bj)")
        return real + imag if isinstance(node.op, ast.Add) else real - imag

    def hashed(self, node: ast.AST, build: Callable[[], Any]) -> Any:
        try:
            return build()
        except TypeError as e:  # an unhashable dict key or set element
            raise self.fail(node, f"invalid dict key or set element: {e}") from None

    def mapping(self, node: ast.Dict) -> Any:
        if any(k is None for k in node.keys):
            raise self.fail(node, "'**' unpacking is not allowed")
        if (len(node.keys) == 1 and isinstance(node.keys[0], ast.Constant)
                and node.keys[0].value == _JSONCLASS):
            return self.jsonclass(node, self.value(node.values[0]))
        pairs = zip(node.keys, node.values, strict=True)
        return self.hashed(node, lambda: {self.value(k): self.value(v) for k, v in pairs})

    def jsonclass(self, node: ast.Dict, spec: Any) -> Any:
        """PYON v2: ``{"__jsonclass__": [name, [args...]]}`` is ``name(*args)``."""
        if not (isinstance(spec, list) and len(spec) == 2 and isinstance(spec[0], str)
                and isinstance(spec[1], list)):
            raise self.fail(node, f"'{_JSONCLASS}' must hold [name, [arguments]], "
                                  f"not {spec!r:.60}")
        name, args = spec
        if name not in _V2_CONSTRUCTORS:
            raise self.fail(node, f"unknown {_JSONCLASS} type '{name}'")
        return self.construct(node, name, _V2_CONSTRUCTORS[name], args)

    def call(self, node: ast.Call) -> Any:
        if not isinstance(node.func, ast.Name):
            raise self.fail(node, "only calls to known constructors are allowed")
        name = node.func.id
        if name not in _V1_CONSTRUCTORS:
            raise self.fail(node, f"unknown constructor '{name}'")
        if node.keywords:
            raise self.fail(node, f"keyword arguments to {name}() are not allowed")
        args = [self.value(a) for a in node.args]
        return self.construct(node, name, _V1_CONSTRUCTORS[name], args)

    def construct(self, node: ast.AST, name: str, make: Callable[..., Any],
                  args: list) -> Any:
        try:
            return make(*args)
        except (TypeError, ValueError, ZeroDivisionError, OverflowError) as e:
            raise self.fail(node, f"invalid {name}(...): {type(e).__name__}: {e}") from None


def _join_surrogates(text: str) -> str:
    """Join UTF-16 surrogate pairs (``"\\ud83d\\ude00"`` as JSON writes U+1F600)."""
    if not any("\ud800" <= c <= "\udfff" for c in text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def _base64_payload(data: str | bytes) -> bytes:
    if not isinstance(data, (str, bytes)):
        raise TypeError(f"data must be base64 text, not {type(data).__name__}")
    return base64.b64decode(data, validate=True)


def _make_nparray(shape: Any, dtype: Any, data: str | bytes) -> np.ndarray:
    if np.dtype(dtype).hasobject:
        raise ValueError("object arrays are not allowed")
    flat = np.frombuffer(_base64_payload(data), dtype=np.dtype(dtype))
    return flat.copy().reshape(shape)


def _make_npscalar(dtype: Any, data: str | bytes) -> np.generic:
    if np.dtype(dtype).hasobject:
        raise ValueError("object scalars are not allowed")
    values = np.frombuffer(_base64_payload(data), dtype=np.dtype(dtype))
    if values.size != 1:
        raise ValueError(f"npscalar data must hold exactly one value, not {values.size}")
    return values[0]


def _make_complex(real: Any, imag: Any) -> complex:
    if not all(type(x) in (int, float) for x in (real, imag)):
        raise TypeError(f"complex parts must be numbers, not {real!r}, {imag!r}")
    return complex(real, imag)


#: v1 constructor calls ``name(args...)``.
_V1_CONSTRUCTORS: dict[str, Callable[..., Any]] = {
    "nparray": _make_nparray, "npscalar": _make_npscalar, "slice": slice,
    "Fraction": Fraction, "OrderedDict": OrderedDict, "set": set,
}

#: v2 ``__jsonclass__`` names (sipyco.pyon's registry).
_V2_CONSTRUCTORS: dict[str, Callable[..., Any]] = {
    **_V1_CONSTRUCTORS, "tuple": tuple, "dict": dict, "complex": _make_complex,
    "bytes": _base64_payload,
}
