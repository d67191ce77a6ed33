"""Start an applet with ARTIQ's applet runner, or with ionlink's file-reading stand-in.

In the dashboard (real ARTIQ installed, no file on the command line) an applet runs on
``artiq.applets.simple``: it subscribes to the master's datasets, or to the dashboard's when
embedded. Where ARTIQ is absent, or when the command line names a results file
(``.h5``/``.hdf5``), a dataset database (``.pyon``), a directory, or ``--follow``, it runs
on :mod:`ionlink.artiq_api.applets.simple`, which reads the datasets from files.

Dataset arguments are optional (``--name``) with the dataset names of
:mod:`analysis.schemas` as defaults, so ``python -m applets.NAME results.h5`` needs nothing
else; a lab whose experiments use other names passes ``--name other.dataset``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ionlink  # noqa: F401  (installs the import hook serving artiq where it is absent)

FILE_SUFFIXES = (".h5", ".hdf5", ".pyon")


@dataclass(frozen=True)
class DatasetArg:
    """One dataset argument: option ``--name`` defaulting to dataset ``default``."""

    name: str
    default: str | None
    help: str


def wants_files(argv: Sequence[str]) -> bool:
    """True when the command line names a file or directory source or ``--follow``."""
    for arg in argv:
        if arg == "--follow":
            return True
        if not arg.startswith("-") and (Path(arg).suffix in FILE_SUFFIXES
                                        or Path(arg).is_dir()):
            return True
    return False


def applet_module(argv: Sequence[str]) -> Any:
    """ARTIQ's ``artiq.applets.simple``, or ionlink's stand-in (see module docstring)."""
    from ionlink._artiq_fallback import artiq_is_real

    if artiq_is_real() and not wants_files(argv):
        # pyqtgraph binds Qt first (PyQt6 before PySide6), so qasync, which follows the
        # binding already imported, drives the same one
        import pyqtgraph.Qt  # noqa: F401, I001  (before qasync: see above)
        import artiq.applets.simple as simple
    else:
        import ionlink.artiq_api.applets.simple as simple
    return simple


def make_applet(widget_class: type, datasets: Sequence[DatasetArg], description: str,
                argv: Sequence[str] | None = None, prefixes: Sequence[str] = (),
                title: bool = True) -> Any:
    """Build the applet (not yet started) for ``widget_class``.

    :param datasets: the dataset arguments, all optional with defaults.
    :param prefixes: dataset-name prefixes the applet also subscribes to (as ndscan does
        with ``dataset_prefixes``), e.g. ``"calib."`` for every calibrated parameter.
    :param title: a :class:`TitleApplet` (``--title``, ``data_changed(..., title)``).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    simple = applet_module(argv)
    base = simple.TitleApplet if title else simple.SimpleApplet
    extra_prefixes = list(prefixes)

    class Applet(base):
        def args_init(self, *args: Any) -> None:
            super().args_init(*args)
            self.dataset_prefixes = list(self.dataset_prefixes) + extra_prefixes

    applet = Applet(widget_class, cmd_description=description)
    for arg in datasets:
        applet.add_dataset(arg.name, f"{arg.help} (default: {arg.default})", required=False)
    applet.argparser.set_defaults(**{arg.name: arg.default for arg in datasets})
    return applet


def run(widget_class: type, datasets: Sequence[DatasetArg], description: str,
        argv: Sequence[str] | None = None, prefixes: Sequence[str] = ()) -> None:
    """Run the applet until its window closes (the ``main()`` of every applet module);
    ``description``: the module docstring, whose first paragraph heads ``--help``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    summary = " ".join(description.split("\n\n")[0].split())
    applet = make_applet(widget_class, datasets, summary, argv, prefixes)
    if hasattr(applet, "start"):        # ionlink's stand-in takes argv
        applet.run(argv)
    else:                               # ARTIQ's parses sys.argv itself
        applet.run()
