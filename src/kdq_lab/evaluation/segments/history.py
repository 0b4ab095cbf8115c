"""Segments by history: new vs returning users, and bins of train-history length (``history:0`` ... ``history:20+``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from kdq_lab.evaluation.segments.registry import Groups, SegmentContext, SegmentKind, register

#: (lowest, highest, label) train-history bins.
HISTORY_BINS: tuple[tuple[int, float, str], ...] = ((0, 0, "0"), (1, 4, "1-4"), (5, 19, "5-19"), (20, np.inf, "20+"))


def history_segment(n_train: np.ndarray | pd.Series) -> pd.Categorical:
    """History-length bin of each user (0, 1-4, 5-19, 20+ train items)."""
    counts = np.asarray(n_train)
    labels = np.empty(len(counts), dtype=object)
    for low, high, label in HISTORY_BINS:
        labels[(counts >= low) & (counts <= high)] = label
    return pd.Categorical(labels, categories=[b[2] for b in HISTORY_BINS], ordered=True)


def returning_groups(context: SegmentContext, columns: tuple[str, ...] = ()) -> Groups:
    """``returning`` (some train history) and ``new`` (none)."""
    n_train = context.per_user["n_train"].to_numpy()
    return [("returning", np.flatnonzero(n_train > 0)), ("new", np.flatnonzero(n_train == 0))]


def history_groups(context: SegmentContext, columns: tuple[str, ...] = ()) -> Groups:
    """``history:<bin>`` by train-history length."""
    n_train = context.per_user["n_train"].to_numpy()
    return [
        (f"history:{label}", np.flatnonzero((n_train >= low) & (n_train <= high))) for low, high, label in HISTORY_BINS
    ]


register(SegmentKind("returning", returning_groups))
register(SegmentKind("history", history_groups))
