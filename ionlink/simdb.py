"""A device database for the real ARTIQ tools that points at the simulated node.

``ionlink simdb device_db.py -o sim_device_db.py`` writes a copy of the lab's device
database in which every ``artiq.coredevice.X`` entry is served by its simulated twin
``ionlink.sim.coredevice.X`` (same class, same arguments), controllers with a simulation
mode become in-process drivers, and the core device starts the virtual node behind the
channels. The real ``artiq_run --device-db sim_device_db.py EXPERIMENT.py`` (or an
``artiq_master`` given that file) then runs experiments unchanged on the simulated node:
the simulated ``Core`` executes kernels on the host and plugs its time manager into ARTIQ's
``artiq.language.core.set_time_manager``.
"""

from __future__ import annotations

import importlib
import pprint
from pathlib import Path
from typing import Any

from ionlink.runner.devices import (
    SIMULATED_CONTROLLERS,
    DeviceError,
    _load_factory,
    load_device_db,
    simulated_module_name,
)

#: Argument of the simulated ``Core`` that starts a session (see
#: :class:`ionlink.sim.coredevice.core.Core`).
SESSION_ARGUMENT = "sim_session"


def simulated_device_db(ddb: dict, node: str | None = None, seed: int = 0,
                        costs: str | None = None) -> dict:
    """The device database ``ddb`` with every device served by its simulated twin.

    :param ddb: the lab's ``device_db`` dict (not modified).
    :param node: TOML file of the virtual node's parameters (None: the defaults).
    :param seed: random seed of the virtual node.
    :param costs: TOML file overriding entries of the CPU cost model (None: the defaults).
    """
    if "core" not in ddb:
        raise DeviceError("device database has no 'core' entry")
    out: dict[str, Any] = {}
    for key, desc in ddb.items():
        if isinstance(desc, str):
            out[key] = desc
        elif not isinstance(desc, dict) or "type" not in desc:
            raise DeviceError(f"device '{key}' has a malformed entry: {desc!r}")
        elif desc["type"] == "local":
            out[key] = _simulated_local(key, desc)
        elif desc["type"] == "controller":
            out[key] = _simulated_controller(key, desc)
        else:
            out[key] = dict(desc)
    core = out["core"]
    if core.get("module") != "ionlink.sim.coredevice.core":
        raise DeviceError("device 'core' is not an artiq.coredevice.core device")
    core["arguments"] = {**core.get("arguments", {}), "host": None,
                         SESSION_ARGUMENT: {
                             "factory": __name__ + ":start_virtual_node",
                             "node": str(Path(node).resolve()) if node else None,
                             "seed": int(seed),
                             "costs": str(Path(costs).resolve()) if costs else None}}
    return out


def _simulated_local(key: str, desc: dict) -> dict:
    module_name, class_name = desc.get("module"), desc.get("class")
    if not module_name or not class_name:
        raise DeviceError(f"device '{key}' names no module or class")
    sim_name = simulated_module_name(module_name)
    if sim_name == module_name:
        return dict(desc)  # not a core-device driver (a lab's own local device)
    try:
        module = importlib.import_module(sim_name)
    except ModuleNotFoundError:
        raise DeviceError(f"device '{key}': {module_name}.{class_name} has no simulated "
                          f"twin (no module {sim_name})") from None
    if not hasattr(module, class_name):
        raise DeviceError(f"device '{key}': {module_name}.{class_name} has no simulated "
                          f"twin (no class {class_name} in {sim_name})")
    return {**desc, "module": sim_name}


def _simulated_controller(key: str, desc: dict) -> dict:
    command = desc.get("command", "")
    program = command.split()[0] if command else ""
    if program not in SIMULATED_CONTROLLERS:
        return dict(desc)  # no simulation mode: left as a real controller
    return {"type": "local", "module": __name__, "class": "SimulatedController",
            "arguments": {"key": key, "controller": dict(desc)}}


def start_virtual_node(dmgr, node: str | None = None, seed: int = 0,
                       costs: str | None = None) -> None:
    """Start a simulation session with the virtual node behind the channels.

    Called by the simulated ``Core`` when it is created from a simulated device database:
    the node is built from that database (its aliases name the node's roles).
    """
    from ionlink.node import VirtualNetwork, load_node_config
    from ionlink.sim import session
    from ionlink.sim.costs import DEFAULT_COSTS, CostModel

    model = CostModel.from_toml(costs) if costs else DEFAULT_COSTS
    world = VirtualNetwork(dmgr.get_device_db(), load_node_config(node), int(seed))
    session.start(world=world, costs=model)


def SimulatedController(dmgr, key: str, controller: dict) -> Any:  # noqa: N802
    """Device-db class for a controller served in-process in simulation mode.

    Called by the device manager as a class would be: ``SimulatedController(dmgr, **args)``.
    """
    program = controller.get("command", "").split()[0]
    return _load_factory(SIMULATED_CONTROLLERS[program], key)(dmgr, controller)


def write_simulated_device_db(source: str | Path, output: str | Path,
                              node: str | None = None, seed: int = 0,
                              costs: str | None = None) -> dict:
    """Write the simulated device database of ``source`` to ``output``; return it."""
    sim = simulated_device_db(load_device_db(source), node=node, seed=seed, costs=costs)
    text = (f"# Simulated device database, generated by `ionlink simdb` from {source}.\n"
            "# Every device is served by ionlink's simulated twin with the virtual node\n"
            "# behind it: use it with artiq_run/artiq_master --device-db. Regenerate it\n"
            "# when the lab's device database changes; do not edit it by hand.\n\n"
            f"device_db = {pprint.pformat(sim, indent=1, width=100, sort_dicts=False)}\n")
    Path(output).write_text(text)
    return sim


def add_simdb_parser(subparsers) -> None:
    """Register ``ionlink simdb`` with the ``ionlink`` command's subparsers."""
    p = subparsers.add_parser(
        "simdb", help="write a device database for the real artiq_run/artiq_master that "
                      "serves the simulated node",
        description="Write a copy of the lab's device database whose devices are ionlink's "
                    "simulated twins with the virtual node behind them, for use with the "
                    "real ARTIQ tools (artiq_run --device-db OUT, artiq_master -d).")
    p.add_argument("device_db", type=Path, help="the lab's device database")
    p.add_argument("-o", "--output", type=Path, default=Path("sim_device_db.py"),
                   help="file to write (default: %(default)s)")
    p.add_argument("--node", default=None,
                   help="node file (TOML) with the virtual node's physical parameters")
    p.add_argument("--seed", type=int, default=0, help="random seed of the virtual node")
    p.add_argument("--costs", default=None,
                   help="TOML table overriding entries of the CPU cost model")
    p.set_defaults(func=_simdb_command)


def _simdb_command(args) -> int:
    import sys

    for option, path in (("--node", args.node), ("--costs", args.costs)):
        if path is not None and not Path(path).is_file():
            print(f"ionlink simdb: error: {option} file {path} does not exist", file=sys.stderr)
            return 2
    try:
        sim = write_simulated_device_db(args.device_db, args.output, node=args.node,
                                        seed=args.seed, costs=args.costs)
    except (DeviceError, OSError) as e:
        print(f"ionlink simdb: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}: {len(sim)} entries served by ionlink's simulated node")
    return 0
