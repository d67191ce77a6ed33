"""Host-side bookkeeping shared by calibration experiments (no kernels, no hardware).

:class:`CalibrationScan` publishes a scan as the ``calib.<name>.{x,y,model,n_shots,sigma}``
datasets of ``analysis/schemas.py`` (broadcast, for live plots), records points from a kernel
with an async RPC, and stores a calibrated value as a persistent ``calib.<quantity>_<node>``
dataset only when the experiment accepts the fit; otherwise it logs why the old value stays.
"""

import logging

import numpy as np
from artiq.experiment import HasEnvironment, TFloat, TInt32, rpc
from artiq.language import units

from ionlink.blocks._node import calib_key, check_node

logger = logging.getLogger(__name__)


def display_unit(unit: str) -> dict:
    """``set_dataset`` keywords that show an SI value in ``unit`` ("us", "MHz", ...): the unit
    and its scale, as ARTIQ's NumberValue derives it (set_dataset does not), so the dashboard
    shows 12.5 us rather than 1.25e-05 labelled us. Empty for no unit."""
    if not unit:
        return {}
    scale = getattr(units, unit, None)
    if not isinstance(scale, float):
        raise ValueError(f"unknown unit {unit!r}: use a name of artiq.language.units")
    return {"unit": unit, "scale": scale}


class CalibrationScan(HasEnvironment):
    """One calibration scan of node ``node``: ``CalibrationScan(parent, name, node)``.

    Datasets: ``calib.<name>_<node>.x`` (scan points, SI units), ``.y`` (values, NaN until
    measured), ``.model`` (fit model name), ``.n_shots`` (binary shots per point, for
    probabilities) or ``.sigma`` (absolute errors, set by :meth:`set_sigma`).
    """

    def build(self, name, node="a"):
        if not name or "." in name:
            raise ValueError(f"scan name must be non-empty without dots, got {name!r}")
        self.node = check_node(node)
        self.name = name
        self.prefix = f"calib.{name}_{node}."

    def start(self, x, model: str, n_shots: int = 0, unit: str = "") -> None:
        """Publish the scan points ``x`` and the model; ``y`` starts as NaN."""
        self.x = np.asarray(x, dtype=float)
        self.y = np.full(self.x.size, np.nan)
        self.set_dataset(self.prefix + "x", self.x, broadcast=True, **display_unit(unit))
        self.set_dataset(self.prefix + "y", self.y.copy(), broadcast=True)
        self.set_dataset(self.prefix + "model", model, broadcast=True)
        if n_shots > 0:
            self.set_dataset(self.prefix + "n_shots", int(n_shots), broadcast=True)

    @rpc(flags={"async"})
    def record(self, i: TInt32, value: TFloat):
        """Store the value of point ``i`` (called from kernels after each point)."""
        self.y[i] = value
        self.mutate_dataset(self.prefix + "y", i, value)

    def update(self, y) -> None:
        """Replace all values (NaN for points not measured yet), e.g. after each sweep of a
        scan that measures every point once per sweep."""
        self.y = np.asarray(y, dtype=float).copy()
        self.set_dataset(self.prefix + "y", self.y.copy(), broadcast=True)

    def set_sigma(self, sigma) -> None:
        """Publish absolute standard errors of ``y`` (one per point)."""
        self.set_dataset(self.prefix + "sigma", np.asarray(sigma, dtype=float),
                         broadcast=True)

    def measured(self) -> np.ndarray:
        """Boolean mask of the points measured so far (an interrupted scan leaves NaN)."""
        return np.isfinite(self.y)

    def measured_points(self, minimum: int) -> tuple[np.ndarray, np.ndarray] | None:
        """``(x, y)`` of the points measured so far, or None, after :meth:`reject` saying
        how many were measured, when there are fewer than ``minimum``."""
        ok = self.measured()
        if ok.sum() < minimum:
            self.reject(f"only {ok.sum()} points measured")
            return None
        return self.x[ok], self.y[ok]

    def accept(self, quantity: str, value: float, unit: str = "") -> None:
        """Store ``value`` as the persistent dataset ``calib.<quantity>_<node>``."""
        key = calib_key(quantity, self.node)
        self.set_dataset(key, value, persist=True, **display_unit(unit))
        print(f"{key} = {value!r} stored")
        logger.info("%s = %r stored", key, value)

    def reject(self, reason: str) -> None:
        """Report why the calibration keeps its previous values."""
        message = f"calib.{self.name}_{self.node}: calibration not stored: {reason}"
        print(message)
        logger.warning(message)
