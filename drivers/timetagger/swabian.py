"""The real Swabian Instruments Time Tagger through Swabian's Python API.

The API (package ``swabian-timetagger``: module ``Swabian.TimeTagger``, formerly
``TimeTagger``) is imported only when this backend is created, so nothing else needs it.
Calls used: ``createTimeTagger(serial)``, ``freeTimeTagger``, ``getSerial``,
``getChannelList``, ``setInputDelay``/``getInputDelay`` (ps), ``Coincidence`` (virtual
channel, ``getChannel``), ``TimeTagStream`` (``getData`` -> ``getTimestamps``,
``getChannels``, ``getEventTypes``/``hasOverflows``), ``Countrate``, ``Correlation``,
``startFor``/``waitUntilFinished``/``getData``/``getIndex``.

Virtual channels: ``Coincidence(tagger, channels, coincidenceWindow, timestamp)`` (with
``CoincidenceTimestamp.Last``, the API's default: stamped with the latest member tag) is
a virtual channel whose number ``getChannel()`` returns; the API numbers virtual channels
itself and they are used like input numbers by every measurement, ``TimeTagStream``
included, so a stream of virtual channels passes their numbers in its channel list and
receives their tags merged with the inputs'. The ``Coincidence`` objects are kept alive
(the channel exists only as long as its object) until :meth:`SwabianTagger.close`.
Channel numbers are read as int32 (the API's ``channel_t``), wide enough for virtual
numbers. Not yet run against a device: written from Swabian's API documentation and tested
only against a stand-in of that API.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from drivers.timetagger.backend import DeviceUnplugged


def import_api() -> Any:
    """Swabian's TimeTagger module; a clear ImportError if the package is missing."""
    for name in ("Swabian.TimeTagger", "TimeTagger"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ImportError("the Swabian Time Tagger API is not installed "
                      "(pip install swabian-timetagger); use --simulation without a device")


class SwabianTagger:
    """A connected Time Tagger.

    :param serial: serial number ("" = the first device found).
    :param api: the TimeTagger module (default: imported).
    """

    threaded = True

    def __init__(self, serial: str = "", api: Any = None):
        self.api = api if api is not None else import_api()
        try:
            self.tagger = self.api.createTimeTagger(serial)
        except RuntimeError as e:
            raise DeviceUnplugged(f"no Time Tagger {serial or '(any)'} found: {e}") from None
        self._stream = None
        self._coincidences: dict[int, Any] = {}

    def _call(self, fn, *args):
        try:
            return fn(*args)
        except RuntimeError as e:
            raise DeviceUnplugged(f"time tagger error: {e}") from None

    def serial(self) -> str:
        return str(self._call(self.tagger.getSerial))

    def input_channels(self) -> list[int]:
        rising = self.api.ChannelEdge.Rising if hasattr(self.api, "ChannelEdge") else None
        if rising is None:
            return list(self._call(self.tagger.getChannelList))
        return list(self._call(self.tagger.getChannelList, rising))

    def set_input_delay(self, channel: int, delay_ps: int) -> None:
        self._call(self.tagger.setInputDelay, channel, int(delay_ps))

    def get_input_delay(self, channel: int) -> int:
        return int(self._call(self.tagger.getInputDelay, channel))

    def define_coincidence(self, channels: list[int], window_ps: int) -> int:
        stamp = getattr(getattr(self.api, "CoincidenceTimestamp", None), "Last", None)
        args = (self.tagger, list(channels), int(window_ps)) + (() if stamp is None
                                                                else (stamp,))
        coinc = self._call(self.api.Coincidence, *args)
        number = int(coinc.getChannel())
        self._coincidences[number] = coinc
        return number

    def open_stream(self, channels: list[int], buffer_tags: int) -> None:
        """Stream ``channels``: inputs and virtual channel numbers from
        :meth:`define_coincidence` alike (TimeTagStream takes both)."""
        self._stream = self._call(self.api.TimeTagStream, self.tagger, int(buffer_tags),
                                  list(channels))

    def read_stream(self) -> tuple[np.ndarray, np.ndarray, int]:
        data = self._call(self._stream.getData)
        t = np.asarray(data.getTimestamps(), dtype=np.int64)
        c = np.asarray(data.getChannels(), dtype=np.int32)
        types = np.asarray(data.getEventTypes()) if hasattr(data, "getEventTypes") else None
        dropped = 0
        if types is not None and len(types):
            keep = types == 0                      # TimeTag; others mark overflows
            missed = data.getMissedEvents() if hasattr(data, "getMissedEvents") else None
            if missed is not None and len(missed):
                dropped = int(np.asarray(missed)[~keep].sum())
            elif not keep.all():
                dropped = int((~keep).sum())
            t, c = t[keep], c[keep]
        elif getattr(data, "hasOverflows", False):
            dropped = 1
        return t, c, dropped

    def close_stream(self) -> None:
        if self._stream is not None:
            self._stream.stop()
            self._stream = None

    def _run_for(self, measurement: Any, duration_ps: int) -> Any:
        self._call(measurement.startFor, int(duration_ps))
        self._call(measurement.waitUntilFinished)
        return measurement

    def acquire(self, channels: list[int], duration_ps: int, wait: bool = True
                ) -> tuple[np.ndarray, np.ndarray]:
        if not wait:
            raise NotImplementedError("the real tagger cannot look back in time")
        stream = self._call(self.api.TimeTagStream, self.tagger, 1 << 24, list(channels))
        self._run_for(stream, duration_ps)
        data = stream.getData()
        return (np.asarray(data.getTimestamps(), dtype=np.int64),
                np.asarray(data.getChannels(), dtype=np.int32))

    def count_rates(self, channels: list[int], duration_ps: int) -> list[float]:
        m = self._run_for(self._call(self.api.Countrate, self.tagger, list(channels)),
                          duration_ps)
        return [float(x) for x in m.getData()]

    def correlation(self, channel_1: int, channel_2: int, bin_width_ps: int, n_bins: int,
                    duration_ps: int) -> tuple[np.ndarray, np.ndarray]:
        m = self._run_for(self._call(self.api.Correlation, self.tagger, channel_1, channel_2,
                                     int(bin_width_ps), int(n_bins)), duration_ps)
        centres = np.asarray(m.getIndex(), dtype=np.int64)
        return centres - bin_width_ps // 2, np.asarray(m.getData(), dtype=np.int64)

    def close(self) -> None:
        self.close_stream()
        self._coincidences.clear()
        if self.tagger is not None:
            self.api.freeTimeTagger(self.tagger)
            self.tagger = None
