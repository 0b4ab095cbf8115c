"""The onboarding study's ``ablation:`` block: generated runs like grid expansion, clear errors on the YAML line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kdq_lab.errors import DataError
from kdq_lab.experiment.plan import PlanOptions, plan_experiment
from kdq_lab.experiment.schema import load_experiment

FIELDS = ["occupations", "interests", "goals", "coding_experience", "age_band", "region"]
BASE = {
    "name": "t",
    "dataset": "kdq-catalog-tiny",
    "k": [5, 10],
    "reference": "pop",
    "splits": {"cold": {"kind": "cold_users"}, "temporal": {"kind": "user_temporal"}},
    "runs": {
        "pop": {"model": "popularity"},
        "hybrid": {"model": "lightfm", "params": {"epochs": 3}, "grid": {"normalize": ["none", "l1"]}},
        "content": {"model": "content"},
    },
    "ablation": {"run": "hybrid-normalize=l1", "split": "cold", "fields": FIELDS, "permutations": 5},
}


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def with_ablation(**change) -> dict:
    return BASE | {"ablation": {**BASE["ablation"], **change}}


@pytest.mark.parametrize(
    "change, fields, modes",
    [
        ({}, FIELDS, ["drop", "only"]),
        ({"mode": ["drop_one"], "fields": ["region", "goals"]}, ["region", "goals"], ["drop"]),
        ({"mode": "only_one", "fields": ["age_band"]}, ["age_band"], ["only"]),
    ],
)
def test_variants_are_runs_on_the_study_split_only(tmp_path, change, fields, modes):
    experiment = load_experiment(write(tmp_path, with_ablation(**change)))
    base = "hybrid-normalize=l1"
    variants = {name: run for name, run in experiment.runs.items() if name.startswith(f"{base}-")}
    assert sorted(variants) == sorted(f"{base}-{m}={f}" for m in modes for f in fields)
    for field in fields:
        if "drop" in modes:
            run = variants[f"{base}-drop={field}"]
            assert {k: v for k, v in run.params.items() if k != "user_columns"} == {"epochs": 3, "normalize": "l1"}
            assert sorted(run.params["user_columns"]) == sorted(c for c in FIELDS if c != field)
            assert run.label.endswith(f"· without {field}")
        if "only" in modes:
            assert variants[f"{base}-only={field}"].params["user_columns"] == [field]
    jobs = experiment.jobs()
    assert {j.split for j in jobs if j.run in variants} == {"cold"}, "variants run on the study's split only"
    assert {j.split for j in jobs if j.run == base} == {"cold", "temporal"}, "the base run keeps every split"
    importance = {(j.run, j.split): j.importance for j in jobs if j.importance}
    assert importance == {(base, "cold"): {"fields": fields, "repeats": 5}}
    plan = plan_experiment(write(tmp_path, with_ablation(**change)), PlanOptions())
    configs = [s.run for _, steps in plan.stages for s in steps if s.kind == "run"]
    assert [c.importance for c in configs if c is not None and c.run == base and c.split == "cold"] == [
        {"fields": fields, "repeats": 5}
    ]


def test_without_permutations_nothing_is_shuffled_and_a_list_of_runs_is_studied(tmp_path):
    data = with_ablation(run=["hybrid-normalize=l1", "content"], permutations=0, mode=["only_one"])
    experiment = load_experiment(write(tmp_path, data))
    assert not any(j.importance for j in experiment.jobs())
    assert experiment.runs["content-only=goals"].params == {"user_columns": ["goals"]}
    assert experiment.runs["content-only=goals"].model == "content"


def test_a_base_run_with_chosen_columns_drops_from_those(tmp_path):
    data = with_ablation(fields=["goals", "region"])
    data["runs"] = {**BASE["runs"], "few": {"model": "lightfm", "params": {"user_columns": ["goals", "region"]}}}
    data["ablation"]["run"] = "few"
    experiment = load_experiment(write(tmp_path, data))
    assert experiment.runs["few-drop=goals"].params["user_columns"] == ["region"]


@pytest.mark.parametrize(
    "change, key, fragment",
    [
        ({"run": "nosuch"}, "ablation.run", "not a run of this experiment"),
        ({"run": "hybrid"}, "ablation.run", "it expands to hybrid-normalize=none, hybrid-normalize=l1: name one"),
        ({"run": "pop"}, "ablation.run", "model 'popularity' has no user_columns parameter"),
        ({"fields": ["occupations", "shoe_size"]}, "ablation.fields", "not a user feature column of the dataset"),
        ({"fields": ["goals", "goals"]}, "ablation.fields", "each value may be listed once"),
        ({"fields": []}, "ablation.fields", "expected a non-empty list"),
        ({"split": "nosuch"}, "ablation.split", "not a split of this experiment"),
        ({"mode": ["drop_two"]}, "ablation.mode", "expected a list of drop_one, only_one"),
        ({"permutations": 1001}, "ablation.permutations", "(at most 1,000)"),
        ({"permutations": -1}, "ablation.permutations", "expected an integer >= 0"),
        ({"permutations": True}, "ablation.permutations", "expected an integer >= 0"),
        ({"colour": "red"}, "ablation.colour", "unknown key"),
    ],
)
def test_bad_ablation_is_refused_on_its_line(tmp_path, change, key, fragment):
    with pytest.raises(DataError) as caught:
        load_experiment(write(tmp_path, with_ablation(**change)))
    matches = [p for p in caught.value.problems if p.column == key and fragment in p.message]
    assert matches, "\n".join(map(str, caught.value.problems))
    assert matches[0].line is not None


def test_a_field_outside_the_runs_columns_is_refused(tmp_path):
    data = with_ablation(run="few", fields=["goals", "region"])
    data["runs"] = {**BASE["runs"], "few": {"model": "lightfm", "params": {"user_columns": ["goals"]}}}
    with pytest.raises(DataError, match=r"fields \['region'\] are not among the run's user_columns"):
        load_experiment(write(tmp_path, data))


def test_generated_runs_count_towards_the_cap(tmp_path):
    # 3 runs + 1 grid extra = 4 runs x 2 splits; the ablation adds 6 fields x 2 modes = 12 runs x 2 splits (counted
    # over every split: the cap is an upper bound read from the YAML)
    with pytest.raises(DataError, match="16 runs"):
        load_experiment(write(tmp_path, BASE), max_runs=31)
    assert load_experiment(write(tmp_path, BASE), max_runs=32).runs
