"""Wavemeter driver, software lock and the node's lasers (drift, actuators)."""

from __future__ import annotations

import pytest
from artiq.experiment import delay_mu, kernel

from drivers.timetagger.simulation import ManualClock
from drivers.wavemeter.config import ConfigError, parse_actuators, parse_channels
from drivers.wavemeter.driver import NoReading, WavemeterDriver
from drivers.wavemeter.lock import LaserLock, LockSettings
from drivers.wavemeter.simulation import SimulatedWavemeter, attach_actuators, resolver
from ionlink.node import VirtualNetwork
from ionlink.node.lasers import DAC_TUNING_HZ_PER_V, LINE_HZ
from ionlink.node.wiring import example_device_db
from ionlink.runner.devices import SimDeviceManager
from ionlink.sim import session


def _local(module, cls, **arguments):
    return {"type": "local", "module": "artiq.coredevice." + module, "class": cls,
            "arguments": arguments}


def node_ddb():
    ddb = example_device_db()
    ddb.update({
        "spi_zotino0": _local("spi2", "SPIMaster", channel=0x30),
        "ttl_zotino0_ldac": _local("ttl", "TTLOut", channel=0x31),
        "ttl_zotino0_clr": _local("ttl", "TTLOut", channel=0x32),
        "zotino0": _local("zotino", "Zotino", spi_device="spi_zotino0",
                          ldac_device="ttl_zotino0_ldac", clr_device="ttl_zotino0_clr"),
        "dac_a": "zotino0",
        "wavemeter": {
            "type": "controller", "host": "::1", "port": 3271,
            "channels": "1=397_a,2=866_a,3=729_b",
            "actuators": "866_a=dac:dac_a:30:8e7",
            "command": "aqctl_ionlink_wavemeter -p {port} --bind {bind} "
                       "--channels {channels} --actuators {actuators}"},
    })
    return ddb


# -- configuration -------------------------------------------------------------------------


def test_channel_and_actuator_maps():
    assert parse_channels("1=397_a, 2=866_b") == {1: "397_a", 2: "866_b"}
    for bad, what in (("1=398_a", "LASER_NODE"), ("x=397_a", "not an integer"),
                      ("1=397_a,2=397_a", "two wavemeter channels"), ("99=397_a", "1..64")):
        with pytest.raises(ConfigError, match=what):
            parse_channels(bad)
    spec = parse_actuators("866_a=dac:dac_a:3:-9e7")["866_a"]
    assert (spec.kind, spec.device, spec.channel, spec.hz_per_unit) == ("dac", "dac_a", 3,
                                                                       -9e7)
    for bad, what in (("866_a=dac:dac_a:3", "KIND:DEVICE"), ("866_a=pzt:x:0:1", "kind"),
                      ("866_a=dac:x:y:1", "integer"), ("866_a=dac:x:0:0", "non-zero")):
        with pytest.raises(ConfigError, match=what):
            parse_actuators(bad)


# -- the lock on a linear plant ------------------------------------------------------------


class Plant:
    """A laser at f0 + k * u, with true tuning k."""

    def __init__(self, f0, k):
        self.f0, self.k, self.u = f0, k, 0.0

    def set(self, u):
        self.u = u

    @property
    def f(self):
        return self.f0 + self.k * self.u


def test_lock_converges_and_reports_states():
    plant = Plant(400e12, 1.1e8)                     # the lab's estimate is 10 % off
    s = LockSettings(target_hz=400e12 + 50e6, kp=0.5, ki=4.0, hz_per_unit=1e8,
                     tolerance_hz=1e5, settle_updates=3)
    lock = LaserLock(s, plant.set)
    states = [lock.update(0.1 * i, plant.f) for i in range(60)]
    assert states[0] == "acquiring" and states[-1] == "locked"
    assert abs(plant.f - s.target_hz) < 1e5
    assert len(lock.history) == 60 and lock.history[0][1] == pytest.approx(-50e6)
    # a step of the free-running laser beyond the capture range: alarm, actuator held
    held = plant.u
    plant.f0 += 2e9
    assert lock.update(10.0, plant.f) == "out_of_range"
    assert "capture range" in lock.status()["alarm"] and plant.u == held
    plant.f0 -= 2e9
    assert lock.update(10.1, plant.f) in ("acquiring", "locked")
    assert lock.update(10.2, None) == "no_reading"


def test_lock_rails_at_the_actuator_limit():
    plant = Plant(400e12, 1e8)
    lock = LaserLock(LockSettings(target_hz=400e12 + 300e6, hz_per_unit=1e8,
                                  limits=(-1.0, 1.0)), plant.set)
    for i in range(20):
        state = lock.update(0.1 * i, plant.f)
    assert state == "railed" and plant.u == 1.0 and "limit" in lock.alarm


