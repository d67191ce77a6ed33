"""Stand-in for ``artiq.applets.simple`` where ARTIQ is not installed.

Same public API as ARTIQ 8/9: ``SimpleApplet(main_widget_class, cmd_description=None,
default_update_delay=0.0)``, :meth:`~SimpleApplet.add_dataset` ``(name, help=None,
required=True)`` (a required dataset is a positional argument, an optional one
``--name``), the options ``--update-delay``, ``--server``, ``--port-notify``,
``--port-control``, and the main widget built as ``main_widget_class(args, req)`` whose
``data_changed(value, metadata, persist, mods)`` (:class:`TitleApplet`: ``..., title)``)
receives every dataset as three dicts keyed by dataset name plus the list of mods.

Without ARTIQ there is no master to subscribe to, so the datasets come from files
(:mod:`ionlink.artiq_api.applets.sources`): a trailing positional ``SOURCE`` names a results
file, a ``dataset_db.pyon`` or a results directory, and ``--follow`` re-reads it every
``--poll-interval`` seconds (a results directory: the newest run, i.e. the one in
progress). ``req.set_dataset``/``mutate_dataset``/``append_to_dataset`` change the
applet's local copy only (there is no master to send them to).
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import string
from collections.abc import Sequence
from typing import Any

from pyqtgraph.Qt import QtCore, QtWidgets

from .sources import FileSource, SourceError

__all__ = ["SimpleApplet", "TitleApplet", "LocalRequest", "apply_mod"]

logger = logging.getLogger(__name__)


def apply_mod(data: dict, mod: dict) -> None:
    """Apply one ``sync_struct`` mod to ``data`` (key -> [persist, value, metadata])."""
    action = mod["action"]
    if action == "init":
        data.clear()
        data.update(mod["struct"])
        return
    target: Any = data
    for step in mod["path"]:
        target = target[step]
    if action == "setitem":
        key = mod["key"]
        if isinstance(key, (tuple, list)) and target is not data:
            key = slice(*key) if key and not isinstance(key[0], (tuple, list)) else tuple(
                slice(*k) for k in key)
        target[key] = mod["value"]
    elif action == "delitem":
        del target[mod["key"]]
    elif action == "append":
        target.append(mod["x"])
    else:
        raise ValueError(f"unknown mod action {action!r}")


class LocalRequest:
    """``req`` of a standalone applet: requests change the applet's own copy of the data
    (there is no master); each change is delivered to the widget like a broadcast."""

    def __init__(self, applet: SimpleApplet) -> None:
        self._applet = applet

    def set_dataset(self, key: str, value: Any, unit: str | None = None,
                    scale: float | None = None, precision: int | None = None,
                    persist: bool | None = None) -> None:
        """Set ``key`` in the applet's data (metadata from unit/scale/precision)."""
        metadata = {name: v for name, v in (("unit", unit), ("scale", scale),
                                            ("precision", precision)) if v is not None}
        self._applet.process_mods([{"action": "setitem", "path": [], "key": key,
                                    "value": [bool(persist), value, metadata]}])

    def mutate_dataset(self, key: str, index: Any, value: Any) -> None:
        """Set ``dataset[index] = value`` in the applet's data."""
        self._applet.process_mods([{"action": "setitem", "path": [key, 1], "key": index,
                                    "value": value}])

    def append_to_dataset(self, key: str, value: Any) -> None:
        """Append ``value`` to the list dataset ``key`` in the applet's data."""
        self._applet.process_mods([{"action": "append", "path": [key, 1], "x": value}])

    def set_argument_value(self, expurl: str, key: str, value: Any) -> None:
        """There is no dashboard to set arguments in: log and ignore."""
        logger.warning("no dashboard: cannot set argument %s of %s", key, expurl)


