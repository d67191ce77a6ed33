"""Photons from the nodes to the heralding station: emission, loss, interference, detection.

Emissions of one attempt are collected in a :class:`PhotonBatch` as *branches* per node: a
branch is the tuple of photon modes the node emitted and the operator it applied to that ion
(the emission Kraus operator followed by any unitary the ion saw since). A *mode* is one
temporal slot of one emission (index into the node's ``emit_times_mu``): a single-photon
emission opens one mode, a two-photon (time-bin) emission two (early, late); mode ``m`` of
node A meets mode ``m`` of node B.

When the batch is resolved, photons are lost with probability ``1 - eta`` (the environment
keeps which photon was lost) and the survivors meet on a 50:50 beam splitter: node A's mode
goes to detectors 0/1 with amplitudes (1, 1)/sqrt2, node B's with exp(i phi) (1, -1)/sqrt2
(phi = fibre phase). Imperfect mode matching: node B's photon is in A's mode with amplitude
sqrt(M) and in an orthogonal mode with sqrt(1 - M) (M = ``station.mode_overlap``); the two do
not interfere but the detectors cannot tell them apart. Photon-number states of the detector
modes are orthogonal outcomes; non-number-resolving detectors click once per occupied
(detector, mode). The result is a set of Kraus operators on the two ions, one per
distinguishable outcome.

The outcome structure only depends on the branches' photon tuples, so it is compiled once per
structure (:func:`_template`) and evaluated with numpy for the current eta, phase and overlap.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ionlink.node.ion import LEVELS, D, E, S

INV_SQRT2 = 1 / math.sqrt(2)


class PhotonBatch:
    """Emissions waiting to be resolved together (they interfere at the station).

    The operations on each node (emissions, unitaries) are logged and turned into
    ``branches`` only when needed: a batch that entered in a classical product state
    (``pops``) and saw no coherent (non-diagonal) operation can be resolved to "no click"
    from the logged photon-generation probabilities alone (:meth:`no_click_populations`).
    """

    def __init__(self, rho0: np.ndarray | None, pops: list[np.ndarray] | None = None):
        if rho0 is None and pops is None:
            raise ValueError("a photon batch needs the joint state or the ions' populations")
        self.rho0 = rho0
        #: population vectors of the ions when they entered as a classical product state
        self.pops = pops
        self.emit_times_mu: list[list[int]] = [[], []]
        self.deferred_s = [0.0, 0.0]
        #: only diagonal (phase) unitaries were applied: the no-click map is classical
        self.monomial = True
        self._log: list[list[tuple]] = [[], []]
        self._branches: list | None = None
        self._first: int | None = None

    @classmethod
    def start(cls, rho: np.ndarray | None, pops: list[np.ndarray] | None = None
              ) -> PhotonBatch:
        return cls(rho, pops)

    @property
    def marginals(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The ions' density matrices if they entered as a (classical) product state."""
        if self.pops is None:
            return None
        return tuple(np.diag(p).astype(complex) for p in self.pops)

    def emit(self, ion: int, k0: np.ndarray, photons: list[tuple[np.ndarray, int]],
             splits: tuple[tuple[int, float], ...] = ()) -> None:
        """Node ``ion`` emits nothing (Kraus ``k0``) or one photon, in the new mode of one of
        ``photons`` = [(Kraus, emission time in mu), ...] (one new mode per entry).
        ``splits`` = ((level reached, probability), ...) per photon entry, for the classical
        no-click map. A Kraus operator may be given as a zero-argument callable returning
        it: it is then built only if the branches are needed (not for a batch resolved as
        "no click" from ``splits``)."""
        modes = []
        for _, t_mu in photons:
            modes.append(len(self.emit_times_mu[ion]))
            self.emit_times_mu[ion].append(int(t_mu))
            if self._first is None or t_mu < self._first:
                self._first = int(t_mu)
        self._log[ion].append(("emit", k0, photons, modes, splits))
        if not splits:
            self.monomial = False
        self._branches = None

    def apply_unitary(self, ion: int, u: np.ndarray, diagonal: bool = False) -> None:
        """A unitary on one ion while the photons fly (``diagonal``: known to be diagonal)."""
        if not diagonal and np.count_nonzero(u - np.diag(np.diagonal(u))):
            self.monomial = False
        self._log[ion].append(("u", u))
        self._branches = None

    def apply_phase(self, ion: int, phase: float) -> None:
        """The diagonal unitary ``diag(1, e^{-i phase}, 1, e^{-i phase})`` (phase on D and E)
        on one ion; its matrix is built only if the branches are needed."""
        self._log[ion].append(("u", _PhaseFactory(phase)))
        self._branches = None

    def defer_phase(self, ion: int, dt_s: float) -> _PhaseFactory:
        """Log :meth:`apply_phase` with a phase not known yet (the dephasing noise over
        ``dt_s`` seconds, drawn only if the branches are needed): the caller sets the
        returned factory's ``phase`` before :attr:`branches` is read."""
        factory = _PhaseFactory(None, dt_s)
        self._log[ion].append(("u", factory))
        self._branches = None
        return factory

    @property
    def branches(self) -> list[list[tuple[tuple[int, ...], np.ndarray]]]:
        """Per node: (photon modes emitted, operator applied to the ion) per branch."""
        if self._branches is None:
            eye = np.eye(LEVELS, dtype=complex)
            out = []
            for log in self._log:
                br = [((), eye)]
                for entry in log:
                    if entry[0] == "u":
                        u = _matrix(entry[1])
                        br = [(ph, u @ op) for ph, op in br]
                        continue
                    _, k0, photons, modes, _ = entry
                    k0 = _matrix(k0)
                    ks = [_matrix(k1) for k1, _ in photons]
                    new = []
                    for ph, op in br:
                        new.append((ph, k0 @ op))
                        for mode, k1 in zip(modes, ks, strict=True):
                            new.append((ph + (mode,), k1 @ op))
                    br = new
                out.append(br)
            self._branches = out
        return self._branches

    def no_click_populations(self, eta: tuple[float, float]) -> list[np.ndarray]:
        """Unnormalised populations of each ion given that no photon was detected (each
        photon lost with probability 1 - eta); needs ``pops`` and ``monomial``."""
        return [np.array(v) for v in self.no_click_lists(eta)]

    def no_click_lists(self, eta: tuple[float, float]) -> list[list[float]]:
        """:meth:`no_click_populations` as lists of floats (cheaper for 4 levels)."""
        out = []
        for i in range(2):
            v = self.pops[i].tolist()
            loss = 1.0 - eta[i]
            for entry in self._log[i]:
                if entry[0] != "emit":
                    continue
                p_s = v[S]
                for level, p in entry[4]:
                    v[S] -= p_s * p
                    v[level] += p_s * p * loss
            out.append(v)
        return out

    def first_emission_mu(self) -> int:
        """Earliest emission time (mu) of the batch."""
        if self._first is None:
            raise ValueError("the photon batch has no emission yet")
        return self._first


