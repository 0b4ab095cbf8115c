"""Per-user tables by segment: the ``history`` and ``returning`` label columns, and means per segment value."""

from __future__ import annotations

import numpy as np
import pandas as pd

from kdq_lab.evaluation.segments.history import HISTORY_BINS, history_segment

#: The built-in segments every run reports: all users, new vs returning, history bins.
BUILT_IN_SEGMENTS: tuple[str, ...] = ("all", "returning", "new", *(f"history:{b[2]}" for b in HISTORY_BINS))


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


def segment_rows(table: pd.DataFrame, segment: str) -> pd.DataFrame:
    """The users of one built-in segment (``all``, ``new``, ``returning``, ``history:1-4`` ...) of a table with
    :func:`add_segments`' columns."""
    if segment == "all":
        return table
    if segment in ("returning", "new"):
        return table[table["returning"] == segment]
    return table[table["history"] == segment.split(":", 1)[1]]
