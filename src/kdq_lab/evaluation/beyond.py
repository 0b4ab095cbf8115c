"""Beyond accuracy: the registered list metrics of top-k lists, and ndcg of given lists."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from kdq_lab.evaluation.metrics import ListFacts, metric_specs
from kdq_lab.evaluation.metrics.lists import intra_list_diversity
from kdq_lab.evaluation.metrics.ranking import ndcg_from_ranks

__all__ = ["beyond_accuracy", "intra_list_diversity", "list_metrics", "ndcg_of_lists"]


def list_metrics(facts: ListFacts, k: int) -> dict[str, float | np.ndarray]:
    """Every registered ``aggregate`` (one float) and ``per_list`` (one value per list) metric of ``facts.top``.

    ``facts.top`` is already cut at ``k``; a metric is left out when what it ``needs`` (item features, item
    owners) is missing.
    """
    out: dict[str, float | np.ndarray] = {}
    for spec in metric_specs():
        if spec.kind == "per_user" or (spec.needs is not None and getattr(facts, spec.needs) is None):
            continue
        out[spec.name] = spec.compute(facts, k)
    return out


def beyond_accuracy(
    top: np.ndarray, popularity: np.ndarray, n_train_users: int, item_features: sp.spmatrix | None = None
) -> dict[str, float]:
    """Aggregate figures of top-k lists (rows of item positions, -1 = empty slot): each list metric's value.

    Per-list metrics (diversity) are averaged over lists (NaN lists skipped); see each metric's definition
    in :mod:`kdq_lab.evaluation.metrics`.
    """
    facts = ListFacts(np.asarray(top), np.asarray(popularity), n_train_users, item_features)
    values = list_metrics(facts, top.shape[1] if np.ndim(top) == 2 else len(top))
    return {name: float(np.nanmean(v)) if isinstance(v, np.ndarray) else v for name, v in values.items()}


def ndcg_of_lists(top: np.ndarray, relevant: sp.spmatrix, k: int) -> np.ndarray:
    """ndcg@k of given ranked lists (rows of item positions, -1 = empty) against binary relevance rows."""
    top = np.atleast_2d(top)[:, :k]
    relevant = sp.csr_matrix(relevant)
    rows = np.repeat(np.arange(len(top)), top.shape[1])
    hits = (np.asarray(relevant[rows, np.maximum(top.ravel(), 0)]).ravel() > 0) & (top.ravel() >= 0)
    owner, position = np.divmod(np.flatnonzero(hits), top.shape[1])
    return ndcg_from_ranks(owner, position.astype(np.float64), relevant.getnnz(axis=1), k)
