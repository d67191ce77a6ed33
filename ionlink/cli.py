"""The ``ionlink`` console command."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import numpy as np

DESCRIPTION = """\
ionlink: control and data acquisition of a trapped-ion quantum-network node.

Experiments are ARTIQ experiments; `run` executes one on the simulated core device with
the virtual node behind it, as artiq_run would on hardware, and writes ARTIQ results.
"""


def _add_run_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "run", help="run an experiment on the simulated node (like artiq_run)",
        description="Run an ARTIQ experiment on the simulated core device and virtual "
                    "node; write its results in ARTIQ's HDF5 layout.")
    p.add_argument("file", type=Path, help="experiment file")
    p.add_argument("arguments", nargs="*", metavar="KEY=VALUE",
                   help="experiment arguments, VALUE in PYON (as artiq_run)")
    p.add_argument("-c", "--class-name", default=None,
                   help="experiment class (needed when the file holds several)")
    p.add_argument("--device-db", type=Path, default=Path("device_db.py"),
                   help="the lab's device database (default: %(default)s)")
    p.add_argument("--node", type=Path, default=None,
                   help="node file (TOML) with the virtual node's physical parameters")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the virtual node's random draws (default: the run's rid, "
                        "so runs differ and --seed RID reproduces one; the lab's drifts do "
                        "not depend on it)")
    p.add_argument("-o", "--results", type=Path, default=Path("results"),
                   help="results directory (default: %(default)s)")
    p.add_argument("--dataset-db", type=Path, default=None,
                   help="persistent dataset file (default: RESULTS/dataset_db.pyon)")
    p.add_argument("--costs", type=Path, default=None,
                   help="TOML table overriding entries of the CPU cost model")
    p.add_argument("--vcd", type=Path, default=None, help="write the RTIO trace to a VCD file")
    p.add_argument("-v", "--verbose", action="count", default=0)
    p.set_defaults(func=_run_command)


def _run_command(args) -> int:
    from ionlink.runner.arguments import ArgumentError, parse_arguments
    from ionlink.runner.devices import DeviceError
    from ionlink.runner.run import ExperimentLoadError, RunRequest, run_experiment
    from ionlink.sim.costs import DEFAULT_COSTS, CostModel

    try:
        arguments = parse_arguments(args.arguments)
        costs = CostModel.from_toml(args.costs) if args.costs else DEFAULT_COSTS
        request = RunRequest(
            experiment_file=args.file, class_name=args.class_name, arguments=arguments,
            device_db=args.device_db, results_root=args.results,
            dataset_db=args.dataset_db, seed=args.seed, costs=costs, vcd=args.vcd,
            log_level=logging.WARNING - 10 * args.verbose)
        world_factory = _world_factory(args.node)
        outcome = run_experiment(request, world_factory=world_factory)
    except (ArgumentError, DeviceError, ExperimentLoadError, ValueError, OSError) as e:
        print(f"ionlink run: error: {e}", file=sys.stderr)
        return 2
    print(f"results: {outcome.results_file}")
    print(f"rid {outcome.rid} ({outcome.class_name}): {outcome.rtio_events} RTIO events, "
          f"{outcome.node_time_s:.3f} s node time in {outcome.wall_time_s:.2f} s wall time")
    if outcome.rtio_errors:
        errors = ", ".join(f"{k} {v}" for k, v in sorted(outcome.rtio_errors.items()))
        print(f"RTIO errors (core log): {errors}")
    for line in _summary_lines(outcome.datasets):
        print(line)
    if outcome.error is not None:
        error = outcome.error
        print(f"ionlink run: {outcome.class_name} raised {type(error).__name__}: {error} "
              f"(results so far are in {outcome.results_file})", file=sys.stderr)
        return 1
    return 0


def _world_factory(node_file: Path | None):
    if node_file is not None and not node_file.is_file():
        raise ValueError(f"node file {node_file} does not exist")
    from ionlink.node import VirtualNetwork, load_node_config
    from ionlink.node.chain import ChainNetwork, is_chain_device_db
    from ionlink.node.chain_config import is_chain_file, load_chain_config

    # a chain device_db (device_db_repeater.py) gets the repeater chain behind it, with a
    # chain node file (repeater_node.toml) or the chain defaults
    chain = node_file is not None and is_chain_file(node_file)
    config = None if node_file is None or chain else load_node_config(node_file)

    def factory(ddb, seed):
        if is_chain_device_db(ddb):
            if config is not None:
                raise ValueError(f"{node_file} is a two-node file; the chain device_db "
                                 "needs a chain node file (see ionlink/node/repeater_node.toml)")
            return ChainNetwork(ddb, load_chain_config(node_file if chain else None), seed)
        if chain:
            raise ValueError(f"{node_file} is a chain node file; use it with the chain's "
                             "device_db (device_db_repeater.py)")
        return VirtualNetwork(ddb, config, seed)
    return factory


def _summary_lines(datasets: dict) -> list[str]:
    """One line per scalar dataset, and the shape of array datasets."""
    lines = []
    for key in sorted(datasets):
        value = datasets[key]
        if isinstance(value, (int, float, np.integer, np.floating, bool, str)):
            if isinstance(value, (float, np.floating)):
                lines.append(f"  {key} = {value:.6g}")
            else:
                lines.append(f"  {key} = {value}")
        else:
            shape = np.shape(value)
            lines.append(f"  {key}: array{list(shape)}")
    return lines


def _add_scan_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "scan", help="list the experiments of a repository as the dashboard does",
        description="List every experiment (class, display name, arguments) of a "
                    "repository folder or file; name the files that fail to load.")
    p.add_argument("path", type=Path, help="repository folder or experiment file")
    p.add_argument("--device-db", type=Path, default=None,
                   help="device database to examine against (optional)")
    p.set_defaults(func=_scan_command)


def _scan_command(args) -> int:
    from ionlink.runner.devices import DeviceError, load_device_db
    from ionlink.runner.examine import ExamineError, examine_file, examine_repository

    try:
        ddb = load_device_db(args.device_db) if args.device_db else None
    except DeviceError as e:
        print(f"ionlink scan: error: {e}", file=sys.stderr)
        return 2
    if not args.path.exists():
        print(f"ionlink scan: error: {args.path} does not exist", file=sys.stderr)
        return 2
    if args.path.is_dir():
        descriptions, failures = examine_repository(args.path, device_db=ddb)
    else:
        try:
            descriptions, failures = examine_file(args.path, device_db=ddb), {}
        except ExamineError as e:
            descriptions, failures = [], {str(args.path): str(e)}
    for d in descriptions:
        print(f"{d.file}: {d.class_name} — {d.name}")
        for key, (desc, group, tooltip) in d.arginfo.items():
            ty = desc.get("ty", "?")
            default = desc.get("default", "")
            extra = f" [{group}]" if group else ""
            tip = f" — {tooltip}" if tooltip else ""
            print(f"    {key}: {ty} = {default!r}{extra}{tip}")
    for path, reason in failures.items():
        print(f"FAILED {path}: {reason}")
    return 1 if failures else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ionlink", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_run_parser(subparsers)
    _add_scan_parser(subparsers)
    from ionlink.simdb import add_simdb_parser
    add_simdb_parser(subparsers)
    from ionlink.night import register as register_night
    register_night(subparsers)
    try:
        from analysis.commands import register as register_analysis
    except ImportError:
        register_analysis = None
    if register_analysis is not None:
        register_analysis(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # KEY=VALUE experiment arguments may follow options (as with artiq_run).
    args, extra = parser.parse_known_args(argv)
    if extra:
        if getattr(args, "func", None) is _run_command and all("=" in e and not
                                                              e.startswith("-") for e in extra):
            args.arguments = list(args.arguments) + extra
        else:
            parser.error("unrecognized arguments: " + " ".join(extra))
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    logging.basicConfig(level=logging.WARNING - 10 * getattr(args, "verbose", 0),
                        format="%(levelname)s:%(name)s:%(message)s")
    logging.captureWarnings(True)  # skipped-file warnings as one log line, not a traceback
    try:
        return args.func(args)
    except BrokenPipeError:
        # the reader went away (``ionlink analyze ... | head``): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
