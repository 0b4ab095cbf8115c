"""Split invariants: no pair in two parts, no future in train, cold entities really cold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kdq_lab.data.movielens import import_movielens
from kdq_lab.data.splits import PARTS, SplitConfig, split_events
from kdq_lab.data.validate import load_dataset
from kdq_lab.errors import KdqError

KINDS = ["random", "user_temporal", "global_temporal", "cold_users", "cold_items"]


@pytest.fixture(scope="module")
def raw(tiny_catalog):
    return load_dataset(tiny_catalog)


def events_of(raw, config: SplitConfig) -> pd.DataFrame:
    return split_events(raw, config).events


def pairs(events: pd.DataFrame, part: str) -> set[tuple[int, int]]:
    rows = events[events["part"] == part]
    return set(zip(rows["user"], rows["item"]))


@pytest.mark.parametrize("kind", KINDS)
def test_no_pair_in_two_parts(raw, kind):
    events = events_of(raw, SplitConfig(kind=kind, validation_fraction=0.2))
    train, validation, test = (pairs(events, p) for p in ("train", "validation", "test"))
    assert train and validation and test
    assert not train & test and not train & validation and not validation & test


@pytest.mark.parametrize("kind", KINDS)
def test_seed_decides(raw, kind):
    a = events_of(raw, SplitConfig(kind=kind, seed=1))
    b = events_of(raw, SplitConfig(kind=kind, seed=1))
    pd.testing.assert_frame_equal(a, b)
    if kind in ("random", "cold_users", "cold_items"):
        c = events_of(raw, SplitConfig(kind=kind, seed=2))
        assert pairs(a, "test") != pairs(c, "test")


def test_user_temporal_train_never_after_the_users_cutoff(raw):
    events = events_of(raw, SplitConfig(kind="user_temporal", validation_fraction=0.0))
    cutoff = events[events["part"] == "test"].groupby("user")["time"].min()
    train = events[events["part"] == "train"]
    latest = train.groupby("user")["time"].max()
    common = cutoff.index.intersection(latest.index)
    assert len(common) > 20
    assert (latest[common] < cutoff[common]).all()


def test_user_temporal_holds_out_the_last_fraction(raw):
    events = events_of(raw, SplitConfig(kind="user_temporal", test_fraction=0.25, validation_fraction=0.0))
    test_pairs = events[events["part"] == "test"].groupby("user")["item"].nunique()
    all_pairs = events.groupby("user")["item"].nunique()
    expected = np.floor(0.25 * all_pairs + 0.5).astype(int)
    expected = expected[expected > 0]
    assert (test_pairs.reindex(expected.index).fillna(0) == expected).mean() > 0.9


def test_global_temporal_respects_the_cutoff(raw):
    cutoff = "2026-06-01T00:00:00+09:00"
    config = SplitConfig.from_dict({"kind": "global_temporal", "cutoff": cutoff, "validation_fraction": 0.1})
    events = events_of(raw, config)
    limit = pd.Timestamp(cutoff).timestamp()
    assert (events[events["part"] != "test"]["time"] < limit).all()
    assert (events[events["part"] == "test"]["time"] >= limit).all()
    validation_start = events[events["part"] == "validation"]["time"].min()
    assert (events[events["part"] == "train"]["time"] < validation_start).all()


@pytest.mark.parametrize("kind, column", [("cold_users", "user"), ("cold_items", "item")])
def test_cold_entities_have_no_train_events(raw, kind, column):
    events = events_of(raw, SplitConfig(kind=kind, test_fraction=0.2, validation_fraction=0.1))
    held = set(events.loc[events["part"] == "test", column])
    seen = set(events.loc[events["part"] != "test", column])
    assert held and not held & seen
    validation = set(events.loc[events["part"] == "validation", column])
    assert validation and not validation & set(events.loc[events["part"] == "train", column])


def test_cold_users_keep_their_features(tiny_catalog, tmp_path):
    from kdq_lab.data.store import load_split, prepare

    split = load_split(prepare(tiny_catalog, SplitConfig(kind="cold_users"), tmp_path))
    cold = np.flatnonzero((split.test.interactions.getnnz(axis=1) > 0) & (split.train.interactions.getnnz(axis=1) == 0))
    assert len(cold) > 10
    assert (split.user_features[cold].getnnz(axis=1) > 0).all()


def test_predefined_split_and_positive_override(ml100k_source, tmp_path):
    raw = load_dataset(import_movielens(ml100k_source, tmp_path / "ml"))
    ua = {"kind": "predefined", "predefined": "ua", "validation_fraction": 0.0}
    events = events_of(raw, SplitConfig.from_dict(ua))
    table = pd.read_csv(raw.folder / "splits" / "ua.csv", dtype=str)
    test = table[table["part"] == "test"]
    ratings = raw.interactions.merge(test, on=["user_id", "item_id"])
    assert len(events[events["part"] == "test"]) == int((ratings["weight"] >= 4).sum())
    strict = events_of(raw, SplitConfig.from_dict({**ua, "positive_min_weight": 5.0}))
    assert len(strict) < len(events)
    with pytest.raises(KdqError, match="no predefined split 'uc'"):
        events_of(raw, SplitConfig.from_dict({"kind": "predefined", "predefined": "uc"}))


def test_bad_configs_are_refused():
    with pytest.raises(KdqError, match="split kind"):
        SplitConfig(kind="by_magic")
    with pytest.raises(KdqError, match="test_fraction"):
        SplitConfig(test_fraction=1.5)


def first_times(events: pd.DataFrame, part: str) -> pd.Series:
    """Each pair's first event time in ``part``, indexed by (user, item)."""
    return events[events["part"] == part].groupby(["user", "item"])["time"].min()


