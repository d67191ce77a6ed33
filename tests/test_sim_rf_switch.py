"""Urukul RF switch: the world sees the sw TTL OR the CPLD CFG bit, in time order."""

from __future__ import annotations

import pytest
from artiq.language.core import at_mu, delay_mu, now_mu

from ionlink.runner.devices import SimDeviceManager
from ionlink.sim import session
from ionlink.sim.world import ScriptedInputs
from tests.test_sim_dds import DDB, Runner, _init


@pytest.fixture
def rig():
    world = ScriptedInputs()
    engine = session.start(world=world, trace=True)
    dmgr = SimDeviceManager(DDB)
    core = dmgr.get("core")
    yield dmgr, core, engine, world, Runner(core)
    session.end()


def _switch_at(world, key, t):
    """The switch level the world has for ``key`` at ``t`` (time order, then arrival)."""
    level = 0
    events = [(tt, i, v) for i, (tt, d, a, v) in enumerate(world.outputs)
              if d == key and a == "level"]
    for tt, _, v in sorted(events):
        if tt <= t:
            level = v
    return level


def test_cfg_bit_alone_closes_the_switch(rig):
    dmgr, core, engine, world, runner = rig
    cpld, dds = dmgr.get("urukul0_cpld"), dmgr.get("urukul0_ch1")
    t = {}

    def body():
        _init(core, cpld, dds)
        dds.sw.off()
        delay_mu(1000)
        t["cfg_on"] = now_mu()
        dds.cfg_sw(True)            # CFG write: latched at the end of its SPI transfers
        t["after_on"] = now_mu()
        delay_mu(5000)
        dds.sw.pulse_mu(2000)       # TTL pulse while CFG is on: switch stays closed
        delay_mu(1000)
        dds.cfg_sw(False)
        t["after_off"] = now_mu()
        delay_mu(1000)
        t["pulse"] = now_mu()
        dds.sw.pulse_mu(2000)       # TTL alone again

    runner.run(body)
    key = "ttl_urukul0_sw1"
    assert _switch_at(world, key, t["cfg_on"]) == 0
    assert _switch_at(world, key, t["after_on"]) == 1
    assert _switch_at(world, key, t["after_on"] + 5000 + 2000 + 500) == 1
    assert _switch_at(world, key, t["after_off"]) == 0
    assert _switch_at(world, key, t["pulse"] + 1000) == 1
    assert _switch_at(world, key, t["pulse"] + 2000) == 0
    # the CFG bit itself is still reported on the DDS key
    assert [v for _, d, a, v in world.outputs if d == "urukul0_ch1" and a == "level"][-2:] \
        == [1, 0]


def test_event_submitted_earlier_in_time_corrects_the_or(rig):
    """A CFG change placed (at_mu) before an already submitted TTL ``off``: the switch
    stays closed at the ``off``, as the hardware's OR would have it."""
    dmgr, core, engine, world, runner = rig
    cpld, dds = dmgr.get("urukul0_cpld"), dmgr.get("urukul0_ch2")
    t = {}

    def body():
        _init(core, cpld, dds)
        t0 = now_mu()
        dds.sw.on()
        at_mu(t0 + 30_000)
        dds.sw.off()                # submitted first: the switch opens here ...
        t["off"] = now_mu()
        at_mu(t0 + 10_000)
        dds.cfg_sw(True)            # ... unless the CFG bit, set earlier, holds it
        t["cfg"] = now_mu()

    runner.run(body)
    key = "ttl_urukul0_sw2"
    assert t["cfg"] < t["off"]
    assert _switch_at(world, key, t["off"] - 1) == 1
    assert _switch_at(world, key, t["off"]) == 1
    assert _switch_at(world, key, t["off"] + 10_000) == 1
