"""Listing the experiments of a file or repository, as ARTIQ's dashboard/``artiq_client ls``.

A file is imported as a fresh module under a unique name (no ``sys.path`` change; it and
the modules it imported from its own folder are forgotten afterwards), every public experiment class
in it (``is_public_experiment``) is built with dummy devices and an argument manager that
records the requested arguments, and the result is one :class:`ExperimentDescription` per
class. Because ``sys.path`` is untouched, an experiment file that imports a sibling module by
bare name only examines when that module is importable anyway.
"""

from __future__ import annotations

import inspect
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from artiq.language.environment import is_public_experiment

from ionlink.runner.arguments import TraceArgumentManager
from ionlink.runner.modules import ModuleImportError, import_file

__all__ = ["DummyDevice", "ExamineDatasetManager", "ExamineDeviceManager", "ExamineError",
           "ExperimentDescription", "examine_file", "examine_repository"]


class ExamineError(Exception):
    """A file whose experiments could not be examined (the message is one line)."""


class DummyDevice:
    """Stands for every device while experiments are examined (as ARTIQ's)."""


class ExamineDeviceManager:
    """Device manager for examining: every device is a :class:`DummyDevice`; the names
    requested are recorded in :attr:`requested`.

    :param device_db: returned by ``get_device_db()`` (empty dict when None).
    """

    def __init__(self, device_db: dict | None = None) -> None:
        self.device_db = device_db if device_db is not None else {}
        self.requested: list[str] = []

    def get_device_db(self) -> dict:
        return self.device_db

    def get(self, name: str) -> DummyDevice:
        if name not in self.requested:
            self.requested.append(name)
        return DummyDevice()


class ExamineDatasetManager:
    """Read-only dataset access for examining: reads from a dataset database, or finds
    nothing (KeyError) when none is given. Writes are ignored."""

    def __init__(self, db: Any = None) -> None:
        self.db = db

    def get(self, key: str, archive: bool = False) -> Any:
        if self.db is None:
            raise KeyError(key)
        return self.db.get(key)

    def get_metadata(self, key: str) -> dict:
        if self.db is None:
            raise KeyError(key)
        return self.db.get_metadata(key)

    def set(self, key, value, metadata, broadcast, persist, archive) -> None:
        """Datasets are read-only while examining; the value is dropped."""

    def mutate(self, key, index, value) -> None:
        """Datasets are read-only while examining; the change is dropped."""

    def append_to(self, key, value) -> None:
        """Datasets are read-only while examining; the value is dropped."""


@dataclass
class ExperimentDescription:
    """What the dashboard shows about one experiment class.

    ``arginfo`` maps argument key -> (processor description dict, group, tooltip), in
    request order; ``devices`` lists the device names requested in ``build``.
    """

    file: str
    class_name: str
    name: str
    arginfo: dict[str, tuple[dict, str | None, str | None]]
    argument_ui: Any
    scheduler_defaults: dict
    devices: list[str] = field(default_factory=list)




def _display_name(class_name: str, cls: type) -> str:
    """First docstring line without a final full stop, else the class name (as ARTIQ)."""
    if cls.__doc__ is None or not cls.__doc__.strip():
        return class_name
    name = cls.__doc__.strip().splitlines()[0].strip()
    return name[:-1] if name.endswith(".") else name


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def examine_file(path: str | os.PathLike, device_db: dict | None = None,
                 dataset_db: Any = None) -> list[ExperimentDescription]:
    """Return the descriptions of the public experiments in the Python file ``path``.

    :param device_db: what ``get_device_db()`` returns to experiments (default empty).
    :param dataset_db: a :class:`~ionlink.runner.datasets.DatasetDB` experiments may read
        in ``build`` (default: none, every dataset is missing).
    Raises ExamineError with a one-line reason when the file cannot be imported or an
    experiment's ``build`` fails.
    """
    path = Path(path)
    if not path.is_file():
        raise ExamineError(f"{path}: no such file")
    modules_before = set(sys.modules)
    module_name = None
    try:
        try:
            module = import_file(path, "ionlink_examine")
        except ModuleImportError as e:
            raise ExamineError(str(e)) from e
        module_name = module.__name__
        descriptions = []
        for class_name, cls in inspect.getmembers(module, is_public_experiment):
            descriptions.append(_describe(path, class_name, cls, device_db, dataset_db))
        return descriptions
    finally:
        if module_name is not None:
            _forget_modules(set(sys.modules) - modules_before, module_name, path.parent)


def _forget_modules(new_names: set[str], module_name: str, folder: Path) -> None:
    """Drop the examined module and the modules it brought in from its own folder, so the
    next examination sees fresh code; library modules (artiq, numpy, ...) stay loaded so
    their classes keep one identity in this process."""
    folder = folder.resolve()
    for name in new_names:
        module = sys.modules.get(name)
        origin = getattr(module, "__file__", None)
        inside = origin is not None and Path(origin).resolve().is_relative_to(folder)
        if name == module_name or (inside and not name.startswith(_KEPT_PACKAGES)):
            del sys.modules[name]


_KEPT_PACKAGES = ("artiq", "ionlink", "sipyco")


def _describe(path: Path, class_name: str, cls: type, device_db: dict | None,
              dataset_db: Any) -> ExperimentDescription:
    device_mgr = ExamineDeviceManager(device_db)
    argument_mgr = TraceArgumentManager()
    scheduler_defaults: dict = {}
    managers = (device_mgr, ExamineDatasetManager(dataset_db), argument_mgr,
                scheduler_defaults)
    try:
        cls(managers)
    except Exception as e:
        raise ExamineError(f"{path}: building {class_name} failed: {_one_line(e)}") from e
    return ExperimentDescription(
        file=str(path), class_name=class_name, name=_display_name(class_name, cls),
        arginfo=dict(argument_mgr.argument_descriptions()),
        argument_ui=getattr(cls, "argument_ui", None),
        scheduler_defaults=scheduler_defaults, devices=list(device_mgr.requested))


def examine_repository(directory: str | os.PathLike, device_db: dict | None = None,
                       dataset_db: Any = None
                       ) -> tuple[list[ExperimentDescription], dict[str, str]]:
    """Examine every ``*.py`` file under ``directory`` (recursively; names starting with
    ``.`` and ``__pycache__`` folders are skipped, as ARTIQ skips dot-names).

    :return: (descriptions of all experiments found, {file path: one-line reason} for the
        files that failed).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ExamineError(f"{directory}: not a directory")
    descriptions: list[ExperimentDescription] = []
    failures: dict[str, str] = {}
    for path in sorted(_python_files(directory)):
        try:
            descriptions.extend(examine_file(path, device_db, dataset_db))
        except ExamineError as e:
            failures[str(path)] = str(e)
    return descriptions, failures


def _python_files(directory: Path):
    for entry in directory.iterdir():
        if entry.name.startswith(".") or entry.name == "__pycache__":
            continue
        if entry.is_dir():
            yield from _python_files(entry)
        elif entry.is_file() and entry.name.endswith(".py"):
            yield entry
