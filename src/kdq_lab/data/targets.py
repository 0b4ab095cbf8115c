"""What a part of a split asks a model to find, and which items it may not recommend.

Two exclusion rules (an experiment's ``exclude`` key):

``seen`` (the default)
    Every item the user had any event with before the evaluated period (a view, a low
    rating, a like) is excluded from their ranking: KDQ does not offer content again
    that someone has already opened, and MovieLens protocols exclude every rated item.
    A positive of the evaluated period on such an item cannot be recommended, so it is
    dropped from the target (and counted).
``train_positives``
    Only the positives before the evaluated period are excluded: what
    ``lightfm.evaluation`` does with ``train_interactions``. Used for LightFM parity.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import scipy.sparse as sp

from kdq_lab.data.store import SplitData
from kdq_lab.errors import KdqError

ExcludeRule = Literal["seen", "train_positives"]
EXCLUDE_RULES: tuple[str, ...] = ("seen", "train_positives")


@dataclass(frozen=True)
class Target:
    """The positives to find in one part, what is excluded, and the history behind them.

    Attributes
    ----------
    positives
        Binary users × items: the items to find.
    exclude
        Binary users × items: never ranked (disjoint from ``positives``).
    history
        Known positives per user before the part (history length, for segments).
    dropped
        Positives removed because the user had already seen the item.
    """

    positives: sp.csr_matrix
    exclude: sp.csr_matrix
    history: np.ndarray
    dropped: int


def _binary(matrix: sp.spmatrix) -> sp.csr_matrix:
    out = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    out.eliminate_zeros()
    out.data[:] = 1
    return out


def target(split: SplitData, part: Literal["validation", "test"], rule: str = "seen") -> Target:
    """The target of ``part`` (test: after train + validation; validation: after train) under ``rule``."""
    if rule not in EXCLUDE_RULES:
        raise KdqError(f"exclude rule {rule!r} is unknown; choose one of {', '.join(EXCLUDE_RULES)}")
    known = split.known.interactions if part == "test" else split.train.interactions
    positives = _binary(getattr(split, part).interactions)
    exclude = _binary(known)
    dropped = 0
    if rule == "seen":
        seen = _binary(split.seen_known if part == "test" else split.seen_train)
        exclude = _binary(exclude + seen)
        kept = _binary(positives - positives.multiply(seen))
        dropped = positives.nnz - kept.nnz
        positives = kept
    return Target(positives, exclude, known.getnnz(axis=1).astype(np.int64), dropped)


def sample_users(goal: Target, size: int | None, seed: int | np.random.Generator) -> Target:
    """``goal`` restricted to a seeded sample of ``size`` of its users with positives (all when ``None``).

    The other users keep their exclusions and history but have nothing to find, so no
    evaluation ranks them.
    """
    users = np.flatnonzero(goal.positives.getnnz(axis=1) > 0)
    if size is None or size >= len(users):
        return goal
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    keep = np.zeros(goal.positives.shape[0], dtype=np.float32)
    keep[rng.choice(users, size=size, replace=False)] = 1
    return replace(goal, positives=sp.csr_matrix(sp.diags(keep) @ goal.positives))
