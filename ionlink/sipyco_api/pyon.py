"""PYON (v1) encoding as sipyco writes it: ionlink's implementation, under sipyco's names."""

from ionlink.runner.pyon import PYONDecodeError, decode, encode, load_file, store_file

__all__ = ["PYONDecodeError", "decode", "encode", "load_file", "store_file"]
