"""Ranking metrics per user, from the ranks of the user's test positives (binary relevance)."""

from __future__ import annotations

import numpy as np

from kdq_lab.evaluation.metrics.registry import MetricSpec, RankFacts, register


def precision(f: RankFacts, k: int) -> np.ndarray:
    """Test positives in the top k, divided by k (also when the user has fewer than k positives)."""
    return f.hits(k) / k


def recall(f: RankFacts, k: int) -> np.ndarray:
    """Test positives in the top k, divided by the user's test positives."""
    return f.hits(k) / f.n_test


def ndcg(f: RankFacts, k: int) -> np.ndarray:
    """DCG of the top k (gain 1 per positive, discount 1/log2(rank + 2)) divided by the DCG of a perfect list."""
    return ndcg_from_ranks(f.user, f.rank, f.n_test, k)


def average_precision(f: RankFacts, k: int) -> np.ndarray:
    """Precision at each positive ranked in the top k, summed and divided by min(test positives, k)."""
    hit = f.rank < k
    precision_at_hit = np.where(hit, f.at_or_above / (f.rank + 1.0), 0.0)
    return np.bincount(f.user, weights=precision_at_hit, minlength=f.n_users) / np.minimum(f.n_test, k)


def hit(f: RankFacts, k: int) -> np.ndarray:
    """1 when at least one test positive is in the top k, else 0."""
    return (f.hits(k) > 0).astype(np.float64)


def reciprocal_rank(f: RankFacts, k: None = None) -> np.ndarray:
    """1 / (rank of the best-ranked test positive + 1), with no cut-off (``lightfm.evaluation.reciprocal_rank``)."""
    return 1.0 / (f.rank[f.start] + 1.0)


def auc(f: RankFacts, k: None = None) -> np.ndarray:
    """Share of (positive, negative) pairs ranked right; negatives are items neither test nor excluded.

    As ``lightfm.evaluation.auc_score``: ties count against the positive.
    """
    negatives = (f.n_items - f.n_test - f.n_excluded).astype(np.float64)
    shifted = np.maximum(f.rank - f.within, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.bincount(f.user, weights=1.0 - shifted / negatives[f.user], minlength=f.n_users) / f.n_test


def ndcg_from_ranks(owner: np.ndarray, rank: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """ndcg@k of each group (user or list) from the ranks of its relevant items: binary relevance, log2 discount.

    ``owner`` and ``rank`` list every relevant item's group and 0-based rank; NaN for a group
    without relevant items.
    """
    dcg = np.bincount(
        owner, weights=np.where(rank < k, 1.0 / np.log2(np.minimum(rank, k) + 2.0), 0.0), minlength=len(n_relevant)
    )
    ideal = ideal_dcg(n_relevant, k)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ideal > 0, dcg / ideal, np.nan)


def ideal_dcg(n_relevant: np.ndarray, k: int) -> np.ndarray:
    """DCG@k of a perfect list for users with ``n_relevant`` relevant items (0 when none)."""
    cumulative = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(k) + 2.0))])
    return cumulative[np.minimum(np.asarray(n_relevant), k)]


register(MetricSpec("precision", "per_user", precision))
register(MetricSpec("recall", "per_user", recall))
register(MetricSpec("ndcg", "per_user", ndcg))
register(MetricSpec("map", "per_user", average_precision))
register(MetricSpec("hit", "per_user", hit))
register(MetricSpec("mrr", "per_user", reciprocal_rank, takes_k=False))
register(MetricSpec("auc", "per_user", auc, takes_k=False))
