"""Diversification: MMR (maximal marginal relevance) re-ranking over item-feature cosine similarity.

Each next item maximises ``(1 - λ) · relevance - λ · max similarity to the items already
chosen``. λ = 0 keeps the ranking; a re-ranking that would lower the list's intra-list
diversity is not used, so diversifying never makes a list less diverse.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from kdq_lab.evaluation.beyond import intra_list_diversity
from kdq_lab.linalg import unit_rows


def mmr(relevance: np.ndarray, candidates: np.ndarray, item_features: sp.spmatrix, lam: float, k: int) -> np.ndarray:
    """MMR re-ranking of each row's candidates (item positions sorted by relevance, best first).

    Returns the chosen items (rows × k). At ``lam = 0`` it is the candidates' order. A row
    whose re-ranking would have lower intra-list diversity than its first ``k`` candidates
    keeps those instead.
    """
    relevance = np.atleast_2d(np.asarray(relevance, dtype=np.float64))
    candidates = np.atleast_2d(candidates)
    users, n = candidates.shape
    k = min(k, n)
    low, high = relevance.min(axis=1, keepdims=True), relevance.max(axis=1, keepdims=True)
    rel = (relevance - low) / np.where(high > low, high - low, 1.0)
    unit = unit_rows(item_features)
    dense = unit[np.maximum(candidates, 0).ravel()].toarray().reshape(users, n, -1)
    similarity = np.einsum("unf,umf->unm", dense, dense)
    chosen = np.zeros((users, n), dtype=bool)
    closest = np.zeros((users, n))
    picks = np.zeros((users, k), dtype=np.int64)
    rows = np.arange(users)
    for step in range(k):  # k positions, each vectorised over users and candidates
        gain = np.where(chosen, -np.inf, (1 - lam) * rel - lam * closest)
        pick = np.argmax(gain, axis=1)
        picks[:, step] = pick
        chosen[rows, pick] = True
        closest = np.maximum(closest, similarity[rows, pick, :])
    reranked = np.take_along_axis(candidates, picks, axis=1)
    plain = candidates[:, :k]
    worse = intra_list_diversity(reranked, item_features) < intra_list_diversity(plain, item_features) - 1e-12
    reranked[worse] = plain[worse]
    return reranked
