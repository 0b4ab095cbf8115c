"""The questionnaire curve's greedy selection (on validation only) and its test points (every prefix, every seed)."""

from __future__ import annotations

import pytest

from kdq_lab.data.splits import SplitConfig
from kdq_lab.data.store import load_split, prepare
from kdq_lab.errors import KdqError
from kdq_lab.runs import questionnaire
from kdq_lab.runs.questionnaire import CurveConfig, curve_tables, greedy_order


@pytest.fixture(scope="module")
def cold(tiny_catalog, tmp_path_factory):
    config = SplitConfig.from_dict({"kind": "cold_users", "test_fraction": 0.3, "validation_fraction": 0.2, "seed": 1})
    return load_split(prepare(tiny_catalog, config, tmp_path_factory.mktemp("processed")))


def test_greedy_selection_asks_every_field_once_and_picks_the_best_on_validation(cold, monkeypatch):
    seen_parts = []
    score = questionnaire._score

    def spy(config, split, columns, seed, part):
        seen_parts.append(part)
        return score(config, split, columns, seed, part)

    monkeypatch.setattr(questionnaire, "_score", spy)
    fields = ("goals", "region", "occupations")
    order = greedy_order(CurveConfig("content", {"history_weight": 0.0}, fields), cold, 42)
    assert set(seen_parts) == {"validation"}, "the order is chosen on validation only"
    assert order.groupby("step").size().tolist() == [3, 2, 1]
    chosen = order[order["chosen"]]
    assert sorted(chosen["field"]) == sorted(fields)
    for _, step in order.groupby("step"):
        assert step.loc[step["chosen"], "validation"].iloc[0] == step["validation"].max()


@pytest.mark.parametrize("fields", [("goals",), ("region", "goals")])
def test_every_prefix_is_tested_on_every_seed_from_no_profile_to_all(cold, fields):
    order, tests = curve_tables(CurveConfig("content", {}, fields), {1: cold, 2: cold})
    assert sorted(tests["step"].unique()) == list(range(len(fields) + 1))
    assert set(tests["seed"]) == {1, 2}
    chosen = order.loc[order["chosen"], "field"].tolist()
    assert tests.drop_duplicates("step")["fields"].tolist() == ["+".join(chosen[:i]) for i in range(len(fields) + 1)]


@pytest.mark.parametrize(
    "model, fields, fragment",
    [
        ("popularity", ("goals",), "no user_columns parameter"),
        ("content", (), "at least one"),
        ("content", ("goals", "goals"), "each once"),
    ],
)
def test_bad_curves_are_refused(model, fields, fragment):
    with pytest.raises(KdqError, match=fragment):
        CurveConfig(model, {}, fields)


def test_a_split_without_validation_positives_cannot_choose(tiny_split):
    with pytest.raises(KdqError, match="no validation positives"):
        greedy_order(CurveConfig("content", {}, ("goals",)), tiny_split, 1)
