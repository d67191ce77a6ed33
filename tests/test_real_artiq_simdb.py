"""``ionlink simdb``: the lab's device database mapped to simulated twins (runs everywhere)."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from ionlink.cli import main
from ionlink.runner.devices import DeviceError, SimDeviceManager, load_device_db
from ionlink.sim import session
from ionlink.simdb import simulated_device_db

ROOT = Path(__file__).resolve().parent.parent


def test_every_core_device_entry_points_at_its_twin():
    lab = load_device_db(ROOT / "device_db.py")
    sim = simulated_device_db(lab, seed=5)
    assert set(sim) == set(lab)
    for key, desc in lab.items():
        if isinstance(desc, str):
            assert sim[key] == desc
        elif desc["type"] == "local":
            assert sim[key]["module"] == desc["module"].replace(
                "artiq.coredevice", "ionlink.sim.coredevice")
            assert sim[key]["class"] == desc["class"]
    args = sim["core"]["arguments"]
    assert args["host"] is None
    assert args["sim_session"]["seed"] == 5
    assert lab["core"]["arguments"]["host"] is not None  # the input is not modified


def test_unknown_class_is_one_clear_error():
    lab = {"core": {"type": "local", "module": "artiq.coredevice.core", "class": "Core",
                    "arguments": {"host": None, "ref_period": 1e-9}},
           "phaser0": {"type": "local", "module": "artiq.coredevice.phaser",
                       "class": "Phaser", "arguments": {"channel_base": 0}}}
    with pytest.raises(DeviceError, match="phaser0.*no simulated twin"):
        simulated_device_db(lab)


def test_cli_writes_a_loadable_db_whose_core_starts_the_virtual_node(tmp_path, capsys):
    out = tmp_path / "sim_device_db.py"
    assert main(["simdb", str(ROOT / "device_db.py"), "-o", str(out), "--seed", "2"]) == 0
    assert "wrote" in capsys.readouterr().out
    ddb = runpy.run_path(str(out))["device_db"]
    try:
        dmgr = SimDeviceManager(ddb)
        core = dmgr.get("core")
        assert core.engine is session.engine()
        world = core.engine.world
        assert type(getattr(world, "inner", world)).__name__ == "VirtualNetwork"
        dmgr.get("dds_397_a")  # a driver joins the core's session
    finally:
        session.end()


def test_cli_bad_input(tmp_path, capsys):
    assert main(["simdb", str(tmp_path / "missing.py"), "-o", str(tmp_path / "x.py")]) == 2
    assert "missing.py does not exist" in capsys.readouterr().err
    assert main(["simdb", str(ROOT / "device_db.py"), "-o", str(tmp_path / "x.py"),
                 "--node", str(tmp_path / "nope.toml")]) == 2
    assert "--node file" in capsys.readouterr().err
