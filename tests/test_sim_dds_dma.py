"""DDS register writes recorded by DMA take effect at playback, not at recording."""

from __future__ import annotations

import pytest
from artiq.language.core import delay_mu, now_mu

from ionlink.runner.devices import SimDeviceManager
from ionlink.sim import session
from ionlink.sim.world import PHASE_MODE_CONTINUOUS, PHASE_MODE_TRACKING, ScriptedInputs
from tests.test_sim_dds import DDB, Runner, _events, _init

DDB_DMA = {**DDB, "core_dma": {"type": "local", "module": "artiq.coredevice.dma",
                               "class": "CoreDMA"}}


@pytest.fixture
def rig():
    world = ScriptedInputs()
    engine = session.start(world=world, trace=True)
    dmgr = SimDeviceManager(DDB_DMA)
    core = dmgr.get("core")
    yield dmgr, core, engine, world, Runner(core)
    session.end()


def _setup(dmgr):
    return dmgr.get("urukul0_cpld"), dmgr.get("urukul0_ch0"), dmgr.get("core_dma")


def test_recorded_set_changes_nothing_until_playback(rig):
    dmgr, core, engine, world, runner = rig
    cpld, dds, dma = _setup(dmgr)
    out = {}

    def body():
        _init(core, cpld, dds)
        dds.set(10e6)
        core.break_realtime()
        n_before = len(_events(world, "urukul0_ch0", "dds"))
        with dma.record("tones"):
            dds.set(20e6, amplitude=0.5)
            delay_mu(10_000)
            dds.set(30e6)
        out["recorded"] = len(_events(world, "urukul0_ch0", "dds")) - n_before
        core.break_realtime()
        out["ftw_after_record"] = dds.get_mu()[0]   # the chip's active FTW
        core.break_realtime()
        out["t_play"] = [now_mu()]
        dma.playback("tones")
        delay_mu(50_000)
        out["t_play"].append(now_mu())
        dma.playback("tones")
        delay_mu(20_000)
        out["ftw_after_play"] = dds.get_mu()[0]

    runner.run(body)
    assert out["recorded"] == 0
    assert out["ftw_after_record"] == dds.frequency_to_ftw(10e6)
    assert out["ftw_after_play"] == dds.frequency_to_ftw(30e6)
    states = _events(world, "urukul0_ch0", "dds")
    played = states[-4:]
    freqs = [round(s.frequency_hz / 1e6, 3) for _, s in played]
    assert freqs == [20.0, 30.0, 20.0, 30.0]
    assert played[0][1].amplitude == pytest.approx(8192 / 0x3FFF)
    # IO_UPDATE at 1248 mu into each set() (continuous mode), relative to each playback.
    t0, t1 = (int(t) for t in out["t_play"])
    assert [t for t, _ in played] == [t0 + 1248, t0 + 1256 + 10_000 + 1248,
                                      t1 + 1248, t1 + 1256 + 10_000 + 1248]


def test_playback_equals_direct_sequence_with_phase_modes(rig):
    """Tracking-mode updates by DMA: phase mode and reference time are the playback's."""
    dmgr, core, engine, world, runner = rig
    cpld, dds, dma = _setup(dmgr)
    out = {}

    def sequence():
        dds.set(12e6, phase_mode=PHASE_MODE_TRACKING, ref_time_mu=0)
        delay_mu(4000)
        dds.set(13e6, phase_mode=PHASE_MODE_CONTINUOUS)

    def body():
        _init(core, cpld, dds)
        t = now_mu() & ~0xFFF
        at_start = t + 0x10000
        with dma.record("seq"):
            sequence()
        # direct, then by DMA 0x10000 mu later (the same offset from ref_time_mu = 0
        # differs, so only the relative structure is compared)
        from artiq.language.core import at_mu
        at_mu(at_start)
        out["direct"] = at_start
        sequence()
        at_mu(at_start + 0x10000)
        out["dma"] = at_start + 0x10000
        dma.playback("seq")

    runner.run(body)
    states = _events(world, "urukul0_ch0", "dds")[-4:]
    direct, played = states[:2], states[2:]
    for (td, d), (tp, p) in zip(direct, played, strict=True):
        assert tp - td == 0x10000
        assert (d.frequency_hz, d.amplitude, d.phase_mode) == \
            (p.frequency_hz, p.amplitude, p.phase_mode)
        if d.phase_mode != PHASE_MODE_CONTINUOUS:
            assert (d.ref_time_mu, p.ref_time_mu) == (td, tp)
    assert [s.phase_mode for _, s in played] == [PHASE_MODE_TRACKING, PHASE_MODE_CONTINUOUS]