def test_lock_settings_are_validated():
    with pytest.raises(ValueError, match="target"):
        LockSettings(target_hz=-1.0)
    with pytest.raises(ValueError, match="gains"):
        LockSettings(target_hz=1e14, kp=0.0, ki=0.0)
    with pytest.raises(ValueError, match="limits"):
        LockSettings(target_hz=1e14, limits=(1.0, -1.0))


# -- the node's lasers ----------------------------------------------------------------------


def test_laser_frequencies_follow_the_node_drifts():
    net = VirtualNetwork(example_device_db(), seed=4)
    for t_s in (0.0, 3600.0):
        t_mu = int(t_s * 1e9)
        f397 = net.optical_frequency_hz("397", "a", t_mu)
        assert f397 == pytest.approx(LINE_HZ["397"] - net.resonance_397_dds_hz(0, t_s),
                                     abs=1.0)
        f729 = net.optical_frequency_hz("729", "b", t_mu)
        assert f729 == pytest.approx(LINE_HZ["729"] - 2 * net.transition_729_dds_hz(1, t_s),
                                     abs=1.0)
    # the free-running 866 drifts (walk + sine of tens of MHz over an hour)
    assert net.optical_frequency_hz("866", "a", 0) != net.optical_frequency_hz(
        "866", "a", 3600 * 10**9)
    with pytest.raises(ValueError, match="unknown laser"):
        net.optical_frequency_hz("398", "a", 0)


class DacKernel:
    def __init__(self, core, dac):
        self.core, self.dac = core, dac

    @kernel
    def run(self, volts):
        self.core.reset()
        self.dac.init()
        delay_mu(10_000)
        self.dac.write_dac(30, volts)
        self.dac.load()
        delay_mu(10_000)


def test_simulated_run_dac_actuator_moves_the_laser():
    ddb = node_ddb()
    net = VirtualNetwork(ddb, seed=5)
    session.start(world=net)
    try:
        dmgr = SimDeviceManager(ddb)
        wm = dmgr.get("wavemeter")
        assert wm.get_channels() == {1: "397_a", 2: "866_a", 3: "729_b"}
        t_before, before = session.engine().cpu, wm.get_frequency("866_a")
        DacKernel(dmgr.get("core"), dmgr.get("dac_a")).run(1.0)
        session.engine().cpu += 1_000_000                 # let the event take effect
        t_after, after = session.engine().cpu, wm.get_frequency("866_a")
        dmgr.close_devices()
    finally:
        session.end()
    volts = net.optical.actuator("866", "a").value(10**15)
    assert volts == pytest.approx(1.0, abs=1e-3)         # 16-bit DAC code of 1.0 V
    drift = (net.optical.free_running_hz("866", "a", t_after)
             - net.optical.free_running_hz("866", "a", t_before))
    assert after - before - drift == pytest.approx(DAC_TUNING_HZ_PER_V["866"] * volts, abs=1.0)


def test_lock_in_a_simulated_run_through_service_calls():
    ddb = node_ddb()
    net = VirtualNetwork(ddb, seed=6)
    clock = ManualClock()
    attach_actuators(net, parse_actuators(ddb["wavemeter"]["actuators"]), resolver(ddb))
    backend = SimulatedWavemeter(parse_channels(ddb["wavemeter"]["channels"]), lambda: net,
                                 clock, noise_hz=2e5, seed=1)
    wm = WavemeterDriver(backend, parse_actuators(ddb["wavemeter"]["actuators"]),
                         resolver(ddb))
    f0 = wm.get_frequency("866_a")
    target = f0 - 40e6
    wm.lock("866_a", target, kp=0.5, ki=4.0, tolerance_hz=1e6)
    for _ in range(100):
        clock.t += 50_000_000                             # 50 ms between shots
        wm.service()
    assert wm.lock_status("866_a")["state"] == "locked"
    assert abs(wm.get_frequency("866_a") - target) < 1.5e6
    # the lock output compensates the offset with the node's true tuning
    assert wm.lock_status("866_a")["output"] == pytest.approx(
        -40e6 / DAC_TUNING_HZ_PER_V["866"], abs=0.05)
    hist = wm.error_history("866_a", 10)
    assert len(hist["error_hz"]) == 10 and abs(hist["error_hz"][-1]) < 1.5e6
    backend.blocked.add(2)
    with pytest.raises(NoReading, match="866_a"):
        wm.get_frequency("866_a")
    assert wm.service() == {"866_a": "no_reading"} and "866_a" in wm.alarms()
    with pytest.raises(ValueError, match="not locked"):
        wm.lock_status("729_b")
    with pytest.raises(ValueError, match="no actuator"):
        wm.lock("729_b", 411e12)
    wm.close()
