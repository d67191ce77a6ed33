"""Write the simulated RTIO trace as a Value Change Dump, viewable in GTKWave.

One signal per RTIO channel and address, named after the device_db key: TTL outputs and
inputs (the edges a gated input registered) as 1-bit wires, gate sensitivity as a 2-bit
register, SPI and other data channels as 32-bit registers. Time unit: 1 ns (1 mu).
"""

from __future__ import annotations

import re
from pathlib import Path

from vcd import VCDWriter

from ionlink.sim.rtio_engine import ADDR_O, ADDR_SENS, RTIOEngine

_ADDRESS_NAMES = {0: "o", 1: "oe", 2: "sens", 3: "sample", -1: "in"}


def _identifier(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def write_vcd(path: str | Path, engine: RTIOEngine) -> Path:
    """Write the engine's trace (it must have been started with ``trace=True``)."""
    if engine.trace is None:
        raise ValueError("the simulation was not traced: start it with trace=True (--vcd)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    events = sorted(engine.trace, key=lambda e: e[0])
    t_origin = events[0][0] if events else 0
    with open(path, "w") as f, VCDWriter(f, timescale="1 ns", date="today",
                                         comment=f"ionlink RTIO trace, t0 = {t_origin} mu") \
            as writer:
        variables = {}
        for _t, channel, address, data in events:
            key = (channel, address)
            if key in variables:
                continue
            info = engine.channels.get(channel)
            scope = _identifier(info.device if info else f"ch{channel}")
            name = _ADDRESS_NAMES.get(address, f"a{address}")
            if address in (ADDR_O, -1) and isinstance(data, int) and data in (0, 1):
                variables[key] = writer.register_var(scope, name, "wire", size=1, init=0)
            elif address == ADDR_SENS:
                variables[key] = writer.register_var(scope, name, "reg", size=2, init=0)
            else:
                variables[key] = writer.register_var(scope, name, "reg", size=32, init=0)
        for t, channel, address, data in events:
            var = variables[(channel, address)]
            if isinstance(data, list):
                data = data[0] if data else 0
            value = int(data) & ((1 << var.size) - 1) if isinstance(data, int) else 0
            writer.change(var, t - t_origin, value)
    return path
