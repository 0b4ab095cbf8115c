"""Beyond accuracy: catalog coverage, novelty, intra-list diversity and popularity of top-k lists."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from kdq_lab.evaluation.ranking import ndcg_from_ranks
from kdq_lab.linalg import unit_rows


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


def beyond_accuracy(
    top: np.ndarray, popularity: np.ndarray, n_train_users: int, item_features: sp.spmatrix | None = None
) -> dict[str, float]:
    """Aggregate metrics of top-k lists (rows of item positions, -1 = empty slot).

    coverage
        share of the catalog recommended to at least one user;
    novelty
        mean self-information -log2((pop + 1) / (n_train_users + 1)) of recommended items;
    diversity
        mean intra-list diversity (item-feature cosine), when features are given;
    popularity
        average number of train users of recommended items (ARP).
    """
    valid = top >= 0
    items = top[valid]
    popularity = np.asarray(popularity, dtype=np.float64)
    out = {
        "coverage": len(np.unique(items)) / len(popularity),
        "novelty": float(np.mean(-np.log2((popularity[items] + 1.0) / (n_train_users + 1.0))))
        if len(items)
        else np.nan,
        "popularity": float(popularity[items].mean()) if len(items) else np.nan,
    }
    if item_features is not None:
        out["diversity"] = float(np.nanmean(intra_list_diversity(top, item_features)))
    return out


def ndcg_of_lists(top: np.ndarray, relevant: sp.spmatrix, k: int) -> np.ndarray:
    """ndcg@k of given ranked lists (rows of item positions, -1 = empty) against binary relevance rows."""
    top = np.atleast_2d(top)[:, :k]
    relevant = sp.csr_matrix(relevant)
    rows = np.repeat(np.arange(len(top)), top.shape[1])
    hits = (np.asarray(relevant[rows, np.maximum(top.ravel(), 0)]).ravel() > 0) & (top.ravel() >= 0)
    owner, position = np.divmod(np.flatnonzero(hits), top.shape[1])
    return ndcg_from_ranks(owner, position.astype(np.float64), relevant.getnnz(axis=1), k)
