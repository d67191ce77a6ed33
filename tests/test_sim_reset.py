"""``core.reset()`` discards output events the RTIO counter has not reached, as on hardware.

Boundary (ionlink.sim.world): an event at a timestamp ``<=`` the counter at the reset has
executed and is kept; one after it never happens -- not in the world (TTL levels, DDS
settings, RF switch ORs, the virtual node's lasers and ions), not in the trace. Without a
reset the same kernels execute them all.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from artiq.language.core import at_mu, delay, delay_mu, now_mu

from ionlink.node import VirtualNetwork
from ionlink.node.ion import D, S
from ionlink.runner.devices import SimDeviceManager, load_device_db
from ionlink.sim import session
from ionlink.sim.costs import CostModel
from ionlink.sim.world import ResetAfterProcessingError, ScriptedInputs
from tests.conftest import SimRig
from tests.node_driver import quiet_config
from tests.repeater_driver import ChainDriver, quiet_chain
from tests.test_sim_dds import DDB, Runner, _init

ROOT = Path(__file__).resolve().parent.parent
#: the next kernel starts right away (no compile/upload time): "reset in the next kernel"
NO_LAUNCH = CostModel(kernel_launch_ns=0)
DDB_DMA = {**DDB, "core_dma": {"type": "local", "module": "artiq.coredevice.dma",
                               "class": "CoreDMA"}}


@pytest.fixture
def rig():
    made = []

    def make(world=None, costs=NO_LAUNCH):
        made.append(SimRig(world=world, costs=costs))
        return made[-1]
    yield make
    session.end()


def _outputs(world, device):
    return [(t, v) for t, d, a, v in world.outputs if d == device and a == "level"]


def _trace_channels(engine):
    return {(ch, t) for t, ch, addr, _ in engine.trace if addr == 0}


# -- TTL outputs (a recording world) ------------------------------------------------------


@pytest.mark.parametrize("reset", [True, False])
def test_reset_in_the_next_kernel_discards_future_ttl_events(rig, reset):
    r = rig()
    core, ttl4, ttl5, ttl6 = r.core, r.get("ttl4"), r.get("ttl5"), r.get("ttl6")
    runner = Runner(core)
    t = {}

    def schedule():
        core.reset()
        t0 = t["t0"] = now_mu()
        ttl4.pulse_mu(1000)                 # executed before the reset below
        at_mu(t0 + 1_000_000)
        ttl5.pulse_mu(1000)                 # ahead of the counter: still queued
        at_mu(t0 + 2_000_000)
        ttl6.on()
        core.wait_until_mu(t0 + 500_000)    # the counter passes the ttl4 pulse only

    def next_kernel():
        if reset:
            core.reset()
            t["counter"] = core.get_rtio_counter_mu()

    runner.run(schedule)
    runner.run(next_kernel)
    t0 = t["t0"]
    assert _outputs(r.world, "ttl4") == [(t0, 1), (t0 + 1000, 0)]
    if reset:
        assert t0 + 500_000 <= t["counter"] < t0 + 1_000_000
        assert _outputs(r.world, "ttl5") == [] and _outputs(r.world, "ttl6") == []
        assert r.engine.events_discarded == 3
        assert {ch for ch, _ in _trace_channels(r.engine)} == {4}
    else:
        assert _outputs(r.world, "ttl5") == [(t0 + 1_000_000, 1), (t0 + 1_001_000, 0)]
        assert _outputs(r.world, "ttl6") == [(t0 + 2_000_000, 1)]
        assert r.engine.events_discarded == 0
        assert {ch for ch, _ in _trace_channels(r.engine)} == {4, 5, 6}


def test_event_at_the_counter_is_kept_one_after_is_discarded(rig):
    r = rig(costs=CostModel(kernel_launch_ns=0, kernel_call_ns=0))   # exact counter
    core, ttl4, ttl5 = r.core, r.get("ttl4"), r.get("ttl5")
    t = {}

    def body():
        core.reset()
        t0 = t["t0"] = now_mu() + 10_000
        at_mu(t0)
        ttl4.on()
        at_mu(t0 + 1)
        ttl5.on()
        core.wait_until_mu(t0)
        core.reset()
        t["counter"] = core.get_rtio_counter_mu()
        ttl5.pulse_mu(100)                  # after the reset: 125 us ahead, delivered

    Runner(core).run(body)
    t0 = t["t0"]
    assert t["counter"] == t0
    assert _outputs(r.world, "ttl4") == [(t0, 1)]
    assert _outputs(r.world, "ttl5") == [(t0 + 125_000, 1), (t0 + 125_100, 0)]


def test_kernel_launch_time_lets_near_events_execute_before_the_reset(rig):
    """With the default cost model a kernel starts ``kernel_launch_ns`` (300 ms) after the
    previous one ended: a pulse 1 ms ahead has happened by then, one 1 s ahead has not."""
    r = rig(costs=CostModel())
    core, ttl4, ttl5 = r.core, r.get("ttl4"), r.get("ttl5")
    runner = Runner(core)
    t = {}

    def schedule():
        core.reset()
        t0 = t["t0"] = now_mu()
        delay(1e-3)
        ttl4.pulse_mu(1000)
        at_mu(t0 + 1_000_000_000)
        ttl5.pulse_mu(1000)

    runner.run(schedule)
    runner.run(lambda: core.reset())
    t0 = t["t0"]
    assert _outputs(r.world, "ttl4") == [(t0 + 1_000_000, 1), (t0 + 1_001_000, 0)]
    assert _outputs(r.world, "ttl5") == []


# -- a gate whose closing event is discarded stays open -------------------------------------


def test_gate_left_open_by_a_reset_keeps_registering_edges(rig):
    """Sensitivity lives in the PHY: the reset discards the gate's closing event, so edges
    after the old gate end are registered; edges the counter passed before the reset were
    in the FIFO and are cleared. The edges after the counter were already materialised (a
    read returned early) and are materialised again under the sensitivity in force."""
    t0 = 1_000_000_000
    edges = [t0 + 50_000, t0 + 300_000, t0 + 1_500_000]
    r = rig(world=ScriptedInputs({"ttl0": edges}))
    core, pmt = r.core, r.get("ttl0")
    out = {}

    def body():
        core.reset()
        at_mu(t0)
        end = pmt.gate_rising_mu(1_000_000)
        out["first"] = pmt.timestamp_mu(end)    # the first edge: CPU at t0 + 50 us
        core.wait_until_mu(t0 + 100_000)
        core.reset()
        out["n"] = pmt.count(t0 + 2_000_000)

    Runner(core).run(body)
    assert out["first"] == edges[0]
    assert out["n"] == 2


# -- DDS settings and RF switches (Urukul) ---------------------------------------------------


@pytest.mark.parametrize("reset", [True, False])
def test_reset_discards_future_dds_set_and_switch_or(rig, reset):
    world = ScriptedInputs()
    engine = session.start(world=world, costs=NO_LAUNCH, trace=True)
    dmgr = SimDeviceManager(DDB)
    core = dmgr.get("core")
    cpld, dds = dmgr.get("urukul0_cpld"), dmgr.get("urukul0_ch1")
    runner = Runner(core)
    t = {}

    def schedule():
        _init(core, cpld, dds)
        dds.set(10e6)
        dds.sw.off()
        core.wait_until_mu(now_mu())        # all of it executed
        t["c0"] = now_mu()
        t["n_dds"] = len([1 for _, d, a, _ in world.outputs if d == "urukul0_ch1"
                          and a == "dds"])
        delay(50e-6)
        dds.set(20e6)                       # a new profile, queued
        dds.cfg_sw(True)                    # the CPLD's switch bit, queued
        t["cfg"] = now_mu()

    def next_kernel():
        if reset:
            core.reset()
            t["counter"] = core.get_rtio_counter_mu()
        delay_mu(10_000)
        t["pulse"] = now_mu()
        dds.sw.pulse_mu(2000)               # after the queued CFG bit's time

    runner.run(schedule)
    runner.run(next_kernel)
    dds_events = [v for _, d, a, v in world.outputs if d == "urukul0_ch1" and a == "dds"]
    assert t["pulse"] > t["cfg"]
    switch = _outputs(world, "ttl_urukul0_sw1")
    if reset:
        assert len(dds_events) == t["n_dds"]
        assert dds_events[-1].frequency_hz == pytest.approx(10e6, abs=1)
        assert _outputs(world, "urukul0_ch1")[-1][0] <= t["c0"]
        # the OR no longer holds the discarded CFG bit: the TTL pulse opens and closes
        assert switch[-2:] == [(t["pulse"], 1), (t["pulse"] + 2000, 0)]
    else:
        assert dds_events[-1].frequency_hz == pytest.approx(20e6, abs=1)
        assert switch[-2:] == [(t["pulse"], 1), (t["pulse"] + 2000, 1)]
    if reset:      # the trace shows nothing between the counter and the new cursor
        assert not [e for e in engine.trace if t["c0"] < e[0] < t["pulse"] and e[2] >= 0
                    and e[0] > t["counter"]]


def test_dds_chip_and_cpld_models_return_to_their_state_at_the_counter(rig):
    """The SPI writes of a discarded ``set()`` and ``cfg_sw(True)`` never reach the chips:
    the AD9910 reads back the old frequency, and setting the CFG switch bit again after the
    reset reaches the world (the CPLD model does not believe it delivered it already)."""
    world = ScriptedInputs()
    session.start(world=world, costs=NO_LAUNCH, trace=True)
    dmgr = SimDeviceManager(DDB)
    core = dmgr.get("core")
    cpld, dds = dmgr.get("urukul0_cpld"), dmgr.get("urukul0_ch1")
    runner = Runner(core)
    out = {}

    def schedule():
        _init(core, cpld, dds)
        dds.set(10e6)
        core.wait_until_mu(now_mu())
        delay(50e-6)
        dds.set(20e6)
        dds.cfg_sw(True)

    def after_reset():
        core.reset()
        out["ftw"] = dds.get_mu()[0]
        core.break_realtime()
        dds.cfg_sw(True)                    # the driver's CFG mirror writes it again
        out["t"] = now_mu()

    runner.run(schedule)
    runner.run(after_reset)
    assert out["ftw"] == dds.frequency_to_ftw(10e6)
    level = _outputs(world, "urukul0_ch1")
    assert level[-1][1] == 1 and level[-1][0] <= out["t"]
    assert _outputs(world, "ttl_urukul0_sw1")[-1][1] == 1


# -- DMA playback cut by a reset -------------------------------------------------------------


@pytest.mark.parametrize("fast", [True, False])
def test_dma_playback_cut_by_reset(rig, fast):
    r = rig()
    core, dma = r.core, r.get("core_dma")
    ttls = [r.get(f"ttl{i}") for i in range(4, 8)]
    r.engine.fast_dma = fast
    t = {}

    def body():
        core.reset()
        with dma.record("train"):
            for k in range(20):
                ttls[k % 4].pulse_mu(500)
                delay_mu(500)
        core.break_realtime()
        t0 = t["t0"] = now_mu()
        dma.playback("train")
        core.wait_until_mu(t0 + 10_000)
        core.reset()

    Runner(core).run(body)
    t0 = t["t0"]
    times = sorted(e[0] - t0 for e in r.world.outputs)
    assert times == [rel for k in range(10) for rel in (1000 * k, 1000 * k + 500)] + [10_000]
    assert r.engine.events_discarded == 40 - 21
    assert max(e[0] for e in r.engine.trace) == t0 + 10_000


# -- the virtual node: a 393 nm pulse queued then reset: no photon ----------------------------


class _Node:
    """The lab's device_db on the two-node virtual network (no noise, no launch time)."""

    def __init__(self, costs=NO_LAUNCH):
        ddb = load_device_db(ROOT / "device_db.py")
        self.net = VirtualNetwork(ddb, quiet_config(), seed=1)
        self.engine = session.start(world=self.net, costs=costs, trace=False)
        dmgr = self.dmgr = SimDeviceManager(ddb)
        self.core = dmgr.get("core")
        self.dma = dmgr.get("core_dma")
        self.dds = {la: dmgr.get(f"dds_{la}_a") for la in ("393", "854", "866")}
        self.cpld = {la: dds.cpld for la, dds in self.dds.items()}
        self.runner = Runner(self.core)

    def init(self):
        def body():
            self.core.reset()
            for cpld in {id(c): c for c in self.cpld.values()}.values():
                cpld.init()
            for dds in self.dds.values():
                dds.init()
                dds.set(80e6, amplitude=1.0)
                dds.set_att(0.0)
                dds.sw.off()
            self.core.wait_until_mu(now_mu())   # everything executed
        self.runner.run(body)

    def pops_a(self):
        self.net.flush(self.engine.cpu + 1)
        assert self.net._pops is not None
        return self.net._pops[0]


