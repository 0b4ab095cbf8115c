"""Experiment YAML: grid expansion, seeds, overrides, and a clear error for every bad input."""

from __future__ import annotations

import datetime
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kdq_lab.errors import DataError, KdqError
from kdq_lab.experiment.plan import PlanOptions, plan_experiment
from kdq_lab.experiment.schema import load_experiment

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


def test_a_split_takes_its_kinds_options(tmp_path):
    """Flat in the YAML, routed into the kind's options; an unquoted YAML time stays ISO 8601 text."""
    splits = {
        "global": {"kind": "global_temporal", "cutoff": "2026-06-01T00:00:00+09:00"},
        "unquoted": {"kind": "global_temporal", "cutoff": datetime.datetime(2026, 6, 1, tzinfo=datetime.UTC)},
        "temporal": {"kind": "user_temporal", "test_fraction": 0.3},
    }
    experiment = load_experiment(write(tmp_path, BASE | {"splits": splits}))
    assert experiment.splits["global"].to_dict()["cutoff"] == "2026-06-01T00:00:00+09:00"
    assert experiment.splits["unquoted"].to_dict()["cutoff"] == "2026-06-01T00:00:00+00:00"
    assert "cutoff" not in experiment.splits["temporal"].to_dict()


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
    # a kind takes its own options only, and the error lists what it takes
    (
        {"splits": {"t": {"kind": "user_temporal", "cutoff": "2026-06-01"}}},
        "splits.t.cutoff",
        "unknown key; allowed: kind, positive_events, positive_min_weight, test_fraction, validation_fraction",
    ),
    ({"splits": {"t": {"kind": "random", "predefined": "ua"}}}, "splits.t.predefined", "unknown key; allowed: kind,"),
    ({"splits": {"t": {"kind": "global_temporal", "predefined": "ua"}}}, "splits.t.predefined", "allowed: cutoff,"),
    ({"splits": {"t": {"kind": "predefined"}}}, "splits.t", "a predefined split needs 'predefined: <name>'"),
    ({"splits": {"t": {"kind": "global_temporal", "cutoff": 5}}}, "splits.t", "5 is not a date-time"),
    ({"splits": {"t": {"kind": "global_temporal", "cutoff": "now"}}}, "splits.t", "'now' is not a date-time"),
    ({"splits": {"t": {"kind": "global_temporal", "cutoff": "today"}}}, "splits.t", "'today' is not a date-time"),
    ({"k": [0]}, "k", "every k value must be an integer >= 1 (at most 1,000)"),
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
                "big": {"model": "itemknn", "grid": {"neighbors": list(range(1, 101)), "shrink": list(range(10))}},
            }
        },
        "runs",
        "1,001 runs (after grid expansion) x 1 splits x 1 seeds make 1,001 trainings, more than the cap of 1,000",
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


@pytest.mark.slow  # starts another Python process
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


def _refused(tmp_path: Path, change: dict, key: str, fragment: str, overrides: list[str] | None = None) -> None:
    with pytest.raises(DataError) as caught:
        load_experiment(write(tmp_path, BASE | change), overrides)
    matches = [p for p in caught.value.problems if p.column == key and fragment in p.message]
    assert matches, "\n".join(map(str, caught.value.problems))
    assert matches[0].line is not None


