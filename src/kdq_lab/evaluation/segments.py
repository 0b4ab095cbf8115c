"""Breakdowns of per-user metrics: history length, new vs returning users, item popularity of the hits.

This is what tells whether features rescue the cold start.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: (lowest, highest, label) train-history bins.
HISTORY_BINS: tuple[tuple[int, float, str], ...] = ((0, 0, "0"), (1, 4, "1-4"), (5, 19, "5-19"), (20, np.inf, "20+"))
#: Item popularity buckets by share of the catalog, most popular first.
POPULARITY_BUCKETS: tuple[tuple[float, str], ...] = (
    (0.1, "head (top 10%)"),
    (0.5, "mid (next 40%)"),
    (1.0, "tail (last 50%)"),
)


def history_segment(n_train: np.ndarray | pd.Series) -> pd.Categorical:
    """History-length bin of each user (0, 1-4, 5-19, 20+ train items)."""
    counts = np.asarray(n_train)
    labels = np.empty(len(counts), dtype=object)
    for low, high, label in HISTORY_BINS:
        labels[(counts >= low) & (counts <= high)] = label
    return pd.Categorical(labels, categories=[b[2] for b in HISTORY_BINS], ordered=True)


def add_segments(per_user: pd.DataFrame) -> pd.DataFrame:
    """Copy of a per-user table with ``history`` and ``returning`` (new / returning) columns."""
    out = per_user.copy()
    out["history"] = history_segment(out["n_train"])
    out["returning"] = pd.Categorical(np.where(out["n_train"] > 0, "returning", "new"), categories=["new", "returning"])
    return out


def by_segment(per_user: pd.DataFrame, segment: str, metrics: list[str]) -> pd.DataFrame:
    """Mean of each metric and the number of users per segment value (empty segments kept)."""
    table = add_segments(per_user) if segment not in per_user else per_user
    grouped = table.groupby(segment, observed=False)
    out = grouped[metrics].mean()
    out.insert(0, "n_users", grouped.size())
    return out


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
