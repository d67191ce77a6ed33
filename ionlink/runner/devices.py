"""The device manager of a simulated run: the lab's device_db mapped to simulated twins.

Every ``artiq.coredevice.<module>.<Class>`` entry of the lab's ``device_db.py`` is created
from ``ionlink.sim.coredevice.<module>.<Class>`` with the entry's own arguments, so the
device database is the only description of the hardware. Controllers (host-side
instruments) become in-process drivers in simulation mode, found by their command name
in :data:`SIMULATED_CONTROLLERS`. Aliases (string entries) resolve as in ARTIQ.
"""

from __future__ import annotations

import importlib
import runpy
from collections.abc import Callable
from pathlib import Path
from typing import Any

SIM_PREFIX = "ionlink.sim.coredevice"

#: Controller command name (first word of ``command``) -> module:factory of an in-process
#: driver in simulation mode. The factory is called as ``factory(device_manager, entry)``.
SIMULATED_CONTROLLERS: dict[str, str] = {
    "aqctl_ionlink_timetagger": "drivers.timetagger.simulation:controller_factory",
    "aqctl_ionlink_wavemeter": "drivers.wavemeter.simulation:controller_factory",
}


class DeviceError(Exception):
    """A device cannot be found or created; the message names it and why."""


def load_device_db(path: str | Path) -> dict:
    """Execute a ``device_db.py`` and return its ``device_db`` dict."""
    path = Path(path)
    if not path.is_file():
        raise DeviceError(f"device database {path} does not exist")
    try:
        namespace = runpy.run_path(str(path), run_name="device_db")
    except Exception as e:
        raise DeviceError(f"device database {path} does not load: "
                          f"{type(e).__name__}: {e}") from None
    ddb = namespace.get("device_db")
    if not isinstance(ddb, dict):
        raise DeviceError(f"device database {path} defines no dict named device_db")
    return ddb


def resolve_alias(ddb: dict, name: str, error: type[Exception] = DeviceError,
                  what: str = "device") -> str:
    """Follow alias entries (string values) from ``name`` to the key of a real device entry.

    The one alias resolver of ionlink: the device manager and the simulated controllers
    (``drivers``) use it. Raises ``error`` (a class taking one message) when ``name`` or an
    entry an alias points to is missing, or when the aliases loop; the message names
    ``name`` as ``what`` (the device's role, e.g. ``"tagger channel device"``) and the whole
    alias chain.
    """
    chain = [name]
    while True:
        key = chain[-1]
        if key not in ddb:
            via = (f" (alias {' -> '.join(chain)}: {key!r} has no entry)"
                   if len(chain) > 1 else "")
            raise error(f"{what} {name!r} is not in the device database{via}")
        desc = ddb[key]
        if not isinstance(desc, str):
            return key
        if desc in chain:
            raise error(f"alias loop resolving {name!r} ({what}): "
                        + " -> ".join(chain + [desc]))
        chain.append(desc)


def simulated_module_name(module: str) -> str:
    """``artiq.coredevice.X`` -> ``ionlink.sim.coredevice.X``; other modules unchanged."""
    if module == "artiq.coredevice" or module.startswith("artiq.coredevice."):
        return SIM_PREFIX + module[len("artiq.coredevice"):]
    return module


class SimDeviceManager:
    """Creates and caches the devices of one run, as ARTIQ's ``DeviceManager`` does.

    :param ddb: the device database dict.
    :param virtual_devices: devices that are not in the database (``scheduler``, ...).
    """

    def __init__(self, ddb: dict, virtual_devices: dict[str, Any] | None = None):
        self.ddb = ddb
        self.virtual_devices = dict(virtual_devices or {})
        self.active_devices: list[tuple[str, Any]] = []
        self._by_key: dict[str, Any] = {}
        #: Key of the device being constructed (simulated drivers read it to name
        #: themselves for the world and the trace).
        self.creating: str | None = None

    def get_device_db(self) -> dict:
        return self.ddb

    def get_desc(self, name: str) -> Any:
        return self.ddb[resolve_alias(self.ddb, name)]

    def get(self, name: str) -> Any:
        """The device called ``name`` (an alias or a key), created on first use."""
        if name in self.virtual_devices:
            return self.virtual_devices[name]
        key = resolve_alias(self.ddb, name)
        if key in self._by_key:
            return self._by_key[key]
        desc = self.ddb[key]
        if not isinstance(desc, dict) or "type" not in desc:
            raise DeviceError(f"device '{key}' has a malformed entry: {desc!r}")
        if desc["type"] == "local":
            device = self._create_local(key, desc)
        elif desc["type"] == "controller":
            device = self._create_controller(key, desc)
        else:
            raise DeviceError(f"device '{key}' has unknown type {desc['type']!r}")
        self._by_key[key] = device
        self.active_devices.append((key, device))
        return device

    def _create_local(self, key: str, desc: dict) -> Any:
        module_name = desc.get("module")
        class_name = desc.get("class")
        if not module_name or not class_name:
            raise DeviceError(f"device '{key}' names no module or class")
        sim_name = simulated_module_name(module_name)
        try:
            module = importlib.import_module(sim_name)
        except ModuleNotFoundError as e:
            if sim_name != module_name:
                raise DeviceError(f"device '{key}': {module_name}.{class_name} has no "
                                  "simulated twin (no module " f"{sim_name})") from None
            raise DeviceError(f"device '{key}': module {module_name} cannot be imported: "
                              f"{e}") from None
        cls = getattr(module, class_name, None)
        if cls is None:
            raise DeviceError(f"device '{key}': {module_name}.{class_name} has no "
                              f"simulated twin (no class {class_name} in {sim_name})")
        arguments = desc.get("arguments", {})
        previous, self.creating = self.creating, key
        try:
            return cls(self, **arguments)
        except DeviceError:
            raise
        except TypeError as e:
            raise DeviceError(f"device '{key}': wrong arguments for {class_name}: {e}") \
                from None
        finally:
            self.creating = previous

    def _create_controller(self, key: str, desc: dict) -> Any:
        command = desc.get("command", "")
        program = command.split()[0] if command else ""
        target = SIMULATED_CONTROLLERS.get(program)
        if target is None:
            raise DeviceError(f"controller '{key}' (command {program or '?'}) has no "
                              "simulation mode in ionlink")
        factory = _load_factory(target, key)
        return factory(self, desc)

    def close_devices(self) -> None:
        """Close every created device that has ``close()`` (in reverse creation order)."""
        for _key, device in reversed(self.active_devices):
            close = getattr(device, "close", None)
            if close is not None:
                close()
        self.active_devices.clear()
        self._by_key.clear()


def _load_factory(target: str, key: str) -> Callable:
    module_name, _, attr = target.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise DeviceError(f"controller '{key}': simulated driver {target} is not "
                          f"available: {e}") from None
