"""Shared fixtures: a simulated core device with a small device database."""

from __future__ import annotations

import os

# Small-matrix physics (4x4, 16x16) stalls on multi-threaded BLAS when the machine is
# loaded (2-core CI): one BLAS thread, unless the environment says otherwise.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pytest  # noqa: E402

import ionlink  # noqa: F401  (serves artiq where it is not installed)
from ionlink.runner.devices import SimDeviceManager
from ionlink.sim import session
from ionlink.sim.costs import CostModel
from ionlink.sim.world import ScriptedInputs

SMALL_DDB = {
    "core": {"type": "local", "module": "artiq.coredevice.core", "class": "Core",
             "arguments": {"host": None, "ref_period": 1e-9}},
    "core_dma": {"type": "local", "module": "artiq.coredevice.dma", "class": "CoreDMA"},
    "core_cache": {"type": "local", "module": "artiq.coredevice.cache", "class": "CoreCache"},
    "ttl0": {"type": "local", "module": "artiq.coredevice.ttl", "class": "TTLInOut",
             "arguments": {"channel": 0}},
    "ttl1": {"type": "local", "module": "artiq.coredevice.ttl", "class": "TTLInOut",
             "arguments": {"channel": 1}},
    "spi0": {"type": "local", "module": "artiq.coredevice.spi2", "class": "SPIMaster",
             "arguments": {"channel": 2}},
    **{f"ttl{i}": {"type": "local", "module": "artiq.coredevice.ttl", "class": "TTLOut",
                   "arguments": {"channel": i}} for i in range(4, 16)},
    "pmt": "ttl0",
}


class SimRig:
    """A started session, its device manager and world, for driving kernels in tests."""

    def __init__(self, world=None, costs: CostModel | None = None, trace: bool = True):
        self.world = world if world is not None else ScriptedInputs()
        self.engine = session.start(world=self.world, costs=costs or CostModel(),
                                    trace=trace)
        self.dmgr = SimDeviceManager(SMALL_DDB)
        self.core = self.dmgr.get("core")

    def get(self, name):
        return self.dmgr.get(name)


@pytest.fixture
def rig():
    yield SimRig()
    session.end()


@pytest.fixture
def make_rig():
    yield SimRig
    session.end()
