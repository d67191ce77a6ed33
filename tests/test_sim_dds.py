"""Simulated Urukul/AD9910/AD9912 drivers: conversions, timing, world events, readback."""

from __future__ import annotations

import pytest
from artiq.coredevice.exceptions import RTIOUnderflow
from artiq.language.core import delay_mu, kernel, now_mu

import ionlink  # noqa: F401  (serves artiq where it is absent)
from ionlink.runner.devices import SimDeviceManager
from ionlink.sim import session
from ionlink.sim.world import (
    PHASE_MODE_ABSOLUTE,
    PHASE_MODE_CONTINUOUS,
    PHASE_MODE_TRACKING,
    DDSState,
    ScriptedInputs,
)


def _ttl(channel):
    return {"type": "local", "module": "artiq.coredevice.ttl", "class": "TTLOut",
            "arguments": {"channel": channel}}


DDB = {
    "core": {"type": "local", "module": "artiq.coredevice.core", "class": "Core",
             "arguments": {"host": None, "ref_period": 1e-9}},
    "spi_urukul0": {"type": "local", "module": "artiq.coredevice.spi2", "class": "SPIMaster",
                    "arguments": {"channel": 0x10}},
    "ttl_urukul0_io_update": _ttl(0x11),
    **{f"ttl_urukul0_sw{i}": _ttl(0x12 + i) for i in range(4)},
    "urukul0_cpld": {"type": "local", "module": "artiq.coredevice.urukul", "class": "CPLD",
                     "arguments": {"spi_device": "spi_urukul0", "sync_device": None,
                                   "io_update_device": "ttl_urukul0_io_update",
                                   "refclk": 125e6, "clk_sel": 2, "clk_div": 0}},
    **{f"urukul0_ch{i}": {"type": "local", "module": "artiq.coredevice.ad9910",
                          "class": "AD9910",
                          "arguments": {"pll_n": 32, "pll_en": 1, "chip_select": 4 + i,
                                        "cpld_device": "urukul0_cpld",
                                        "sw_device": f"ttl_urukul0_sw{i}"}}
       for i in range(4)},
    "spi_urukul1": {"type": "local", "module": "artiq.coredevice.spi2", "class": "SPIMaster",
                    "arguments": {"channel": 0x20}},
    "ttl_urukul1_io_update": _ttl(0x21),
    "urukul1_cpld": {"type": "local", "module": "artiq.coredevice.urukul", "class": "CPLD",
                     "arguments": {"spi_device": "spi_urukul1",
                                   "io_update_device": "ttl_urukul1_io_update",
                                   "refclk": 100e6, "clk_div": 1}},
    "urukul1_ch0": {"type": "local", "module": "artiq.coredevice.ad9912", "class": "AD9912",
                    "arguments": {"pll_n": 10, "chip_select": 4,
                                  "cpld_device": "urukul1_cpld"}},
}


class Runner:
    """Runs a function as a kernel: ``Runner(core).run(fn)``."""

    def __init__(self, core):
        self.core = core

    @kernel
    def run(self, fn):
        return fn()


@pytest.fixture
def rig():
    world = ScriptedInputs()
    engine = session.start(world=world, trace=True)
    dmgr = SimDeviceManager(DDB)
    core = dmgr.get("core")
    yield dmgr, core, engine, world, Runner(core)
    session.end()


def _events(world, device, attr):
    return [(t, v) for t, d, a, v in world.outputs if d == device and a == attr]


def _init(core, cpld, dds):
    core.reset()
    cpld.init()
    dds.init()
    core.break_realtime()


# -- conversions ----------------------------------------------------------------------


def test_ad9910_conversions_match_datasheet_formulas(rig):
    dmgr, *_ = rig
    dds = dmgr.get("urukul0_ch0")
    # 125 MHz / 4 * 32 = 1 GHz sysclk
    assert dds.sysclk == 1e9
    assert dds.sysclk_per_mu == 1
    assert dds.frequency_to_ftw(100e6) == 429496730      # round(1e8 * 2**32 / 1e9)
    assert dds.frequency_to_ftw(1.0) == 4                # round(4.294967296)
    assert dds.ftw_to_frequency(429496730) == pytest.approx(429496730e9 / 2**32, rel=1e-15)
    assert dds.turns_to_pow(0.25) == 0x4000
    assert dds.turns_to_pow(1.25) == 0x4000              # wraps modulo one turn
    assert dds.turns_to_pow(-0.25) == 0xC000
    assert dds.pow_to_turns(0x8000) == 0.5
    assert dds.amplitude_to_asf(1.0) == 0x3FFF
    assert dds.amplitude_to_asf(0.5) == 8192             # round(8191.5) (banker's: 8192)
    assert dds.asf_to_amplitude(0x3FFF) == 1.0
    with pytest.raises(ValueError):
        dds.amplitude_to_asf(1.01)
    with pytest.raises(ValueError):
        dds.amplitude_to_asf(-0.1)
    with pytest.raises(ValueError):
        dds.frequency_to_ftw(600e6)
    with pytest.raises(ValueError):
        dds.frequency_to_ftw(-1e6)
    cpld = dmgr.get("urukul0_cpld")
    assert cpld.att_to_mu(0.0) == 255
    assert cpld.att_to_mu(31.5) == 3                  # 255 - round(31.5 * 8)
    assert cpld.mu_to_att(0) == 31.875
    assert cpld.att_to_mu(10.0) == 175
    assert cpld.mu_to_att(175) == 10.0
    with pytest.raises(ValueError):
        cpld.att_to_mu(32.0)


