"""What the time-tagger driver needs from a device (real or simulated).

Times are integer picoseconds on the tagger's clock; channels are physical input numbers
(see :mod:`.channels`) or virtual channel numbers returned by :meth:`define_coincidence`.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class DeviceUnplugged(RuntimeError):
    """The time tagger stopped answering (USB unplugged, power lost)."""


class TaggerBackend(Protocol):
    #: True when stream reads may come from a background thread (real device, wall-clock
    #: simulation); False when the driver must read in the caller's thread (a simulated run).
    threaded: bool

    def serial(self) -> str:
        """Device serial number."""

    def input_channels(self) -> list[int]:
        """Physical input channels that can be used."""

    def set_input_delay(self, channel: int, delay_ps: int) -> None:
        """Delay added to every tag of ``channel`` (ps)."""

    def get_input_delay(self, channel: int) -> int:
        """Delay of ``channel`` (ps)."""

    def define_coincidence(self, channels: list[int], window_ps: int) -> int:
        """Create a coincidence virtual channel; return its number."""

    def open_stream(self, channels: list[int], buffer_tags: int) -> None:
        """Start buffering tags of ``channels`` (up to ``buffer_tags`` between reads);
        virtual channel numbers from :meth:`define_coincidence` are streamed like inputs,
        their tags merged in time order (members need not be streamed)."""

    def read_stream(self) -> tuple[np.ndarray, np.ndarray, int]:
        """Tags since the last read: ``(timestamps_ps int64, channels int, n_dropped)``,
        time-ordered and never earlier than tags already returned."""

    def close_stream(self) -> None:
        """Stop buffering."""

    def acquire(self, channels: list[int], duration_ps: int) -> tuple[np.ndarray, np.ndarray]:
        """Tags of ``channels`` (virtual ones included) over ``duration_ps``, time-ordered."""

    def count_rates(self, channels: list[int], duration_ps: int) -> list[float]:
        """Mean count rate (Hz) of each channel over ``duration_ps``."""

    def correlation(self, channel_1: int, channel_2: int, bin_width_ps: int, n_bins: int,
                    duration_ps: int) -> tuple[np.ndarray, np.ndarray]:
        """Histogram of channel_2 - channel_1 delays: ``(bin_left_edges_ps, counts)``."""

    def close(self) -> None:
        """Release the device."""