@pytest.mark.parametrize("reset", [True, False])
def test_393_pulse_queued_before_a_reset_emits_nothing(rig, reset):
    node = _Node()
    node.init()
    sw = node.dds["393"].sw

    def schedule():
        node.core.break_realtime()
        delay(1e-3)
        sw.pulse(20e-6)                     # alpha = 1 - exp(-10): the ion goes to D

    def next_kernel():
        if reset:
            node.core.reset()

    node.runner.run(schedule)
    node.runner.run(next_kernel)
    node.net.flush()
    pops = node.net._pops[0]
    if reset:
        assert pops[S] == 1.0
    else:
        assert pops[D] > 0.999


@pytest.mark.parametrize("look", [True, False])
def test_dma_attempt_cut_before_its_393_pulse(rig, look):
    """The quench of a recorded attempt executes, its 393 pulse (after the counter at the
    reset) does not: the ion, pumped to D beforehand, is quenched to S and stays there.
    ``look``: the network is flushed up to the counter before the reset (the playback is
    then already split), else the reset cuts the buffered playback itself."""
    node = _Node()
    node.init()
    out = {}

    def body():
        node.core.break_realtime()
        with node.dma.record("attempt"):
            node.dds["854"].sw.on()
            node.dds["866"].sw.on()
            delay(10e-6)
            node.dds["854"].sw.off()
            node.dds["866"].sw.off()
            delay(10e-6)
            node.dds["393"].sw.pulse(20e-6)
        node.core.break_realtime()
        node.dds["393"].sw.pulse(20e-6)     # the ion to D
        delay(10e-6)
        t0 = now_mu()
        node.dma.playback("attempt")
        node.core.wait_until_mu(t0 + 15_000)    # quench done, 393 not yet
        if look:
            out["before"] = node.pops_a().copy()
        node.core.reset()

    node.runner.run(body)
    node.net.flush()
    if look:
        assert out["before"][S] == pytest.approx(1.0, abs=1e-9)
    assert node.net._pops[0][S] == 1.0