def _matrix(op) -> np.ndarray:
    """An operator given as a matrix or as a zero-argument callable building it."""
    return op if isinstance(op, np.ndarray) else op()


class _PhaseFactory:
    """Builds ``diag(1, e^{-i phase}, 1, e^{-i phase})`` on demand (see ``apply_phase``)."""

    __slots__ = ("phase", "dt")

    def __init__(self, phase: float | None, dt_s: float = 0.0):
        self.phase = phase
        self.dt = dt_s      # (deferred phases: the noise interval they stand for, s)

    def __call__(self) -> np.ndarray:
        if self.phase is None:
            raise RuntimeError("a deferred noise phase was used before it was drawn")
        u = np.ones(LEVELS, dtype=complex)
        u[D] = u[E] = np.exp(-1j * self.phase)
        return np.diag(u)


@dataclass(frozen=True)
class _Template:
    """Compiled outcome structure: one row per amplitude term."""

    key: np.ndarray        # outcome index of the term
    ia: np.ndarray         # branch of node A
    ib: np.ndarray         # branch of node B
    const: np.ndarray      # beam-splitter signs, 1/sqrt2 factors, sqrt(n!) (real)
    powers: np.ndarray     # (terms, 6): kept A, lost A, kept B, lost B, B in A's mode, B orth.
    clicks: list[tuple[tuple[int, int], ...]]
    n_keys: int


