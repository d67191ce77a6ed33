"""RPCs from kernels cost CPU time: the RTIO counter advances and slack is consumed."""

from __future__ import annotations

import pytest
from artiq.coredevice.exceptions import RTIOUnderflow
from artiq.experiment import EnvExperiment, TNone, kernel, rpc
from artiq.language.environment import HasEnvironment

from ionlink.sim.costs import CostModel

COSTS = CostModel(rpc_ns=50_000, rpc_async_ns=3_000, kernel_call_ns=0, timeline_op_ns=0,
                  kernel_launch_ns=0, rtio_output_ns=0)


class _Rpcs(EnvExperiment):
    def build(self):
        self.setattr_device("core")
        self.setattr_device("ttl4")
        self.calls = []

    def record(self, x) -> TNone:
        self.calls.append(x)
        self.helper()  # a host call made by host code: not another RPC

    def helper(self):
        self.calls.append("helper")

    @rpc(flags={"async"})
    def record_async(self, x):
        self.calls.append(x)

    @kernel
    def counter_after(self, n_sync, n_async):
        t0 = self.core.get_rtio_counter_mu()
        for i in range(n_sync):
            self.record(i)
        for i in range(n_async):
            self.record_async(i)
        return self.core.get_rtio_counter_mu() - t0

    @kernel
    def pulse_after_rpcs(self, n_sync):
        self.core.break_realtime()  # slack: 125000 mu
        for i in range(n_sync):
            self.record(i)
        self.ttl4.pulse_mu(8)


def _exp(make_rig):
    rig = make_rig(costs=COSTS)
    return _Rpcs((rig.dmgr, None, None, {})), rig


def test_sync_and_async_rpcs_advance_the_counter(make_rig):
    exp, rig = _exp(make_rig)
    assert exp.counter_after(3, 0) == 3 * COSTS.rpc_ns
    assert exp.counter_after(0, 4) == 4 * COSTS.rpc_async_ns
    assert exp.counter_after(2, 5) == 2 * COSTS.rpc_ns + 5 * COSTS.rpc_async_ns
    # The RPCs ran, and the host call inside one was not charged again.
    assert exp.calls[:2] == [0, "helper"]


def test_host_calls_outside_kernels_cost_nothing(make_rig):
    exp, rig = _exp(make_rig)
    cpu = rig.engine.cpu
    exp.record(1)
    exp.record_async(2)
    assert rig.engine.cpu == cpu


def test_rpcs_consume_slack(make_rig):
    """break_realtime leaves 125000 mu: two 50 us RPCs fit, three underflow."""
    exp, rig = _exp(make_rig)
    exp.pulse_after_rpcs(2)
    with pytest.raises(RTIOUnderflow, match="slack"):
        exp.pulse_after_rpcs(3)


def test_classes_are_restored_between_kernels(make_rig):
    """Host methods are wrapped only while a kernel runs (ARTIQ's compiler, in the same
    process, must see the functions the module defined)."""
    exp, rig = _exp(make_rig)
    record, set_dataset = vars(_Rpcs)["record"], vars(HasEnvironment)["set_dataset"]
    assert exp.counter_after(1, 1) == COSTS.rpc_ns + COSTS.rpc_async_ns
    assert vars(_Rpcs)["record"] is record
    assert vars(HasEnvironment)["set_dataset"] is set_dataset
    with pytest.raises(RTIOUnderflow):
        exp.pulse_after_rpcs(3)
    assert vars(_Rpcs)["record"] is record
