"""A calibration graph in the style of Kelly et al., "Physical qubit calibration on a directed
acyclic graph" (arXiv:1803.03226).

- :mod:`.node`: a node's parameters, timeout, dependencies, ``check_data`` and ``calibrate``;
- :mod:`.graph`: the DAG and its order;
- :mod:`.maintain`: the ``maintain``/``diagnose`` traversal and node states;
- :mod:`.provenance`: calibrated values with who/when/from-which-data and rollback;
- :mod:`.experiment_node`: nodes that run calibration experiments as child experiments;
- :mod:`.iontrap`: the graph of the 40Ca+ network node;
- :mod:`.report`: the morning report (HTML with plots, and JSON).

This package runs on a real ARTIQ installation: it imports only ``artiq.experiment``, numpy,
matplotlib and :mod:`analysis`, never the simulation.
"""

from ionlink.calgraph.graph import CalGraph, GraphError
from ionlink.calgraph.maintain import STATE_KEY, GraphState, Maintainer, NodeState
from ionlink.calgraph.node import (
    CalibrationResult,
    CalNode,
    CheckResult,
    FunctionNode,
    MeasurementError,
    Verdict,
)
from ionlink.calgraph.provenance import HISTORY_PREFIX, ParamStore, ProvenanceError

__all__ = ["HISTORY_PREFIX", "STATE_KEY", "CalGraph", "CalNode", "CalibrationResult",
           "CheckResult", "FunctionNode", "GraphError", "GraphState", "Maintainer",
           "MeasurementError", "NodeState", "ParamStore", "ProvenanceError", "Verdict"]
