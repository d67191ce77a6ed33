"""Simulate a night of automatic calibration on the virtual node (``ionlink night``).

The overnight experiment (``repository/overnight/overnight_calibration.py``) is submitted once
to a scheduler whose clock is the results directory's lab clock
(:class:`ionlink.runner.labclock.LabClock`); each run executes on a fresh virtual node that
starts at the current lab time, the experiment resubmits itself with a due date, and while no
run is due the lab clock jumps to the next due date, so the node's parameters drift through
the night as they would in hours of real time. Faults (``NAME@TIME``, e.g.
``laser_397_unlocked@3h``) change the node file used by every run that starts after that lab
time. At the end the morning report (HTML and JSON) compares the stored parameters with the
node's true, drifting values (``VirtualNetwork.truth``).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ionlink.calgraph.iontrap import NODE_DEFS
from ionlink.calgraph.provenance import HISTORY_PREFIX, ParamStore
from ionlink.calgraph.report import build_report, write_report
from ionlink.node import NodeConfig, VirtualNetwork, load_node_config
from ionlink.runner import pyon
from ionlink.runner.datasets import DatasetDB
from ionlink.runner.devices import load_device_db
from ionlink.runner.labclock import LabClock
from ionlink.runner.results import RidCounter
from ionlink.runner.run import RunOutcome, RunRequest, run_experiment
from ionlink.runner.scheduler import RunQueue

__all__ = ["FAULTS", "Fault", "NightResult", "parse_fault", "rollback", "simulate_night"]

OVERNIGHT_EXPERIMENT = Path(__file__).resolve().parent.parent / "repository" / "overnight" / \
    "overnight_calibration.py"

#: Fault name -> (what it models, node-file changes). Each changes the physics, never the code.
FAULTS: dict[str, tuple[str, dict[str, dict[str, Any]]]] = {
    "laser_397_unlocked": ("the 397 nm laser lost its lock and jumped 80 MHz (DDS) blue, out "
                           "of the AOM's reach", {"laser_397": {"resonance_dds_hz": 190.0e6}}),
    "laser_729_unlocked": ("the 729 nm laser lost its cavity lock (line moved 300 kHz)",
                           {"laser_729": {"transition_dds_hz_a": 80.3e6,
                                          "transition_dds_hz_b": 80.313e6}}),
    "detector_dead": ("both station SNSPDs lost their bias (efficiency 0)",
                      {"station": {"detector_efficiency": 0.0}}),
    "pmt_dead": ("the PMT lost its high voltage (quantum efficiency 0)",
                 {"readout": {"pmt_quantum_efficiency": 0.0}}),
}

_TIME = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)(h|m|min|s)?$")


@dataclass(frozen=True)
class Fault:
    """A fault that starts ``at_s`` seconds of lab time into the night."""

    name: str
    at_s: float
    description: str
    changes: dict[str, dict[str, Any]]


def parse_fault(text: str) -> Fault:
    """Parse ``NAME@TIME`` (TIME: ``3h``, ``90m``, ``5400s`` or seconds)."""
    name, sep, when = text.partition("@")
    if not sep:
        raise ValueError(f"fault {text!r}: expected NAME@TIME, e.g. laser_397_unlocked@3h")
    if name not in FAULTS:
        raise ValueError(f"unknown fault {name!r}: known faults are {', '.join(FAULTS)}")
    m = _TIME.match(when.strip())
    if not m:
        raise ValueError(f"fault {text!r}: time {when!r} is not like 3h, 90m or 5400s")
    scale = {"h": 3600.0, "m": 60.0, "min": 60.0, "s": 1.0, None: 1.0}[m.group(2)]
    description, changes = FAULTS[name]
    return Fault(name, float(m.group(1)) * scale, description, changes)


def config_at(base: NodeConfig, faults: Sequence[Fault], t_s: float) -> NodeConfig:
    """The node file in force ``t_s`` seconds into the night."""
    cfg = base
    for f in sorted(faults, key=lambda f: f.at_s):
        if f.at_s <= t_s:
            cfg = cfg.replace(**f.changes)
    return cfg


#: Calibrated parameter -> the truth entry it should track (per ion).
TRUTH_KEYS = {
    "calib.resonance_397_{ion}": "resonance_397_dds_hz",
    "calib.frequency_729_{ion}": "transition_729_dds_hz",
    "calib.fibre_delay_{ion}": "fibre_delay_s",
}


@dataclass
class NightResult:
    """What a simulated night did."""

    outcomes: list[RunOutcome] = field(default_factory=list)
    report: dict = field(default_factory=dict)
    html: Path | None = None
    json: Path | None = None


def simulate_night(hours: float, results_root: str | Path, *, ions: Sequence[str] = ("a",),
                   interval_s: float = 1800.0, seed: int = 0, faults: Sequence[Fault] = (),
                   node_file: str | Path | None = None, device_db: str | Path = "device_db.py",
                   targets: str = "all", graph_shots: Mapping[str, dict] | None = None,
                   experiment: str | Path = OVERNIGHT_EXPERIMENT, truth_step_s: float = 300.0,
                   progress: Callable[[str], None] | None = None) -> NightResult:
    """Run the overnight experiment through ``hours`` of lab time on the virtual node.

    :param hours: length of the night (lab time, hours).
    :param results_root: results directory (its lab clock, rids and dataset database carry
        on from earlier runs there).
    :param interval_s: time between graph runs (s).
    :param seed: lab seed of the virtual node (its drift history); every run draws its
        clicks and outcomes with its own rid as seed.
    :param faults: faults switched on during the night.
    :param graph_shots: node -> argument overrides (fewer shots for a quick night).
    :param truth_step_s: spacing of the true-value samples in the report (s).
    """
    if not hours > 0:
        raise ValueError(f"hours must be > 0, not {hours!r}")
    root = Path(results_root)
    root.mkdir(parents=True, exist_ok=True)
    base_cfg = load_node_config(node_file)
    clock = LabClock.for_root(root)
    start_lab = clock.now()
    start_wall = clock.wall_time()
    end_wall = start_wall + hours * 3600.0
    queue = RunQueue(RidCounter(root).get, clock=clock.wall_time)
    expid = {"file": str(experiment), "class_name": "OvernightCalibration",
             "arguments": {"graph_ions": ",".join(ions), "graph_interval": float(interval_s),
                           "graph_until": end_wall, "graph_targets": targets,
                           "graph_shots": pyon.encode(dict(graph_shots or {}))},
             "log_level": 30, "repo_rev": None}
    queue.submit("main", expid, priority=-10, due_date=start_wall)
    template = RunRequest(experiment_file=Path(experiment), device_db=Path(device_db),
                          results_root=root, seed=None, virtual_time=True)
    result = NightResult()
    while True:
        due = queue.next_due()
        if due is None:
            next_date = queue.next_due_date()
            if next_date is None or next_date >= end_wall:
                break
            clock.advance_to(next_date - clock.epoch_s)
            continue
        if clock.wall_time() >= end_wall:
            break
        queue.delete(due.rid)
        t_night = clock.now() - start_lab
        cfg = config_at(base_cfg, faults, t_night)

        def factory(ddb: dict, s: int, cfg: NodeConfig = cfg) -> VirtualNetwork:
            return VirtualNetwork(ddb, cfg, s, lab_seed=seed)

        request = dataclasses.replace(
            template, experiment_file=Path(due.expid["file"]),
            class_name=due.expid.get("class_name"), arguments=dict(due.expid["arguments"]),
            pipeline_name=due.pipeline_name, priority=due.priority, rid=due.rid,
            due_date=due.due_date)
        outcome = run_experiment(request, world_factory=factory, queue=queue)
        result.outcomes.append(outcome)
        if progress is not None:
            progress(_progress_line(outcome, t_night))
        if outcome.error is not None:
            raise RuntimeError(f"rid {outcome.rid} ({outcome.class_name}) raised "
                               f"{type(outcome.error).__name__}: {outcome.error} (results in "
                               f"{outcome.results_file})") from outcome.error
    clock.advance_to(end_wall - clock.epoch_s)
    result.report = night_report(result.outcomes, root, start_wall, end_wall, base_cfg, faults,
                                 ions, seed, device_db, truth_step_s)
    result.html = root / "night_report.html"
    result.json = root / "night_report.json"
    write_report(result.report, result.html, result.json)
    return result


def _progress_line(outcome: RunOutcome, t_night: float) -> str:
    log = json.loads(outcome.datasets.get("calgraph.log", "[]"))
    faults = json.loads(outcome.datasets.get("calgraph.faults", "[]"))
    stored: dict[str, bool] = {}
    for e in log:  # a calibration counts when no rejection follows it
        if e["step"] == "calibrate":
            stored[e["node"]] = e["result"] == "ok" or stored.get(e["node"], False)
        elif e["step"] == "reject":
            stored[e["node"]] = False
    cal = sorted(n for n, ok in stored.items() if ok)
    checked = sorted({e["node"] for e in log if e["step"] == "check_data"})
    line = (f"{t_night / 3600:5.2f} h  rid {outcome.rid}: checked {', '.join(checked) or '-'}; "
            f"recalibrated {', '.join(cal) or '-'}")
    if faults:
        line += "; FAULT " + "; ".join(f"{f['node']}: {f['message']}" for f in faults)
    return line


def night_report(outcomes: Sequence[RunOutcome], root: Path, start_wall: float,
                 end_wall: float, base_cfg: NodeConfig, faults: Sequence[Fault],
                 ions: Sequence[str], seed: int, device_db: str | Path,
                 truth_step_s: float) -> dict:
    """The morning report of a simulated night, with the true values as reference."""
    log: list[dict] = []
    found: list[dict] = []
    missing: dict[str, str] = {}
    for o in outcomes:
        log += json.loads(o.datasets.get("calgraph.log", "[]"))
        found += json.loads(o.datasets.get("calgraph.faults", "[]"))
        missing.update(json.loads(o.datasets.get("calgraph.missing", "{}")))
    db = DatasetDB(root / "dataset_db.pyon")
    store = ParamStore(db.get, db.set)
    histories = {k[len(HISTORY_PREFIX):]: store.history(k[len(HISTORY_PREFIX):])
                 for k in sorted(db.keys()) if k.startswith(HISTORY_PREFIX)}
    clock = LabClock.for_root(root)
    ddb = load_device_db(device_db)
    networks: dict[int, VirtualNetwork] = {}
    reference: dict[str, list[tuple[float, float]]] = {}
    n = max(2, int((end_wall - start_wall) / truth_step_s) + 1)
    start_lab = start_wall - clock.epoch_s
    for k in range(n):
        t_wall = start_wall + (end_wall - start_wall) * k / (n - 1)
        t_night = t_wall - start_wall
        active = sum(1 for f in faults if f.at_s <= t_night)
        if active not in networks:
            networks[active] = VirtualNetwork(ddb, config_at(base_cfg, faults, t_night),
                                              lab_seed=seed)
        truth = networks[active].truth(start_lab + t_night)
        for ion in ions:
            for template, key in TRUTH_KEYS.items():
                reference.setdefault(template.replace("{ion}", ion), []).append(
                    (t_wall, float(truth[ion][key])))
    tolerances: dict[str, float] = {}
    for d in NODE_DEFS:
        for ion in ions:
            for p, tol in d.tolerance.items():
                tolerances[p.replace("{ion}", ion)] = float(tol)
    reference = {k: v for k, v in reference.items() if k in histories}
    notes = [f"simulated night: {len(outcomes)} graph runs on the virtual node (lab seed "
             f"{seed}; each run draws with its rid as seed)"]
    notes += [f"injected fault {f.name} at {f.at_s / 3600:.2f} h: {f.description}"
              for f in faults]
    notes += [f"not in the graph: {name}: {why}" for name, why in sorted(missing.items())]
    report = build_report(log, histories, start_wall, end_wall, reference, tolerances, found,
                          notes)
    # tracking while the node was healthy (after a fault, the truth is out of reach by design)
    first_fault = min((f.at_s for f in faults), default=None)
    for info in report["parameters"].values():
        tol = info.get("tolerance")
        if "reference" not in info or tol is None:
            continue
        stored = info["stored"]
        errors = [abs(_value_at(stored, t) - v) for t, v in info["reference"]
                  if (first_fault is None or t - start_wall < first_fault)
                  and _value_at(stored, t) is not None]
        info["healthy_samples"] = len(errors)
        info["healthy_max_abs_error"] = max(errors, default=None)
        info["healthy_fraction_within_tolerance"] = (
            sum(e <= tol for e in errors) / len(errors) if errors else None)
    return report


def _value_at(stored: Sequence[tuple[float, Any]], t: float) -> float | None:
    before = [v for ts, v in stored if ts <= t]
    return float(before[-1]) if before else None


def rollback(dataset_db: str | Path, param: str, to_rid: int | None = None,
             note: str = "ionlink calib rollback") -> dict:
    """Roll ``param`` back in a dataset database file (offline: the master must not be
    running on it) and return the recorded entry."""
    import time

    path = Path(dataset_db)
    if not path.is_file():
        raise FileNotFoundError(f"dataset database {path} does not exist")
    db = DatasetDB(path)
    store = ParamStore(db.get, lambda k, v: db.set(k, v, persist=True))
    entry = store.rollback(param, to_rid, rid=None, time_s=time.time(), note=note)
    db.save()
    return entry


# ---------------------------------------------------------------------- command line
def register(subparsers: Any) -> None:
    """Add ``ionlink night`` and ``ionlink calib rollback`` to the ``ionlink`` command."""
    p = subparsers.add_parser(
        "night", help="simulate a night of automatic calibration on the virtual node",
        description="Run the overnight calibration graph through HOURS of lab time on the "
                    "virtual node (its parameters drifting), then write the morning report "
                    "(RESULTS/night_report.html and .json).")
    p.add_argument("--hours", type=float, default=8.0, help="length of the night (lab hours)")
    p.add_argument("--interval", type=float, default=1800.0,
                   help="seconds between graph runs (default: %(default)s)")
    p.add_argument("--ions", default="a", help="ions to calibrate: a, b or a,b")
    p.add_argument("--targets", default="all", help="graph nodes to maintain (default: all)")
    p.add_argument("--fault", action="append", default=[], metavar="NAME@TIME",
                   help=f"inject a fault, e.g. laser_397_unlocked@3h ({', '.join(FAULTS)})")
    p.add_argument("--shots", default="{}", metavar="PYON",
                   help="node -> argument overrides, e.g. \"{'readout_a': {'shots': 50}}\"")
    p.add_argument("-o", "--results", type=Path, default=Path("results"),
                   help="results directory (default: %(default)s)")
    p.add_argument("--device-db", type=Path, default=Path("device_db.py"))
    p.add_argument("--node", type=Path, default=None, help="node file (TOML)")
    p.add_argument("--seed", type=int, default=0,
                   help="lab seed: the night's drift history (each run draws with its rid)")
    p.set_defaults(func=_night_command)

    c = subparsers.add_parser("calib", help="calibrated parameters: history and rollback")
    csub = c.add_subparsers(title="calib commands", metavar="ACTION")
    r = csub.add_parser("rollback", help="restore a parameter's earlier value",
                        description="Restore PARAM to its value before the last change, or "
                                    "to the value run RID stored; the rollback is recorded "
                                    "in the parameter's provenance.")
    r.add_argument("param", help="dataset key, e.g. calib.frequency_729_a")
    r.add_argument("--to", type=int, default=None, metavar="RID",
                   help="the run whose value to restore")
    r.add_argument("-o", "--results", type=Path, default=Path("results"))
    r.add_argument("--dataset-db", type=Path, default=None,
                   help="dataset database (default: RESULTS/dataset_db.pyon)")
    r.set_defaults(func=_rollback_command)
    h = csub.add_parser("history", help="print a parameter's provenance")
    h.add_argument("param")
    h.add_argument("-o", "--results", type=Path, default=Path("results"))
    h.add_argument("--dataset-db", type=Path, default=None)
    h.set_defaults(func=_history_command)


def _night_command(args: Any) -> int:
    import sys

    try:
        faults = [parse_fault(f) for f in args.fault]
        shots = pyon.decode(args.shots)
        if not isinstance(shots, dict):
            raise ValueError(f"--shots must be a dict, not {args.shots!r}")
        ions = tuple(s.strip() for s in args.ions.split(",") if s.strip())
        result = simulate_night(args.hours, args.results, ions=ions, interval_s=args.interval,
                                seed=args.seed, faults=faults, node_file=args.node,
                                device_db=args.device_db, targets=args.targets,
                                graph_shots=shots, progress=print)
    except (ValueError, OSError, RuntimeError) as e:
        print(f"ionlink night: error: {e}", file=sys.stderr)
        return 2
    for key, info in result.report["parameters"].items():
        line = f"{key}: {info['changes']} changes"
        if info.get("max_abs_error") is not None:
            line += f", largest |stored - true| {info['max_abs_error']:.4g}"
        if info.get("fraction_within_tolerance") is not None:
            share = 100 * info["fraction_within_tolerance"]
            line += f", within tolerance {share:.0f}% of the night"
        if info.get("healthy_fraction_within_tolerance") is not None and args.fault:
            share = 100 * info["healthy_fraction_within_tolerance"]
            line += f" ({share:.0f}% before the first fault)"
        print(line)
    for f in result.report["faults"]:
        print(f"FAULT diagnosed at rid {f['rid']}: {f['node']}: {f['message']}")
    print(f"morning report: {result.html} ({result.json})")
    return 0


def _db_path(args: Any) -> Path:
    return args.dataset_db if args.dataset_db is not None else args.results / "dataset_db.pyon"


def _rollback_command(args: Any) -> int:
    import sys

    from ionlink.calgraph.provenance import ProvenanceError

    try:
        entry = rollback(_db_path(args), args.param, args.to)
    except (ProvenanceError, OSError, ValueError) as e:
        print(f"ionlink calib rollback: error: {e}", file=sys.stderr)
        return 2
    print(f"{args.param}: {entry['previous']} -> {entry['value']} ({entry['data']})")
    return 0


def _history_command(args: Any) -> int:
    import sys
    import time

    from ionlink.calgraph.provenance import ProvenanceError

    try:
        path = _db_path(args)
        if not path.is_file():
            raise OSError(f"dataset database {path} does not exist")
        db = DatasetDB(path)
        entries = ParamStore(db.get, db.set).history(args.param)
    except (ProvenanceError, OSError, ValueError) as e:
        print(f"ionlink calib history: error: {e}", file=sys.stderr)
        return 2
    for e in entries:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e["time"]))
        print(f"{when}  rid {e['rid']}  {e['action']:10s} {e['previous']} -> {e['value']}  "
              f"{e.get('node', '')}  {e.get('data', '')}  {e.get('note', '')}")
    return 0
