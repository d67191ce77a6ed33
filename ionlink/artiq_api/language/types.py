"""ARTIQ type annotations (``TInt32``, ``TList(TFloat)``, ...), as ``artiq.language.types``.

On the host these are plain annotation objects: they compare equal when they describe the
same type (``TList(TInt32) == TList(TInt32)``), hash accordingly and have a readable
repr (``list(elt=float)``). Only ARTIQ's compiler gives them meaning; here they document
kernel signatures.
"""

__all__ = ["TNone", "TTuple",
           "TBool", "TInt32", "TInt64", "TFloat",
           "TStr", "TBytes", "TByteArray",
           "TList", "TArray", "TRange32", "TRange64",
           "TVar"]


class _ArtiqType:
    """An ARTIQ type: a name plus named parameters (themselves types or plain values)."""

    def __init__(self, name, **params):
        self.name = name
        self.params = params

    def __eq__(self, other):
        return (isinstance(other, _ArtiqType) and type(self) is type(other)
                and self.name == other.name and self.params == other.params)

    def __hash__(self):
        return hash((self.name, tuple(sorted(self.params.items(), key=lambda kv: kv[0]))))

    def __repr__(self):
        if not self.params:
            return self.name
        inside = ", ".join(f"{key}={value!r}" for key, value in self.params.items())
        return f"{self.name}({inside})"


class TTuple(_ArtiqType):
    """Tuple type: ``TTuple([TInt32, TFloat])``."""

    def __init__(self, elts=()):
        super().__init__("tuple", elts=tuple(elts))

    def __repr__(self):
        return "(" + ", ".join(repr(e) for e in self.params["elts"]) + ")"


class TList(_ArtiqType):
    """List type: ``TList(TInt32)``."""

    def __init__(self, elt=None):
        super().__init__("list", elt=elt)


class TArray(_ArtiqType):
    """NumPy array type: ``TArray(TFloat, num_dims=2)``."""

    def __init__(self, elt=None, num_dims=1):
        super().__init__("array", elt=elt, num_dims=num_dims)


class TVar(_ArtiqType):
    """A type variable (to be inferred); every instance is a distinct variable."""

    def __init__(self):
        super().__init__("var")

    def __eq__(self, other):
        return self is other

    def __hash__(self):
        return id(self)

    def __repr__(self):
        return f"<TVar {id(self):#x}>"


TNone = _ArtiqType("NoneType")
TBool = _ArtiqType("bool")
TInt32 = _ArtiqType("numpy.int", width=32)
TInt64 = _ArtiqType("numpy.int", width=64)
TFloat = _ArtiqType("float")
TStr = _ArtiqType("str")
TBytes = _ArtiqType("bytes")
TByteArray = _ArtiqType("bytearray")
TRange32 = _ArtiqType("range", elt=TInt32)
TRange64 = _ArtiqType("range", elt=TInt64)