@pytest.mark.parametrize(
    "change, key, fragment",
    [
        ({"seeds": [10**29]}, "seeds", "every seeds value must be an integer >= 0 (at most 4,294,967,295)"),
        ({"seeds": 2**32}, "seeds", "(at most 4,294,967,295)"),
        ({"seeds": [1, -3]}, "seeds", "every seeds value must be an integer >= 0"),
        ({"k": [5, 1001]}, "k", "every k value must be an integer >= 1 (at most 1,000)"),
        ({"k": list(range(1, 22)), "metric": "ndcg@10"}, "k", "21 k values: at most 20 are allowed"),
        ({"seeds": list(range(101))}, "seeds", "101 seeds: at most 100 are allowed"),
        ({"bootstrap": {"samples": 100_001}}, "bootstrap.samples", "expected an integer >= 100 (at most 100,000)"),
        ({"bootstrap": {"samples": 99}}, "bootstrap.samples", "expected an integer >= 100"),
        ({"bootstrap": {"seed": 2**40}}, "bootstrap.seed", "(at most 4,294,967,295)"),
        ({"sample_users": {"n": 10**12}}, "sample_users.n", "(at most 10,000,000)"),
        ({"sample_users": {"n": 5, "seed": 10**29}}, "sample_users.seed", "(at most 4,294,967,295)"),
        ({"tuning": {"seed": 10**29}}, "tuning", "tuning seed must be an integer >= 0 (at most 4,294,967,295)"),
        ({"tuning": {"trials": 10**6}}, "tuning", "tuning trials must be an integer >= 1 or null (at most 10,000)"),
        ({"tuning": {"timeout": float("inf")}}, "tuning", "tuning timeout must be a number > 0"),
        ({"tuning": {"timeout": float("nan")}}, "tuning", "tuning timeout must be a number > 0"),
        (
            {"runs": {"pop": {"model": "lightfm", "params": {"no_components": 10**9}}}},
            "runs.pop",
            "no_components must be an integer >= 1 (at most 1,024)",
        ),
        (
            {"runs": {"pop": {"model": "lightfm", "params": {"random_state": 10**29}}}},
            "runs.pop",
            "random_state must be an integer >= 0 (at most 4,294,967,295)",
        ),
        (
            {"runs": {"pop": {"model": "lightfm", "params": {"learning_rate": float("inf")}}}},
            "runs.pop",
            "learning_rate must be a number > 0",
        ),
        (
            {"splits": {"cold": {"kind": "random", "positive_min_weight": float("nan")}}},
            "splits.cold",
            "positive_min_weight must be a finite number",
        ),
        ({"metric": "ndcg@100000000000000000000"}, "metric", "needs a cut-off from 1 to 1000"),
    ],
)
def test_values_numpy_or_lightfm_cannot_take_are_refused_with_key_and_line(tmp_path, change, key, fragment):
    _refused(tmp_path, change, key, fragment)


def test_yaml_spellings_of_huge_seeds_are_refused(tmp_path):
    path = tmp_path / "experiment.yaml"
    text = yaml.safe_dump(BASE, sort_keys=False) + "seeds: [42, 100000000000000000000000000000]\n"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError) as caught:
        load_experiment(path)
    (problem,) = [p for p in caught.value.problems if p.column == "seeds"]
    assert problem.line == text.count("\n") and "at most 4,294,967,295" in problem.message


class _Expanded(Exception):
    """Raised by the stand-ins below: the experiment was expanded before its size was checked."""


@pytest.fixture
def no_expansion(monkeypatch):
    """Make building a split config, expanding a grid or building a model fail loudly."""
    import kdq_lab.experiment.schema as experiment

    def refuse(*args, **kwargs):
        raise _Expanded

    monkeypatch.setattr(experiment, "SplitConfig", refuse)
    monkeypatch.setattr(experiment, "expand_grid", refuse)
    monkeypatch.setattr(experiment, "model_spec", refuse)
    monkeypatch.setattr(experiment, "dataset_exists", refuse)


SPLITS_40 = "splits={" + ", ".join(f"s{i}: {{kind: random}}" for i in range(40)) + "}"
GRID_1600 = {"g": {"model": "lightfm", "grid": {"epochs": list(range(1, 41)), "no_components": list(range(1, 41))}}}
GRID_2_60 = {"g": {"model": "lightfm", "grid": {f"p{i}": [1, 2] for i in range(60)}}}
NOTEBOOKS_51 = [{"notebook": "01_explore_catalog"} for _ in range(51)]


