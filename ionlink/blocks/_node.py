"""Host-side helpers shared by the building blocks (never called from kernels)."""

from __future__ import annotations

NODES = ("a", "b")


def check_node(node: str) -> str:
    """Return ``node`` if it names a node of the network ("a" or "b"), else raise ValueError."""
    if node not in NODES:
        raise ValueError(f"node must be one of {NODES}, got {node!r}")
    return node


def calib_key(quantity: str, node: str) -> str:
    """Persistent calibration dataset key ``calib.<quantity>_<node>``."""
    return f"calib.{quantity}_{node}"


def node_argument(env, tooltip: str = "which node's ion to use") -> str:
    """Declare the experiment argument ``node`` ("a" or "b", group "Node") on ``env`` and
    return the node letter to build blocks with.

    While ARTIQ's master examines the repository every argument is None and devices are
    dummies; the blocks are then built for the first node so that examination succeeds (no
    device is used). ``env.node`` keeps the argument's value (None then)."""
    from artiq.experiment import EnumerationValue

    env.setattr_argument("node", EnumerationValue(list(NODES), NODES[0]), group="Node",
                         tooltip=tooltip)
    return env.node if env.node is not None else NODES[0]