@lru_cache(maxsize=256)
def _template(photons_a: tuple[tuple[int, ...], ...], photons_b: tuple[tuple[int, ...], ...],
              flavours: tuple[int, ...]) -> _Template:
    sign = [(1.0, 1.0), (1.0, -1.0)]
    keys: dict[tuple, int] = {}
    rows = []
    for ia, ph_a in enumerate(photons_a):
        for ib, ph_b in enumerate(photons_b):
            photons = [(0, m) for m in ph_a] + [(1, m) for m in ph_b]
            for alive in itertools.product((True, False), repeat=len(photons)):
                kept = [p for p, ok in zip(photons, alive, strict=True) if ok]
                lost = tuple(sorted(p for p, ok in zip(photons, alive, strict=True) if not ok))
                ka = sum(1 for p in kept if p[0] == 0)
                kb = len(kept) - ka
                la = sum(1 for p in lost if p[0] == 0)
                lb = len(lost) - la
                flav_choices = [(0,) if node == 0 else flavours for node, _ in kept]
                for dets in itertools.product((0, 1), repeat=len(kept)):
                    for flav in itertools.product(*flav_choices):
                        a = 1.0
                        occ: dict[tuple[int, int, int], int] = {}
                        for (node, mode), d, f in zip(kept, dets, flav, strict=True):
                            a *= sign[node][d] * INV_SQRT2
                            occ[(d, mode, f)] = occ.get((d, mode, f), 0) + 1
                        # (a^dag)^n |0> = sqrt(n!) |n>; assignments reaching one |n> add
                        for n in occ.values():
                            a *= math.sqrt(math.factorial(n))
                        key = (lost, tuple(sorted(occ.items())))
                        k = keys.setdefault(key, len(keys))
                        n_par = sum(1 for (node, _), f in zip(kept, flav, strict=True)
                                    if node == 1 and f == 0)
                        rows.append((k, ia, ib, a, ka, la, kb, lb, n_par, kb - n_par))
    arr = np.array(rows, dtype=float).reshape(-1, 10)
    clicks = [()] * len(keys)
    for (_, occ), k in keys.items():
        clicks[k] = tuple(sorted({(d, m) for (d, m, _), _n in occ}))
    return _Template(key=arr[:, 0].astype(np.intp), ia=arr[:, 1].astype(np.intp),
                     ib=arr[:, 2].astype(np.intp), const=arr[:, 3],
                     powers=arr[:, 4:].astype(np.intp), clicks=clicks, n_keys=len(keys))


def outcome_kraus(batch: PhotonBatch, eta: tuple[float, float], phase: float,
                  mode_overlap: float = 1.0
                  ) -> tuple[np.ndarray, list[tuple[tuple[int, int], ...]]]:
    """Kraus operators (k, L*L, L*L) on the ion pair (L = LEVELS) and, per operator, the
    clicked (detector, mode) pairs."""
    br_a, br_b = batch.branches
    flavours = tuple(f for f, w in ((0, mode_overlap), (1, 1 - mode_overlap)) if w > 0)
    tpl = _template(tuple(ph for ph, _ in br_a), tuple(ph for ph, _ in br_b), flavours)
    base = np.array([math.sqrt(eta[0]), math.sqrt(1 - eta[0]), math.sqrt(eta[1]),
                     math.sqrt(1 - eta[1]), math.sqrt(mode_overlap),
                     math.sqrt(1 - mode_overlap)])
    w = tpl.const * np.prod(base ** tpl.powers, axis=1)
    amp = w * np.exp(1j * phase * tpl.powers[:, 2])
    size = tpl.n_keys * len(br_a) * len(br_b)
    flat = (tpl.key * len(br_a) + tpl.ia) * len(br_b) + tpl.ib
    coeffs = (np.bincount(flat, amp.real, size) + 1j * np.bincount(flat, amp.imag, size)
              ).reshape(tpl.n_keys, len(br_a), len(br_b))
    live = np.flatnonzero(np.any(coeffs != 0, axis=(1, 2)))
    coeffs = coeffs[live]
    ops_a = np.array([op for _, op in br_a])
    ops_b = np.array([op for _, op in br_b])
    return _combine(coeffs, ops_a, ops_b), [tpl.clicks[k] for k in live]


def _combine(coeffs: np.ndarray, ops_a: np.ndarray, ops_b: np.ndarray) -> np.ndarray:
    """Joint operators ``K_k = sum_xy coeffs[k, x, y] A_x (x) B_y`` as (k, L*L, L*L) (one
    matrix product over the branch pairs' tensor products; = einsum "kxy,xai,ybj->kabij")."""
    n = LEVELS
    pairs = ops_a[:, None, :, None, :, None] * ops_b[None, :, None, :, None, :]
    k = coeffs.shape[0]
    return (coeffs.reshape(k, -1) @ pairs.reshape(-1, n ** 4)).reshape(k, n * n, n * n)


def sample_wavepacket(rng: np.random.Generator, shape: str, time_s: float) -> float:
    """Delay (s) of the photon within its temporal wavepacket."""
    if shape == "exponential":
        return float(rng.exponential(time_s))
    return float(abs(rng.normal(0.0, time_s)))