# -- set(): world event, timing, phase modes ------------------------------------------


def test_set_continuous_delivers_state_at_io_update(rig):
    dmgr, core, engine, world, runner = rig
    cpld, dds = dmgr.get("urukul0_cpld"), dmgr.get("urukul0_ch0")
    out = {}

    def body():
        _init(core, cpld, dds)
        delay_mu(3)                       # off the coarse grid: set() aligns down
        out["t0"] = now_mu()
        out["phase"] = dds.set(80e6, phase=0.25, amplitude=0.5)
        out["t1"] = now_mu()

    runner.run(body)
    t_start = out["t0"] & ~7
    # write64 = (8 + 19*8) + 2 * (8 + 67*8) = 1248 mu; IO_UPDATE pulse 8 mu.
    assert out["t1"] == t_start + 1256
    assert out["phase"] == 0.25
    states = _events(world, "urukul0_ch0", "dds")
    t_io, state = states[-1]
    assert t_io == t_start + 1248
    assert isinstance(state, DDSState)
    assert state.frequency_hz == pytest.approx(dds.ftw_to_frequency(dds.frequency_to_ftw(80e6)))
    assert state.phase_turns == 0.25
    assert state.amplitude == pytest.approx(8192 / 0x3FFF)
    assert state.phase_mode == PHASE_MODE_CONTINUOUS
    assert state.ref_time_mu == -1
    # the IO_UPDATE pulse is on the trace at the same time
    io_levels = _events(world, "ttl_urukul0_io_update", "level")
    assert (t_io, 1) in io_levels and (t_io + 8, 0) in io_levels


def test_tracking_mode_phase_is_continuous(rig):
    dmgr, core, engine, world, runner = rig
    cpld, dds = dmgr.get("urukul0_cpld"), dmgr.get("urukul0_ch1")
    f = 12.345678e6
    out = {}

    def body():
        _init(core, cpld, dds)
        dds.set_phase_mode(PHASE_MODE_TRACKING)
        out["t0"] = now_mu()
        out["p0"] = dds.set(f)
        out["t1"] = now_mu()
        delay_mu(123_456)
        out["p1"] = dds.set(f, phase=0.125)

    runner.run(body)
    # CFR1 (704) + profile (1248) + IO_UPDATE (8) + CFR1 (704)
    assert out["t1"] == out["t0"] + 2664
    (ta, a), (tb, b) = _events(world, "urukul0_ch1", "dds")[-2:]
    assert a.phase_mode == b.phase_mode == PHASE_MODE_TRACKING
    assert (a.ref_time_mu, b.ref_time_mu) == (ta, tb)
    ftw = dds.frequency_to_ftw(f)
    # the POW ARTIQ computes: pow + (int32(dt * ftw) >> 16), dt from t = 0 to the cursor
    # after aligning and writing CFR1 (704 mu)
    dt = (int(out["t0"]) & ~7) + 704
    expected = ((dt * int(ftw)) & 0xFFFFFFFF) >> 16
    assert round(a.phase_turns * 65536) == expected
    assert out["p0"] == pytest.approx(expected / 65536 - (1 if expected >= 32768 else 0))

    def phase(state, t):
        return state.phase_turns + state.frequency_hz * (t - state.ref_time_mu) * 1e-9

    t = tb + 5000
    # the second tone is the first one advanced by exactly 0.125 turn (POW resolution)
    diff = (phase(b, t) - phase(a, t) - 0.125) % 1.0
    assert min(diff, 1 - diff) < 3 / 65536
    # absolute mode: no phase memory, phase at the update is the phase asked for
    def body2():
        core.break_realtime()
        dds.set(f, phase=0.5, phase_mode=PHASE_MODE_ABSOLUTE)

    runner.run(body2)
    tc, c = _events(world, "urukul0_ch1", "dds")[-1]
    assert c.phase_mode == PHASE_MODE_ABSOLUTE
    assert (c.phase_turns, c.ref_time_mu) == (0.5, tc)


