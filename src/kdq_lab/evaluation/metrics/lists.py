"""Metrics of top-k lists: catalog coverage, novelty, average popularity (over all lists), intra-list diversity."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from kdq_lab.evaluation.metrics.registry import ListFacts, MetricSpec, register
from kdq_lab.linalg import unit_rows


def coverage(f: ListFacts, k: int) -> float:
    """Share of the catalog recommended to at least one user."""
    return len(np.unique(f.top[f.top >= 0])) / len(f.popularity)


def novelty(f: ListFacts, k: int) -> float:
    """Mean self-information -log2((pop + 1) / (train users + 1)) of every recommended item (pop: its train users)."""
    items = f.top[f.top >= 0]
    popularity = np.asarray(f.popularity, dtype=np.float64)
    if not len(items):
        return np.nan
    return float(np.mean(-np.log2((popularity[items] + 1.0) / (f.n_train_users + 1.0))))


def average_popularity(f: ListFacts, k: int) -> float:
    """Mean number of train users of every recommended item (ARP over all recommended slots)."""
    items = f.top[f.top >= 0]
    return float(np.asarray(f.popularity, dtype=np.float64)[items].mean()) if len(items) else np.nan


def diversity(f: ListFacts, k: int) -> np.ndarray:
    """Per list: mean pairwise (1 - cosine) of its items' feature vectors (NaN with fewer than 2 items)."""
    assert f.item_features is not None  # declared in ``needs``
    return intra_list_diversity(f.top, f.item_features)


def intra_list_diversity(top: np.ndarray, item_features: sp.spmatrix) -> np.ndarray:
    """Per list: mean pairwise (1 - cosine) of the items' feature vectors (NaN with < 2 items).

    Uses Σ_pairs cos = (‖Σ_j f_j‖² - Σ_j ‖f_j‖²) / 2 for unit rows f_j: no k × k loops.
    """
    top = np.atleast_2d(top)
    unit = unit_rows(item_features)
    valid = top >= 0
    rows, cols = np.nonzero(valid)
    pick = sp.csr_matrix((np.ones(len(rows)), (rows, top[rows, cols])), shape=(len(top), unit.shape[0]))
    summed = pick @ unit
    squares = np.asarray(summed.multiply(summed).sum(axis=1)).ravel()
    self_terms = np.asarray(pick @ np.asarray(unit.multiply(unit).sum(axis=1)).ravel()).ravel()
    n = valid.sum(axis=1).astype(np.float64)
    pairs = n * (n - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(pairs > 0, 1.0 - (squares - self_terms) / pairs, np.nan)


register(MetricSpec("coverage", "aggregate", coverage))
register(MetricSpec("novelty", "aggregate", novelty, bounded=False))
register(MetricSpec("diversity", "per_list", diversity, needs="item_features"))
register(MetricSpec("popularity", "aggregate", average_popularity, higher_is_better=None, bounded=False))