def test_reads_and_resets_of_normal_kernels_raise_no_internal_error(rig):
    """Kernels that read inputs (up to the CPU time) and reset, with slack left at each
    kernel's end: the network never has to take back an event it processed."""
    node = _Node(costs=CostModel())
    node.init()
    pmt = node.dmgr.get("pmt_a")
    counts = []

    def readout():
        node.core.reset()
        node.dds["866"].sw.on()
        delay(1e-6)
        end = pmt.gate_rising(100e-6)
        node.dds["866"].sw.off()
        counts.append(pmt.count(end))
        delay(5e-3)
        node.dds["393"].sw.pulse(20e-6)     # left in flight at the kernel's end

    for _ in range(3):
        node.runner.run(readout)
    assert len(counts) == 3
    assert node.engine.events_discarded == 0     # 300 ms launch: all of it executed


# -- worlds: what a reset cannot take back, actuators, the repeater chain --------------------


def test_network_refuses_to_discard_processed_events():
    ddb = load_device_db(ROOT / "device_db.py")
    net = VirtualNetwork(ddb, quiet_config(), seed=0)
    key = ddb[net.wiring.devices["dds_854_a"]]["arguments"]["sw_device"]
    net.output(5000, key, "level", 1)
    net.flush(10_000)
    net.discard_after(5000)                 # nothing after 5000 was processed
    with pytest.raises(ResetAfterProcessingError, match="processed events up to 5000 mu"):
        net.discard_after(4999)


