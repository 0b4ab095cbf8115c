"""Exposure of item owners (e.g. creators) in the top-k lists: how concentrated it is.

An item's exposure in a list is position-weighted like ndcg: 1 / log2(position + 2) (position 0 = top). An
owner's exposure is the sum over its items in every list; owners are the values of the item column the experiment
names (``exposure: {by: creator}``), and owners never shown count with 0; an item without an owner (code -1)
counts for nobody. Needs ``ListFacts.item_owner``.
"""

from __future__ import annotations

import numpy as np

from kdq_lab.evaluation.metrics.registry import ListFacts, MetricSpec, register


def owner_exposure(f: ListFacts) -> np.ndarray:
    """Position-weighted exposure (1 / log2(position + 2)) summed per owner, over every owner of the catalog."""
    assert f.item_owner is not None  # declared in ``needs``
    top = np.atleast_2d(f.top)
    rows, positions = np.nonzero(top >= 0)
    owners = f.item_owner[top[rows, positions]]
    owned = owners >= 0  # an item without an owner (code -1) is nobody's exposure
    weights = 1.0 / np.log2(positions[owned] + 2.0)
    return np.bincount(owners[owned], weights=weights, minlength=int(f.item_owner.max(initial=-1)) + 1)


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative values (0: all equal; near 1: one holds everything); NaN if all are 0."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    n, total = len(x), x.sum()
    if n == 0 or total <= 0:
        return np.nan
    return float((2.0 * np.sum(np.arange(1, n + 1) * x) / (n * total)) - (n + 1.0) / n)


def exposure_gini(f: ListFacts, k: int) -> float:
    """Gini coefficient of the owners' position-weighted exposure in the top-k lists (owners never shown count 0)."""
    return gini(owner_exposure(f))


def _top_share(f: ListFacts, share: float) -> float:
    exposure = np.sort(owner_exposure(f))[::-1]
    total = exposure.sum()
    return float(exposure[: max(1, int(np.ceil(share * len(exposure))))].sum() / total) if total > 0 else np.nan


def exposure_top1(f: ListFacts, k: int) -> float:
    """Share of all position-weighted exposure held by the top 1% of owners (at least one owner)."""
    return _top_share(f, 0.01)


def exposure_top10(f: ListFacts, k: int) -> float:
    """Share of all position-weighted exposure held by the top 10% of owners (at least one owner)."""
    return _top_share(f, 0.10)


register(MetricSpec("exposure_gini", "aggregate", exposure_gini, higher_is_better=False, needs="item_owner"))
register(MetricSpec("exposure_top1", "aggregate", exposure_top1, higher_is_better=False, needs="item_owner"))
register(MetricSpec("exposure_top10", "aggregate", exposure_top10, higher_is_better=False, needs="item_owner"))
