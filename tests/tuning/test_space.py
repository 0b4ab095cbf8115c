"""Search spaces: checked against the model's own configuration, errors naming the YAML line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kdq_lab.errors import DataError, KdqError
from kdq_lab.experiment.schema import load_experiment
from kdq_lab.models import model_spec
from kdq_lab.tuning.space import parse_range, parse_space

BASE = {
    "name": "t",
    "dataset": "kdq-catalog-tiny",
    "k": [10],
    "splits": {"cold": {"kind": "cold_users"}},
    "runs": {"pop": {"model": "popularity"}, "hybrid": {"model": "lightfm", "params": {"features": "both"}}},
}


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def with_search(search: object, run: str = "hybrid") -> dict:
    runs = {name: dict(spec) for name, spec in BASE["runs"].items()}
    runs[run]["search"] = search
    return BASE | {"runs": runs}


@pytest.mark.parametrize(
    "search, key, fragment",
    [
        ({"components": {"int": [8, 64]}}, "components", "not a parameter of lightfm"),
        ({"no_components": {"int": [64, 8]}}, "no_components", "empty range"),
        ({"no_components": {"int": [8, 8]}}, "no_components", "empty range"),
        ({"item_alpha": {"float": [0.0, 0.1], "log": True}}, "item_alpha", "log range must stay above 0"),
        ({"no_components": {"int": [8.5, 64]}}, "no_components", "two integers"),
        ({"no_components": {"float": [8, "x"]}}, "no_components", "two numbers"),
        ({"loss": {"choice": []}}, "loss", "non-empty list"),
        ({"loss": {"choice": ["warp", "hinge"]}}, "loss", "choose one of warp, bpr"),
        ({"learning_rate": {"float": [0.0, 0.1]}}, "learning_rate", "must be a number > 0"),
        ({"loss": {"choice": ["warp"], "log": True}}, "loss", "log applies to int and float"),
        ({"loss": {"enum": ["warp"]}}, "loss", "unknown range kind"),
        ({"loss": ["warp", "bpr"]}, "loss", "expected one of {int"),
        ({"features": {"choice": ["ids", "both"]}}, "features", "the run fixes this parameter"),
    ],
)
def test_bad_spaces_name_the_line_and_what_is_expected(tmp_path, search, key, fragment):
    with pytest.raises(DataError) as caught:
        load_experiment(write(tmp_path, with_search(search)))
    found = [p for p in caught.value.problems if p.column == f"runs.hybrid.search.{key}" and fragment in p.message]
    assert found, "\n".join(map(str, caught.value.problems))
    assert found[0].line is not None


def test_default_space_leaves_out_what_the_run_fixes(tmp_path):
    experiment = load_experiment(write(tmp_path, with_search("default") | {"tuning": {"trials": 3}}))
    space = experiment.runs["hybrid"].search
    assert {"no_components", "learning_rate", "user_identity", "item_normalize"} <= set(space)
    grid = with_search("default")
    grid["runs"]["hybrid"]["grid"] = {"identity": [True, False]}
    experiment = load_experiment(write(tmp_path, grid))
    for name in ("hybrid-identity=true", "hybrid-identity=false"):
        assert not {"user_identity", "item_identity"} & set(experiment.runs[name].search), "the grid fixes identity"
    ids = model_spec("lightfm").default_search({"features": "ids"})
    assert not {"user_identity", "item_identity", "user_normalize", "item_normalize"} & set(ids)
    assert experiment.tuning.trials == 20 and load_experiment(write(tmp_path, with_search("default") | {
        "tuning": {"trials": 3}})).tuning.trials == 3  # fmt: skip


@pytest.mark.parametrize(
    "tuning, fragment",
    [
        ({"trials": 0}, "trials must be an integer >= 1"),
        ({"trials": 5, "timeout": 10}, "exactly one budget"),
        ({"timeout": -1}, "timeout must be a number > 0"),
        ({"pruner": "aggressive"}, "choose one of median, hyperband, none"),
        ({"budget": 3}, "unknown key"),
    ],
)
def test_bad_tuning_block(tmp_path, tuning, fragment):
    with pytest.raises(DataError, match=fragment):
        load_experiment(write(tmp_path, with_search("default") | {"tuning": tuning}))


def test_tuned_needs_a_search_space(tmp_path):
    with pytest.raises(DataError, match="no run has a search: block"):
        load_experiment(write(tmp_path, BASE | {"tuned": True}))


def test_ranges_round_trip_and_keep_their_types():
    span = parse_range("no_components", {"int": [8, 128], "log": True})
    assert span.to_dict() == {"int": [8, 128], "log": True}
    assert parse_range("no_components", span.to_dict()) == span
    space, problems = parse_space({"window_days": {"choice": [None, 30]}}, model_spec("popularity"), {})
    assert not problems and space["window_days"].values() == [None, 30]


@pytest.mark.parametrize(
    "choices",
    [
        "[8, 010, 0x8]",  # one number in three spellings (YAML 1.1 reads 010 as octal 8)
        "[16, 16.0]",
        "[l1, 'l1']",
        "[null, ~]",
        "[[a, b], ['a', \"b\"]]",
        "[!!set {a, b}, !!set {b, a}]",
        "[{x: 1}, {x: 01}]",
    ],
)
def test_choices_equal_after_parsing_are_refused(choices):
    raw = yaml.safe_load(f"c: {{choice: {choices}}}")["c"]
    with pytest.raises(KdqError, match="a choice lists a value twice"):
        parse_range("no_components", raw)


def test_true_and_one_are_two_choices():
    assert parse_range("user_identity", {"choice": [True, 1]}).choices == (True, 1)


@pytest.mark.parametrize("bounds", [[0.01, float("inf")], [float("nan"), 0.1], [float("-inf"), 0.1]])
def test_float_ranges_must_be_finite(bounds):
    with pytest.raises(KdqError, match="two numbers"):
        parse_range("learning_rate", {"float": bounds})


def test_choice_lists_are_bounded():
    parse_range("no_components", {"choice": list(range(1, 1001))})
    with pytest.raises(KdqError, match="1,001 choices: at most 1,000"):
        parse_range("no_components", {"choice": list(range(1, 1002))})
