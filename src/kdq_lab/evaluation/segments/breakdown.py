"""Per-user tables by segment: the ``history`` and ``returning`` label columns, and means per segment value."""

from __future__ import annotations

import numpy as np
import pandas as pd

from kdq_lab.evaluation.segments.history import history_segment


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
