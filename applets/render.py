"""Render an applet over a file to a PNG without a display (screenshots, tests, reports).

``python -m applets.render APPLET OUT.png SOURCE [APPLET OPTIONS...]`` draws applet
``APPLET`` (a module name in :mod:`applets`, e.g. ``heralding_monitor``) over ``SOURCE``
(results file, dataset database or results directory) with Qt's offscreen platform.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: The applets, by module name, with their widget classes' attribute names.
APPLETS = {
    "heralding_monitor": "HeraldingMonitorWidget",
    "arrival_histogram": "ArrivalHistogramWidget",
    "readout_histogram": "ReadoutHistogramWidget",
    "chsh_monitor": "ChshMonitorWidget",
    "calibration_board": "CalibrationBoardWidget",
}


def open_applet(name: str, argv: Sequence[str], size: tuple[int, int] = (900, 560)) -> Any:
    """Start applet ``name`` with ionlink's file-reading runner on ``argv`` (which must name
    a SOURCE); return its main widget, laid out at ``size`` (pixels) with data delivered."""
    if name not in APPLETS:
        raise ValueError(f"unknown applet {name!r}; choose one of {', '.join(APPLETS)}")
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    module = importlib.import_module(f"applets.{name}")
    from applets import _launch
    from ionlink.artiq_api.applets import simple

    widget_class = getattr(module, APPLETS[name])
    applet = _launch.make_applet(widget_class, module.DATASETS, name, argv,
                                 getattr(module, "PREFIXES", ()))
    if not isinstance(applet, simple.SimpleApplet):
        raise ValueError("rendering needs a SOURCE file or directory on the command line")
    widget = applet.start(list(argv), show=False)
    widget._applet = applet          # keep the runner (and its poll timer) alive
    widget.resize(*size)
    widget.show()
    from pyqtgraph.Qt import QtWidgets

    QtWidgets.QApplication.processEvents()
    return widget


def grab(widget: Any, path: str | os.PathLike | None = None) -> Any:
    """The widget's current image (a QImage), also saved as PNG when ``path`` is given."""
    from pyqtgraph.Qt import QtWidgets

    QtWidgets.QApplication.processEvents()
    image = widget.grab().toImage()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        if not image.save(str(path)):
            raise OSError(f"cannot write {path}")
    return image


def main(argv: Sequence[str] | None = None) -> int:
    """Command line (see the module documentation)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("applet", choices=sorted(APPLETS))
    parser.add_argument("output", help="PNG file to write")
    parser.add_argument("--width", type=int, default=900)
    parser.add_argument("--height", type=int, default=560)
    args, rest = parser.parse_known_args(argv)
    widget = open_applet(args.applet, rest, (args.width, args.height))
    grab(widget, args.output)
    print(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
