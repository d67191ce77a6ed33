"""Overnight calibration: keep the node in spec with a calibration graph, resubmitting itself."""

import json
import time
from pathlib import Path

from artiq.experiment import *


class OvernightCalibration(EnvExperiment):
    """Overnight calibration graph

    Runs the node's calibration graph (``ionlink.calgraph.iontrap``: 397 line, readout,
    729 frequency, pi time, T2, fibre delay, photon efficiency) with Kelly et al.'s
    maintain/diagnose traversal: nodes that timed out are checked cheaply, recalibrated when
    out of spec, and bad data are traced to the dependency that causes them. Between steps it
    yields to higher-priority experiments of its pipeline (``scheduler.pause()``).

    At the end (also after an error) it submits itself again to the same pipeline at its own
    (low; default -10) priority, due ``graph_interval`` after this run's due date, unless that
    is past ``graph_until``. Submit it to the pipeline of the experiments it should yield to
    (ARTIQ pauses a run only for higher-priority runs of its own pipeline, and runs of
    different pipelines would compete for the core device). Every stored value carries its
    provenance (``provenance.<key>``); the
    node states persist in ``calgraph.state``; this run's steps are archived as
    ``calgraph.log`` (JSON) and the raw data of each step under ``calgraph.<n>.<node>.*``.
    """

    def build(self):
        self.setattr_device("core")
        self.setattr_device("scheduler")
        self.setattr_argument("graph_ions", StringValue("a"), group="Graph",
                              tooltip="ions to keep calibrated: 'a', 'b' or 'a,b'")
        self.setattr_argument("graph_targets", StringValue("all"), group="Graph",
                              tooltip="comma-separated nodes to maintain (with their "
                                      "dependencies), or 'all'")
        self.setattr_argument("graph_verify", BooleanValue(True), group="Graph",
                              tooltip="check a node with its proposed values before storing "
                                      "them; keep the old values when that check fails")
        self.setattr_argument("graph_shots", PYONValue({}), group="Graph",
                              tooltip="node -> argument values for both steps, e.g. "
                                      "{'readout_a': {'shots': 50}}")
        self.setattr_argument("graph_interval", NumberValue(1800.0, unit="s", min=10.0,
                                                            step=300.0),
                              group="Scheduling", tooltip="time between graph runs")
        self.setattr_argument("graph_until", NumberValue(0.0, unit="s", min=0.0),
                              group="Scheduling",
                              tooltip="stop resubmitting after this time (seconds since the "
                                      "epoch); 0: never")
        self.setattr_argument("graph_resubmit", BooleanValue(True), group="Scheduling",
                              tooltip="submit the next run when this one ends")
        # Low priority by default, so that users' experiments in the same pipeline pause it.
        self.set_default_scheduling(priority=-10)
        self.start_time = time.time()

    def prepare(self):
        from ionlink.calgraph import STATE_KEY, GraphState, ParamStore
        from ionlink.calgraph.experiment_node import GraphContext
        from ionlink.calgraph.iontrap import iontrap_graph

        repository = Path(__file__).resolve().parent.parent
        rid = self.scheduler.rid
        local = time.localtime(self.start_time)
        self.results_ref = (time.strftime("%Y-%m-%d/%H/", local)
                            + f"{rid:09d}-{type(self).__name__}.h5")
        self.ctx = GraphContext(self, repository, self.results_ref)
        ions = [s.strip() for s in self.graph_ions.split(",") if s.strip()]
        if self.graph_targets.strip() in ("", "all"):
            self.targets = None
        else:
            self.targets = [s.strip() for s in self.graph_targets.split(",") if s.strip()]
        self.graph, self.missing = iontrap_graph(ions, self.ctx.has_file,
                                                 shot_overrides=dict(self.graph_shots),
                                                 targets=self.targets)
        for t in self.targets or ():
            self.graph[t]  # a clear error now for an unknown node
        self.store = ParamStore(lambda key: self.get_dataset(key, archive=False),
                                lambda key, value: self.set_dataset(key, value, persist=True))
        self.state = GraphState.from_json(self.get_dataset(STATE_KEY, "", archive=False))
        self.state_key = STATE_KEY

    def run(self):
        from ionlink.calgraph import Maintainer

        self.maintainer = Maintainer(
            self.graph, self.store, self.state, self.ctx, clock=time.time,
            rid=self.scheduler.rid, data=self.results_ref, between_steps=self.yield_to_users,
            verify=self.graph_verify)
        terminated = False
        try:
            self.maintainer.run(self.targets)
        except TerminationRequested:
            terminated = True
        finally:
            self.set_dataset(self.state_key, self.state.to_json(), persist=True)
            self.set_dataset("calgraph.log", json.dumps(self.maintainer.log))
            faults = [{"node": n, "message": m, "rid": self.scheduler.rid, "time": time.time()}
                      for n, m in self.maintainer.faults.items()]
            self.set_dataset("calgraph.faults", json.dumps(faults))
            self.set_dataset("calgraph.missing", json.dumps(self.missing))
            if not terminated and self.graph_resubmit:
                self.resubmit()

    def yield_to_users(self):
        """Let due higher-priority experiments of this pipeline run (the core device is
        released first, as ARTIQ requires)."""
        if self.scheduler.check_pause():
            self.core.close()
            self.scheduler.pause()

    def resubmit(self):
        """Submit the next run of this graph (same expid, pipeline and priority)."""
        own = self.scheduler.get_status().get(self.scheduler.rid, {})
        last_due = own.get("due_date") or self.start_time
        due = max(time.time(), last_due + self.graph_interval)
        if self.graph_until and due > self.graph_until:
            print("calibration graph: next run would be due after graph_until; not resubmitted")
            return
        rid = self.scheduler.submit(self.scheduler.pipeline_name, self.scheduler.expid,
                                    self.scheduler.priority, due, False)
        self.set_dataset("calgraph.next_rid", rid)
        self.set_dataset("calgraph.next_due", due)
        print(f"calibration graph: next run rid {rid} due "
              f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(due))}")

    def analyze(self):
        log = self.maintainer.log
        calibrated = sorted({e["node"] for e in log if e["step"] == "calibrate"
                             and e["result"] == "ok"})
        print(f"calibration graph rid {self.scheduler.rid}: {len(log)} steps, recalibrated "
              f"{', '.join(calibrated) or 'nothing'}; faults: "
              f"{', '.join(self.maintainer.faults) or 'none'}")