@pytest.mark.parametrize(
    "change, overrides, fragment",
    [
        ({"seeds": list(range(10_000))}, [], "10,000 seeds: at most 100 are allowed"),
        ({"splits": {f"s{i}": {"kind": "random"} for i in range(3_000)}}, [], "3,000 splits: at most 50 are allowed"),
        ({"seeds": list(range(60))}, [SPLITS_40], "5 runs (after grid expansion) x 40 splits x 60 seeds make 12,000"),
        ({"runs": GRID_1600, "reference": None}, [], "1,600 runs (after grid expansion) x 1 splits x 1 seeds"),
        ({"runs": GRID_2_60, "reference": None}, [], "1,152,921,504,606,846,976 runs (after grid expansion)"),
        ({"k": list(range(1, 500))}, [], "499 k values: at most 20 are allowed"),
        ({"notebooks": NOTEBOOKS_51}, [], "51 extra notebooks: at most 50 are allowed"),
    ],
)
def test_sizes_are_counted_before_anything_is_expanded(tmp_path, no_expansion, change, overrides, fragment):
    with pytest.raises(DataError) as caught:
        load_experiment(write(tmp_path, BASE | change), overrides)
    assert any(fragment in p.message for p in caught.value.problems), "\n".join(map(str, caught.value.problems))


def test_max_runs_counts_trainings(tmp_path):
    path = write(tmp_path, BASE | {"seeds": [1, 2, 3]})  # 5 runs x 1 split x 3 seeds = 15 trainings
    assert len(load_experiment(path, max_runs=15).runs) == 5
    with pytest.raises(DataError, match="make 15 trainings, more than the cap of 14"):
        load_experiment(path, max_runs=14)
    with pytest.raises(KdqError, match="--max-runs: 100,001 trainings: at most 100,000"):
        load_experiment(path, max_runs=100_001)


def test_kdq_default_fits_the_default_cap():
    from kdq_lab.limits import MAX_TRAININGS

    experiment = load_experiment(ROOT / "notebooks" / "experiments" / "kdq-default.yaml")
    assert len(experiment.runs) * len(experiment.splits) * len(experiment.seeds) == 96 <= MAX_TRAININGS


