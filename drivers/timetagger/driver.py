"""The time-tagger controller's RPC target: streaming to files and live measurements.

RPC methods take and return seconds/Hz and plain values (PYON). Method annotations are
plain classes (no ``None``/unions) so that real sipyco can list them (``sipyco_rpctool``).
"""

import datetime as dt
import logging
import threading
import time

import numpy as np

from drivers.timetagger import measurements
from drivers.timetagger.backend import DeviceUnplugged
from drivers.timetagger.channels import (
    MAX_VIRTUAL_PER_STREAM,
    ChannelError,
    check_physical,
    coincidence_label,
    detector_id,
    virtual_detector_id,
)
from drivers.timetagger.streaming import RotatingWriter

logger = logging.getLogger(__name__)

PS = 1e-12
DEFAULT_BUFFER_TAGS = 1 << 24


class StreamError(RuntimeError):
    """A stream could not start, or stopped on a fault; the message says why and which files
    hold the tags written so far."""


def _ps(seconds: float, what: str, positive: bool = True) -> int:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) \
            or not np.isfinite(seconds) or (positive and seconds <= 0):
        raise ValueError(f"{what} must be a {'positive ' if positive else ''}finite number "
                         f"of seconds, got {seconds!r}")
    return int(round(seconds / PS))


class _Stream:
    def __init__(self, name: str, channels: list, ids: dict, writer: RotatingWriter):
        self.name = name
        self.channels = channels
        self.writer = writer
        # device channel number -> detector id: a lookup table indexed by channel - lo
        # (device channel numbers may be large: a real tagger numbers virtual channels)
        self._lo = min(ids)
        small = max(ids) - self._lo < 1 << 16
        self._lut = np.full(max(ids) - self._lo + 1 if small else 1, -1, dtype=np.int16)
        if small:
            self._lut[np.asarray(list(ids), dtype=np.int64) - self._lo] = list(ids.values())
        self._keys = np.asarray(sorted(ids), dtype=np.int64)
        self._ids = np.asarray([ids[k] for k in sorted(ids)], dtype=np.uint8)
        self._small = small
        self.detectors = dict(ids)
        self.started = time.time()
        self.dropped = 0
        self.error = ""
        self.files: list = []
        self.running = True

    def detector_ids(self, channels: np.ndarray) -> np.ndarray:
        """uint8 detector ids of device channel numbers (ValueError on a channel the
        stream does not hold)."""
        c = np.asarray(channels)
        if not len(c):
            return np.empty(0, np.uint8)
        if self._small:
            lo, hi = int(c.min()), int(c.max())
            if lo >= self._lo and hi < self._lo + len(self._lut):
                d = self._lut[c.astype(np.int64) - self._lo]
                if d.min() >= 0:
                    return d.astype(np.uint8)
        else:
            c64 = c.astype(np.int64)
            pos = np.minimum(np.searchsorted(self._keys, c64), len(self._keys) - 1)
            if np.array_equal(self._keys[pos], c64):
                return self._ids[pos]
        held = set(self._keys.tolist())
        stray = next(int(x) for x in np.unique(c) if int(x) not in held)
        raise ValueError(f"the device returned tags of channel {stray}, which the stream "
                         f"does not hold ({list(self.channels)})")

    def summary(self) -> dict:
        return {"name": self.name, "running": self.running, "channels": list(self.channels),
                "detector_ids": dict(self.detectors),
                "n_tags": self.writer.n_tags, "n_dropped": self.dropped,
                "files": [str(p) for p in self.writer.files], "error": self.error,
                "started": self.started}


