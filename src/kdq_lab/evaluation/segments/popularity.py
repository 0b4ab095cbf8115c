"""Item popularity of the hits: a per-run diagnostic (items, not users, so not a segment kind)."""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Item popularity buckets by share of the catalog, most popular first.
POPULARITY_BUCKETS: tuple[tuple[float, str], ...] = (
    (0.1, "head (top 10%)"),
    (0.5, "mid (next 40%)"),
    (1.0, "tail (last 50%)"),
)


def popularity_bucket(popularity: np.ndarray) -> np.ndarray:
    """Bucket label of every item by its train popularity rank (ties broken by position)."""
    order = np.argsort(-np.asarray(popularity), kind="stable")
    share = np.empty(len(order))
    share[order] = (np.arange(len(order)) + 1) / len(order)
    labels = np.empty(len(order), dtype=object)
    lower = 0.0
    for upper, label in POPULARITY_BUCKETS:
        labels[(share > lower) & (share <= upper)] = label
        lower = upper
    return labels


def hits_by_popularity(ranks: pd.DataFrame, popularity: np.ndarray, k: int) -> pd.DataFrame:
    """Per popularity bucket: test positives, hits in the top k, and their ratio (micro recall@k)."""
    buckets = popularity_bucket(popularity)[ranks["item"].to_numpy()]
    frame = pd.DataFrame(
        {
            "bucket": pd.Categorical(buckets, categories=[b[1] for b in POPULARITY_BUCKETS]),
            "hit": ranks["rank"].to_numpy() < k,
        }
    )
    grouped = frame.groupby("bucket", observed=False)["hit"]
    out = pd.DataFrame({"test_items": grouped.size(), f"hits@{k}": grouped.sum().astype(int)})
    out[f"recall@{k}"] = out[f"hits@{k}"] / out["test_items"].where(out["test_items"] > 0)
    return out
