"""The metric registry: every metric the lab reports is a :class:`MetricSpec` registered here.

Three kinds, by what a metric is computed from:

* ``per_user``: one value per test user from the ranks of their positives (:class:`RankFacts`);
  averaged over users with bootstrap intervals, broken down by segment, paired-tested.
* ``per_list``: one value per user's top-k list (:class:`ListFacts`); averaged over users.
* ``aggregate``: one value over all users' top-k lists (:class:`ListFacts`).

A metric's definition is its compute function's docstring; the README's metric section and
the report read it from there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp

Kind = Literal["per_user", "per_list", "aggregate"]
KINDS: tuple[Kind, ...] = ("per_user", "per_list", "aggregate")


@dataclass(frozen=True)
class RankFacts:
    """The ranks of every evaluated user's test positives, grouped by user (what per-user metrics read).

    Attributes
    ----------
    user, rank
        Per positive: the evaluated user's index (0..n_users-1) and its 0-based rank, sorted by (user, rank).
    start
        Index of each user's first (best-ranked) positive in ``user``/``rank``.
    within
        Position of each positive among its user's positives (0 = best ranked).
    at_or_above
        Per positive: how many of its user's positives rank at or above it.
    n_test, n_train, n_excluded
        Per user: test positives, history length, items excluded from the ranking.
    n_items
        Items in the catalog.
    """

    user: np.ndarray
    rank: np.ndarray
    start: np.ndarray
    within: np.ndarray
    at_or_above: np.ndarray
    n_test: np.ndarray
    n_train: np.ndarray
    n_excluded: np.ndarray
    n_items: int

    @property
    def n_users(self) -> int:
        return len(self.n_test)

    def hits(self, k: int) -> np.ndarray:
        """Per user: positives ranked in the top ``k``."""
        return np.bincount(self.user, weights=self.rank < k, minlength=self.n_users)


@dataclass(frozen=True)
class ListFacts:
    """Top-k lists (rows of item positions, -1 = empty slot) with what list metrics need about the items.

    ``popularity`` is each item's number of known (train) users; ``n_train_users`` the users with
    any known positive; ``item_features`` the item feature matrix (``None``: none); ``item_owner`` each item's
    owner as a code 0.. (e.g. its creator: the column an experiment names under ``exposure: {by: ...}``; ``None``:
    none named).
    """

    top: np.ndarray
    popularity: np.ndarray
    n_train_users: int
    item_features: sp.spmatrix | None = None
    item_owner: np.ndarray | None = None


Compute = Callable[..., "np.ndarray | float"]


@dataclass(frozen=True)
class MetricSpec:
    """A registered metric.

    Attributes
    ----------
    name
        Its name in the lab (``name@k`` when it takes k).
    kind
        ``per_user``, ``per_list`` or ``aggregate`` (see the module docstring).
    compute
        ``compute(facts, k)``: per user (``RankFacts``) or per list (``ListFacts``) an array in user
        order, or (aggregate) one float; ``k`` is ``None`` when the metric takes none. Its
        docstring is the metric's definition.
    takes_k
        Whether it is cut at k (``ndcg@10``) or not (``auc``).
    higher_is_better
        Its direction; ``None`` for a descriptive figure (e.g. average popularity).
    bounded
        Whether every value lies in [0, 1] (the shared test checks it).
    needs
        What a list metric needs besides the lists: ``"item_features"``, ``"item_owner"`` or nothing; without it
        the metric is left out.
    """

    name: str
    kind: Kind
    compute: Compute
    takes_k: bool = True
    higher_is_better: bool | None = True
    bounded: bool = True
    needs: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"metric {self.name}: kind {self.kind!r} is not one of {KINDS}")
        if not self.name.isidentifier() or not self.name.islower():
            raise ValueError(f"metric name {self.name!r}: lower-case letters, digits and _ only")

    @property
    def definition(self) -> str:
        """The first paragraph of the compute function's docstring."""
        return (self.compute.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")

    def columns(self, ks: list[int] | tuple[int, ...]) -> list[str]:
        """Its column names for a k list (``name@k`` per k, or ``name``)."""
        return [f"{self.name}@{k}" for k in ks] if self.takes_k else [self.name]


_REGISTRY: dict[str, MetricSpec] = {}


def register(spec: MetricSpec) -> MetricSpec:
    """Add a metric (a module's last line); a second metric of the same name is refused."""
    if spec.name in _REGISTRY:
        raise ValueError(f"metric {spec.name!r} is registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def metric_specs(kind: Kind | None = None) -> tuple[MetricSpec, ...]:
    """Registered metrics in registration order (of one kind when given)."""
    return tuple(s for s in _REGISTRY.values() if kind is None or s.kind == kind)


def metric_spec(name: str) -> MetricSpec:
    """The registered metric ``name`` (``KeyError`` if none)."""
    return _REGISTRY[name]
