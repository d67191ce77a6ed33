"""The frame every applet shares: a title, plots or tables, and a one-line status.

An applet's widget derives from :class:`AppletWidget` and implements ``compute(value,
metadata)`` (datasets -> a plain view object, raising :class:`MissingData` when a required
dataset is absent and ValueError when the data are malformed) and ``show_view(view)``
(draw it). ``data_changed`` follows ARTIQ's applet signature; the last computed view is
kept in :attr:`AppletWidget.view` and the status text says what is missing or wrong.
"""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from pyqtgraph.Qt import QtCore, QtWidgets

#: Colours used by all applets (RGB): bright/detector 0, dark/detector 1, accent, band fill.
BLUE = (31, 119, 180)
RED = (214, 39, 40)
GREEN = (44, 160, 44)
GREY = (127, 127, 127)
ORANGE = (255, 127, 14)


def reference_line(pos: float, colour: tuple[int, int, int], label: str,
                   angle: int = 0) -> pg.InfiniteLine:
    """A dashed, labelled horizontal (angle 0) or vertical (90) line at ``pos``."""
    return pg.InfiniteLine(pos=pos, angle=angle,
                           pen=pg.mkPen(colour, width=1.5, style=QtCore.Qt.PenStyle.DashLine),
                           label=label, labelOpts={"color": colour, "position": 0.97,
                                                   "anchors": [(1, 1), (1, 1)]})


class MissingData(LookupError):
    """A dataset the applet needs is not (yet) there; the message names it."""


def dataset(value: dict, args: Any, name: str, required: bool = True) -> Any:
    """The value of the dataset given by argument ``name``; MissingData (required) or None."""
    key = getattr(args, name, None)
    if key is None or key not in value:
        if required:
            raise MissingData(f"waiting for dataset {key or '--' + name}")
        return None
    return value[key]


def format_si(x: float | None, unit: str = "", digits: int = 3) -> str:
    """``x`` with an SI prefix (``1.23 ms``); an em dash for None/NaN."""
    if x is None or not float(x) == float(x):
        return "\u2014"
    x = float(x)
    if x == 0 or not unit:
        return f"{x:.{digits}g} {unit}".strip()
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"),
                           (1e-6, "\u00b5"), (1e-9, "n"), (1e-12, "p")):
        if abs(x) >= factor:
            return f"{x / factor:.{digits}g} {prefix}{unit}"
    return f"{x:.{digits}g} {unit}"


def format_age(seconds: float | None) -> str:
    """A duration for people: ``45 s``, ``12 min``, ``5.0 h``, ``3.2 d``; "unknown" for None."""
    if seconds is None:
        return "unknown"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


class AppletWidget(QtWidgets.QWidget):
    """Base widget: title line, the applet's content, a status line (see module docs)."""

    #: Window title before any dataset has arrived.
    name = "applet"

    def __init__(self, args: Any, req: Any = None) -> None:
        super().__init__()
        pg.setConfigOptions(antialias=True, background="w", foreground="k")
        self.args = args
        self.req = req
        self.view: Any = None
        self.setWindowTitle(self.name)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.title_label = QtWidgets.QLabel(self.name)
        self.title_label.setStyleSheet("font-weight: bold")
        layout.addWidget(self.title_label)
        self.content = QtWidgets.QVBoxLayout()
        layout.addLayout(self.content, stretch=1)
        self.status = QtWidgets.QLabel("waiting for data")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.status)
        self.resize(720, 480)

    def plot(self, title: str, xlabel: str, ylabel: str, xunit: str | None = None,
             yunit: str | None = None) -> pg.PlotWidget:
        """A new plot (white background, grid, labelled axes); the caller places it."""
        widget = pg.PlotWidget(title=title)
        widget.showGrid(x=True, y=True, alpha=0.3)
        widget.setLabel("bottom", xlabel, units=xunit)
        widget.setLabel("left", ylabel, units=yunit)
        for side, unit in (("bottom", xunit), ("left", yunit)):
            if unit is None:        # no "(x0.001)" on dimensionless axes
                widget.getAxis(side).enableAutoSIPrefix(False)
        return widget

    def compute(self, value: dict, metadata: dict) -> Any:
        """Datasets -> view; MissingData / ValueError when it cannot be computed."""
        raise NotImplementedError

    def show_view(self, view: Any) -> None:
        """Draw ``view``."""
        raise NotImplementedError

    def data_changed(self, value: dict, metadata: dict, persist: dict, mods: list,
                     title: str | None = None) -> None:
        """ARTIQ's applet callback: recompute from the datasets and redraw."""
        if title:
            self.title_label.setText(title)
        try:
            view = self.compute(value, metadata)
        except MissingData as e:
            self.status.setText(str(e))
            return
        except (ValueError, TypeError) as e:
            self.status.setText(f"cannot show the data: {e}")
            return
        self.view = view
        self.show_view(view)
