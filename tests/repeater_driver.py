"""Drive a ChainNetwork through its World interface, as the core device would (test helper)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ionlink.node.chain import IONS, ChainNetwork
from ionlink.node.chain_config import load_chain_config
from ionlink.runner.devices import load_device_db
from ionlink.sim.world import PHASE_MODE_TRACKING, DDSState
from tests.node_driver import NO_DRIFT

ROOT = Path(__file__).resolve().parent.parent
DEVICE_DB = ROOT / "device_db_repeater.py"
INF = float("inf")


def quiet_chain(node=None, **sections):
    """Chain truth without dephasing, phase noise, mode mismatch, dark counts, stray light,
    gate error; photon path parts ideal except fibre loss (plus ``node`` / ``sections``)."""
    base_node = dict(drift=NO_DRIFT,
                     memory={"quasi_static_t2_s": INF, "markovian_t2_s": INF},
                     ion={"d52_lifetime_s": 1e9},
                     fibre={"phase_noise_rms_rad": 0.0, "temperature_swing_kelvin": 0.0},
                     station={"mode_overlap": 1.0, "dark_count_rate_hz": 0.0},
                     readout={"pmt_dark_count_rate_hz": 0.0,
                              "stray_light_rate_at_full_397_hz": 0.0},
                     photon={"collection_efficiency": 1.0, "conversion_efficiency": 1.0,
                             "filter_transmission": 1.0})
    for k, v in (node or {}).items():
        base_node[k] = {**base_node.get(k, {}), **v}
    ms = {"gate_error": 0.0, **sections.pop("ms_gate", {})}
    return load_chain_config().replace(node=base_node, ms_gate=ms, **sections)


class ChainDriver:
    """Issue laser pulses on a fresh chain; time cursor ``t`` in mu."""

    def __init__(self, config=None, seed=0):
        self.db = load_device_db(DEVICE_DB)
        self.net = ChainNetwork(self.db, config, seed=seed)
        self.dev = self.net.devices
        self.sw = {r: self.db[self.dev[r]]["arguments"]["sw_device"]
                   for r in self.dev if r.startswith("dds")}
        self.t = 1000
        truth = self.net.truth()
        self.truth = truth
        for name in ("a", "b"):
            self.dds(f"dds_397_{name}", self.net.cfg.node.laser_397.resonance_dds_hz - 5e6)
            for la in ("866", "854", "393"):
                self.dds(f"dds_{la}_{name}", 80e6)
            self.dds(f"dds_729_{name}", truth[name]["transition_729_dds_hz"])
        self.dds("dds_397_r", self.net.cfg.node.laser_397.resonance_dds_hz - 5e6)
        self.dds("dds_866_r", 80e6)
        for name in ("ra", "rb"):
            self.dds(f"dds_854_{name}", 80e6)
            self.dds(f"dds_393_{name}", 80e6)
            self.dds(f"dds_729_{name}", truth[name]["transition_729_dds_hz"])
        self.dds("dds_729_ms_blue_r", truth["ms"]["blue_dds_hz"])
        self.dds("dds_729_ms_red_r", truth["ms"]["red_dds_hz"])

    def dds(self, role, freq, amp=1.0, phase=0.0):
        self.net.output(self.t, self.dev[role], "dds",
                        DDSState(freq, phase, amp, PHASE_MODE_TRACKING, 0))

    def on(self, role, t=None):
        self.net.output(self.t if t is None else t, self.sw[role], "level", 1)

    def off(self, role, t=None):
        self.net.output(self.t if t is None else t, self.sw[role], "level", 0)

    def pulse(self, roles, duration_mu):
        for r in roles:
            self.on(r)
        self.t += int(duration_mu)
        for r in roles:
            self.off(r)

    def wait(self, duration_mu):
        self.t += int(duration_mu)

    def reset(self, ions=IONS):
        """854 quench of the given ions to S."""
        roles = [f"dds_854_{n}" for n in ions]
        self.pulse(roles, 3000)

    def attempt(self, link: str, pulse_mu: int = 100, window_mu: int = 20000):
        """One heralding attempt on link ``ar`` or ``rb`` (quench, excite both, gate the
        station); returns the detector that heralded (0/1) or None."""
        ions = ("a", "ra") if link == "ar" else ("rb", "b")
        self.reset(ions)
        self.pulse([f"dds_393_{n}" for n in ions], pulse_mu)
        t0 = self.t
        self.t += window_mu
        clicks = [self.net.input_edges(self.dev[f"det_{link}_{d}"], t0, self.t)
                  for d in (0, 1)]
        n = [len(c) for c in clicks]
        if n[0] + n[1] == 1:
            return 0 if n[0] else 1
        return None

    def herald(self, link: str, max_attempts: int = 100000, **kwargs):
        for k in range(max_attempts):
            d = self.attempt(link, **kwargs)
            if d is not None:
                return d, k + 1
        raise RuntimeError(f"no herald on link {link} in {max_attempts} attempts")

    def ms_gate(self, duration_s: float | None = None):
        dur = self.truth["ms"]["gate_time_s"] if duration_s is None else duration_s
        self.pulse(["dds_729_ms_blue_r", "dds_729_ms_red_r"], round(dur * 1e9))

    def read(self, ions, duration_mu: int = 300_000):
        """Fluorescence readout of ``ions`` (R's ions together): True = bright (S)."""
        roles = set()
        for n in ions:
            roles.add("dds_397_r" if n in ("ra", "rb") else f"dds_397_{n}")
            roles.add("dds_866_r" if n in ("ra", "rb") else f"dds_866_{n}")
        t0 = self.t
        self.pulse(sorted(roles), duration_mu)
        out = []
        for n in ions:
            counts = len(self.net.input_edges(self.dev[f"pmt_{n}"], t0, self.t))
            out.append(counts > 2)
        return out

    def state(self, ions=(0, 3)) -> np.ndarray:
        """Reduced state of two ions (register indices) at the cursor."""
        self.net.evolve_to(self.t)
        return self.net.reduced_state(ions)


def alpha_pulse_mu(config, alpha: float) -> int:
    """393 pulse length (mu) at full amplitude for excitation probability ``alpha``."""
    tau = config.node.laser_393.generation_time_constant_s
    return max(1, round(-math.log(1 - alpha) * tau * 1e9))
