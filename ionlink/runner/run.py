"""Run one ARTIQ experiment on the simulated core device, as ``artiq_run`` would.

The stages are ARTIQ's: build (constructor), ``prepare``, ``run``, ``analyze``; the
results file is written in the master's HDF5 layout at
``RESULTS/YYYY-MM-DD/HH/{rid:09d}-{Class}.h5``, checkpointed while the run goes (an
experiment calling ``scheduler.pause()``/``check_pause()`` and every kernel end gives the
writer a chance) and written once more at the end, also when a stage raises.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import artiq
from artiq.language.environment import is_public_experiment

from ionlink.runner.arguments import ProcessArgumentManager
from ionlink.runner.datasets import DatasetDB, DatasetManager
from ionlink.runner.devices import DeviceError, SimDeviceManager, load_device_db
from ionlink.runner.labclock import LabClock, virtual_wall_clock
from ionlink.runner.modules import ModuleImportError, import_file
from ionlink.runner.results import ResultsWriter, RidCounter, results_path
from ionlink.runner.scheduler import RunQueue, SimScheduler
from ionlink.sim import session
from ionlink.sim.costs import DEFAULT_COSTS, CostModel
from ionlink.sim.world import World

logger = logging.getLogger(__name__)

#: Seconds between results checkpoints of a long run.
CHECKPOINT_INTERVAL_S = 10.0


class ExperimentLoadError(Exception):
    """The experiment file or class cannot be loaded; the message says why in one line."""


def import_experiment_file(path: str | Path) -> Any:
    """Import an experiment file as a fresh module (no ``sys.path`` change)."""
    try:
        return import_file(path, "ionlink_experiment")
    except ModuleImportError as e:
        raise ExperimentLoadError(str(e)) from None


def find_experiment_class(module: Any, class_name: str | None, path: Path) -> type:
    """The experiment class named ``class_name``, or the file's only experiment."""
    if class_name is not None:
        cls = getattr(module, class_name, None)
        if cls is None or not inspect.isclass(cls):
            raise ExperimentLoadError(f"{path} has no class {class_name}")
        return cls
    found = [cls for _name, cls in inspect.getmembers(module, is_public_experiment)
             if cls.__module__ == module.__name__]
    if not found:
        raise ExperimentLoadError(f"{path} contains no experiment")
    if len(found) > 1:
        names = ", ".join(sorted(c.__name__ for c in found))
        raise ExperimentLoadError(f"{path} contains several experiments ({names}): "
                                  "choose one with -c CLASS")
    return found[0]


@dataclass
class RunOutcome:
    """What one run produced."""

    rid: int
    class_name: str
    results_file: Path
    datasets: dict[str, Any]
    error: BaseException | None = None
    rtio_errors: dict[str, int] = field(default_factory=dict)
    rtio_events: int = 0
    node_time_s: float = 0.0
    wall_time_s: float = 0.0


@dataclass
class RunRequest:
    """Everything ``ionlink run`` needs to run one experiment."""

    experiment_file: Path
    class_name: str | None = None
    arguments: dict[str, Any] = field(default_factory=dict)
    device_db: Path = Path("device_db.py")
    results_root: Path = Path("results")
    dataset_db: Path | None = None
    #: Seed of the run's random draws (photon clicks, quantum outcomes); None: the run's
    #: rid, so successive runs draw anew and ``--seed RID`` reproduces one. The lab's
    #: drifts do not depend on it (see ``VirtualNetwork``'s ``lab_seed``).
    seed: int | None = None
    costs: CostModel = DEFAULT_COSTS
    vcd: Path | None = None
    pipeline_name: str = "main"
    priority: int = 0
    log_level: int = logging.WARNING
    #: The run id, when the scheduler assigned one at submission (else a new one).
    rid: int | None = None
    #: The due date the run was submitted with (seconds since the epoch), if any.
    due_date: float | None = None
    #: Make ``time.time()`` follow the results directory's lab clock during the run
    #: (a simulated night: see :mod:`ionlink.runner.labclock`).
    virtual_time: bool = False


