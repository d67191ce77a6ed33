"""Simulated Zotino/AD53xx, Sampler and EdgeCounter drivers against scripted worlds."""

from __future__ import annotations

import pytest
from artiq.language.core import at_mu, delay_mu, kernel, now_mu

from ionlink.runner.devices import SimDeviceManager
from ionlink.sim import session
from ionlink.sim.world import ScriptedInputs


def _local(module, cls, **arguments):
    return {"type": "local", "module": "artiq.coredevice." + module, "class": cls,
            "arguments": arguments}


DDB = {
    "core": _local("core", "Core", host=None, ref_period=1e-9),
    "spi_zotino0": _local("spi2", "SPIMaster", channel=0x30),
    "ttl_zotino0_ldac": _local("ttl", "TTLOut", channel=0x31),
    "ttl_zotino0_clr": _local("ttl", "TTLOut", channel=0x32),
    "zotino0": _local("zotino", "Zotino", spi_device="spi_zotino0",
                      ldac_device="ttl_zotino0_ldac", clr_device="ttl_zotino0_clr"),
    "spi_sampler0_adc": _local("spi2", "SPIMaster", channel=0x40),
    "spi_sampler0_pgia": _local("spi2", "SPIMaster", channel=0x41),
    "ttl_sampler0_cnv": _local("ttl", "TTLOut", channel=0x42),
    "sampler0": _local("sampler", "Sampler", spi_adc_device="spi_sampler0_adc",
                       spi_pgia_device="spi_sampler0_pgia", cnv_device="ttl_sampler0_cnv"),
    "ttl0_counter": _local("edge_counter", "EdgeCounter", channel=0x50),
}


class Runner:
    def __init__(self, core):
        self.core = core

    @kernel
    def run(self, fn):
        return fn()


class VoltageWorld(ScriptedInputs):
    """Scripted inputs plus a Sampler input voltage per channel: ``0.5 V * (ch - 3)``
    before ``t_step_mu``, +1 V after it."""

    def __init__(self, t_step_mu, **kwargs):
        super().__init__(**kwargs)
        self.t_step_mu = t_step_mu
        self.asked = []

    def adc_volts(self, device, channel, t_mu):
        self.asked.append((device, channel, t_mu))
        return 0.5 * (channel - 3) + (1.0 if t_mu >= self.t_step_mu else 0.0)


def _rig(world):
    session.start(world=world, trace=True)
    dmgr = SimDeviceManager(DDB)
    core = dmgr.get("core")
    return dmgr, core, Runner(core)


@pytest.fixture(autouse=True)
def _end_session():
    yield
    session.end()


def test_zotino_write_dac_and_load_reach_world_at_ldac():
    world = ScriptedInputs()
    dmgr, core, runner = _rig(world)
    dac = dmgr.get("zotino0")
    assert dac.voltage_to_mu(0.0) == 0x8000
    assert dac.voltage_to_mu(-10.0) == 0
    assert dac.voltage_to_mu(1.0) == round(65536 * 1.0 / 20 + 0x8000)
    with pytest.raises(ValueError):
        dac.voltage_to_mu(10.0)          # 0x10000 does not fit
    out = {}

    def body():
        core.reset()
        dac.init()
        delay_mu(10_000)
        t = now_mu()
        dac.write_dac(3, 1.25)
        out["write_dt"] = now_mu() - t
        dac.write_dac(17, -2.5)
        out["t_ldac"] = now_mu()
        dac.load()
        out["t_end"] = now_mu()
        dac.set_leds(0xA5)
        out["x1a"] = dac.read_reg(3)

    runner.run(body)
    assert out["write_dt"] == (25 * 4 + 1) * 8           # 24 bits at divider 4
    assert out["t_end"] == out["t_ldac"] + 16
    events = [(t, v) for t, d, a, v in world.outputs if d == "zotino0" and a == "dac_v"]
    t_fall, t_rise = out["t_ldac"], out["t_ldac"] + 16
    assert [t for t, _ in events] == [t_fall, t_fall]
    (ch_a, v_a), (ch_b, v_b) = events[0][1], events[1][1]
    assert (ch_a, ch_b) == (3, 17)
    assert v_a == pytest.approx(1.25, abs=20 / 65536)
    assert v_b == pytest.approx(-2.5, abs=20 / 65536)
    assert out["x1a"] == dac.voltage_to_mu(1.25)
    assert dac.model.leds == 0xA5
    ldac = [(t, v) for t, d, a, v in world.outputs if d == "ttl_zotino0_ldac"]
    assert (t_fall, 0) in ldac and (t_rise, 1) in ldac