def test_actuator_values_after_the_counter_are_forgotten():
    net = VirtualNetwork(load_device_db(ROOT / "device_db.py"), quiet_config(), seed=0)
    net.attach_laser_actuator("729", "a", "zotino0", kind="dac", channel=3,
                              hz_per_unit=1e6)
    f0 = net.optical_frequency_hz("729", "a", 1_000_000)
    net.output(1000, "zotino0", "dac_v", (3, 1.0))
    net.output(500_000, "zotino0", "dac_v", (3, 2.0))
    net.discard_after(10_000)
    assert net.optical_frequency_hz("729", "a", 1_000_000) - f0 == pytest.approx(1e6)


def test_chain_discards_a_queued_pi_pulse():
    states = []
    for reset in (True, False):
        drv = ChainDriver(quiet_chain())
        drv.wait(1000)
        counter = drv.t
        drv.wait(1000)
        drv.pulse(["dds_729_a"], round(drv.net.pi_time_s() * 1e9))
        if reset:
            drv.net.discard_after(counter)
        drv.net.evolve_to(drv.t + 1000)
        states.append(drv.net.reduced_state((0, 1)).real)
    kept, flipped = states
    assert kept[0, 0] == pytest.approx(1.0, abs=1e-9)
    assert flipped[2, 2] == pytest.approx(1.0, abs=1e-6)
    drv.net.output(drv.t + 2000, drv.sw["dds_729_b"], "level", 1)
    drv.net.flush(drv.t + 5000)
    with pytest.raises(ResetAfterProcessingError):
        drv.net.discard_after(drv.t)
    assert np.isfinite(kept).all()
