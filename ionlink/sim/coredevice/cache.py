"""Simulated core device cache (``artiq.coredevice.cache``): lists of int32 kept
between kernels, as the core device's cache keeps them until it reboots."""

from __future__ import annotations

from artiq.coredevice.exceptions import CacheError
from artiq.language.core import kernel


class CoreCache:
    """Core device cache access."""

    def __init__(self, dmgr, core_device="core"):
        self.core = dmgr.get(core_device)
        self._rows: dict[str, list[int]] = {}
        self._borrowed: set[str] = set()

    @kernel
    def get(self, key):
        """The list stored under ``key``, or an empty list."""
        value = self._rows.get(key, [])
        if value:
            self._borrowed.add(key)
        return value

    @kernel
    def put(self, key, value):
        """Store a list of int32 under ``key``; an empty list deletes it."""
        if key in self._borrowed and key in self._rows and \
                len(value) != len(self._rows[key]):
            raise CacheError("cannot change the length of a borrowed cache row")
        values = [int(v) for v in value]
        for v in values:
            if not -(1 << 31) <= v < (1 << 31):
                raise ValueError(f"core cache values must be int32, got {v}")
        if values:
            self._rows[key] = values
        else:
            self._rows.pop(key, None)
