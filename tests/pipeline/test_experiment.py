"""Experiment YAML: grid expansion, seeds, overrides, and a clear error for every bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kdq_lab.errors import DataError, KdqError
from kdq_lab.pipeline.experiment import load_experiment

ROOT = Path(__file__).resolve().parents[2]
BASE = {
    "name": "t",
    "dataset": "kdq-catalog-tiny",
    "k": [5, 10],
    "reference": "pop",
    "splits": {"cold": {"kind": "cold_users"}},
    "runs": {
        "pop": {"model": "popularity"},
        "hybrid": {
            "model": "lightfm",
            "params": {"epochs": 3},
            "grid": {"identity": [True, False], "normalize": ["none", "l1"]},
        },
    },
}


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_grid_and_seeds_expand(tmp_path):
    from kdq_lab.models import model_spec

    experiment = load_experiment(write(tmp_path, BASE | {"seeds": [1, 2]}))
    assert list(experiment.runs) == [
        "pop",
        "hybrid-identity=true-normalize=none",
        "hybrid-identity=true-normalize=l1",
        "hybrid-identity=false-normalize=none",
        "hybrid-identity=false-normalize=l1",
    ]
    jobs = experiment.jobs()
    assert len(jobs) == 5 * 1 and all(job.seeds == (1, 2) for job in jobs), "one notebook per run x split, all seeds"
    hybrid = next(j for j in jobs if j.run == "hybrid-identity=false-normalize=l1")
    assert hybrid.params == {"epochs": 3, "identity": False, "normalize": "l1"}
    assert hybrid.folder == "hybrid-identity=false-normalize=l1__cold"
    assert hybrid.label == "hybrid (identity false, normalize l1)"
    resolved = model_spec("lightfm").resolve(hybrid.params, seed=2, metric="ndcg@5")
    assert resolved["random_state"] == 2 and resolved["validation_metric"] == "ndcg@5"
    assert model_spec("lightfm").resolve({"random_state": 9}, seed=2)["random_state"] == 9, "a run may fix its seed"
    assert [seed for _, seed, _ in experiment.split_jobs()] == [1, 2]
    assert {j.run for j in experiment.jobs(only=["hybrid"])} == set(experiment.runs) - {"pop"}, "a grid's base name"
    assert {j.run for j in experiment.jobs(only=["hybrid-identity=true*"])} == {
        "hybrid-identity=true-normalize=none",
        "hybrid-identity=true-normalize=l1",
    }
    assert {j.run for j in experiment.jobs(only=["pop"])} == {"pop"}


def test_overrides_apply_before_validation(tmp_path):
    path = write(tmp_path, BASE)
    experiment = load_experiment(path, ["dataset=kdq-catalog-small", "runs.pop.params.window_days=30", "k=[10]"])
    assert experiment.dataset == "kdq-catalog-small" and experiment.k == (10,)
    assert experiment.runs["pop"].params == {"window_days": 30}
    with pytest.raises(KdqError, match="expected key=value"):
        load_experiment(path, ["dataset"])


BAD = [
    ({"runs": {"pop": {"model": "deepfm"}}, "reference": None}, "runs.pop.model", "unknown model; allowed: random"),
    ({"surprise": 1}, "surprise", "unknown key; allowed:"),
    ({"runs": {"pop": {"model": "popularity", "paramz": {}}}}, "runs.pop.paramz", "unknown key; allowed: grid, label"),
    ({"dataset": "no-such-dataset"}, "dataset", "no such dataset"),
    (
        {"runs": {"pop": {"model": "popularity"}, "h": {"model": "lightfm", "params": {"loss": "hinge"}}}},
        "runs.h",
        "choose one of warp, bpr, logistic, warp-kos",
    ),
    ({"runs": {"pop": {"model": "itemknn", "params": {"k": 3}}}}, "runs.pop.params.k", "allowed: neighbors, shrink"),
    ({"splits": {"cold": {"kind": "by_magic"}}}, "splits.cold", "choose one of random"),
    ({"splits": {"cold": {"kind": "random", "test_fraction": 2}}}, "splits.cold", "between 0 and 1"),
    ({"splits": {"cold": {"kind": "random", "seed": 3}}}, "splits.cold.seed", "unknown key"),
    ({"k": [0]}, "k", "every k must be >= 1"),
    ({"metric": "ndcg@50"}, "metric", "is not in the experiment's k list [5, 10]"),
    ({"metric": "hit"}, "metric", "needs a cut-off"),
    ({"exclude": "everything"}, "exclude", "expected one of seen, train_positives"),
    ({"name": "../escape"}, "name", "not a safe name"),
    ({"splits": {"../x": {"kind": "cold_users"}}}, "splits.../x", "not a safe name"),
    ({"runs": {"pop": {"model": "popularity"}, "x/y": {"model": "popularity"}}}, "runs.x/y", "not a safe name"),
    (
        {
            "runs": {
                "pop": {"model": "popularity"},
                "big": {"model": "itemknn", "grid": {"neighbors": list(range(1, 30)), "shrink": list(range(10))}},
            }
        },
        "runs",
        "more than the cap of 200",
    ),
    (
        {"notebooks": [{"notebook": "01_explore_catalog", "parameters": {"import os; os.system('x'); X": 1}}]},
        "notebooks.parameters.import os; os.system('x'); X",
        "not a parameter of 01_explore_catalog",
    ),
    (
        {"notebooks": [{"notebook": "05_curate_new_user", "parameters": {"MODEL_RUNS": "x"}}]},
        "notebooks.parameters.MODEL_RUNS",
        "not a parameter of 05_curate_new_user",
    ),
    (
        {"notebooks": [{"notebook": "01_explore_catalog", "parameters": {"DATASET": "x"}}]},
        "notebooks.parameters.DATASET",
        "set by the runner",
    ),
    ({"reference": "nobody"}, "reference", "not a run of this experiment"),
    (
        {"runs": {"pop": {"model": "lightfm", "grid": {"identity": True}}}, "reference": None},
        "runs.pop.grid",
        "expected a mapping parameter: [value",
    ),
    ({"notebooks": [{"notebook": "99_nothing"}]}, "notebooks", "no such notebook; available: 01_explore_catalog"),
    ({"notebooks": [{"notebook": "01_explore_catalog", "parameters": "oops"}]}, "notebooks", "expected a mapping"),
    ({"runs": {"pop": {"model": ["lightfm"]}}, "reference": None}, "runs.pop.model", "unknown model"),
    ({"reference": ["pop"]}, "reference", "not a run of this experiment"),
    ({"bootstrap": {"seed": -1}}, "bootstrap.seed", "expected an integer >= 0"),
    ({"splits": {"cold": {"kind": "global_temporal", "cutoff": "someday"}}}, "splits.cold", "not a date-time"),
    (
        {"splits": {"cold": {"kind": "predefined", "predefined": "ua"}}},
        "splits.cold.predefined",
        "the dataset has no such split",
    ),
    (
        {"splits": {"cold": {"kind": "random", "positive_events": ["watch"]}}},
        "splits.cold.positive_events",
        "not event types of the dataset",
    ),
    ({"runs": {"pop": {"model": "itemknn", "params": {"neighbors": "x"}}}}, "runs.pop", "must be an integer >= 1"),
    ({"runs": {"pop": {"model": "lightfm", "params": {"learning_rate": "fast"}}}}, "runs.pop", "must be a number > 0"),
]


@pytest.mark.parametrize("change, key, fragment", BAD)
def test_bad_yaml_names_the_key_and_what_is_allowed(tmp_path, change, key, fragment):
    with pytest.raises(DataError) as caught:
        load_experiment(write(tmp_path, BASE | change))
    matches = [p for p in caught.value.problems if p.column == key and fragment in p.message]
    assert matches, "\n".join(map(str, caught.value.problems))
    assert matches[0].line is not None and matches[0].file.endswith("experiment.yaml")


def test_malformed_yaml_and_missing_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nruns: [1, 2\n", encoding="utf-8")
    with pytest.raises(DataError, match="malformed YAML"):
        load_experiment(path)
    with pytest.raises(KdqError, match="no experiment file"):
        load_experiment(tmp_path / "missing.yaml")


def test_cli_refuses_bad_yaml_before_any_notebook(tmp_path):
    path = write(tmp_path, BASE | {"runs": {"pop": {"model": "deepfm"}}, "reference": None})
    out = tmp_path / "report"
    proc = subprocess.run(
        [sys.executable, "-m", "kdq_lab.cli", "run", str(path), "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 2
    assert "runs.pop.model" in proc.stderr and "unknown model" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists() and not list(tmp_path.glob(".report.*"))


def test_shipped_experiments_are_valid(ml100k_source, tmp_path):
    from kdq_lab.data.movielens import import_movielens

    movielens = import_movielens(ml100k_source, tmp_path / "ml-100k")
    for path in sorted((ROOT / "notebooks" / "experiments").glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        overrides = [f"dataset={movielens}"] if data["dataset"] == "ml-100k" else []
        experiment = load_experiment(path, overrides)
        assert experiment.jobs(), path
