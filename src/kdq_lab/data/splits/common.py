"""What split kinds share: part codes, pair keys and tables, row positions, and the cuts several kinds make."""

from __future__ import annotations

import numpy as np
import pandas as pd

from kdq_lab.data.splits.registry import Holdout, HoldoutRequest, PreparedSplit
from kdq_lab.data.validate import ITEM, USER, RawDataset

PARTS = ("train", "validation", "test")
#: Part codes of events (positions in :data:`PARTS`); dropped events are -1.
TRAIN, VALIDATION, TEST, DROPPED = 0, 1, 2, -1


def seconds(stamps: pd.Series) -> np.ndarray:
    """UTC timestamps as int64 seconds since the Unix epoch (any datetime unit)."""
    return stamps.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[s]").astype(np.int64)


def positions(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(user, item) row positions of interaction rows (their categorical codes)."""
    return frame[USER].cat.codes.to_numpy(), frame[ITEM].cat.codes.to_numpy()


def lookup(raw: RawDataset, users: pd.Series, items: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(user, item) row positions of ids given as text (-1 when unknown)."""
    return (
        pd.Index(raw.users[raw.spec.users.id]).get_indexer(users),
        pd.Index(raw.items[raw.spec.items.id]).get_indexer(items),
    )


def pair_keys(user: np.ndarray, item: np.ndarray, n_items: int) -> np.ndarray:
    """One int64 key per (user, item) pair of row positions."""
    return np.asarray(user, dtype=np.int64) * n_items + np.asarray(item, dtype=np.int64)


def pair_table(events: pd.DataFrame, n_items: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Distinct pairs (in order of first appearance) with their first event time, and each event's pair number."""
    codes, keys = pd.factorize(pair_keys(events["user"].to_numpy(), events["item"].to_numpy(), n_items))
    first = np.full(len(keys), np.iinfo(np.int64).max)
    np.minimum.at(first, codes, events["time"].to_numpy())
    user, item = np.divmod(np.asarray(keys, dtype=np.int64), n_items)
    return pd.DataFrame({"user": user, "item": item, "first": first}), codes


def after_cutoff(
    kind: str, events: pd.DataFrame, pairs: pd.DataFrame, pair_of: np.ndarray, user_cutoff: np.ndarray
) -> Holdout:
    """Hold out the pairs first seen at or after their user's cutoff (seconds; int64 max: none).

    ``pairs`` and ``pair_of`` are :func:`pair_table` of ``events``. Later events of kept pairs
    would leak the future: they are dropped (-1).
    """
    time = events["time"].to_numpy()
    held = (pairs["first"].to_numpy() >= user_cutoff[pairs["user"].to_numpy()])[pair_of]
    dropped = time >= user_cutoff[events["user"].to_numpy()]
    return Holdout(kind, np.where(held, 1, np.where(dropped, -1, 0)).astype(np.int8), cutoff=user_cutoff)


def held_entities(kind: str, request: HoldoutRequest, column: str) -> Holdout:
    """Hold out a ``fraction`` of the users or items (``column``) with positive events, whole."""
    values = request.events[column].to_numpy()
    entities = np.unique(values)
    rng = np.random.default_rng(request.seed)
    chosen = np.sort(rng.choice(entities, size=round(request.fraction * len(entities)), replace=False))
    return Holdout(kind, np.isin(values, chosen).astype(np.int8), entities=chosen)


def covers_after_cutoff(cut: Holdout, user: np.ndarray, item: np.ndarray, time: np.ndarray, n_items: int) -> np.ndarray:
    """Events at or after their user's cutoff."""
    assert cut.cutoff is not None
    return time >= cut.cutoff[user]


def covers_pairs(cut: Holdout, user: np.ndarray, item: np.ndarray, time: np.ndarray, n_items: int) -> np.ndarray:
    """Events of held-out pairs (and of pairs a split file does not list)."""
    assert cut.pairs is not None
    keys = pair_keys(user, item, n_items)
    held = np.isin(keys, cut.pairs)
    return held if cut.listed is None else held | ~np.isin(keys, cut.listed)


def future_train_events(split: PreparedSplit) -> dict[str, float]:
    """Train and validation events at or after their user's first test event (per-user temporal kinds)."""
    events = split.events
    cutoff = events[events["part"] == "test"].groupby("user")["time"].min()
    earlier = events[events["part"] != "test"]
    limit = cutoff.reindex(earlier["user"]).to_numpy()
    return {"leak_future_train_events": int(np.sum(earlier["time"].to_numpy() >= np.nan_to_num(limit, nan=np.inf)))}
