"""Checks of a stored split: sizes per part, how cold the test set is, and leakage counts (all must be 0)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from kdq_lab.data.splits import PARTS
from kdq_lab.data.store import SplitData


def split_sizes(split: SplitData) -> pd.DataFrame:
    """Events, pairs, users and items per part."""
    rows = {}
    for part in PARTS:
        matrix = getattr(split, part).interactions
        events = split.events[split.events["part"] == part]
        rows[part] = {
            "events": len(events),
            "pairs": matrix.nnz,
            "users": int((matrix.getnnz(axis=1) > 0).sum()),
            "items": int((matrix.getnnz(axis=0) > 0).sum()),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def leakage_checks(split: SplitData) -> dict[str, float]:
    """Cold shares of the test set, what the ``seen`` rule and withholding touch, and leak counts (each must be 0).

    seen_*, withheld_*
        pairs with any event before the test period; the share of test positives on such
        items (dropped from the target under ``seen``); items that are not training columns.
    leak_pairs_*
        test pairs also in train or validation; validation pairs also in train.
    leak_withheld_items_in_train
        train positives on items the split withholds from training.
    leak_future_train_events
        temporal splits: train events at or after the user's (or the global) test cutoff.
    leak_cold_*_train_events
        cold-start splits: train or validation events of held-out users or items.
    """
    train, validation, test = split.train.interactions, split.validation.interactions, split.test.interactions
    known = train + validation
    test_users = np.flatnonzero(test.getnnz(axis=1) > 0)
    test_items = np.flatnonzero(test.getnnz(axis=0) > 0)
    cold_users = test_users[known.getnnz(axis=1)[test_users] == 0]
    cold_items = test_items[known.getnnz(axis=0)[test_items] == 0]
    out: dict[str, float] = {
        "test_users": len(test_users),
        "test_items": len(test_items),
        "cold_user_share_of_test_users": len(cold_users) / max(len(test_users), 1),
        "cold_item_share_of_test_items": len(cold_items) / max(len(test_items), 1),
        "cold_users_with_features": float((split.user_features[cold_users].getnnz(axis=1) > 0).mean())
        if len(cold_users)
        else 1.0,
        "seen_pairs_before_test": int(split.seen_known.nnz),
        "seen_share_of_test_positives": test.multiply(split.seen_known).nnz / max(test.nnz, 1),
        "withheld_items_until_test": int(split.withheld_until_test.sum()),
        "withheld_items_until_validation": int(split.withheld_until_validation.sum()),
        "leak_pairs_test_in_train": int(test.multiply(train).nnz),
        "leak_withheld_items_in_train": int(
            train[:, np.flatnonzero(split.withheld_until_validation | split.withheld_until_test)].nnz
        ),
        "leak_pairs_test_in_validation": int(test.multiply(validation).nnz),
        "leak_pairs_validation_in_train": int(validation.multiply(train).nnz),
    }
    kind = split.config.kind
    events = split.events
    if kind in ("user_temporal", "global_temporal"):
        tested = events[events["part"] == "test"]
        cutoff = tested.groupby("user")["time"].min() if kind == "user_temporal" else None
        earlier = events[events["part"] != "test"]
        if cutoff is not None:
            limit = cutoff.reindex(earlier["user"]).to_numpy()
            out["leak_future_train_events"] = int(
                np.sum(earlier["time"].to_numpy() >= np.nan_to_num(limit, nan=np.inf))
            )
        else:
            out["leak_future_train_events"] = int((earlier["time"] >= tested["time"].min()).sum()) if len(tested) else 0
    if kind == "cold_users":
        out["leak_cold_user_train_events"] = int(known[np.unique(events.loc[events["part"] == "test", "user"])].nnz)
    if kind == "cold_items":
        items = np.unique(events.loc[events["part"] == "test", "item"])
        out["leak_cold_item_train_events"] = int(known[:, items].nnz)
    return out
