"""Studies of curation on a split (notebook 05): how lists move between neighbouring profiles,
what diversification costs, and what the popularity baseline would have shown."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from kdq_lab.curate.rerank import mmr
from kdq_lab.evaluation.beyond import intra_list_diversity, ndcg_of_lists
from kdq_lab.evaluation.ranking import best_positions
from kdq_lab.models.base import FeatureAware


def neighbour_overlap(model: FeatureAware, base_rows: sp.csr_matrix, k: int = 10, seed: int = 0) -> pd.DataFrame:
    """How much a ranking changes between neighbouring profiles.

    For every row (a profile as multi-hot vocabulary features) one present value is
    dropped at random; returns the dropped column and the overlap of the two top-k
    lists (1 = unchanged).
    """
    base = sp.csr_matrix(base_rows, dtype=np.float32)
    counts = np.diff(base.indptr)
    rows = np.flatnonzero(counts > 0)
    rng = np.random.default_rng(seed)
    drop = base.indptr[rows] + np.floor(rng.random(len(rows)) * counts[rows]).astype(np.int64)
    neighbour = base.copy()
    neighbour.data[drop] = 0
    neighbour.eliminate_zeros()
    original = best_positions(model.score_rows(model.compose_new(base[rows])), k)
    changed = best_positions(model.score_rows(model.compose_new(neighbour[rows])), k)
    overlap = (original[:, :, None] == changed[:, None, :]).any(axis=2).sum(axis=1) / k
    names = pd.Series(np.array(model.user_vocab_.names, dtype=object)[base.indices[drop]], dtype=object)
    return pd.DataFrame(
        {"row": rows, "column": names.str.partition(":")[0].to_numpy(), "dropped": names.to_numpy(), "overlap": overlap}
    )


def diversification_cost(
    model: FeatureAware,
    user_rows: sp.csr_matrix,
    relevant: sp.csr_matrix,
    item_features: sp.spmatrix,
    lambdas: list[float],
    k: int = 10,
    candidates: int = 50,
) -> pd.DataFrame:
    """ndcg@k and intra-list diversity of MMR re-rankings at each λ (rows: users' composed features)."""
    scores = model.score_rows(user_rows).astype(np.float64)
    pool = best_positions(scores, candidates)
    relevance = np.take_along_axis(scores, pool, axis=1)
    out = []
    for lam in lambdas:
        lists = mmr(relevance, pool, item_features, lam, k) if lam > 0 else pool[:, :k]
        out.append(
            {
                "lambda": lam,
                f"ndcg@{k}": float(np.nanmean(ndcg_of_lists(lists, relevant, k))),
                f"diversity@{k}": float(np.nanmean(intra_list_diversity(lists, item_features))),
                "changed_share": float((lists != pool[:, :k]).any(axis=1).mean()),
            }
        )
    return pd.DataFrame(out)


def popular_titles(model: object, items: pd.DataFrame, k: int, column: str = "title") -> list[str]:
    """What a popularity model (fitted) would show anyone: its top-``k`` titles, in its tie order."""
    from kdq_lab.evaluation.ranking import top_k

    top = top_k(model, np.zeros(1, dtype=np.int64), k, exclude=sp.csr_matrix((1, len(items))))[0]
    return items.iloc[top[top >= 0]][column].tolist()
