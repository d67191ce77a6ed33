"""The simulated Time Tagger: detector clicks read through the World interface.

Each mapped tagger channel reads the rising edges of the TTL input device wired to the same
detector (``world.input_edges(device_key, t0_mu, t1_mu)``, the record the TTL inputs see),
converted to ps (1 mu = 1 ns = 1000 ps) plus the channel's input delay. Nothing here knows
physics: the world decides when detectors click.

Clock: in a simulated run (:func:`controller_factory`) the tagger's "now" is the simulated
core's RTIO counter, streams are read in the caller's thread and measurements cover the
``duration`` of core time just before the call. Stand-alone (``aqctl_ionlink_timetagger
--simulation``) it runs on wall time since start, like a real device: streams are read by a
background thread and measurements wait ``duration``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from drivers._controller import parse_command
from drivers.timetagger import measurements
from drivers.timetagger.backend import DeviceUnplugged
from drivers.timetagger.channels import ChannelError, check_physical

FIRST_VIRTUAL_CHANNEL = 100
PS_PER_MU = 1000


class RunClock:
    """Core time of the running simulation session (mu): the RTIO counter."""

    threaded = False

    def now_mu(self) -> int:
        from ionlink.sim import session

        return int(session.engine().cpu)

    def wait(self, duration_s: float) -> None:
        """Measurements look back; nothing to wait for."""


class WallClock:
    """Wall time since creation, in mu (ns)."""

    threaded = True

    def __init__(self) -> None:
        self._t0 = time.monotonic_ns()

    def now_mu(self) -> int:
        return time.monotonic_ns() - self._t0

    def wait(self, duration_s: float) -> None:
        time.sleep(duration_s)


class ManualClock:
    """A clock moved by hand: ``t`` (mu) is the time until its owner changes it (tests,
    scripted playback); ``wait`` returns at once."""

    threaded = False

    def __init__(self, t_mu: int = 0) -> None:
        self.t = t_mu

    def now_mu(self) -> int:
        return self.t

    def wait(self, duration_s: float) -> None:
        """Time moves only by hand; nothing to wait for."""


def session_world() -> Any:
    """The world behind the running simulation session."""
    from ionlink.sim import session

    return session.engine().world


class SimulatedTagger:
    """A Time Tagger whose inputs see the world's detector clicks.

    :param channel_devices: tagger channel -> device_db key of the TTL input on the same
        detector.
    :param world: callable returning the current world (called at every read).
    :param clock: :class:`RunClock` or :class:`WallClock`.
    :param serial: reported serial number.
    """

    def __init__(self, channel_devices: dict[int, str], world: Callable[[], Any],
                 clock: RunClock | WallClock, serial: str = "SIM-TAGGER"):
        for c in channel_devices:
            if check_physical(c) < 0:
                raise ChannelError(f"simulated tagger channels see rising edges only; "
                                   f"channel {c} is a falling-edge channel")
        self.devices = dict(channel_devices)
        self._world = world
        self.clock = clock
        self.threaded = clock.threaded
        self._serial = serial
        self._delays = {c: 0 for c in self.devices}
        self._virtual: dict[int, tuple[list[int], int]] = {}
        self._stream: dict[str, Any] | None = None
        self._unplugged = False
        self._lock = threading.Lock()

    # -- faults -------------------------------------------------------------------------
    def simulate_unplug(self) -> None:
        """From now on every call raises :class:`DeviceUnplugged` (fault injection)."""
        self._unplugged = True

    def _alive(self) -> None:
        if self._unplugged:
            raise DeviceUnplugged(f"time tagger {self._serial} does not answer "
                                  "(simulated unplug)")

    # -- configuration ------------------------------------------------------------------
    def serial(self) -> str:
        self._alive()
        return self._serial

    def input_channels(self) -> list[int]:
        return sorted(self.devices)

    def set_input_delay(self, channel: int, delay_ps: int) -> None:
        self._alive()
        self._delays[channel] = int(delay_ps)

    def get_input_delay(self, channel: int) -> int:
        return self._delays[channel]

    def define_coincidence(self, channels: list[int], window_ps: int) -> int:
        self._alive()
        number = FIRST_VIRTUAL_CHANNEL + len(self._virtual)
        self._virtual[number] = (list(channels), int(window_ps))
        return number

    # -- reading the world --------------------------------------------------------------
    def _edges(self, channels: list[int], t0_mu: int, t1_mu: int
               ) -> tuple[np.ndarray, np.ndarray]:
        world = self._world()
        ts, ch = [], []
        for c in channels:
            edges = np.asarray(world.input_edges(self.devices[c], t0_mu, t1_mu),
                               dtype=np.int64)
            ts.append(edges * PS_PER_MU + self._delays[c])
            ch.append(np.full(len(edges), c, dtype=np.int16))
        if not ts:
            return np.empty(0, np.int64), np.empty(0, np.int16)
        t, c = np.concatenate(ts), np.concatenate(ch)
        order = np.argsort(t, kind="stable")
        return t[order], c[order]

    def open_stream(self, channels: list[int], buffer_tags: int) -> None:
        """Buffer tags of ``channels``: inputs and virtual channels. A virtual channel's
        tags are computed from its members' edges block by block
        (:class:`~.measurements.CoincidenceTracker`) from the stream's start on, whether
        or not the members are streamed too."""
        self._alive()
        virtual = [c for c in channels if c in self._virtual]
        inputs = [c for c in channels if c not in self._virtual]
        for c in inputs:
            if c not in self.devices:
                raise ChannelError(f"channel {c} is neither an input of this tagger "
                                   f"{sorted(self.devices)} nor a virtual channel "
                                   f"{sorted(self._virtual)}")
        members = {m for v in virtual for m in self._virtual[v][0]}
        now = self.clock.now_mu()
        self._stream = {
            "channels": list(channels), "t_mu": now, "buffer": int(buffer_tags),
            # read in channel order: tags at equal times are ordered by channel, as in
            # acquire (the coincidence scan depends on the order of equal-time tags)
            "read": sorted(set(inputs) | members),
            "inputs": np.asarray(sorted(inputs), dtype=np.int16),
            "trackers": [(v, measurements.CoincidenceTracker(*self._virtual[v]))
                         for v in virtual],
            "pending_t": np.empty(0, np.int64), "pending_c": np.empty(0, np.int16)}

    def read_stream(self) -> tuple[np.ndarray, np.ndarray, int]:
        self._alive()
        s = self._stream
        if s is None:
            raise RuntimeError("no stream is open")
        t1 = self.clock.now_mu()
        if t1 <= s["t_mu"]:
            return np.empty(0, np.int64), np.empty(0, np.int16), 0
        t, c = self._edges(s["read"], s["t_mu"], t1)
        s["t_mu"] = t1
        if len(s["pending_t"]):
            t = np.concatenate([s["pending_t"], t])
            c = np.concatenate([s["pending_c"], c])
            order = np.lexsort((c, t))
            t, c = t[order], c[order]
        # a later edge of a less-delayed channel can still land before an edge seen now
        horizon = t1 * PS_PER_MU + min(self._delays[ch] for ch in s["read"])
        cut = int(np.searchsorted(t, horizon, side="left"))
        s["pending_t"], s["pending_c"] = t[cut:], c[cut:]
        t, c = t[:cut], c[:cut]
        if s["trackers"]:
            keep = np.isin(c, s["inputs"])
            parts_t, parts_c = [t[keep]], [c[keep]]
            for v, tracker in s["trackers"]:
                vt = tracker.feed(t, c)
                parts_t.append(vt)
                parts_c.append(np.full(len(vt), v, dtype=np.int16))
            t, c = np.concatenate(parts_t), np.concatenate(parts_c)
            order = np.argsort(t, kind="stable")
            t, c = t[order], c[order]
        dropped = max(len(t) - s["buffer"], 0)
        if dropped:          # the device buffer overflowed: the newest tags are lost
            t, c = t[:s["buffer"]], c[:s["buffer"]]
        return t, c, dropped

    def close_stream(self) -> None:
        self._stream = None

    def acquire(self, channels: list[int], duration_ps: int, wait: bool = True
                ) -> tuple[np.ndarray, np.ndarray]:
        """Tags over ``duration_ps``; with ``wait`` (default) the window starts now (wall
        clock: sleep through it), otherwise it is the ``duration_ps`` just before now."""
        self._alive()
        physical = sorted({m for c in channels
                           for m in (self._virtual[c][0] if c in self._virtual else [c])})
        if wait:
            self.clock.wait(duration_ps * 1e-12)
        t1 = self.clock.now_mu()
        t0 = t1 - -(-duration_ps // PS_PER_MU)
        t, c = self._edges(physical, t0, t1)
        parts_t, parts_c = [t[np.isin(c, channels)]], [c[np.isin(c, channels)]]
        for v in channels:
            if v in self._virtual:
                members, window = self._virtual[v]
                vt = measurements.coincidence_tags(t, c, members, window)
                parts_t.append(vt)
                parts_c.append(np.full(len(vt), v, dtype=np.int16))
        t, c = np.concatenate(parts_t), np.concatenate(parts_c)
        order = np.argsort(t, kind="stable")
        return t[order], c[order]

    def count_rates(self, channels: list[int], duration_ps: int) -> list[float]:
        t, c = self.acquire(channels, duration_ps)
        return measurements.count_rates(t, c, channels, duration_ps)

    def correlation(self, channel_1: int, channel_2: int, bin_width_ps: int, n_bins: int,
                    duration_ps: int) -> tuple[np.ndarray, np.ndarray]:
        t, c = self.acquire(sorted({channel_1, channel_2}), duration_ps)
        return measurements.correlation(t[c == channel_1], t[c == channel_2], bin_width_ps,
                                        n_bins)

    def close(self) -> None:
        self._stream = None


def controller_factory(device_manager: Any, desc: dict) -> Any:
    """The runner's in-process simulated controller for a ``timetagger`` device_db entry.

    The entry's ``command`` is formatted with the entry's keys (as artiq_ctlmgr does) and
    parsed by the controller's own argument parser, so the channel map and options come
    from the one place the real controller reads them.
    """
    from drivers.timetagger.aqctl_timetagger import get_argparser
    from drivers.timetagger.driver import TimeTaggerDriver
    from ionlink.runner.devices import resolve_alias

    args = parse_command(desc, "timetagger", get_argparser)
    ddb = device_manager.get_device_db()
    labels = args.channels
    devices = {c: resolve_alias(ddb, name, ChannelError, "tagger channel device")
               for c, name in labels.items()}
    backend = SimulatedTagger(devices, session_world, RunClock(),
                              serial=f"SIM-{args.device or 'TAGGER'}")
    return TimeTaggerDriver(backend, labels)
