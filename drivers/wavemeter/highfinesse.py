"""The real HighFinesse wavemeter (with multi-channel switch) through its wlmData library.

The library (``wlmData.dll`` on Windows, ``libwlmData.so`` on Linux) is loaded with ctypes
only when this backend is created. Calls used: ``Instantiate`` (is the wavemeter server
running), ``SetSwitcherMode``, ``SetSwitcherChannel``, ``GetFrequencyNum`` (THz; values
<= 0 are error codes), ``SetDeviationSignalNum`` (mV on an analog output port: the ``wlm``
actuator), ``GetSwitcherChannel``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import time
from collections.abc import Callable
from typing import Any

from drivers.wavemeter.config import ActuatorSpec, ConfigError

#: wlmData error codes returned instead of a frequency.
ERRORS = {0: "no value", -1: "no signal", -2: "bad signal", -3: "low signal",
          -4: "big signal", -5: "wavemeter missing", -6: "not available",
          -8: "no pulse", -10: "channel not available", -13: "division by zero",
          -14: "out of range", -15: "unit not available"}
C_INST_CHECK_FOR_WLM = -1


class WavemeterError(RuntimeError):
    """The wavemeter server or library is not reachable."""


def load_library(path: str | None = None) -> Any:
    """The wlmData library (ctypes) with argument types set."""
    name = path or ("wlmData.dll" if sys.platform == "win32"
                    else ctypes.util.find_library("wlmData") or "libwlmData.so")
    try:
        lib = ctypes.WinDLL(name) if sys.platform == "win32" else ctypes.CDLL(name)
    except OSError as e:
        raise WavemeterError(f"cannot load the HighFinesse wlmData library {name!r}: {e}; "
                             "use --simulation without an instrument") from None
    lib.Instantiate.restype = ctypes.c_long
    lib.Instantiate.argtypes = [ctypes.c_long] * 3 + [ctypes.c_long]
    lib.GetFrequencyNum.restype = ctypes.c_double
    lib.GetFrequencyNum.argtypes = [ctypes.c_long, ctypes.c_double]
    lib.SetSwitcherChannel.argtypes = [ctypes.c_long]
    lib.SetSwitcherMode.argtypes = [ctypes.c_long]
    lib.SetDeviationSignalNum.restype = ctypes.c_long
    lib.SetDeviationSignalNum.argtypes = [ctypes.c_long, ctypes.c_double]
    return lib


class HighFinesseWavemeter:
    """A HighFinesse wavemeter; switch channels are read one at a time.

    :param channels: switch channel -> laser name.
    :param serial: instrument name (reported only).
    :param settle_s: wait after switching before reading (s).
    :param library: a loaded wlmData library (default: :func:`load_library`).
    """

    threaded = True

    def __init__(self, channels: dict[int, str], serial: str = "", settle_s: float = 0.05,
                 library: Any = None):
        self.channels = dict(channels)
        self.lib = library if library is not None else load_library()
        if self.lib.Instantiate(C_INST_CHECK_FOR_WLM, 0, 0, 0) <= 0:
            raise WavemeterError("the HighFinesse wavemeter server is not running")
        self._serial = serial or "HighFinesse"
        self.settle_s = settle_s
        self.lib.SetSwitcherMode(1)
        self.switch_channel = min(self.channels)
        self._t0 = time.monotonic()

    def serial(self) -> str:
        return self._serial

    def now_s(self) -> float:
        return time.monotonic() - self._t0

    def set_switch_channel(self, channel: int) -> None:
        if channel != self.switch_channel:
            self.lib.SetSwitcherChannel(channel)
            self.switch_channel = channel
            time.sleep(self.settle_s)

    def read_frequency_hz(self, channel: int) -> float | None:
        self.set_switch_channel(channel)
        thz = self.lib.GetFrequencyNum(channel, 0.0)
        if thz <= 0:
            if int(thz) == -5:
                raise WavemeterError("wavemeter missing (server lost the instrument)")
            return None
        return thz * 1e12

    def make_actuator(self, laser_name: str, spec: ActuatorSpec,
                      resolve: Callable[[str], str]) -> Callable[[float], None]:
        if spec.kind != "wlm":
            raise ConfigError(f"actuator of {laser_name}: the real controller drives only the "
                              f"wavemeter's analog outputs (kind 'wlm'), not {spec.kind!r}")
        lib, port = self.lib, spec.channel

        def set_port(volts: float) -> None:
            lib.SetDeviationSignalNum(port, float(volts) * 1e3)
        return set_port

    def close(self) -> None:
        pass