@pytest.mark.slow  # starts another Python process
def test_dry_run_of_ten_thousand_seeds_is_refused(tmp_path):
    path = write(tmp_path, BASE | {"seeds": list(range(10_000))})
    proc = subprocess.run(
        [sys.executable, "-m", "kdq_lab.cli", "run", str(path), "--dry-run"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 2 and "10,000 seeds: at most 100 are allowed" in proc.stderr
    assert "Traceback" not in proc.stderr


GRID_REPEATS = [  # (grid lines, parameter, first item, line of the repeat)
    pytest.param("epochs: [1, 01, 0x1]", "epochs", 1, 8, id="int-spellings"),
    pytest.param("learning_rate: [0.1, 1.0e-1]", "learning_rate", 1, 8, id="float-spellings"),
    pytest.param("learning_rate: [0.5, 1, 1.0]", "learning_rate", 2, 8, id="int-and-float"),
    pytest.param("normalize: [l1, 'l1']", "normalize", 1, 8, id="quoted-text"),
    pytest.param("user_identity: [null, ~]", "user_identity", 1, 8, id="two-nulls"),
    pytest.param('normalize:\n        - none\n        - l1\n        - "none"', "normalize", 1, 11, id="block-list"),
]


@pytest.mark.parametrize("grid, parameter, first, line", GRID_REPEATS)
def test_grid_values_equal_after_parsing_are_refused_on_their_line(tmp_path, grid, parameter, first, line):
    text = (
        "name: t\ndataset: kdq-catalog-tiny\nsplits: {cold: {kind: cold_users}}\nruns:\n  h:\n    model: lightfm\n"
        f"    grid:\n      {grid}\n"
    )
    path = tmp_path / "experiment.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError) as caught:
        load_experiment(path)
    (problem,) = [p for p in caught.value.problems if p.column == f"runs.h.grid.{parameter}"]
    assert f"the same value as item {first} " in problem.message and problem.line == line


def test_true_and_one_are_different_grid_values(tmp_path):
    """``true`` is not the number 1 in a grid (Python's ``True == 1`` would say otherwise): the config decides."""
    change = {"runs": {"h": {"model": "lightfm", "grid": {"identity": [True, 1]}}}, "reference": None}
    _refused(tmp_path, change, "runs.h", "identity must be true or false")


def test_repeated_seeds_and_k_are_refused(tmp_path):
    _refused(tmp_path, {"seeds": [1, 2, 1]}, "seeds", "the same value as item 1")
    _refused(tmp_path, {"k": [10, 5, 10]}, "k", "the same value as item 1")


@pytest.mark.parametrize(
    "sesoi, key, fragment",
    [
        ({"ndcg@10": 0}, "sesoi.ndcg@10", "sesoi ndcg@10 must be a number > 0 (at most 1), not 0"),
        ({"ndcg@10": -0.01}, "sesoi.ndcg@10", "must be a number > 0"),
        ({"ndcg@10": 1.5}, "sesoi.ndcg@10", "(at most 1), not 1.5"),
        ({"ndcg@10": float("nan")}, "sesoi.ndcg@10", "must be a number > 0"),
        ({"ndcg@10": float("inf")}, "sesoi.ndcg@10", "must be a number > 0"),
        ({"ndcg@10": True}, "sesoi.ndcg@10", "must be a number > 0"),
        ({"ndcg@10": "0.005"}, "sesoi.ndcg@10", "must be a number > 0"),
        ({"ndcg@20": 0.005}, "sesoi.ndcg@20", "k=20 is not in the experiment's k list [5, 10]"),
        ({"ndgc@10": 0.005}, "sesoi.ndgc@10", "metric 'ndgc@10' is unknown"),
        ({"coverage@10": 0.005}, "sesoi.coverage@10", "is unknown"),  # an aggregate metric has no per-user pairs
        ([0.005], "sesoi", "expected a mapping of metric: smallest effect of interest"),
        ("ndcg@10", "sesoi", "expected a mapping of metric"),
    ],
)
def test_a_bad_sesoi_is_refused_with_key_and_line(tmp_path, sesoi, key, fragment):
    _refused(tmp_path, {"sesoi": sesoi}, key, fragment)


def test_sesoi_is_read_per_metric(tmp_path):
    experiment = load_experiment(write(tmp_path, BASE | {"sesoi": {"ndcg@10": 0.005, "auc": 1}}))
    assert experiment.sesoi == {"ndcg@10": 0.005, "auc": 1.0}
    assert load_experiment(write(tmp_path, BASE)).sesoi == {}
    assert load_experiment(write(tmp_path, BASE | {"sesoi": None})).sesoi == {}


@pytest.mark.parametrize(
    "segments, fragment",
    [
        ({"by_feature": ["favourite_colour"]}, "not a user feature column"),
        ({"by_feature": ["occupations", "occupations"]}, "listed twice"),
        ({"by_feature": []}, "expected a list of user feature column names"),
        ({"by_feature": "occupations"}, "expected a list of user feature column names"),
        ({"by_item": ["creator"]}, "unknown key; allowed: by_feature"),
    ],
)
def test_declared_segments_are_checked_against_the_dataset(tmp_path, segments, fragment):
    key = "segments." + next(iter(segments))
    _refused(tmp_path, {"segments": segments}, key, fragment)


def test_declared_segments_reach_every_run(tmp_path):
    experiment = load_experiment(write(tmp_path, BASE | {"segments": {"by_feature": ["occupations", "age_band"]}}))
    assert experiment.segments == {"by_feature": ["occupations", "age_band"]}
    assert load_experiment(write(tmp_path, BASE)).segments == {}
    plan = plan_experiment(
        write(tmp_path, BASE | {"segments": {"by_feature": ["region"]}}), PlanOptions(out=tmp_path / "r")
    )
    runs = [step.run for step in plan.steps() if step.run is not None]
    assert runs and all(run.segments == {"by_feature": ["region"]} for run in runs)


@pytest.mark.parametrize(
    "exposure, key, fragment",
    [
        ({"by": "title"}, "exposure.by", "expected a categorical item column"),
        ({"by": "topics"}, "exposure.by", "expected a categorical item column"),
        ({"of": "creator"}, "exposure.of", "unknown key; allowed: by"),
    ],
)
def test_exposure_names_a_categorical_item_column(tmp_path, exposure, key, fragment):
    _refused(tmp_path, {"exposure": exposure}, key, fragment)


def test_exposure_reaches_every_run(tmp_path):
    plan = plan_experiment(write(tmp_path, BASE | {"exposure": {"by": "creator"}}), PlanOptions(out=tmp_path / "r"))
    runs = [step.run for step in plan.steps() if step.run is not None]
    assert runs and all(run.exposure == "creator" for run in runs)
