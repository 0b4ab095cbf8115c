"""Checks of a stored split: sizes per part, how cold the test set is, and leakage counts (all must be 0)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from kdq_lab.data.splits import PARTS, split_kind
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
    and the split kind's own leak counts (its ``leakage``), e.g. ``leak_future_train_events`` (temporal
    kinds: train events at or after the test cutoff) or ``leak_cold_user_train_events``.
    """
    train, validation, test = split.train.interactions, split.validation.interactions, split.test.interactions
    known = train + validation
    test_users = np.flatnonzero(test.getnnz(axis=1) > 0)
    test_items = np.flatnonzero(test.getnnz(axis=0) > 0)
    new_users = test_users[known.getnnz(axis=1)[test_users] == 0]  # no known positive: cold
    new_items = test_items[known.getnnz(axis=0)[test_items] == 0]
    out: dict[str, float] = {
        "test_users": len(test_users),
        "test_items": len(test_items),
        "cold_user_share_of_test_users": len(new_users) / max(len(test_users), 1),
        "cold_item_share_of_test_items": len(new_items) / max(len(test_items), 1),
        "cold_users_with_features": float((split.user_features[new_users].getnnz(axis=1) > 0).mean())
        if len(new_users)
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
    leakage = split_kind(split.config.kind).leakage
    return (out | leakage(split)) if leakage else out
