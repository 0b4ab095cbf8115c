"""Planted effects in a generated catalog: each holds by construction, and nothing else moves."""

from __future__ import annotations

import filecmp
import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from kdq_lab.cli import main
from kdq_lab.data.catalog import STYLES, GroundTruth, generate_catalog, positive_probability
from kdq_lab.data.plants import RANDOM_ENGAGEMENT, Plant
from kdq_lab.errors import KdqError

TABLES = ("users.csv", "items.csv", "interactions.csv", "dataset.yaml")
TRUTH = ("ground_truth/users.parquet", "ground_truth/items.parquet", "ground_truth/params.json")


@pytest.fixture(scope="module")
def usual(tmp_path_factory):
    return generate_catalog(tmp_path_factory.mktemp("usual") / "kdq", scale="tiny", seed=3, progress=False)


def planted(tmp_path, plant: Plant, scale: str = "tiny"):
    return generate_catalog(tmp_path / "kdq", scale=scale, seed=3, progress=False, plant=plant)


def test_planting_nothing_changes_no_byte(usual, tmp_path):
    folder = planted(tmp_path, Plant())
    assert all(filecmp.cmp(usual / name, folder / name, shallow=False) for name in (*TABLES, *TRUTH))


@pytest.mark.parametrize("fields", [("occupations",), ("region", "age_band"), ("interests", "goals")])
def test_an_inert_field_is_shuffled_and_behaviour_is_unchanged(usual, tmp_path, fields):
    folder = planted(tmp_path, Plant(inert_fields=fields))
    before, after = pd.read_csv(usual / "users.csv", dtype=str), pd.read_csv(folder / "users.csv", dtype=str)
    for column in before.columns:
        if column in fields:  # the same values, as often, but no longer the user's own
            assert sorted(after[column]) == sorted(before[column])
            assert (after[column] != before[column]).mean() > 0.5
        else:
            assert after[column].equals(before[column]), column
    for name in ("interactions.csv", "items.csv", "ground_truth/users.parquet", "ground_truth/items.parquet"):
        assert filecmp.cmp(usual / name, folder / name, shallow=False), name
    params = json.loads((folder / "ground_truth" / "params.json").read_text(encoding="utf-8"))
    assert params["plant"]["inert_fields"] == list(fields)


def test_without_hidden_taste_the_profile_decides_taste(usual, tmp_path):
    def spread(folder) -> float:
        users = pd.read_csv(folder / "users.csv", dtype=str)
        truth = pd.read_parquet(folder / "ground_truth" / "users.parquet")
        taste = truth[[c for c in truth.columns if c.startswith("log_theta_")]]
        groups = taste.groupby([users["occupations"], users["goals"], users["age_band"]])
        return float(groups.std(ddof=0).fillna(0).to_numpy().max())

    folder = planted(tmp_path, Plant(hidden_taste=0.0))
    truth = pd.read_parquet(folder / "ground_truth" / "users.parquet")
    assert spread(folder) < 1e-12 < spread(usual)  # same profile, same topic taste
    assert np.allclose(truth[[f"rho_{s}" for s in range(STYLES)]].to_numpy(), 1 / STYLES)
    assert not filecmp.cmp(usual / "interactions.csv", folder / "interactions.csv", shallow=False)


def test_a_random_occupation_engages_at_random_and_the_truth_knows_it(tmp_path):
    folder = planted(tmp_path, Plant(random_occupation="대학생"), scale="small")
    users = pd.read_csv(folder / "users.csv", dtype=str)
    random = users["occupations"].str.split("|").apply(lambda jobs: "대학생" in jobs).to_numpy()
    truth_users = pd.read_parquet(folder / "ground_truth" / "users.parquet")
    assert (truth_users["random_behaviour"].to_numpy() == random).all() and random.sum() > 30

    events = pd.read_csv(folder / "interactions.csv", dtype=str)
    items = pd.read_parquet(folder / "ground_truth" / "items.parquet")
    topic = pd.Series(items["topic"].to_numpy(), index=pd.read_csv(folder / "items.csv", dtype=str)["item_id"])
    positive = events[events["event"] != "view"].drop_duplicates(["user_id", "item_id"])
    is_random = positive["user_id"].isin(users.loc[random, "user_id"]).to_numpy()
    # chosen topics: uniform for the planted group, far from uniform for everyone else (same number of events)
    n = int(is_random.sum())
    counts = {
        who: np.bincount(topic[positive.loc[mask, "item_id"]].to_numpy()[:n], minlength=topic.max() + 1)
        for who, mask in (("random", is_random), ("others", ~is_random))
    }
    p_random = stats.chisquare(counts["random"]).pvalue
    p_others = stats.chisquare(counts["others"]).pvalue
    assert p_others < 1e-6 and p_random > 0.05

    ground = GroundTruth.load(folder / "ground_truth")
    rows = np.flatnonzero(random)[:3]
    pop = items["popularity"].to_numpy()
    group = items["topic"].to_numpy() * STYLES + items["style"].to_numpy()
    total = np.bincount(group, weights=pop)
    expected = np.log(pop / total[group] / (len(total))) + np.log(
        positive_probability(np.full(len(items), RANDOM_ENGAGEMENT), items["content_type"].to_numpy())
    )
    assert np.allclose(ground.scores(rows), expected[None, :])


@pytest.mark.parametrize(
    "plant, message",
    [
        ({"inert_fields": ("salary",)}, "inert fields"),
        ({"inert_fields": ("region", "region")}, "once"),
        ({"hidden_taste": 1.5}, "hidden_taste"),
        ({"hidden_taste": float("nan")}, "hidden_taste"),
    ],
)
def test_a_plant_that_cannot_be_planted_is_refused(plant, message):
    with pytest.raises(KdqError, match=message):
        Plant(**plant)


def test_an_occupation_the_catalog_lacks_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(KdqError, match="not an occupation of the catalog"):
        planted(tmp_path, Plant(random_occupation="우주비행사"))
    assert not (tmp_path / "kdq").exists()


def test_the_command_plants_from_flags(tmp_path, capsys):
    out = tmp_path / "planted"
    code = main(["generate", "kdq-catalog", "--scale", "tiny", "--seed", "3", "--out", str(out),
                 "--inert", "region", "--inert", "occupations", "--hidden-taste", "0.5"])  # fmt: skip
    params = json.loads((out / "ground_truth" / "params.json").read_text(encoding="utf-8"))
    assert code == 0 and params["plant"] == {
        "inert_fields": ["region", "occupations"],
        "random_occupation": None,
        "hidden_taste": 0.5,
    }
    assert main(["generate", "kdq-catalog", "--scale", "tiny", "--out", str(tmp_path / "x"), "--inert", "salary"]) == 2