def run_experiment(request: RunRequest,
                   world_factory: Callable[[dict, int], World] | None = None,
                   queue: RunQueue | None = None) -> RunOutcome:
    """Run one experiment on a fresh simulated core device and write its results.

    :param world_factory: builds what is behind the channels from the device database and
        the seed (the virtual node, by default; see :func:`default_world_factory`).
    :param queue: the scheduler's run queue (a new one if None).
    """
    path = Path(request.experiment_file)
    ddb = load_device_db(request.device_db)
    module = import_experiment_file(path)
    cls = find_experiment_class(module, request.class_name, path)

    results_root = Path(request.results_root)
    rid_counter = RidCounter(results_root)
    if queue is None:
        queue = RunQueue(rid_counter.get)
    rid = request.rid if request.rid is not None else rid_counter.get()
    seed = request.seed if request.seed is not None else rid

    factory = world_factory if world_factory is not None else default_world_factory
    try:
        world = factory(ddb, seed)
    except (KeyError, ValueError) as e:
        raise DeviceError(f"the virtual node cannot be built on {request.device_db}: "
                          f"{e}") from None
    outer_engine = session._engine  # a paused run's session, given back when this one ends
    engine = session.start(world=world, costs=request.costs, trace=request.vcd is not None)

    expid = {
        "file": str(path),
        "class_name": cls.__name__,
        "arguments": dict(request.arguments),
        "log_level": request.log_level,
        "repo_rev": None,
    }
    queue.add_running(rid, request.pipeline_name, expid, request.priority, request.due_date)
    scheduler = SimScheduler(queue, rid, request.pipeline_name, expid, request.priority)
    db_path = Path(request.dataset_db if request.dataset_db is not None
                   else results_root / "dataset_db.pyon").resolve()
    argument_mgr = ProcessArgumentManager(request.arguments)
    device_mgr = SimDeviceManager(ddb, virtual_devices={"scheduler": scheduler})

    dataset_db = _acquire_dataset_db(db_path)
    clock_scope = contextlib.ExitStack()
    lab_clock: LabClock | None = None
    try:
        # The node's lab time carries on from the previous run in this results directory.
        lab_clock = LabClock.for_root(results_root)
        lab_clock.begin_run(engine, world)
        dataset_mgr = DatasetManager(dataset_db)
        if request.virtual_time:
            clock_scope.enter_context(virtual_wall_clock(lab_clock))
        start_time = time.time()
        writer = ResultsWriter(results_path(results_root, start_time, rid, cls.__name__),
                               dataset_mgr, rid, start_time, expid, artiq.__version__)
    except BaseException:
        clock_scope.close()
        if lab_clock is not None:
            lab_clock.end_run()
        _release_dataset_db(db_path)
        raise
    wall_start = time.perf_counter()
    node_start = engine.cpu
    error: BaseException | None = None
    try:
        exp = cls((device_mgr, dataset_mgr, argument_mgr, {}))
        argument_mgr.check_unprocessed_arguments()
        exp.prepare()
        writer.run_time = time.time()
        _run_with_checkpoints(exp, writer, queue, request, world_factory)
        exp.analyze()
    except BaseException as e:  # the results are written whatever happened
        error = e
    finally:
        try:
            device_mgr.close_devices()
        finally:
            try:
                dataset_db.save()
                results_file = writer.close()
                queue.finish(rid)
                if request.vcd is not None and engine.trace is not None:
                    from ionlink.sim.vcd import write_vcd
                    write_vcd(request.vcd, engine)
            finally:
                _release_dataset_db(db_path)
                clock_scope.close()
                lab_clock.end_run()
                if outer_engine is not None:
                    session._engine = outer_engine
    return RunOutcome(
        rid=rid, class_name=cls.__name__, results_file=results_file,
        datasets=dict(getattr(dataset_mgr, "local", {})), error=error,
        rtio_errors=dict(engine.errors), rtio_events=engine.events_submitted,
        node_time_s=(engine.cpu - node_start) * engine.ref_period,
        wall_time_s=time.perf_counter() - wall_start)


#: Dataset databases of the runs under way (a run started while another pauses shares the
#: paused run's database, as all runs share the master's): path -> [db, number of runs].
_open_dbs: dict[Path, list] = {}


def _acquire_dataset_db(path: Path) -> DatasetDB:
    entry = _open_dbs.get(path)
    if entry is None:
        entry = _open_dbs[path] = [DatasetDB(path), 0]
    entry[1] += 1
    return entry[0]


def _release_dataset_db(path: Path) -> None:
    entry = _open_dbs[path]
    entry[1] -= 1
    if entry[1] == 0:
        del _open_dbs[path]


def _run_with_checkpoints(exp: Any, writer: ResultsWriter, queue: RunQueue, request: RunRequest,
                          world_factory: Callable | None) -> None:
    """Run the experiment's run stage. Each time it yields to the scheduler the results
    file is checkpointed (at most every :data:`CHECKPOINT_INTERVAL_S`), and when it pauses,
    the due higher-priority runs of its pipeline execute in between."""
    last = [time.monotonic()]

    def checkpoint_hook() -> None:
        now = time.monotonic()
        if now - last[0] >= CHECKPOINT_INTERVAL_S:
            writer.checkpoint()
            last[0] = now

    def pause_handler(rid: int) -> None:
        writer.checkpoint()
        run_due(queue, request, world_factory, above_rid=rid)

    queue.checkpoint_hook = checkpoint_hook
    queue.pause_handler = pause_handler
    try:
        exp.run()
    finally:
        queue.checkpoint_hook = None
        queue.pause_handler = None


def run_due(queue: RunQueue, template: RunRequest, world_factory: Callable | None = None,
            above_rid: int | None = None) -> list[RunOutcome]:
    """Execute the queued runs that are due (highest priority first), each as its own run
    with the settings of ``template`` and the queued expid. With ``above_rid``, only runs
    of that run's pipeline that outrank it (a pause)."""
    outcomes = []
    while True:
        if above_rid is not None:
            running = queue.runs[above_rid]
            due = queue.next_due(running.pipeline_name)
            if due is None or due.priority_key() <= running.priority_key():
                return outcomes
        else:
            due = queue.next_due()
            if due is None:
                return outcomes
        queue.delete(due.rid)
        expid = due.expid
        request = dataclasses.replace(
            template, experiment_file=Path(expid.get("file", template.experiment_file)),
            class_name=expid.get("class_name"), arguments=dict(expid.get("arguments", {})),
            pipeline_name=due.pipeline_name, priority=due.priority, rid=due.rid,
            due_date=due.due_date)
        outcomes.append(run_experiment(request, world_factory=world_factory, queue=queue))


def default_world_factory(ddb: dict, seed: int) -> World:
    """The virtual network with its default node file: the repeater chain A - R - B behind
    a chain device database (``device_db_repeater.py``), else the two-node link."""
    from ionlink.node import VirtualNetwork, load_node_config
    from ionlink.node.chain import ChainNetwork, is_chain_device_db

    if is_chain_device_db(ddb):
        from ionlink.node.chain_config import load_chain_config

        return ChainNetwork(ddb, load_chain_config(None), seed)
    return VirtualNetwork(ddb, load_node_config(None), seed)
