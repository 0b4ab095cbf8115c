"""The warm_up split kind: the same held-out users for every shots value, their first shots pairs in train."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from kdq_lab.data.splits import SplitConfig, expand_split, split_events
from kdq_lab.data.splits.common import positions, seconds
from kdq_lab.data.splits.parts import positive_events
from kdq_lab.data.validate import TIME, load_dataset
from kdq_lab.errors import DataError, KdqError
from kdq_lab.experiment.schema import load_experiment


@pytest.fixture(scope="module")
def raw(tiny_catalog):
    return load_dataset(tiny_catalog)


def warm(shots: int, max_shots: int | None = None, seed: int = 3, validation: float = 0.0) -> SplitConfig:
    flat = {"kind": "warm_up", "shots": shots, "seed": seed, "validation_fraction": validation, "test_fraction": 0.3}
    return SplitConfig.from_dict(flat | ({"max_shots": max_shots} if max_shots is not None else {}))


def test_users(events: pd.DataFrame) -> np.ndarray:
    return np.unique(events.loc[events["part"] == "test", "user"])


test_users.__test__ = False  # type: ignore[attr-defined]


@pytest.mark.parametrize("shots", [0, 1, 2, 4])
def test_each_test_user_trains_on_their_first_shots_pairs(raw, shots):
    events = split_events(raw, warm(shots, max_shots=4)).events
    users = test_users(events)
    assert len(users) > 5
    first = events.groupby(["user", "item"], observed=True)["time"].min().reset_index()
    first = first[first["user"].isin(users)]
    part = events.drop_duplicates(["user", "item"]).set_index(["user", "item"])["part"]
    first["part"] = part.reindex(pd.MultiIndex.from_frame(first[["user", "item"]])).to_numpy()
    for _, rows in first.groupby("user"):
        rows = rows.sort_values(["time", "item"])
        trained = rows["part"].to_numpy() == "train"
        assert trained.sum() <= shots  # ties at the cutoff can only reveal fewer
        assert not trained[trained.sum() :].any()  # the revealed pairs are the earliest
        assert (rows["part"] == "test").sum() >= 1


def test_every_shots_value_holds_out_the_same_users(raw):
    held = [test_users(split_events(raw, warm(n, max_shots=3)).events) for n in (0, 1, 2, 3)]
    for other in held[1:]:
        np.testing.assert_array_equal(held[0], other)


@pytest.mark.parametrize("max_shots", [0, 2, 5])
def test_held_out_users_have_max_shots_plus_one_positive_pairs(raw, max_shots):
    events = positive_events(raw, warm(0))
    count = events.drop_duplicates(["user", "item"]).groupby("user").size()
    held = test_users(split_events(raw, warm(0, max_shots=max_shots)).events)
    assert (count.reindex(held).to_numpy() >= max_shots + 1).all()
    fewer = test_users(split_events(raw, warm(0, max_shots=max_shots + 3)).events)
    assert set(fewer) <= set(held) and len(fewer) < len(held)


def test_zero_shots_with_zero_max_holds_out_the_cold_users_choice(raw):
    cold = SplitConfig.from_dict({"kind": "cold_users", "seed": 3, "validation_fraction": 0.0, "test_fraction": 0.3})
    np.testing.assert_array_equal(
        test_users(split_events(raw, cold).events), test_users(split_events(raw, warm(0)).events)
    )


@pytest.mark.parametrize(("shots", "seed"), [(1, 1), (2, 8), (3, 5)])
def test_events_of_any_type_before_the_cutoff_are_train_and_later_ones_held_out(raw, shots, seed):
    split = split_events(raw, warm(shots, seed=seed))
    test = split.events[split.events["part"] == "test"]
    cutoff = test.groupby("user")["time"].min()  # the first test pair's first event
    frame = raw.interactions
    user, item = positions(frame)
    time = seconds(frame[TIME])
    held = split.test.covers(user, item, time, len(raw.items))
    mine = np.isin(user, cutoff.index)
    expected = time[mine] >= cutoff.reindex(user[mine]).to_numpy()
    np.testing.assert_array_equal(held[mine], expected)
    assert (~expected).any() and expected.any()
    assert not held[~mine].any()  # everyone else is in train


@pytest.mark.parametrize(
    ("flat", "fragment"),
    [
        ({"shots": -1}, "shots must be an integer >= 0"),
        ({"shots": 1.5}, "shots must be an integer"),
        ({"shots": 3, "max_shots": 2}, "max_shots must be an integer >= 3"),
        ({"shots": 1001}, "at most 1,000"),
        ({"shots": True}, "shots must be an integer"),
    ],
)
def test_bad_shots_are_refused(flat, fragment):
    with pytest.raises(KdqError, match=fragment):
        SplitConfig.from_dict({"kind": "warm_up", **flat})


def test_a_flags_digits_are_an_integer():
    assert SplitConfig.from_dict({"kind": "warm_up", "shots": "3"}).options.shots == 3  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("shots", "names", "top"),
    [
        ([0, 1, 3], ["w-shots=0", "w-shots=1", "w-shots=3"], 3),
        ([5, 2], ["w-shots=2", "w-shots=5"], 5),
        ([4], ["w-shots=4"], 4),
    ],
)
def test_a_list_of_shots_expands_into_one_split_per_value(shots, names, top):
    expanded = expand_split("w", {"kind": "warm_up", "shots": shots})
    assert list(expanded) == names
    assert {config["max_shots"] for config in expanded.values()} == {top}
    assert expand_split("w", {"kind": "warm_up", "shots": 2}) == {"w": {"kind": "warm_up", "shots": 2}}
    assert expand_split("w", {"kind": "cold_users", "positive_events": ["like"]}) == {
        "w": {"kind": "cold_users", "positive_events": ["like"]}
    }


@pytest.mark.parametrize(
    ("shots", "fragment"),
    [([], "list of 1 to 50"), ([1, 1], "twice"), (["1; rm"], "list of 1 to 50"), (list(range(51)), "list of 1 to 50")],
)
def test_bad_shots_lists_are_refused(shots, fragment):
    with pytest.raises(KdqError, match=fragment):
        expand_split("w", {"kind": "warm_up", "shots": shots})


def write(tmp_path: Path, splits: dict) -> Path:
    data = {"name": "t", "dataset": "kdq-catalog-tiny", "splits": splits, "runs": {"pop": {"model": "popularity"}}}
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_an_experiment_expands_the_shots_list(tmp_path):
    experiment = load_experiment(
        write(tmp_path, {"warm": {"kind": "warm_up", "shots": [0, 2]}, "cold": {"kind": "cold_users"}})
    )
    assert list(experiment.splits) == ["warm-shots=0", "warm-shots=2", "cold"]
    assert [s.options.shots for s in list(experiment.splits.values())[:2]] == [0, 2]  # type: ignore[attr-defined]
    assert [run.split for run in experiment.jobs()] == ["warm-shots=0", "warm-shots=2", "cold"]


@pytest.mark.parametrize(
    ("splits", "fragment"),
    [
        (
            {
                "warm": {"kind": "warm_up", "shots": list(range(30))},
                "w2": {"kind": "warm_up", "shots": list(range(30))},
            },
            "60 splits: at most 50",
        ),
        (
            {"warm": {"kind": "warm_up", "shots": [0, 1]}, "warm-shots=1": {"kind": "cold_users"}},
            "two splits share this name",
        ),
        ({"warm": {"kind": "warm_up", "shots": [0, -2]}}, "list of 1 to 50"),
    ],
)
def test_experiments_refuse_bad_expansions(tmp_path, splits, fragment):
    with pytest.raises(DataError) as caught:
        load_experiment(write(tmp_path, splits))
    assert any(fragment in p.message for p in caught.value.problems), "\n".join(map(str, caught.value.problems))
