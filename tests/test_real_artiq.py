"""The simulated core device under the real ARTIQ (skipped where ARTIQ is not installed).

Run with the Python of an environment that has ARTIQ and ionlink (see
tests/test_kernel_compile.py)::

    /path/to/artiq-env/bin/python -m pytest -q tests/test_real_artiq.py
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

artiq = pytest.importorskip("artiq")
if getattr(artiq, "__ionlink_stand_in__", False):
    pytest.skip("real ARTIQ is not installed (ionlink's stand-in is serving artiq)",
                allow_module_level=True)

from artiq.coredevice.exceptions import RTIOUnderflow  # noqa: E402
from artiq.language import core as artiq_core  # noqa: E402
from artiq.language.core import delay, kernel, now_mu  # noqa: E402
from artiq.language.environment import HasEnvironment  # noqa: E402
from artiq.master.worker_db import DeviceManager  # noqa: E402

from ionlink.runner.devices import load_device_db  # noqa: E402
from ionlink.sim import session  # noqa: E402
from ionlink.simdb import simulated_device_db, write_simulated_device_db  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


class _DictDeviceDB:
    def __init__(self, ddb):
        self._ddb = ddb

    def get_device_db(self):
        return self._ddb

    def get(self, key, resolve_alias=False):
        desc = self._ddb[key]
        while resolve_alias and isinstance(desc, str):
            desc = self._ddb[desc]
        return desc


class _Pulses(HasEnvironment):
    def build(self):
        self.setattr_device("core")
        self.setattr_device("ttl4")

    @kernel
    def pulses(self, n):
        self.core.break_realtime()
        start = now_mu()
        for _ in range(n):
            self.ttl4.pulse(1e-6)
            delay(1e-6)
        return now_mu() - start

    @kernel
    def late(self):
        self.core.reset()
        delay(-1e-3)
        self.ttl4.on()


@pytest.fixture
def real_dmgr():
    sim = simulated_device_db(load_device_db(ROOT / "device_db.py"), seed=3)
    dmgr = DeviceManager(_DictDeviceDB(sim))
    yield dmgr
    dmgr.close_devices()
    session.end()


def test_simulated_core_plugs_into_artiq_time_manager(real_dmgr):
    exp = _Pulses((real_dmgr, None, None, {}))
    engine = exp.core.engine
    assert engine is session.engine()
    assert type(getattr(engine.world, "inner", engine.world)).__name__ == "VirtualNetwork"
    events_before = engine.events_submitted
    duration = exp.pulses(10)
    assert duration == 10 * 2000
    # ARTIQ's language module drives ionlink's timeline: its cursor is the engine's.
    assert artiq_core._time_manager is engine.tm
    assert engine.events_submitted - events_before == 20


def test_real_artiq_exceptions_raised_by_the_simulation(real_dmgr):
    exp = _Pulses((real_dmgr, None, None, {}))
    with pytest.raises(RTIOUnderflow, match="slack"):
        exp.late()


def test_real_artiq_run_on_simulated_device_db(tmp_path):
    sim_db = tmp_path / "sim_device_db.py"
    write_simulated_device_db(ROOT / "device_db.py", sim_db, seed=1)
    proc = subprocess.run(
        [sys.executable, "-m", "artiq.frontend.artiq_run", "--device-db", str(sim_db),
         "--dataset-db", str(tmp_path / "datasets.mdb"),
         str(ROOT / "repository" / "calibrations" / "readout_histogram.py"), "shots=40"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split(": ", 1) for line in proc.stdout.splitlines() if ": " in line)
    assert float(lines["readout.mean_bright"]) > float(lines["readout.mean_dark"])
