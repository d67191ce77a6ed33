"""Small-vector helpers of the virtual node's hot path, in plain Python floats.

The node's per-attempt state is 4-level population vectors; for vectors that short, numpy's
per-call overhead dominates. These helpers reproduce numpy's results bit for bit (same
operation order) and consume random streams exactly as the numpy calls they replace.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def choose(rng: np.random.Generator, weights: Sequence[float]) -> int:
    """Index drawn with probabilities ``weights`` (non-negative, not all zero; normalised
    here), exactly as ``rng.choice(len(weights), p=weights / sum(weights))`` draws it: one
    ``rng.random()`` against the normalised cumulative sums (numpy's algorithm), so the
    result and the stream's state are the same."""
    total = 0.0
    for w in weights:
        total += w
    if not total > 0:
        raise ValueError(f"choose: weights {list(weights)!r} do not sum to a positive value")
    cdf = []
    acc = 0.0
    for w in weights:
        acc += w / total
        cdf.append(acc)
    last = cdf[-1]
    u = rng.random()
    k = 0
    for c in cdf:
        if c / last <= u:
            k += 1
        else:
            break
    return k