def test_set_without_slack_underflows(rig):
    dmgr, core, engine, world, runner = rig
    cpld, dds = dmgr.get("urukul0_cpld"), dmgr.get("urukul0_ch0")

    def body():
        _init(core, cpld, dds)
        engine.charge(int(now_mu()) - engine.cpu + 100)   # CPU 100 mu past the cursor
        dds.set(10e6)

    with pytest.raises(RTIOUnderflow, match="slack"):
        runner.run(body)


# -- switch, attenuator, readback -----------------------------------------------------


def test_switch_attenuator_and_readback(rig):
    dmgr, core, engine, world, runner = rig
    cpld, dds = dmgr.get("urukul0_cpld"), dmgr.get("urukul0_ch2")
    out = {}

    def body():
        _init(core, cpld, dds)
        out["t_sw"] = now_mu()
        dds.sw.on()
        delay_mu(1000)
        t = now_mu()
        dds.set_att(12.5)
        out["att_dt"] = now_mu() - t
        out["t_att"] = now_mu()
        dds.cfg_sw(True)
        dds.set_mu(0x12345678, pow_=0x1234, asf=0x2345, profile=3)
        core.break_realtime()
        out["get_mu3"] = dds.get_mu(3)
        core.break_realtime()
        dds.set(123.4e6, phase=0.3, amplitude=0.7)
        core.break_realtime()
        out["get"] = dds.get()
        core.break_realtime()
        out["att"] = dds.get_att()
        core.break_realtime()
        out["att_mu"] = cpld.get_att_mu()
        core.break_realtime()
        dds.set_pow(0xBEEF)
        dds.io_update.pulse_mu(8)
        out["pow"] = dds.get_pow()

    runner.run(body)
    # the world sees the RF switch = sw TTL OR CFG bit (on from t_sw; CFG adds nothing)
    switch = _events(world, "ttl_urukul0_sw2", "level")
    assert [level for t, level in switch if t >= out["t_sw"]] == [1, 1]
    assert switch[0][1] == 0 and (out["t_sw"], 1) in switch
    assert out["att_dt"] == 8 + 33 * 6 * 8 + 8      # config + 32 bits at divider 6
    att_events = _events(world, "urukul0_ch2", "att_db")
    assert att_events[-1] == (out["t_att"], 12.5)
    assert _events(world, "urukul0_ch0", "att_db")[-1][1] == 31.875  # att register 0
    assert _events(world, "urukul0_ch2", "level")[-1][1] == 1       # CFG RF switch
    assert out["get_mu3"] == (0x12345678, 0x1234, 0x2345)
    f, p, a = out["get"]
    assert f == pytest.approx(123.4e6, abs=0.25)
    assert p == pytest.approx(0.3, abs=1 / 65536)
    assert a == pytest.approx(0.7, abs=1 / 0x3FFF)
    assert out["att"] == 12.5
    assert (out["att_mu"] >> 16) & 0xFF == 255 - 100
    assert out["pow"] == 0xBEEF


def test_profile_pins_switch_output(rig):
    dmgr, core, engine, world, runner = rig
    cpld, dds = dmgr.get("urukul0_cpld"), dmgr.get("urukul0_ch3")
    out = {}

    def body():
        _init(core, cpld, dds)
        dds.set(5e6, profile=2)
        dds.set(7e6, profile=7)
        out["t"] = now_mu()
        dds.set_profile(2)

    runner.run(body)
    t, state = _events(world, "urukul0_ch3", "dds")[-1]
    assert t == out["t"] + 896                       # CFG write: 2 transfers
    assert state.frequency_hz == pytest.approx(5e6, abs=0.25)


# -- AD9912 -----------------------------------------------------------------------------


def test_ad9912_set_get(rig):
    dmgr, core, engine, world, runner = rig
    cpld, dds = dmgr.get("urukul1_cpld"), dmgr.get("urukul1_ch0")
    assert dds.sysclk == 1e9
    assert dds.frequency_to_ftw(100e6) == round(100e6 * 2**48 / 1e9)
    assert dds.turns_to_pow(0.25) == 1 << 12
    out = {}

    def body():
        _init(core, cpld, dds)
        out["t0"] = now_mu()
        dds.set(33.3e6, phase=0.5)
        out["t1"] = now_mu()
        core.break_realtime()
        out["get"] = dds.get()

    runner.run(body)
    t, state = _events(world, "urukul1_ch0", "dds")[-1]
    # 16 + 32 + 32 bit transfers at divider 2, IO_UPDATE at their end
    assert t == out["t0"] + 8 + 35 * 8 + 2 * (8 + 67 * 8)
    assert state.frequency_hz == pytest.approx(33.3e6, abs=1e-5)
    assert state.phase_turns == 0.5
    assert out["get"][0] == pytest.approx(33.3e6, abs=1e-5)
    assert out["get"][1] == 0.5
