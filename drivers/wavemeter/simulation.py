"""The simulated wavemeter: the virtual node's laser frequencies through the world.

Readings are ``world.optical_frequency_hz(laser, node, now_mu)`` (the node's drifting,
actuated lasers) plus optional Gaussian read noise of the instrument. Actuators write the
events a core device would (``dac_v`` for a Zotino channel, ``dds`` for a DDS) into the world
at the current time; the node decides what they do to its lasers. The clock is the
simulated core's RTIO counter in a run, wall time stand-alone (see
:mod:`drivers.timetagger.simulation`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from drivers._controller import parse_command
from drivers.timetagger.simulation import RunClock, WallClock, session_world
from drivers.wavemeter.config import ActuatorSpec, ConfigError, parse_laser
from ionlink.runner.devices import resolve_alias
from ionlink.sim.world import PHASE_MODE_CONTINUOUS, DDSState

ERR_NO_SIGNAL = "no signal"


class SimulatedWavemeter:
    """A wavemeter with a fibre switch whose inputs see the node's lasers.

    :param channels: switch channel -> laser name (``"397_a"``...).
    :param world: callable returning the current world (with ``optical_frequency_hz``).
    :param clock: :class:`RunClock` or :class:`WallClock`.
    :param noise_hz: rms read noise (Hz).
    :param seed: seed of the read noise.
    """

    def __init__(self, channels: dict[int, str], world: Callable[[], Any],
                 clock: RunClock | WallClock, noise_hz: float = 0.0, seed: int = 0,
                 serial: str = "SIM-WAVEMETER"):
        self.channels = dict(channels)
        self._lasers = {ch: parse_laser(name) for ch, name in self.channels.items()}
        self._world = world
        self.clock = clock
        self.threaded = clock.threaded
        self.noise_hz = float(noise_hz)
        self._rng = np.random.default_rng(seed)
        self._serial = serial
        self.switch_channel = min(self.channels)
        self.blocked: set[int] = set()

    def serial(self) -> str:
        return self._serial

    def now_s(self) -> float:
        """Instrument time (s) of the next reading."""
        return self.clock.now_mu() * 1e-9

    def set_switch_channel(self, channel: int) -> None:
        self.switch_channel = channel

    def read_frequency_hz(self, channel: int) -> float | None:
        """Frequency (Hz) on ``channel`` now, or None without signal (a blocked input)."""
        self.set_switch_channel(channel)
        if channel in self.blocked:
            return None
        laser, node = self._lasers[channel]
        f = self._world().optical_frequency_hz(laser, node, self.clock.now_mu())
        if self.noise_hz > 0:
            f += float(self._rng.normal(0.0, self.noise_hz))
        return f

    def make_actuator(self, laser_name: str, spec: ActuatorSpec,
                      resolve: Callable[[str], str]) -> Callable[[float], None]:
        """A setter writing the actuator's events into the world at the current time."""
        if spec.kind == "wlm":
            raise ConfigError(f"actuator of {laser_name}: kind 'wlm' (the wavemeter's own "
                              "analog output) exists only on the real instrument")
        device = resolve(spec.device)
        world = self._world
        clock = self.clock
        if spec.kind == "dac":
            def set_dac(volts: float) -> None:
                world().output(clock.now_mu(), device, "dac_v", (spec.channel, float(volts)))
            return set_dac

        def set_dds(freq_hz: float) -> None:
            world().output(clock.now_mu(), device, "dds",
                           DDSState(float(freq_hz), 0.0, 1.0, PHASE_MODE_CONTINUOUS, -1))
        return set_dds

    def close(self) -> None:
        pass


def resolver(ddb: dict) -> Callable[[str], str]:
    """Name -> device entry key through ``ddb``'s aliases (ConfigError naming a missing
    actuator device or an alias loop)."""
    def resolve(name: str) -> str:
        return resolve_alias(ddb, name, ConfigError, "actuator device")
    return resolve


def attach_actuators(world: Any, actuators: dict[str, ActuatorSpec],
                     resolve: Callable[[str], str]) -> None:
    """Tell a world that has lasers (``attach_laser_actuator``) which device tunes which
    laser; its own tuning coefficients are the node's truth, not the lab's estimates."""
    hook = getattr(world, "attach_laser_actuator", None)
    if hook is None:
        return
    for name, spec in actuators.items():
        if spec.kind in ("dac", "dds"):
            laser, node = parse_laser(name)
            hook(laser, node, resolve(spec.device), spec.kind, spec.channel)


def controller_factory(device_manager: Any, desc: dict) -> Any:
    """The runner's in-process simulated controller for a ``wavemeter`` device_db entry:
    its command line (formatted with the entry's keys) parsed by the controller's parser."""
    from drivers.wavemeter.aqctl_wavemeter import get_argparser
    from drivers.wavemeter.driver import WavemeterDriver

    args = parse_command(desc, "wavemeter", get_argparser)
    resolve = resolver(device_manager.get_device_db())
    attach_actuators(session_world(), args.actuators, resolve)
    backend = SimulatedWavemeter(args.channels, session_world, RunClock(),
                                 noise_hz=args.sim_noise, seed=args.sim_seed,
                                 serial=f"SIM-{args.device or 'WAVEMETER'}")
    return WavemeterDriver(backend, args.actuators, resolve)
