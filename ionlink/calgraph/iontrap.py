"""The calibration graph of the 40Ca+ network node, and why its edges are where they are.

Per ion ``X`` (``a``: the master's ion, ``b``: the satellite's), parameters are the persistent
``calib.*_X`` datasets the experiments and blocks read:

``lines_X`` (397 nm line with 866 on; root)
    ``calib.resonance_397_X`` and the cooling/detection frequencies derived from it. The root:
    every other measurement needs a cooled, fluorescing ion, and the line scan needs nothing
    calibrated (it counts photons, no threshold). The 866 repumper is on during the scan, so
    an unlocked 866 shows here as a missing line; the virtual node's 866 repumps at any
    frequency, so it has no parameter of its own. Tolerance 2 MHz on the resonance (a tenth of
    the 22 MHz natural line width: cooling limit and bright rate change by a few percent).
    Timeout 30 min (the 397 lock drifts ~1 MHz over hours).
``readout_X`` <- ``lines_X``
    ``calib.readout_threshold_X`` (counts). The bright count rate depends on the detection
    frequency, hence the edge. Tolerance max(3 counts, 30 %): the fidelity plateau between the
    dark (~1 count) and bright (~100 counts per ms) histograms is wide; timeout 2 h. The
    experiment refuses histograms without fluorescence (bright mean < 3 standard deviations
    above the background, e.g. the 397 unlocked): bad data, traced to ``lines_X``. It does
    not require the raw fidelity (which includes the dark-preparation error of the 729 pi
    pulse) to pass: the 729 is calibrated downstream of the readout, and on node B's
    first run (729 13 kHz off) the raw fidelity is 0.93-0.94 at a corrected 1.00.
``freq729_X`` <- ``readout_X``, ``lines_X``
    ``calib.frequency_729_X`` (DDS Hz): spectroscopy reads the shelved state with the threshold,
    and its line width depends on the ion's temperature (cooling frequency). Tolerance
    3.5 kHz: about 3 standard deviations of the difference of two ~0.9 kHz spectroscopy
    results (a tighter spec would be broken by the check's own noise), and a pi-pulse error
    (delta/Omega)^2 ~ 2e-3 at Omega/2pi ~ 80 kHz; timeout 20 min (the 729 reference drifts
    ~1 Hz/sqrt(s) plus a daily swing). Ramsey refines this frequency further, but in the
    graph the parameter belongs to this node only.
``pitime_X`` <- ``freq729_X``, ``readout_X``
    ``calib.pi_time_729_X`` (s): a detuned Rabi flop is faster and incomplete, so the frequency
    must be right first. Tolerance 3 % (pi-pulse error ~ (pi * 0.03 / 2)^2 = 2e-3); timeout
    30 min (729 intensity at the ion drifts ~2 % over hours).
``t2star_X`` <- ``pitime_X``, ``freq729_X``
    ``calib.t2_star_729_X`` (s): Ramsey sequences are built from pi/2 pulses and a detuning from
    the transition shows as fringes, not decay. Tolerance 30 %; timeout 4 h.
``fibre_delay_X`` <- ``lines_X``
    ``calib.fibre_delay_X`` (s): arrival-time histogram of photons at the station; it needs a
    prepared, cooled ion emitting photons, nothing else. Tolerance 20 ns (gate of ~1 us),
    widened to 4 standard errors of the difference (one run: 10-26 ns); timeout 4 h
    (thermal drift ~7 ppm/K of ~25 us).
``wavepacket_X`` <- ``fibre_delay_X``
    ``calib.photon_wavepacket_time_X`` (s): arrival histogram in a window opened at the fibre
    delay. Tolerance 20 %; timeout 4 h.
``photon_eff_X`` <- ``fibre_delay_X``, ``wavepacket_X``, ``lines_X``
    ``calib.photon_detection_efficiency_X`` and ``calib.photon_generation_time_X``: click
    probability vs. 393 pulse length in the gate; the gate sits at the fibre delay and is a
    few wavepackets long, so a wrong delay or wavepacket reads as no efficiency. Tolerance
    15 % on eta, 50 % on the generation time; both widened to 4 standard errors of the
    difference. At the default 3000 shots per point the relative standard errors are ~3 % on
    eta and ~11 % on the generation time (6 seeds: 10.4-10.8 %, eta ~0.08; ~1500 shots
    would reach 15 %); the acceptance is 25 % here so that nights run with fewer shots
    (``graph_shots``, down to ~550) still store values. Timeout 1 h (conversion and fibre
    coupling drift ~5 % over half a day).
``memory_t2_X`` <- ``pitime_X``, ``freq729_X`` (optional: only when named as a target)
    ``calib.memory_t2_X``, ``calib.dephasing_t2_X`` (s): dynamical-decoupling coherence;
    slow (minutes of node time), so not part of the nightly default. Timeout 8 h.
``heralding`` <- ``photon_eff_a``, ``photon_eff_b``, ``fibre_delay_a``, ``fibre_delay_b``
    Check only: the herald rate of the Cabrillo protocol ~ 2 alpha eta per attempt; a rate
    far from that of the calibrated efficiencies means a fault downstream of the nodes
    (station detectors, fibre), which no calibration of the node repairs. It is the
    end-to-end health check of the link, so its timeout is short (30 min).
``link_phase`` <- ``heralding``, ``fibre_delay_X``, ``photon_eff_X``, ``freq729_X``,
``pitime_X`` (X = a and b; only with both ions)
    ``calib.link_phase`` (turns, periodic: compared modulo 1): the phase of the heralded
    A-B state, from Bell-basis rounds on heralded pairs. It needs heralds (the gates at the
    fibre delays, photons from both ions: the heralding check) and equatorial rotations of
    both ions (729 frequency and pi time: a detuned 729 adds 2 pi delta t to the phase).
    The stabilised fibre still drifts (default node: rms 0.085 rad in 1 min, 0.24 rad in
    5 min, 0.4 rad in 10 min), so the timeout is 3 min (rms drift ~0.15 rad = 0.024 turns,
    about the spec): every graph run checks it. Spec 0.02 turns (0.13 rad: S lower by 0.8 %);
    the check uses 200 heralded rounds instead of 400 (phase standard error ~0.02 turns at
    visibility 0.8, so its fit is not refused at the calibration's 0.02-turn limit) and
    counts a deviation beyond max(spec, 3 sqrt(se_check^2 + se_stored^2)) (k = 3 here, not
    4: a false alarm only costs one calibration of a few seconds, while a missed drift
    lowers S). A lab running Bell / DI-QKD rounds recalibrates it interleaved with them
    (every ~1 min); the graph keeps it from going stale between such runs.

Statistical tolerances: where an experiment reports the standard error of a value (the
``errors`` of each :class:`NodeDef`), a check or verification counts a deviation only beyond
``max(spec, k * sqrt(se_new^2 + se_other^2))`` with ``k = CalNode.NOISE_K = 4`` (see
:class:`~ionlink.calgraph.node.CalNode`): e.g. the fibre delay's 20 ns spec against one run's
10-26 ns error, where a verification on the spec alone failed on noise. The standard error of
a stored value is kept in its provenance entry.

A node whose experiment file is absent from the repository is left out (and reported);
edges to it are dropped, so the rest of the graph still runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ionlink.calgraph.experiment_node import (
    ExperimentNode,
    ExperimentSpec,
    PhaseNode,
    RateCheckNode,
)
from ionlink.calgraph.graph import CalGraph

__all__ = ["HERALDING_KEYS", "NODE_DEFS", "NodeDef", "iontrap_graph"]

MHz = 1e6
kHz = 1e3
us = 1e-6
ns = 1e-9


@dataclass(frozen=True)
class NodeDef:
    """A node of the ion-trap graph with ``{ion}`` placeholders in names and keys.

    :param per_ion: instantiate once per ion (else once for the whole network; such a node
        is built only when the graph has both ions).
    Other fields as :class:`ExperimentSpec` and :class:`CalNode`.
    """

    name: str
    file: str
    class_name: str
    params: tuple[str, ...]
    dependencies: tuple[str, ...] = ()
    timeout_s: float = 3600.0
    tolerance: dict[str, float] = field(default_factory=dict)
    rel_tolerance: dict[str, float] = field(default_factory=dict)
    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)
    arguments: dict[str, Any] = field(default_factory=dict)
    check_arguments: dict[str, Any] = field(default_factory=dict)
    calibrate_arguments: dict[str, Any] = field(default_factory=dict)
    per_ion: bool = True
    #: Included only when named in the targets (slow, or not needed every night).
    optional: bool = False
    #: "experiment" (:class:`ExperimentNode`), "phase" (:class:`PhaseNode`, period 1) or
    #: "rate" (:class:`RateCheckNode`).
    kind: str = "experiment"
    #: Parameter -> dataset (or ``dataset:path`` into a fit dict) holding its standard error.
    errors: dict[str, str] = field(default_factory=dict)
    #: Standard errors a deviation must exceed (None: ``CalNode.NOISE_K``); "phase" only.
    noise_k: float | None = None


NODE_DEFS: tuple[NodeDef, ...] = (
    NodeDef("lines_{ion}", "calibrations/line_scan_397.py", "LineScan397",
            ("calib.resonance_397_{ion}", "calib.linewidth_397_{ion}",
             "calib.frequency_397_cooling_{ion}", "calib.frequency_397_detection_{ion}"),
            timeout_s=1800.0, tolerance={"calib.resonance_397_{ion}": 2 * MHz},
            bounds={"calib.resonance_397_{ion}": (50 * MHz, 200 * MHz),
                    "calib.linewidth_397_{ion}": (1 * MHz, 200 * MHz)},
            arguments={"node": "{ion}"}, check_arguments={"shots": 10},
            errors={"calib.resonance_397_{ion}": "line_397.fit:errors.center",
                    "calib.linewidth_397_{ion}": "line_397.fit:errors.fwhm"}),
    NodeDef("readout_{ion}", "calibrations/readout_histogram.py", "ReadoutHistogram",
            ("calib.readout_threshold_{ion}",), ("lines_{ion}",), timeout_s=7200.0,
            tolerance={"calib.readout_threshold_{ion}": 3},
            rel_tolerance={"calib.readout_threshold_{ion}": 0.3},
            bounds={"calib.readout_threshold_{ion}": (0, 10000)},
            arguments={"node": "{ion}"}, check_arguments={"shots": 100}),
    NodeDef("freq729_{ion}", "calibrations/spectroscopy_729.py", "Spectroscopy729",
            ("calib.frequency_729_{ion}",), ("readout_{ion}", "lines_{ion}"), timeout_s=1200.0,
            tolerance={"calib.frequency_729_{ion}": 3.5 * kHz},
            bounds={"calib.frequency_729_{ion}": (60 * MHz, 100 * MHz)},
            arguments={"node": "{ion}"},
            errors={"calib.frequency_729_{ion}": "spectroscopy_729.fit:errors.center"}),
    NodeDef("pitime_{ion}", "calibrations/rabi_flopping.py", "RabiFlopping",
            ("calib.pi_time_729_{ion}",), ("freq729_{ion}", "readout_{ion}"), timeout_s=1800.0,
            rel_tolerance={"calib.pi_time_729_{ion}": 0.03},
            bounds={"calib.pi_time_729_{ion}": (0.5 * us, 500 * us)},
            arguments={"node": "{ion}"},
            errors={"calib.pi_time_729_{ion}": "rabi_729.pi_time_error"}),
    NodeDef("t2star_{ion}", "calibrations/ramsey_729.py", "Ramsey729",
            ("calib.t2_star_729_{ion}",), ("pitime_{ion}", "freq729_{ion}"), timeout_s=14400.0,
            rel_tolerance={"calib.t2_star_729_{ion}": 0.3},
            bounds={"calib.t2_star_729_{ion}": (1 * us, 100.0)},
            arguments={"node": "{ion}"},
            errors={"calib.t2_star_729_{ion}": "ramsey_729.fit:errors.t2"}),
    NodeDef("memory_t2_{ion}", "calibrations/memory_coherence.py", "MemoryCoherence",
            ("calib.memory_t2_{ion}", "calib.dephasing_t2_{ion}"),
            ("pitime_{ion}", "freq729_{ion}"), timeout_s=28800.0,
            rel_tolerance={"calib.memory_t2_{ion}": 0.4},
            bounds={"calib.memory_t2_{ion}": (1e-4, 100.0),
                    "calib.dephasing_t2_{ion}": (1e-4, 1e4)},
            arguments={"node": "{ion}"}, optional=True,
            errors={"calib.memory_t2_{ion}": "memory_coherence.fit:errors.tau",
                    "calib.dephasing_t2_{ion}": "memory_coherence.dephasing_t2_error"}),
    NodeDef("fibre_delay_{ion}", "calibrations/fibre_delay.py", "FibreDelay",
            ("calib.fibre_delay_{ion}",), ("lines_{ion}",), timeout_s=14400.0,
            tolerance={"calib.fibre_delay_{ion}": 20 * ns},
            bounds={"calib.fibre_delay_{ion}": (0.0, 10e-3)}, arguments={"node": "{ion}"},
            errors={"calib.fibre_delay_{ion}": "fibre_delay.delay_error"}),
    NodeDef("wavepacket_{ion}", "calibrations/photon_wavepacket.py", "PhotonWavepacket",
            ("calib.photon_wavepacket_time_{ion}",), ("fibre_delay_{ion}",),
            timeout_s=14400.0, rel_tolerance={"calib.photon_wavepacket_time_{ion}": 0.2},
            bounds={"calib.photon_wavepacket_time_{ion}": (1 * ns, 1e-3)},
            arguments={"node": "{ion}"},
            errors={"calib.photon_wavepacket_time_{ion}": "photon_wavepacket.tau_error"}),
    NodeDef("photon_eff_{ion}", "calibrations/photon_efficiency.py", "PhotonEfficiency",
            ("calib.photon_detection_efficiency_{ion}", "calib.photon_generation_time_{ion}"),
            ("fibre_delay_{ion}", "wavepacket_{ion}", "lines_{ion}"),
            timeout_s=3600.0, rel_tolerance={"calib.photon_detection_efficiency_{ion}": 0.15,
                                             "calib.photon_generation_time_{ion}": 0.5},
            bounds={"calib.photon_detection_efficiency_{ion}": (1e-6, 1.0),
                    "calib.photon_generation_time_{ion}": (1e-9, 1e-3)},
            arguments={"node": "{ion}", "max_relative_error": 0.25},
            errors={"calib.photon_detection_efficiency_{ion}": "photon_efficiency.eta_error",
                    "calib.photon_generation_time_{ion}":
                        "photon_efficiency.generation_time_error"}),
    NodeDef("heralding", "heralding/heralded_entanglement.py", "HeraldedEntanglement", (),
            ("photon_eff_a", "photon_eff_b", "fibre_delay_a", "fibre_delay_b"),
            timeout_s=1800.0, per_ion=False, kind="rate",
            check_arguments={"attempts": 20000, "measurement": "none"},
            calibrate_arguments={"attempts": 20000, "measurement": "none"}),
    NodeDef("link_phase", "calibrations/link_phase.py", "LinkPhase", ("calib.link_phase",),
            ("heralding", "fibre_delay_a", "fibre_delay_b", "photon_eff_a", "photon_eff_b",
             "freq729_a", "freq729_b", "pitime_a", "pitime_b"),
            timeout_s=180.0, tolerance={"calib.link_phase": 0.02},
            bounds={"calib.link_phase": (-0.5, 0.5)}, per_ion=False, kind="phase",
            check_arguments={"rounds": 200, "max_phase_error": 0.05},
            calibrate_arguments={"rounds": 400},
            errors={"calib.link_phase": "link_phase.phase_stderr"}, noise_k=3.0),
)

#: Dataset names the heralding experiment writes for the rate check.
HERALDING_KEYS = {"observed_key": "heralding.success_probability",
                  "expected_key": "heralding.expected_success_probability",
                  "trials_key": "heralding.attempts"}


def _fill(x: Any, ion: str) -> Any:
    if isinstance(x, str):
        return x.replace("{ion}", ion)
    if isinstance(x, dict):
        return {_fill(k, ion): _fill(v, ion) for k, v in x.items()}
    if isinstance(x, tuple):
        return tuple(_fill(v, ion) for v in x)
    return x


def iontrap_graph(ions: Iterable[str] = ("a",),
                  available: Callable[[ExperimentSpec], bool] = lambda spec: True,
                  defs: Iterable[NodeDef] = NODE_DEFS,
                  shot_overrides: dict[str, dict[str, Any]] | None = None,
                  targets: Iterable[str] | None = None,
                  ) -> tuple[CalGraph, dict[str, str]]:
    """Build the graph for ``ions``.

    :param available: whether a node's experiment can be run (e.g. its file exists).
    :param shot_overrides: node name -> argument values applied to both steps (e.g. fewer
        shots for a quick simulated night).
    :param targets: node names the caller will maintain; optional nodes are built only when
        named here.
    :return: the graph and, for each node left out, why.
    """
    ions = tuple(ions)
    for ion in ions:
        if ion not in ("a", "b"):
            raise ValueError(f"ion must be 'a' or 'b', not {ion!r}")
    wanted = set(targets or ())
    overrides = shot_overrides or {}
    nodes: list[ExperimentNode] = []
    missing: dict[str, str] = {}
    for d in defs:
        if not d.per_ion and set(ions) != {"a", "b"}:
            missing[d.name] = "needs both ions (a,b) in the graph"
            continue
        for ion in (ions if d.per_ion else ("",)):
            name = _fill(d.name, ion)
            if d.optional and name not in wanted:
                continue
            args = dict(_fill(d.arguments, ion))
            spec = ExperimentSpec(_fill(d.file, ion), d.class_name, args,
                                  {**_fill(d.check_arguments, ion), **overrides.get(name, {})},
                                  {**_fill(d.calibrate_arguments, ion),
                                   **overrides.get(name, {})})
            if not available(spec):
                missing[name] = f"{spec.file} ({spec.class_name}) is not in the repository"
                continue
            common = dict(params=_fill(d.params, ion), dependencies=_fill(d.dependencies, ion),
                          timeout_s=d.timeout_s, tolerance=_fill(d.tolerance, ion),
                          rel_tolerance=_fill(d.rel_tolerance, ion),
                          bounds=_fill(d.bounds, ion))
            errors = _fill(d.errors, ion)
            if d.kind == "rate":
                nodes.append(RateCheckNode(name, spec, **HERALDING_KEYS, **common))
            elif d.kind == "experiment":
                nodes.append(ExperimentNode(name, spec, errors=errors, **common))
            elif d.kind == "phase":
                nodes.append(PhaseNode(name, spec, period=1.0, noise_k=d.noise_k,
                                       errors=errors, **common))
            else:
                raise ValueError(f"node {name}: unknown kind {d.kind!r}")
    present = {n.name for n in nodes}
    for n in nodes:
        n.dependencies = tuple(dep for dep in n.dependencies if dep in present)
    graph = CalGraph(nodes)
    for n in nodes:
        n.foreign = frozenset(p for p in graph.owner if p not in n.params)
    return graph, missing
