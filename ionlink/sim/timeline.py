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
        # One entry per open block: ``[start_mu, end_mu]`` for a parallel block, None for
        # a sequential one (its end is the cursor when it exits).
        self._blocks: list[list | None] = []

    def enter_sequential(self) -> None:
        self._blocks.append(None)

    def enter_parallel(self) -> None:
        self._blocks.append([self.now, self.now])

    def exit(self) -> None:
        block = self._blocks.pop()
        end = self.now if block is None else block[1]
        blocks = self._blocks
        if blocks and blocks[-1] is not None:
            parent = blocks[-1]
            if end > parent[1]:
                parent[1] = end
            self.now = parent[0]
        else:
            self.now = end

    def take_time_mu(self, duration: int) -> None:
        blocks = self._blocks
        if blocks and blocks[-1] is not None:
            block = blocks[-1]
            end = block[0] + int(duration)
            if end > block[1]:
                block[1] = end
        else:
            self.now += int(duration)

    def take_time(self, duration: float) -> None:
        self.take_time_mu(seconds_to_mu_rounded(duration, self.ref_period))

    def get_time_mu(self) -> int:
        return self.now

    def set_time_mu(self, time: int) -> None:
        blocks = self._blocks
        if blocks and blocks[-1] is not None:
            block = blocks[-1]
            if time > block[1]:
                block[1] = int(time)
        else:
            self.now = int(time)

    def in_parallel(self) -> bool:
        """True inside a parallel block (statements do not move the cursor)."""
        return bool(self._blocks) and self._blocks[-1] is not None

    def reset_blocks(self) -> None:
        """Forget open blocks (after a kernel ends with an exception)."""
        self._blocks.clear()
