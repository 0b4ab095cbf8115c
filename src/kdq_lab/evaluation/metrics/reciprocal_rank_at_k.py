"""``rr@k``: the reciprocal rank cut at k (what ranx and trec_eval call ``mrr@k``/``recip_rank`` at a cut-off)."""

from __future__ import annotations

import numpy as np

from kdq_lab.evaluation.metrics.registry import MetricSpec, RankFacts, register


def reciprocal_rank_at_k(f: RankFacts, k: int) -> np.ndarray:
    """1 / (rank of the best-ranked test positive + 1) when it is in the top k, else 0."""
    best = f.rank[f.start]
    return np.where(best < k, 1.0 / (best + 1.0), 0.0)


register(MetricSpec("rr", "per_user", reciprocal_rank_at_k))
