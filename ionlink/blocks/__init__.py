"""Shared kernel building blocks of the node's experiments.

Each block is a ``HasEnvironment`` child built with the node letter, e.g.
``self.readout = FluorescenceReadout(self, node="a")``; it takes its devices by the device_db
aliases (``pmt_<node>``, ``dds_<laser>_<node>``, ...), reads calibrated values from the
persistent ``calib.<quantity>_<node>`` datasets in its host-side ``prepare()`` (an
``EnvExperiment`` runs its children's ``prepare`` automatically; a parent block forwards it to
its own children), and offers ``@kernel`` methods valid for ARTIQ's compiler.

Blocks import only ``artiq.experiment`` and numpy: they are experiment code, not simulation.

``node_argument(self)`` declares an experiment's ``node`` argument and returns the letter to
build blocks with (also while ARTIQ's master examines the repository, when arguments are None).
For the same reason blocks keep the other settings they are built with (alpha, windows,
lengths, ...) as given and check and convert them in ``prepare()``; ``check_real`` /
``check_integer`` do that check (one ValueError line naming the setting) for experiments too.

Initialisation order in a kernel: ``StatePreparation.init()`` (or ``DopplerCooling.init()``)
first, as it resets the node's Urukul CPLD, then the other blocks' ``init()``.
"""

from ionlink.blocks._checks import check_integer, check_real
from ionlink.blocks._node import node_argument
from ionlink.blocks.cooling import DopplerCooling, StatePreparation
from ionlink.blocks.readout import FluorescenceReadout
from ionlink.blocks.rotation import Rotation729

__all__ = ["DopplerCooling", "StatePreparation", "FluorescenceReadout", "Rotation729",
           "check_integer", "check_real", "node_argument"]
