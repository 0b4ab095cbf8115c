"""The leakage check finds planted leaks, and reports how cold the test set is."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp

from kdq_lab.data.leakage import leakage_checks
from kdq_lab.data.splits import SplitConfig
from kdq_lab.data.store import Part, load_split, prepare


@pytest.fixture(scope="module")
def splits(tiny_catalog, tmp_path_factory):
    root = tmp_path_factory.mktemp("processed")
    return {kind: load_split(prepare(tiny_catalog, SplitConfig(kind=kind), root))
            for kind in ("user_temporal", "cold_users", "cold_items")}  # fmt: skip


@pytest.mark.parametrize("kind", ["user_temporal", "cold_users", "cold_items"])
def test_prepared_splits_are_clean(splits, kind):
    checks = leakage_checks(splits[kind])
    assert {k: v for k, v in checks.items() if k.startswith("leak")} and not any(
        v for k, v in checks.items() if k.startswith("leak")
    )


def plant(part: Part, user: int, item: int) -> Part:
    weights = part.weights.tolil()
    weights[user, item] = 1.0
    return Part.from_weights(sp.csr_matrix(weights))


def test_a_test_pair_copied_into_train_is_found(splits):
    split = splits["user_temporal"]
    user, item = (int(v[0]) for v in split.test.interactions.nonzero())
    leaky = replace(split, train=plant(split.train, user, item))
    assert leakage_checks(leaky)["leak_pairs_test_in_train"] == 1


def test_a_future_event_in_train_is_found(splits):
    split = splits["user_temporal"]
    events = split.events.copy()
    tested = events[events["part"] == "test"]
    user = tested["user"].iloc[0]
    train_event = events.index[(events["part"] == "train") & (events["user"] == user)][0]
    events.loc[train_event, "time"] = tested.loc[tested["user"] == user, "time"].max() + 1  # train sees the future
    assert leakage_checks(replace(split, events=events))["leak_future_train_events"] == 1


def test_a_cold_user_with_train_history_is_found(splits):
    split = splits["cold_users"]
    user = int(np.flatnonzero(split.test.interactions.getnnz(axis=1))[0])
    leaky = replace(split, train=plant(split.train, user, 0))
    assert leakage_checks(leaky)["leak_cold_user_train_events"] >= 1


def test_a_withheld_item_in_train_is_found(splits):
    split = splits["cold_items"]
    item = int(np.flatnonzero(split.withheld_until_test)[0])
    leaky = replace(split, train=plant(split.train, 0, item))
    checks = leakage_checks(leaky)
    assert checks["leak_withheld_items_in_train"] == 1 and checks["leak_cold_item_train_events"] >= 1


def test_cold_shares(splits):
    assert leakage_checks(splits["cold_users"])["cold_user_share_of_test_users"] == 1.0
    assert leakage_checks(splits["cold_items"])["cold_item_share_of_test_items"] == 1.0
    assert leakage_checks(splits["user_temporal"])["cold_user_share_of_test_users"] < 1.0
