"""Drive a VirtualNetwork through its World interface, as the core device would (test helper)."""

from __future__ import annotations

import numpy as np

from ionlink.node import VirtualNetwork, load_node_config
from ionlink.node.wiring import NODES, example_device_db
from ionlink.sim.world import PHASE_MODE_TRACKING, DDSState

NO_DRIFT = {k: 0.0 for k in (
    "transition_729_walk_hz_per_sqrt_s", "transition_729_sine_hz",
    "resonance_397_walk_hz_per_sqrt_s", "resonance_397_sine_hz", "rabi_scale_walk_per_sqrt_s",
    "rabi_scale_sine", "fibre_phase_walk_rad_per_sqrt_s", "fibre_phase_sine_rad",
    "photon_efficiency_walk_per_sqrt_s", "photon_efficiency_sine")}


def quiet_config(**sections):
    """Default truth without drifts, dephasing, motion, phase noise or photon mode mismatch,
    plus ``sections``."""
    inf = float("inf")
    base = dict(drift=NO_DRIFT,
                memory={"quasi_static_t2_s": inf, "markovian_t2_s": inf},
                motion={"lamb_dicke_729": 0.0},
                fibre={"phase_noise_rms_rad": 0.0, "temperature_swing_kelvin": 0.0},
                station={"mode_overlap": 1.0})
    for k, v in sections.items():
        base[k] = {**base.get(k, {}), **v}
    return load_node_config().replace(**base)


class Driver:
    """Issue laser pulses and gated inputs on a fresh network; time cursor ``t`` in mu."""

    def __init__(self, config=None, seed=0, **network_kwargs):
        self.db = example_device_db()
        self.net = VirtualNetwork(self.db, config, seed=seed, **network_kwargs)
        self.dev = self.net.wiring.devices
        self.sw = {r: self.db[self.dev[r]]["arguments"]["sw_device"]
                   for r in self.dev if r.startswith("dds")}
        self.t = 1000
        cfg = self.net.cfg
        for n, f729 in zip(NODES, (cfg.laser_729.transition_dds_hz_a,
                                   cfg.laser_729.transition_dds_hz_b), strict=True):
            self.dds(f"dds_397_{n}", cfg.laser_397.resonance_dds_hz)
            for la in ("866", "854", "393"):
                self.dds(f"dds_{la}_{n}", 80e6)
            self.dds(f"dds_729_{n}", f729)

    def dds(self, role, freq, amp=1.0, phase=0.0):
        self.net.output(self.t, self.dev[role], "dds",
                        DDSState(freq, phase, amp, PHASE_MODE_TRACKING, 0))

    def pulse(self, role, duration_mu):
        self.net.output(self.t, self.sw[role], "level", 1)
        self.t += duration_mu
        self.net.output(self.t, self.sw[role], "level", 0)

    def reset(self, nodes=NODES):
        """854 + 866 quench to S."""
        for n in nodes:
            self.net.output(self.t, self.sw[f"dds_854_{n}"], "level", 1)
            self.net.output(self.t, self.sw[f"dds_866_{n}"], "level", 1)
        self.t += 5000
        for n in nodes:
            self.net.output(self.t, self.sw[f"dds_854_{n}"], "level", 0)
            self.net.output(self.t, self.sw[f"dds_866_{n}"], "level", 0)
        self.t += 100

    def readout(self, node, duration_mu=500_000):
        """397 + 866 on, PMT gated; returns the count."""
        for la in ("397", "866"):
            self.net.output(self.t, self.sw[f"dds_{la}_{node}"], "level", 1)
        edges = self.net.input_edges(self.dev[f"pmt_{node}"], self.t, self.t + duration_mu)
        self.t += duration_mu
        for la in ("397", "866"):
            self.net.output(self.t, self.sw[f"dds_{la}_{node}"], "level", 0)
        self.t += 100
        return len(edges)

    def station(self, t0, t1):
        return [self.net.input_edges(self.dev[f"det_station_{d}"], t0, t1) for d in (0, 1)]


def binomial_tolerance(p: float, n: int, sigmas: float = 5.0) -> float:
    return sigmas * max(np.sqrt(p * (1 - p) / n), 1.0 / n)


class NodeRig:
    """A simulated core (session) with a VirtualNetwork behind it, devices from
    ``example_device_db`` plus ``core_dma``."""

    def __init__(self, config=None, seed=0, **network_kwargs):
        from ionlink.runner.devices import SimDeviceManager
        from ionlink.sim import session
        self.db = dict(example_device_db())
        self.db["core"] = {**self.db["core"],
                           "arguments": {"host": None, "ref_period": 1e-9}}
        self.db["core_dma"] = {"type": "local", "module": "artiq.coredevice.dma",
                               "class": "CoreDMA"}
        self.world = VirtualNetwork(self.db, config, seed=seed, **network_kwargs)
        self.engine = session.start(world=self.world)
        self.dmgr = SimDeviceManager(self.db)
        self.core = self.dmgr.get("core")

    def get(self, name):
        return self.dmgr.get(name)

    def close(self):
        from ionlink.sim import session
        session.end()


def node_rig(config=None, seed=0, **network_kwargs):
    return NodeRig(config, seed, **network_kwargs)
