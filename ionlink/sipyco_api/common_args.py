"""Command-line arguments every ARTIQ controller shares (sipyco's names and defaults)."""

from __future__ import annotations

import argparse
import logging

__all__ = ["bind_address_from_args", "init_logger_from_args", "simple_network_args",
           "verbosity_args"]


def verbosity_args(parser: argparse.ArgumentParser) -> None:
    """Add ``-v/--verbose`` and ``-q/--quiet`` (repeatable) to ``parser``."""
    group = parser.add_argument_group("verbosity")
    group.add_argument("-v", "--verbose", default=0, action="count",
                       help="increase logging level")
    group.add_argument("-q", "--quiet", default=0, action="count",
                       help="decrease logging level")


def init_logger_from_args(args: argparse.Namespace) -> None:
    """Configure the root logger: WARNING, one level up per ``-q``, down per ``-v``."""
    logging.basicConfig(level=logging.WARNING + 10 * args.quiet - 10 * args.verbose,
                        format="%(levelname)s:%(name)s:%(message)s")


def simple_network_args(parser: argparse.ArgumentParser, default_port: int | list,
                        ssl: bool = False) -> None:
    """Add ``--bind``, ``--no-localhost-bind`` and ``-p/--port`` (or one ``--port-NAME`` per
    ``(name, purpose, default)`` when ``default_port`` is a list)."""
    group = parser.add_argument_group("network server")
    group.add_argument("--bind", default=[], action="append",
                       help="additional hostname or IP address to bind to; "
                            "use '*' to bind to all interfaces (default: %(default)s)")
    group.add_argument("--no-localhost-bind", default=False, action="store_true",
                       help="do not implicitly also bind to localhost addresses")
    if isinstance(default_port, int):
        group.add_argument("-p", "--port", default=default_port, type=int,
                           help="TCP port to listen on (default: %(default)d)")
    else:
        for name, purpose, default in default_port:
            group.add_argument(f"--port-{name}", default=default, type=int,
                               help=f"TCP port for {purpose} connections (default: {default})")
    if ssl:
        raise NotImplementedError("ionlink's sipyco stand-in has no SSL; install sipyco")


def bind_address_from_args(args: argparse.Namespace) -> list[str] | None:
    """Addresses to bind: None (all interfaces) for ``--bind '*'``, else localhost (unless
    ``--no-localhost-bind``) plus every ``--bind``."""
    if "*" in args.bind:
        return None
    if args.no_localhost_bind:
        return list(args.bind)
    return ["127.0.0.1", "::1"] + list(args.bind)
