"""Photons from the nodes to the heralding station: emission, loss, interference, detection.

Emissions of one attempt are collected in a :class:`PhotonBatch` as *branches* per node: a
branch is the tuple of photon modes the node emitted (mode = index of the 393 pulse within the
batch) and the 3x3 operator it applied to that ion (the emission Kraus operator followed by any
unitary the ion saw since). When the batch is resolved, photons are lost with probability
``1 - eta`` (the environment keeps which photon was lost) and the survivors meet on a 50:50 beam
splitter: node A's mode goes to detectors 0/1 with amplitudes (1, 1)/sqrt2, node B's with
exp(i phi) (1, -1)/sqrt2 (phi = fibre phase). Photon-number states of the detector modes are
orthogonal outcomes; non-number-resolving detectors click for each occupied detector mode. The
result is a set of Kraus operators on the two ions, one per distinguishable outcome.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

INV_SQRT2 = 1 / math.sqrt(2)


@dataclass
class PhotonBatch:
    """Emissions waiting to be resolved together (they interfere at the station)."""

    rho0: np.ndarray
    branches: list[list[tuple[tuple[int, ...], np.ndarray]]]
    emit_times_mu: list[list[int]] = field(default_factory=lambda: [[], []])
    deferred_s: list[float] = field(default_factory=lambda: [0.0, 0.0])

    @classmethod
    def start(cls, rho: np.ndarray) -> PhotonBatch:
        eye = np.eye(3, dtype=complex)
        return cls(rho0=rho, branches=[[((), eye)], [((), eye)]])

    def emit(self, ion: int, k0: np.ndarray, k1: np.ndarray, t_mu: int) -> None:
        """Node ``ion`` emits (Kraus k1, photon in the next mode) or not (k0)."""
        mode = len(self.emit_times_mu[ion])
        self.emit_times_mu[ion].append(t_mu)
        new = []
        for photons, op in self.branches[ion]:
            new.append((photons, k0 @ op))
            new.append((photons + (mode,), k1 @ op))
        self.branches[ion] = new

    def apply_unitary(self, ion: int, u: np.ndarray) -> None:
        self.branches[ion] = [(ph, u @ op) for ph, op in self.branches[ion]]


def outcome_kraus(batch: PhotonBatch, eta: tuple[float, float], phase: float
                  ) -> tuple[np.ndarray, list[tuple[tuple[int, int], ...]]]:
    """Kraus operators (k, 9, 9) on the ion pair and, per operator, the clicked
    (detector, mode) pairs."""
    amp = [(INV_SQRT2, INV_SQRT2),
           (complex(math.cos(phase), math.sin(phase)) * INV_SQRT2,
            -complex(math.cos(phase), math.sin(phase)) * INV_SQRT2)]
    br_a, br_b = batch.branches
    coeffs: dict[tuple, np.ndarray] = {}
    for ia, (ph_a, _) in enumerate(br_a):
        for ib, (ph_b, _) in enumerate(br_b):
            photons = [(0, m) for m in ph_a] + [(1, m) for m in ph_b]
            for alive in itertools.product((True, False), repeat=len(photons)):
                w = 1.0
                lost = []
                kept = []
                for ph, ok in zip(photons, alive, strict=True):
                    w *= math.sqrt(eta[ph[0]] if ok else 1 - eta[ph[0]])
                    (kept if ok else lost).append(ph)
                if w == 0:
                    continue
                for dets in itertools.product((0, 1), repeat=len(kept)):
                    a = w
                    occ: dict[tuple[int, int], int] = {}
                    for (node, mode), d in zip(kept, dets, strict=True):
                        a *= amp[node][d]
                        occ[(d, mode)] = occ.get((d, mode), 0) + 1
                    # (a^dag)^n |0> = sqrt(n!) |n>; assignments reaching one |n> add coherently
                    for n in occ.values():
                        a *= math.sqrt(math.factorial(n))
                    key = (tuple(sorted(lost)), tuple(sorted(occ.items())))
                    c = coeffs.get(key)
                    if c is None:
                        c = coeffs[key] = np.zeros((len(br_a), len(br_b)), dtype=complex)
                    c[ia, ib] += a
    keys = list(coeffs)
    cstack = np.array([coeffs[k] for k in keys])
    ops_a = np.array([op for _, op in br_a])
    ops_b = np.array([op for _, op in br_b])
    kraus = np.einsum("kxy,xai,ybj->kabij", cstack, ops_a, ops_b).reshape(len(keys), 9, 9)
    clicks = [tuple(dm for dm, n in occ) for _, occ in keys]
    return kraus, clicks


def sample_wavepacket(rng: np.random.Generator, shape: str, time_s: float) -> float:
    """Delay (s) of the photon within its temporal wavepacket."""
    if shape == "exponential":
        return float(rng.exponential(time_s))
    return float(abs(rng.normal(0.0, time_s)))