class SimpleApplet:
    """An applet whose datasets come from a file or results directory (see the module
    documentation); API and command line as ``artiq.applets.simple.SimpleApplet``."""

    def __init__(self, main_widget_class: type, cmd_description: str | None = None,
                 default_update_delay: float = 0.0) -> None:
        self.main_widget_class = main_widget_class
        self.argparser = argparse.ArgumentParser(description=cmd_description)
        self.argparser.add_argument(
            "--update-delay", type=float, default=default_update_delay,
            help="time to wait after a mod (buffering other mods) before updating "
                 "(default: %(default).2f)")
        group = self.argparser.add_argument_group("standalone mode (default)")
        group.add_argument("--server", default="::1",
                           help="hostname or IP of the master (needs ARTIQ; unused here)")
        group.add_argument("--port-notify", default=3250, type=int,
                           help="TCP port for notifications (needs ARTIQ; unused here)")
        group.add_argument("--port-control", default=3251, type=int,
                           help="TCP port for control (needs ARTIQ; unused here)")
        self._arggroup_datasets = self.argparser.add_argument_group("datasets")
        self.dataset_args: set[str] = set()
        self.data: dict[str, Any] = {}
        self.source: FileSource | None = None
        self.main_widget: Any = None
        self._timer: Any = None
        self._mod_buffer: list[dict] | None = None

    def add_dataset(self, name: str, help: str | None = None, required: bool = True) -> None:
        """Declare a dataset argument: positional when required, else ``--name``."""
        kwargs = {} if help is None else {"help": help}
        if required:
            self._arggroup_datasets.add_argument(name, **kwargs)
        else:
            self._arggroup_datasets.add_argument("--" + name, **kwargs)
        self.dataset_args.add(name)

    def _add_source_arguments(self) -> None:
        group = self.argparser.add_argument_group(
            "files (ionlink, without an ARTIQ master)")
        group.add_argument("source", nargs="?", default=None, metavar="SOURCE",
                           help="results file (.h5), dataset database (.pyon) or results "
                                "directory to read the datasets from")
        group.add_argument("--follow", action="store_true",
                           help="re-read SOURCE as it changes (a results directory: follow "
                                "the newest run, i.e. the one in progress)")
        group.add_argument("--poll-interval", type=float, default=1.0,
                           help="seconds between re-reads with --follow (default: "
                                "%(default).1f)")

    def args_init(self, argv: Sequence[str] | None = None) -> None:
        """Parse the command line (``argv``, default ``sys.argv[1:]``)."""
        self._add_source_arguments()
        self.args = self.argparser.parse_args(argv)
        self.embed = os.getenv("ARTIQ_APPLET_EMBED")
        self.datasets = {getattr(self.args, arg.replace("-", "_"))
                         for arg in self.dataset_args}
        self.dataset_prefixes: list[str] = []

    def _open_source(self) -> FileSource:
        if self.embed is not None:
            raise SystemExit("embedding in the dashboard needs ARTIQ, which is not "
                             "installed here; run the applet on its own with a SOURCE")
        if self.args.source is None:
            raise SystemExit(
                "ARTIQ is not installed here, so there is no master to subscribe to: give a "
                "results file (.h5), a dataset_db.pyon or a results directory as SOURCE "
                "(add --follow to follow a running experiment)")
        if not self.args.poll_interval > 0:
            raise SystemExit(f"--poll-interval must be > 0, got {self.args.poll_interval}")
        try:
            return FileSource(self.args.source)
        except SourceError as e:
            raise SystemExit(str(e)) from None

    def is_dataset_subscribed(self, key: str) -> bool:
        """True for a dataset named on the command line or under a subscribed prefix."""
        return key in self.datasets or any(key.startswith(p) for p in self.dataset_prefixes)

    def filter_mod(self, mod: dict) -> bool:
        """True when ``mod`` concerns a subscribed dataset (``init`` always does)."""
        if mod["action"] == "init":
            return True
        if mod["path"]:
            return self.is_dataset_subscribed(mod["path"][0])
        return self.is_dataset_subscribed(mod["key"])

    def emit_data_changed(self, data: dict, mods: list[dict]) -> None:
        """Call the widget's ``data_changed(value, metadata, persist, mods)``."""
        persist, value, metadata = {}, {}, {}
        for key, entry in data.items():
            persist[key], value[key], metadata[key] = entry
        self.main_widget.data_changed(value, metadata, persist, mods)

    def process_mods(self, mods: list[dict]) -> None:
        """Apply ``mods`` to the data and tell the widget (after ``--update-delay``)."""
        relevant = []
        for mod in mods:
            if mod["action"] == "init":
                mod = {"action": "init", "struct": {k: list(v) for k, v in
                                                    copy.copy(mod["struct"]).items()}}
            elif mod["action"] == "setitem" and not mod["path"]:
                mod = dict(mod, value=list(mod["value"]))
            apply_mod(self.data, mod)
            if self.filter_mod(mod):
                relevant.append(mod)
        if not relevant:
            return
        if self.args.update_delay > 0:
            if self._mod_buffer is None:
                self._mod_buffer = []
                QtCore.QTimer.singleShot(int(self.args.update_delay * 1000), self._flush)
            self._mod_buffer.extend(relevant)
        else:
            self.emit_data_changed(self.data, relevant)

    def _flush(self) -> None:
        mods, self._mod_buffer = self._mod_buffer or [], None
        self.emit_data_changed(self.data, mods)

    def poll(self) -> None:
        """Re-read the source and deliver what changed."""
        try:
            mods = self.source.poll()
        except SourceError as e:
            logger.warning("%s", e)
            return
        if mods:
            self.process_mods(mods)

    def create_main_widget(self) -> None:
        """Build the main widget as ``main_widget_class(args, req)``."""
        self.req = LocalRequest(self)
        self.main_widget = self.main_widget_class(self.args, self.req)

    def start(self, argv: Sequence[str] | None = None, show: bool = True) -> Any:
        """Everything :meth:`run` does before entering the Qt event loop; returns the main
        widget with the source's datasets already delivered (for tests and embedding)."""
        self.args_init(argv)
        self.source = self._open_source()
        if QtWidgets.QApplication.instance() is None:
            self._app = QtWidgets.QApplication([])
        self.create_main_widget()
        self.poll()
        if self.args.follow:
            self._timer = QtCore.QTimer()
            self._timer.timeout.connect(self.poll)
            self._timer.start(int(self.args.poll_interval * 1000))
        if show:
            self.main_widget.show()
        return self.main_widget

    def run(self, argv: Sequence[str] | None = None) -> int:
        """Start the applet and run the Qt event loop until its window closes."""
        self.start(argv)
        return QtWidgets.QApplication.instance().exec()


