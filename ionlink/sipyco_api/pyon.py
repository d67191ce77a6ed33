"""PYON under sipyco's names: ionlink's encoder (v1, as ``sipyco.pyon_v1`` writes it) and
its one decoder (``analysis.pyon``: v1, v2 ``__jsonclass__`` JSON, plain JSON), which
reads what real sipyco of either generation writes. (A sipyco v2 peer cannot read v1.)"""

from ionlink.runner.pyon import PYONDecodeError, decode, encode, load_file, store_file

__all__ = ["PYONDecodeError", "decode", "encode", "load_file", "store_file"]
