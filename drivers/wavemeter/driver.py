"""The wavemeter controller's RPC target: readings through the fibre switch and software
locks of the node's lasers.

Lasers are named ``LASER_NODE`` (``"397_a"``); frequencies are optical Hz, wavelengths vacuum
metres, times seconds. Method annotations are plain classes (no ``None``/unions) so that real
sipyco can list them.
"""

import logging
import threading

import numpy as np

from drivers.wavemeter.config import parse_laser
from drivers.wavemeter.lock import ALARM_STATES, LaserLock, LockSettings

logger = logging.getLogger(__name__)

C_LIGHT = 299_792_458.0


class NoReading(RuntimeError):
    """The wavemeter gave no frequency (no/low/bad signal on that switch channel)."""


class WavemeterDriver:
    """Multi-channel wavemeter (HighFinesse-style switch) with PI software locks.

    Each lock reads its laser through the switch and steers the laser's actuator (from the
    controller's actuator map) towards a target frequency; :meth:`lock_status` gives state
    (``acquiring``/``locked``/alarm states), :meth:`error_history` the error signal, and
    :meth:`alarms` the lasers outside their capture range (or railed, or without signal).
    With a real instrument or the stand-alone simulation the locks update by themselves
    every ``update_interval_s``; in a simulated run the experiment calls :meth:`service`.
    """

    def __init__(self, backend, actuators: dict, resolve, update_interval_s: float = 0.1):
        self._backend = backend
        self._actuators = dict(actuators)
        self._resolve = resolve
        self._by_laser = {name: ch for ch, name in backend.channels.items()}
        self._locks: dict = {}
        self._mutex = threading.RLock()
        self._interval = float(update_interval_s)
        self._stop = threading.Event()
        self._thread: threading.Thread = None

    # -- basics -----------------------------------------------------------------------------
    def ping(self) -> bool:
        """True while the instrument answers."""
        try:
            self._backend.serial()
        except Exception:
            return False
        return True

    def get_serial(self) -> str:
        """Name/serial of the instrument."""
        return self._backend.serial()

    def get_channels(self) -> dict:
        """Switch channel -> laser name."""
        return dict(self._backend.channels)

    def _channel(self, laser: str) -> int:
        if not isinstance(laser, str):
            raise ValueError(f"laser must be a name like '397_a', got {laser!r}")
        parse_laser(laser)
        ch = self._by_laser.get(laser)
        if ch is None:
            raise ValueError(f"laser {laser!r} is on no wavemeter channel; channels: "
                             f"{self._backend.channels}")
        return ch

    def get_frequency(self, laser: str) -> float:
        """Optical frequency (Hz) of ``laser`` now (switches the fibre switch to it)."""
        ch = self._channel(laser)
        with self._mutex:
            f = self._backend.read_frequency_hz(ch)
        if f is None:
            raise NoReading(f"no wavemeter reading for {laser} (switch channel {ch}): "
                            "no, low or bad signal")
        return float(f)

    def get_wavelength(self, laser: str) -> float:
        """Vacuum wavelength (m) of ``laser`` now."""
        return C_LIGHT / self.get_frequency(laser)

    def get_switch_channel(self) -> int:
        """The switch channel being measured."""
        return int(self._backend.switch_channel)

    # -- locks ------------------------------------------------------------------------------
    def lock(self, laser: str, target_hz: float, kp: float = 0.5, ki: float = 5.0,
             capture_range_hz: float = 500e6, tolerance_hz: float = 1e6,
             output_min: float = -10.0, output_max: float = 10.0,
             start_output: float = 0.0):
        """Lock ``laser`` to ``target_hz`` with its actuator (PI gains ``kp`` (1) and ``ki``
        (1/s) on the error, tuning estimate from the actuator map); replaces a running lock."""
        ch = self._channel(laser)
        spec = self._actuators.get(laser)
        if spec is None:
            raise ValueError(f"laser {laser} has no actuator; actuators: "
                             f"{sorted(self._actuators)}")
        settings = LockSettings(target_hz=target_hz, kp=kp, ki=ki,
                                hz_per_unit=spec.hz_per_unit,
                                capture_range_hz=capture_range_hz, tolerance_hz=tolerance_hz,
                                limits=(output_min, output_max))
        setter = self._backend.make_actuator(laser, spec, self._resolve)
        with self._mutex:
            lock = LaserLock(settings, setter, reference=start_output)
            setter(start_output)
            self._locks[laser] = (ch, lock)
        if self._backend.threaded and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="wavemeter-locks",
                                            daemon=True)
            self._thread.start()

    def set_target(self, laser: str, target_hz: float):
        """Move a running lock's target (Hz)."""
        lock = self._lock_of(laser)
        with self._mutex:
            s = lock.settings
            lock.settings = LockSettings(target_hz, s.kp, s.ki, s.hz_per_unit,
                                         s.capture_range_hz, s.tolerance_hz, s.settle_updates,
                                         s.limits)

    def unlock(self, laser: str):
        """Stop regulating ``laser`` (its actuator keeps its last value)."""
        self._lock_of(laser)
        with self._mutex:
            del self._locks[laser]

    def _lock_of(self, laser: str) -> LaserLock:
        self._channel(laser)
        entry = self._locks.get(laser)
        if entry is None:
            raise ValueError(f"laser {laser} is not locked; locked: {sorted(self._locks)}")
        return entry[1]

    def service(self) -> dict:
        """One update of every lock (read through the switch, PI step); returns laser ->
        state. A simulated run calls this between shots; otherwise a thread does."""
        out = {}
        with self._mutex:
            for laser, (ch, lock) in list(self._locks.items()):
                f = self._backend.read_frequency_hz(ch)
                out[laser] = lock.update(self._backend.now_s(), f)
                if lock.state in ALARM_STATES:
                    logger.warning("lock %s: %s", laser, lock.alarm)
        return out

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.service()
            except Exception as e:
                logger.error("lock service failed: %s", e)

    def lock_status(self, laser: str) -> dict:
        """``{"state", "alarm", "error_hz", "output", "target_hz"}`` of a lock."""
        with self._mutex:
            return self._lock_of(laser).status()

    def alarms(self) -> dict:
        """Laser -> alarm text for every lock in an alarm state (out of capture range,
        railed actuator, no reading)."""
        with self._mutex:
            return {laser: lock.alarm for laser, (_, lock) in self._locks.items()
                    if lock.state in ALARM_STATES}

    def error_history(self, laser: str, n: int = 1000) -> dict:
        """The last ``n`` error samples: ``{"t_s": times, "error_hz": errors}``."""
        with self._mutex:
            hist = list(self._lock_of(laser).history)[-int(n):] if n > 0 else []
        return {"t_s": np.array([h[0] for h in hist]),
                "error_hz": np.array([h[1] for h in hist])}

    def close(self):
        """Stop the lock thread (actuators keep their values) and release the instrument."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._backend.close()