class TitleApplet(SimpleApplet):
    """:class:`SimpleApplet` with ``--title`` (a format string whose fields are dataset
    names with '.' written '/'); ``data_changed`` gets the formatted title last."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.argparser.add_argument("--title", default=None,
                                    help="set title (can be a Python format string where "
                                         "field names are dataset names, replace '.' "
                                         "with '/')")

    def args_init(self, argv: Sequence[str] | None = None) -> None:
        super().args_init(argv)
        self.dataset_title: set[str] = set()
        if self.args.title is not None:
            for _, field, _, _ in string.Formatter().parse(self.args.title):
                if field is None:
                    break
                if not field:
                    raise ValueError("Invalid title format string")
                self.dataset_title.add(field.replace("/", "."))
            self.datasets |= self.dataset_title

    def emit_data_changed(self, data: dict, mods: list[dict]) -> None:
        title = None
        if self.args.title is not None:
            fields = {k.replace(".", "/"): data.get(k, (False, None))[1]
                      for k in self.dataset_title}
            try:
                title = self.args.title.format(**fields)
            except (KeyError, ValueError, TypeError, IndexError):
                logger.warning("failed to format title", exc_info=True)
                title = self.args.title
        persist, value, metadata = {}, {}, {}
        for key, entry in data.items():
            persist[key], value[key], metadata[key] = entry
        self.main_widget.data_changed(value, metadata, persist, mods, title)
