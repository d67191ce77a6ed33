"""Plumbing shared by the ionlink controllers (time tagger, wavemeter): serving a driver
with sipyco and parsing a device_db entry's command line for the runner's in-process
simulated controller. (device_db aliases resolve with
:func:`ionlink.runner.devices.resolve_alias`.)"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Callable
from typing import Any


def serve(argv: list[str] | None, get_argparser: Callable[[], argparse.ArgumentParser],
          make_driver: Callable[[argparse.Namespace], Any], target: str,
          description: str) -> None:
    """The controller's ``main``: parse ``argv``, start logging, build the driver with
    ``make_driver`` and serve it as RPC target ``target`` until stopped; the driver is
    closed on the way out. ``description`` gets " (simulation)" with ``--simulation``."""
    from sipyco.common_args import bind_address_from_args, init_logger_from_args
    from sipyco.pc_rpc import simple_server_loop

    args = get_argparser().parse_args(argv)
    init_logger_from_args(args)
    driver = make_driver(args)
    try:
        simple_server_loop({target: driver}, bind_address_from_args(args), args.port,
                           description=description
                                       + (" (simulation)" if args.simulation else ""))
    finally:
        driver.close()


def parse_command(desc: dict, name: str,
                  get_argparser: Callable[[], argparse.ArgumentParser]) -> argparse.Namespace:
    """Arguments of a controller's device_db entry ``desc``: its ``command`` formatted with
    the entry's other keys and ``name`` (as artiq_ctlmgr does; ``bind`` defaults to ::1)
    and parsed by the controller's own argument parser."""
    fields = {k: v for k, v in desc.items() if k != "command"}
    fields.setdefault("bind", "::1")
    command = desc["command"].format(name=name, **fields)
    return get_argparser().parse_args(shlex.split(command)[1:])
