"""The simulation session: one RTIO engine (and the world behind it) per process.

The runner starts a session before it creates devices; a simulated ``Core`` created
without one (for instance by the real ``artiq_run`` pointed at a simulated device
database) starts a default session with nothing behind the channels.
"""

from __future__ import annotations

from ionlink.sim.costs import DEFAULT_COSTS, CostModel
from ionlink.sim.rtio_engine import RTIOEngine
from ionlink.sim.world import World

_engine: RTIOEngine | None = None


def start(world: World | None = None, costs: CostModel = DEFAULT_COSTS,
          trace: bool = False, counter_mu: int = 0) -> RTIOEngine:
    """Start a new session (replacing any previous one) and return its engine."""
    global _engine
    _engine = RTIOEngine(world=world, costs=costs, trace=trace, counter_mu=counter_mu)
    return _engine


def engine() -> RTIOEngine:
    """The current session's engine, starting a default session if there is none."""
    if _engine is None:
        return start()
    return _engine


def end() -> None:
    """Forget the current session."""
    global _engine
    _engine = None