@pytest.mark.parametrize("seed", [1, 5])
def test_leave_last_out_holds_out_each_users_last_pair(raw, seed):
    config = SplitConfig.from_dict({"kind": "leave_last_out", "seed": seed, "validation_fraction": 0.0})
    events = events_of(raw, config)
    test, train = first_times(events, "test"), first_times(events, "train")
    assert len(test) > 50
    every = pd.concat([test, train]).groupby(level="user").agg(["min", "max"])
    returning = every.index[every["min"] < every["max"]]
    assert set(test.index.get_level_values("user")) == set(returning), "every returning user, and only they"
    last = test.groupby(level="user").agg(["min", "max"])
    assert (last["min"] == last["max"]).all(), "a user's test pairs start at one moment"
    np.testing.assert_array_equal(last["max"], every.loc[last.index, "max"], err_msg="their last moment")
    assert (train.groupby(level="user").max().reindex(last.index) < last["max"]).all(), "train is earlier"


def test_leave_last_out_validation_is_the_pair_before(raw):
    events = events_of(raw, SplitConfig.from_dict({"kind": "leave_last_out", "validation_fraction": 0.1}))
    train, validation, test = (first_times(events, part) for part in PARTS)
    valid_users = validation.groupby(level="user").agg(["min", "max"])
    assert len(valid_users) > 50 and (valid_users["min"] == valid_users["max"]).all()
    tested = test.groupby(level="user").min().reindex(valid_users.index)
    assert (valid_users["max"] < tested.fillna(np.inf)).all(), "validation comes before the user's test pair"
    trained = train.groupby(level="user").max().reindex(valid_users.index)
    assert (trained < valid_users["min"]).all(), "and after all of the user's train pairs"


def test_leave_last_out_ignores_the_fractions_value(raw):
    base = {"kind": "leave_last_out", "validation_fraction": 0.1}
    same = events_of(raw, SplitConfig.from_dict({**base, "test_fraction": 0.5, "validation_fraction": 0.4}))
    pd.testing.assert_frame_equal(events_of(raw, SplitConfig.from_dict(base)), same)


def test_leave_last_out_on_ratings_keeps_every_test_pair_under_seen(ml100k_source, tmp_path):
    from kdq_lab.data.store import load_split, prepare
    from kdq_lab.data.targets import target

    folder = import_movielens(ml100k_source, tmp_path / "ml")
    config = SplitConfig.from_dict({"kind": "leave_last_out", "positive_min_weight": 4.0})
    split = load_split(prepare(folder, config, tmp_path / "processed"))
    tested = split.test.interactions.getnnz(axis=1)
    assert (tested > 0).sum() > 20 and target(split, "test", "seen").dropped == 0
