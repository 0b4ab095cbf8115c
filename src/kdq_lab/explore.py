"""Descriptive statistics of a raw dataset, for ``01_explore_catalog``.

Every function takes a validated :class:`~kdq_lab.data.validate.RawDataset` and
returns a small pandas table; the notebook plots them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kdq_lab.data.validate import ITEM, POSITIVE, TIME, USER, RawDataset


def sizes(raw: RawDataset) -> pd.Series:
    """Counts and sparsity of users, items, events and positive pairs."""
    events = raw.interactions
    positives = events[events[POSITIVE]]
    pairs = positives[[USER, ITEM]].drop_duplicates()
    n_users, n_items = len(raw.users), len(raw.items)
    return pd.Series(
        {
            "users": n_users,
            "items": n_items,
            "events": len(events),
            "positive events": len(positives),
            "positive pairs": len(pairs),
            "density (positive pairs)": len(pairs) / (n_users * n_items),
            "users with no event": 1 - events[USER].nunique() / n_users,
            "items with no positive": 1 - positives[ITEM].nunique() / n_items,
        }
    )


def item_popularity(raw: RawDataset) -> pd.DataFrame:
    """Items ranked by positive pairs: rank (1 = most popular), count, cumulative share."""
    positives = raw.interactions[raw.interactions[POSITIVE]]
    counts = positives.drop_duplicates([USER, ITEM]).groupby(ITEM).size()
    counts = counts.reindex(raw.items[raw.spec.items.id]).fillna(0).sort_values(ascending=False)
    return pd.DataFrame(
        {
            "rank": np.arange(1, len(counts) + 1),
            "positives": counts.to_numpy(),
            "cumulative_share": counts.cumsum().to_numpy() / max(counts.sum(), 1),
        },
        index=counts.index,
    )


def user_activity(raw: RawDataset) -> pd.Series:
    """Events per user (zeros included)."""
    counts = raw.interactions.groupby(USER).size()
    return counts.reindex(raw.users[raw.spec.users.id]).fillna(0).astype(int)


def feature_coverage(raw: RawDataset) -> pd.DataFrame:
    """Per feature column: share of rows with a value and number of distinct values."""
    rows = []
    for side, frame, entity in (("user", raw.users, raw.spec.users), ("item", raw.items, raw.spec.items)):
        for column in entity.feature_columns:
            values = frame[column].astype(str).replace({"nan": "", "<NA>": ""})
            present = values != ""
            if column in entity.multi_valued:
                distinct = values[present].str.split(raw.spec.separator).explode().nunique()
            else:
                distinct = values[present].nunique()
            rows.append(
                {
                    "side": side,
                    "column": column,
                    "label": entity.label(column),
                    "coverage": float(present.mean()),
                    "distinct": int(distinct),
                }
            )
    return pd.DataFrame(rows)


def _explode(frame: pd.DataFrame, column: str, separator: str) -> pd.Series:
    return frame[column].astype(str).str.split(separator, regex=False).explode()


def crosstab(raw: RawDataset, rows: str, columns: str) -> pd.DataFrame:
    """Items counted by two (possibly multi-valued) item columns, e.g. content type × topic."""
    sep = raw.spec.separator
    left = _explode(raw.items, rows, sep).rename("row").rename_axis("item").reset_index()
    right = _explode(raw.items, columns, sep).rename("column").rename_axis("item").reset_index()
    joined = left.merge(right, on="item")
    return pd.crosstab(joined["row"], joined["column"])


def cold_start_over_time(raw: RawDataset, freq: str = "MS", warm_after: int = 5) -> pd.DataFrame:
    """Per period: active users, and the share of them with no / fewer than ``warm_after`` earlier events."""
    events = raw.interactions[[USER, TIME]].sort_values(TIME, kind="stable")
    period = events[TIME].dt.tz_convert("Asia/Seoul").dt.tz_localize(None).dt.to_period(freq[0])
    earlier = events.groupby(USER).cumcount()
    first_in_period = ~pd.DataFrame({"u": events[USER], "p": period}).duplicated()
    active = pd.DataFrame({"period": period[first_in_period], "earlier": earlier[first_in_period]})
    table = active.groupby("period").agg(
        active_users=("earlier", "size"),
        new_share=("earlier", lambda e: float((e == 0).mean())),
        under_warm_share=("earlier", lambda e: float((e < warm_after).mean())),
    )
    signups = raw.spec.users.timestamp
    if signups:
        stamps = raw.users[signups].dt.tz_convert("Asia/Seoul").dt.tz_localize(None).dt.to_period(freq[0])
        table["signups"] = stamps.value_counts().reindex(table.index).fillna(0).astype(int)
    table.index = table.index.astype(str)
    return table


def combinations(raw: RawDataset, column: str, top: int = 15) -> tuple[pd.Series, pd.Series]:
    """For a multi-valued user column: values per user (distribution) and the most common combinations."""
    values = raw.users[column].astype(str)
    per_user = values.str.split(raw.spec.separator).str.len().where(values != "", 0)
    multi = values[per_user > 1]
    return per_user.value_counts().sort_index(), multi.value_counts().head(top)
