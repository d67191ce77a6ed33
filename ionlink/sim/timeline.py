"""The kernel timeline cursor, executed on the host.

:class:`TimeManager` implements the interface ARTIQ's ``artiq.language.core`` calls while
a kernel runs on the host (``set_time_manager``): ``enter_sequential``, ``enter_parallel``,
``exit``, ``take_time_mu``, ``take_time``, ``get_time_mu``, ``set_time_mu``. It therefore
plugs into real ARTIQ's language module as well as into ionlink's stand-in.

Semantics (ARTIQ's):

- The cursor is an integer number of machine units (int64 on the device).
- In a sequential block, statements follow each other.
- In a parallel block every top-level statement starts at the block's start; the block
  ends at the end of its longest statement. On the host a statement is one timeline
  operation (a delay, an ``at_mu``), a nested block, or a call of a kernel function (the
  simulated core wraps each kernel call in a sequential block), so ``ttl.pulse(t)`` inside
  ``with parallel`` is one statement, as in a compiled kernel.
- ``delay(t)`` rounds ``t / ref_period`` to the nearest machine unit (halves away from
  zero), as the compiler does; ``Core.seconds_to_mu`` floors instead.
"""

from __future__ import annotations

import math


def seconds_to_mu_rounded(seconds: float, ref_period: float) -> int:
    """``seconds / ref_period`` rounded to the nearest integer, halves away from zero."""
    x = seconds / ref_period
    if x >= 0:
        return int(math.floor(x + 0.5))
    return -int(math.floor(-x + 0.5))


class TimeManager:
    """Timeline cursor with ARTIQ's sequential/parallel block semantics.

    :param ref_period: seconds per machine unit.
    """

    def __init__(self, ref_period: float = 1e-9, now_mu: int = 0):
        self.ref_period = ref_period
        #: The cursor, in machine units.
        self.now = int(now_mu)
        # One entry per open block: [is_parallel, start_mu, end_mu]. A sequential block
        # only needs to exist when its parent is parallel, but keeping one entry per
        # block keeps ``exit`` simple.
        self._blocks: list[list] = []

    def enter_sequential(self) -> None:
        self._blocks.append([False, self.now, self.now])

    def enter_parallel(self) -> None:
        self._blocks.append([True, self.now, self.now])

    def exit(self) -> None:
        is_parallel, _start, end = self._blocks.pop()
        if not is_parallel:
            end = self.now
        blocks = self._blocks
        if blocks and blocks[-1][0]:
            parent = blocks[-1]
            if end > parent[2]:
                parent[2] = end
            self.now = parent[1]
        else:
            self.now = end

    def take_time_mu(self, duration: int) -> None:
        blocks = self._blocks
        if blocks and blocks[-1][0]:
            block = blocks[-1]
            end = block[1] + int(duration)
            if end > block[2]:
                block[2] = end
        else:
            self.now += int(duration)

    def take_time(self, duration: float) -> None:
        self.take_time_mu(seconds_to_mu_rounded(duration, self.ref_period))

    def get_time_mu(self) -> int:
        return self.now

    def set_time_mu(self, time: int) -> None:
        blocks = self._blocks
        if blocks and blocks[-1][0]:
            block = blocks[-1]
            if time > block[2]:
                block[2] = int(time)
        else:
            self.now = int(time)

    def in_parallel(self) -> bool:
        """True inside a parallel block (statements do not move the cursor)."""
        return bool(self._blocks) and self._blocks[-1][0]

    def reset_blocks(self) -> None:
        """Forget open blocks (after a kernel ends with an exception)."""
        self._blocks.clear()