class TimeTaggerDriver:
    """Time tagger (Swabian Instruments Time Tagger or its simulation) as an ARTIQ controller.

    Channels are tagger input numbers (see the controller's channel map); virtual
    coincidence channels come from :meth:`define_coincidence`. One stream at a time writes
    tags of inputs and virtual channels to rotating Photon-HDF5 files (timestamps in ps;
    detector ids in :mod:`drivers.timetagger.channels`); measurements run alongside.
    A fault (disk full, device unplugged) stops the stream and is raised to the next caller
    of :meth:`stream_status`/:meth:`stop_stream`; the controller keeps serving.
    """

    def __init__(self, backend, labels: dict, poll_interval_s: float = 0.02):
        self._backend = backend
        self._labels = {check_physical(int(c)): str(n) for c, n in labels.items()}
        self._poll = poll_interval_s
        self._virtual: dict = {}
        self._windows: dict = {}
        self._stream: _Stream = None
        self._failed: _Stream = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread = None

    # -- basics -----------------------------------------------------------------------------
    def ping(self) -> bool:
        """True while the device answers (ARTIQ's controller manager polls this)."""
        try:
            self._backend.serial()
        except DeviceUnplugged:
            return False
        return True

    def get_serial(self) -> str:
        """Serial number of the time tagger."""
        return self._backend.serial()

    def get_channels(self) -> dict:
        """Channel number -> label: inputs (the detector's TTL device name) and virtual
        coincidence channels."""
        out = dict(self._labels)
        out.update({v: coincidence_label(m) for v, m in self._virtual.items()})
        return out

    def _check_inputs(self, channels: list, allow_virtual: bool = True) -> list:
        if not isinstance(channels, (list, tuple)) or not channels:
            raise ChannelError(f"channels must be a non-empty list, got {channels!r}")
        out = []
        for c in channels:
            if isinstance(c, bool) or not isinstance(c, int):
                raise ChannelError(f"tagger channel must be an integer, got {c!r}")
            if c in self._labels or (allow_virtual and c in self._virtual):
                out.append(c)
                continue
            if c in self._virtual:
                raise ChannelError(f"channel {c} is a virtual channel "
                                   f"{coincidence_label(self._virtual[c])}; this needs an "
                                   f"input channel ({sorted(self._labels)})")
            virtual = (f", virtual channels from define_coincidence: {sorted(self._virtual)}"
                       if allow_virtual else "")
            raise ChannelError(f"unknown tagger channel {c}; input channels: "
                               f"{sorted(self._labels)}{virtual}")
        if len(set(out)) != len(out):
            raise ChannelError(f"channel listed twice in {channels}")
        return out

    def set_input_delay(self, channel: int, delay_s: float):
        """Delay (s, may be negative) added to every tag of an input channel."""
        (channel,) = self._check_inputs([channel], allow_virtual=False)
        delay = _ps(delay_s, "delay", positive=False)
        with self._lock:
            if self._stream is not None:
                raise StreamError("input delays cannot change while a stream runs; "
                                  "stop it first")
            self._backend.set_input_delay(channel, delay)

    def get_input_delay(self, channel: int) -> float:
        """Delay (s) of an input channel."""
        (channel,) = self._check_inputs([channel], allow_virtual=False)
        return self._backend.get_input_delay(channel) * PS

    def define_coincidence(self, channels: list, window_s: float) -> int:
        """Create a virtual channel that ticks when every listed input clicks within
        ``window_s``; returns its channel number (usable in the measurements)."""
        channels = self._check_inputs(channels, allow_virtual=False)
        if len(channels) < 2:
            raise ChannelError("a coincidence needs at least two channels")
        window = _ps(window_s, "window")
        number = self._backend.define_coincidence(channels, window)
        if number in self._labels:
            raise ChannelError(f"the device numbered a virtual channel {number}, which is an "
                               "input of the channel map")
        self._virtual[number] = list(channels)
        self._windows[number] = window
        return number

    # -- streaming --------------------------------------------------------------------------
    def start_stream(self, directory: str, channels: list = None, prefix: str = "",
                     max_file_bytes: int = 1 << 30, max_file_s: float = 3600.0,
                     description: str = "", buffer_tags: int = DEFAULT_BUFFER_TAGS) -> str:
        """Stream tags of ``channels`` (default: every input) into ``directory``/PREFIX_NNNNN.h5,
        a new file whenever the open one reaches ``max_file_bytes`` or ``max_file_s``;
        flushed at least once a second. Returns the stream name (the prefix).

        ``channels`` may include virtual channels from :meth:`define_coincidence` (at most
        28), with or without their members: the k-th virtual channel listed is written as
        detector id 100 + k, labelled ``coincidence(1,2)``, and its window is noted in
        the files' description (see :mod:`drivers.timetagger.channels`)."""
        channels = self._check_inputs(sorted(self._labels) if channels is None else channels)
        virtual = [c for c in channels if c in self._virtual]
        if len(virtual) > MAX_VIRTUAL_PER_STREAM:
            raise ChannelError(f"a stream holds at most {MAX_VIRTUAL_PER_STREAM} virtual "
                               f"channels (detector ids 100..127), got {len(virtual)}")
        ids = {c: detector_id(c) for c in channels if c not in self._virtual}
        ids.update({v: virtual_detector_id(k) for k, v in enumerate(virtual)})
        labels = {ids[c]: (coincidence_label(self._virtual[c]) if c in self._virtual
                           else self._labels[c]) for c in channels}
        if virtual:
            note = "virtual channels: " + ", ".join(
                f"{ids[v]}={labels[ids[v]]} window {self._windows[v] * PS:g} s"
                for v in virtual)
            description = f"{description}\n{note}" if description else note
        with self._lock:
            self._pump_caller()
            if self._stream is not None:
                raise StreamError(f"stream {self._stream.name!r} is already running "
                                  f"(files {[str(p) for p in self._stream.writer.files]}); "
                                  "stop it before starting another")
            self._failed = None
            name = prefix or "timetags_" + dt.datetime.now().strftime("%Y%m%d_%H%M%S_%f")
            writer = RotatingWriter(directory, name, max_file_bytes, max_file_s,
                                    labels=labels, description=description)
            try:
                self._backend.open_stream(channels, int(buffer_tags))
            except BaseException:
                writer.abandon()
                raise
            self._stream = _Stream(name, channels, ids, writer)
            if self._backend.threaded:
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="tagger-stream",
                                                daemon=True)
                self._thread.start()
        return name

    def _run(self) -> None:
        while not self._stop.wait(self._poll):
            with self._lock:
                if self._stream is None:
                    return
                self._pump()

    def _pump_caller(self) -> None:
        if not self._backend.threaded and self._stream is not None:
            self._pump()

    def _pump(self) -> None:
        s = self._stream
        try:
            t, c, dropped = self._backend.read_stream()
            if dropped:
                s.dropped += dropped
                logger.warning("stream %s: %d tags dropped (device buffer overflow)",
                               s.name, dropped)
            if len(t):
                s.writer.append(t, s.detector_ids(c))
            else:
                s.writer.tick()
        except (OSError, DeviceUnplugged, RuntimeError, ValueError) as e:
            s.error = f"{type(e).__name__}: {e}"
            logger.error("stream %s stopped: %s", s.name, s.error)
            s.writer.abandon()
            try:
                self._backend.close_stream()
            except Exception:
                pass
            s.running = False
            self._stream, self._failed = None, s

    def _raise_failed(self) -> None:
        s, self._failed = self._failed, None
        raise StreamError(f"stream {s.name!r} stopped: {s.error}. {s.writer.n_tags} tags were "
                          f"written to {[str(p) for p in s.writer.files]} (files before the "
                          f"last are complete; the last holds the tags up to its last flush)")

    def stream_status(self) -> dict:
        """Summary of the running stream (``running``, ``n_tags``, ``n_dropped``, ``files``,
        ``detector_ids``: channel -> detector id in the files);
        raises :class:`StreamError` once if the last stream stopped on a fault."""
        with self._lock:
            self._pump_caller()
            if self._failed is not None:
                self._raise_failed()
            if self._stream is None:
                return {"running": False}
            return self._stream.summary()

    def stop_stream(self) -> dict:
        """Read the last tags, close the files and return the stream summary (raises
        :class:`StreamError` if the stream had stopped on a fault)."""
        with self._lock:
            self._pump_caller()
            if self._failed is not None:
                self._raise_failed()
            s = self._stream
            if s is None:
                raise StreamError("no stream is running")
            self._pump()
            if self._failed is not None:
                self._raise_failed()
            self._stream = None
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._backend.close_stream()
        s.running = False
        s.writer.close()
        return s.summary()

    # -- measurements -----------------------------------------------------------------------
    def count_rates(self, channels: list, duration_s: float) -> list:
        """Mean count rate (Hz) of each channel over ``duration_s``."""
        channels = self._check_inputs(channels)
        return [float(r) for r in self._backend.count_rates(channels,
                                                             _ps(duration_s, "duration"))]

    def correlation(self, channel_1: int, channel_2: int, bin_width_s: float, n_bins: int,
                    duration_s: float) -> dict:
        """Histogram of (channel_2 - channel_1) delays over ``duration_s``, ``n_bins`` bins of
        ``bin_width_s`` centred on zero: ``{"bin_edges_s": left edges, "counts": ...}``."""
        self._check_inputs([channel_1, channel_2] if channel_1 != channel_2 else [channel_1])
        if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
            raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
        edges, counts = self._backend.correlation(channel_1, channel_2,
                                                  _ps(bin_width_s, "bin width"), n_bins,
                                                  _ps(duration_s, "duration"))
        return {"bin_edges_s": np.asarray(edges) * PS, "counts": np.asarray(counts)}

    def herald_window_counts(self, trigger_channel: int, channels: list, offset_s: float,
                             length_s: float, duration_s: float) -> list:
        """Counts of each channel in the windows ``[trigger + offset, trigger + offset +
        length)`` after every trigger tag, summed over ``duration_s`` (heralding windows)."""
        channels = self._check_inputs(channels)
        self._check_inputs([trigger_channel])
        offset, length = _ps(offset_s, "offset", positive=False), _ps(length_s, "length")
        t, c = self._backend.acquire(sorted(set(channels) | {trigger_channel}),
                                     _ps(duration_s, "duration"))
        starts = measurements.select(t, c, trigger_channel) + offset
        return [int(n) for n in measurements.window_counts(t, c, channels, starts,
                                                           length).sum(axis=0)]

    def window_counts(self, channels: list, starts_s: list, length_s: float) -> list:
        """Counts per window (rows) and channel (columns) in windows ``[start, start +
        length)`` given in tagger time (s; in a simulated run, core time), all ended by now.
        Needs a device that reports its current time (the simulation)."""
        channels = self._check_inputs(channels)
        starts = np.asarray([_ps(s, "window start", positive=False) for s in starts_s],
                            dtype=np.int64)
        length = _ps(length_s, "length")
        clock = getattr(self._backend, "clock", None)
        if clock is None:
            raise StreamError("this tagger has no absolute clock; use herald_window_counts")
        if not len(starts):
            return []
        now_ps = clock.now_mu() * 1000
        if int(starts.max()) + length > now_ps or starts.min() < 0:
            raise ValueError(f"windows must lie in [0, now = {now_ps * PS} s)")
        t, c = self._backend.acquire(channels, now_ps - int(starts.min()), wait=False)
        return measurements.window_counts(t, c, channels, starts, length).tolist()

    def close(self):
        """Stop any stream (closing its files) and release the device."""
        try:
            if self._stream is not None:
                try:
                    self.stop_stream()
                except Exception as e:
                    logger.error("closing stream: %s", e)
        finally:
            self._backend.close()
