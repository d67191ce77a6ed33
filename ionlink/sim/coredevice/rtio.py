"""RTIO syscalls (``artiq.coredevice.rtio``) on the session's simulated engine."""

from __future__ import annotations

from ionlink.sim import session


def rtio_output(target: int, data: int) -> None:
    """Submit an output event at the cursor to ``target`` (channel << 8 | address)."""
    session.engine().output(target, data)


def rtio_output_wide(target: int, data: list[int]) -> None:
    """Submit a wide output event (several data words) at the cursor."""
    session.engine().output(target, list(data))


def rtio_input_timestamp(timeout_mu: int, channel: int) -> int:
    """Timestamp of the next input event before ``timeout_mu``, or -1 (blocks)."""
    return session.engine().input_timestamped_data(timeout_mu, channel)[0]


def rtio_input_data(channel: int) -> int:
    """Data of the next input event (a sample), blocking until it exists."""
    return session.engine().input_data(channel)


def rtio_input_timestamped_data(timeout_mu: int, channel: int) -> tuple[int, int]:
    """``(timestamp, data)`` of the next input event before ``timeout_mu``, or ``(-1, 0)``."""
    return session.engine().input_timestamped_data(timeout_mu, channel)


def rtio_get_counter() -> int:
    """The RTIO counter (the simulated CPU clock), in machine units."""
    return session.engine().cpu