def test_zotino_set_dac_outputs_change_at_cursor():
    world = ScriptedInputs()
    dmgr, core, runner = _rig(world)
    dac = dmgr.get("zotino0")
    out = {}

    def body():
        core.reset()
        dac.init()
        delay_mu(100_000)
        out["t"] = now_mu()
        dac.set_dac([0.5, -0.5], [0, 1])
        out["t_after"] = now_mu()

    runner.run(body)
    events = [(t, v) for t, d, a, v in world.outputs if d == "zotino0" and a == "dac_v"]
    assert out["t_after"] == out["t"]
    assert {t for t, _ in events} == {out["t"]}     # LDAC falls at the cursor
    assert [v[0] for _, v in events] == [0, 1]


def test_sampler_returns_world_voltage():
    world = VoltageWorld(t_step_mu=10**12)
    dmgr, core, runner = _rig(world)
    sampler = dmgr.get("sampler0")
    out = {}

    def body():
        core.reset()
        sampler.init()
        sampler.set_gain_mu(7, 1)          # x10 on channel 7
        out["gains"] = sampler.get_gains_mu()
        delay_mu(1000)
        out["t_cnv"] = now_mu()
        data = [0.0] * 8
        sampler.sample(data)
        out["volts"] = data

    runner.run(body)
    assert out["gains"] == 1 << 14
    expected = [0.5 * (ch - 3) for ch in range(8)]
    for ch in range(7):
        assert out["volts"][ch] == pytest.approx(expected[ch], abs=20.48 / 65536)
    # 2 V on channel 7 at gain x10 clips at the +-1.024 V range
    assert out["volts"][7] == pytest.approx(1.024, abs=0.001)
    assert {t for _, _, t in world.asked} == {out["t_cnv"]}


def test_sampler_without_world_voltage_reads_zero():
    dmgr, core, runner = _rig(ScriptedInputs())
    sampler = dmgr.get("sampler0")
    data = [1] * 4

    def body():
        core.reset()
        sampler.init()
        sampler.sample_mu(data)

    runner.run(body)
    assert data == [0, 0, 0, 0]


def test_edge_counter_counts_scripted_edges_in_gate():
    t0 = 400_000_000                                    # after the kernel launch cost
    edges = [t0 - 50, t0 + 100, t0 + 200, t0 + 300, t0 + 5_000, t0 + 1_000_000]
    world = ScriptedInputs(edges_mu={"ttl0_counter": edges}, pulse_width_mu=10)
    dmgr, core, runner = _rig(world)
    counter = dmgr.get("ttl0_counter")
    out = {}

    def body():
        core.reset()
        at_mu(t0)
        out["end"] = counter.gate_rising_mu(5_000)      # [t0, t0 + 5000)
        out["t_end"] = now_mu()
        delay_mu(995_000)
        counter.gate_both_mu(10_000)                    # t0 + 1e6 rises, falls at +10
        out["n1"] = counter.fetch_count()
        out["ts"] = counter.fetch_timestamped_count()
        out["none"] = counter.fetch_timestamped_count(now_mu() + 1000)

    runner.run(body)
    assert out["end"] == out["t_end"] == t0 + 5_000
    assert out["n1"] == 3
    assert out["ts"] == (t0 + 1_010_000, 2)
    assert out["none"] == (-1, 0)
