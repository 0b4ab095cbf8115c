"""A study is found by what it was tuned on: another dataset, split, space, metric, rule or variant is another study."""

from __future__ import annotations

import re
from pathlib import Path

import optuna
import pytest

from kdq_lab.app.tune import TuneOptions, tune_experiment
from kdq_lab.errors import KdqError
from kdq_lab.execution.runner import ExecOptions
from kdq_lab.experiment.plan import PlanOptions, plan_experiment
from kdq_lab.tuning import study as studies
from kdq_lab.tuning.space import parse_range
from kdq_lab.tuning.study import counted, open_storage

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "notebooks" / "experiments" / "smoke.yaml"
POPULARITY_SPACE = "runs.popularity.search={window_days: {choice: [null, 14]}}"

# (overrides that change the context, the difference the refusal must name)
CHANGES = [
    (["splits.global.test_fraction=0.3"], "split configuration differs: test_fraction 0.25 vs 0.3"),
    (["runs.popularity.search={window_days: {choice: [7, 30]}}"],
     'search space differs: window_days {"choice": [null, 14]} vs {"choice": [7, 30]}'),
    (["metric=ndcg@5"], 'metric differs: "ndcg@10" vs "ndcg@5"'),
    (["exclude=train_positives"], 'exclusion rule differs: "seen" vs "train_positives"'),
    (["seeds=[7]"], "split configuration differs: seed 42 vs 7"),
]  # fmt: skip


@pytest.fixture(scope="module")
def tuned(tmp_path_factory) -> tuple[Path, str]:
    """The smoke experiment's popularity run tuned with 2 trials: (report folder, storage URL)."""
    out = tmp_path_factory.mktemp("context") / "report"
    _, storage = tune_experiment(
        SMOKE,
        TuneOptions(trials=2),
        PlanOptions(only=["popularity"], overrides=[POPULARITY_SPACE], out=out),
        ExecOptions(progress=False),
    )
    return out, storage


def tuned_plan(out: Path, storage: str, overrides: list[str]):
    return plan_experiment(
        SMOKE,
        PlanOptions(
            out=out, tuned=True, storage=storage, only=["popularity"], overrides=[POPULARITY_SPACE, *overrides]
        ),
    )


def study_names(storage: str) -> list[str]:
    return sorted(optuna.get_all_study_names(open_storage(storage)))


def test_the_same_context_finds_its_study_and_records_it(tuned):
    out, storage = tuned
    (name,) = study_names(storage)
    assert re.fullmatch(r"smoke/popularity/global@[0-9a-f]{10}", name)
    context = optuna.load_study(study_name=name, storage=open_storage(storage)).user_attrs["context"]
    assert context["model"] == "popularity" and context["metric"] == "ndcg@10" and context["exclude"] == "seen"
    assert context["space"] == {"window_days": {"choice": [None, 14]}} and context["params"] == {}
    assert context["split"]["kind"] == "global_temporal" and context["split"]["seed"] == 42
    assert set(context["dataset"]) >= {"dataset.yaml", "interactions.csv"}
    trials = optuna.load_study(study_name=name, storage=open_storage(storage)).trials
    assert sum(counted(t) for t in trials) == 2
    plan = tuned_plan(out, storage, [])
    assert plan.tuning is not None and plan.tuning["studies"]["popularity__global"]["study"] == name


@pytest.mark.parametrize("overrides, difference", CHANGES)
def test_run_tuned_refuses_a_study_of_another_context_naming_what_differs(tuned, overrides, difference):
    out, storage = tuned
    with pytest.raises(KdqError) as caught:
        tuned_plan(out, storage, overrides)
    message = str(caught.value)
    assert "no tuning study" in message and difference in message and "run `kdq-lab tune` first" in message


def test_another_dataset_is_another_context(tuned, catalog_copy):
    out, storage = tuned
    with (catalog_copy / "dataset.yaml").open("a", encoding="utf-8") as handle:
        handle.write("# one more line: another version of the dataset\n")
    with pytest.raises(KdqError, match="dataset hashes differ"):
        tuned_plan(out, storage, [f"dataset={catalog_copy}"])


@pytest.mark.parametrize("overrides", [["splits.global.validation_fraction=0.2"], ["metric=recall@10"]])
def test_a_new_context_gets_a_new_study_with_its_own_budget(tmp_path, overrides):
    out, storage = tmp_path / "report", f"sqlite:///{tmp_path / 'studies.db'}"
    tune_experiment(
        SMOKE,
        TuneOptions(trials=2),
        PlanOptions(only=["popularity"], overrides=[POPULARITY_SPACE], out=out, storage=storage),
        ExecOptions(progress=False),
    )
    before = study_names(storage)
    kept = [(t.number, t.params) for t in optuna.load_study(study_name=before[0], storage=open_storage(storage)).trials]
    results, _ = tune_experiment(
        SMOKE,
        TuneOptions(trials=3),
        PlanOptions(only=["popularity"], overrides=[POPULARITY_SPACE, *overrides], out=out, storage=storage),
        ExecOptions(progress=False),
    )
    (result,) = results
    assert result.name not in before and result.complete + result.pruned + result.failed == 3, "a full budget"
    assert sorted([*before, result.name]) == study_names(storage)
    again = optuna.load_study(study_name=before[0], storage=open_storage(storage)).trials
    assert [(t.number, t.params) for t in again] == kept, "the first study is untouched"
    plan = tuned_plan(out, storage, overrides)
    assert plan.tuning is not None and plan.tuning["studies"]["popularity__global"]["study"] == result.name


def test_a_study_from_before_contexts_is_named_and_not_used(tmp_path):
    storage = f"sqlite:///{tmp_path / 'old.db'}"
    old = optuna.create_study(study_name="smoke/popularity/global", storage=open_storage(storage),
                              direction="maximize")  # fmt: skip
    old.enqueue_trial({"window_days": 14})
    old.optimize(lambda trial: trial.suggest_categorical("window_days", [None, 14]) or 0.5, n_trials=1)
    with pytest.raises(KdqError, match=r"smoke/popularity/global \(it records no context"):
        tuned_plan(tmp_path / "r", storage, [])


def test_a_stored_context_that_disagrees_with_the_name_is_refused(tuned, monkeypatch):
    """Only a hash collision or a hand-edited database can get here: both are refused."""
    out, storage = tuned
    (name,) = study_names(storage)
    monkeypatch.setattr(studies, "study_name", lambda *args: name)  # every context collides with the stored one
    with pytest.raises(KdqError, match=r"records another context: metric differs"):
        tuned_plan(out, storage, ["metric=ndcg@5"])


def test_a_best_trial_outside_the_current_space_is_refused(tmp_path, monkeypatch):
    out, storage = tmp_path / "report", f"sqlite:///{tmp_path / 'edited.db'}"
    (result,) = tune_experiment(
        SMOKE,
        TuneOptions(trials=2),
        PlanOptions(only=["popularity"], overrides=[POPULARITY_SPACE], out=out, storage=storage),
        ExecOptions(progress=False),
    )[0]
    study = optuna.load_study(study_name=result.name, storage=open_storage(storage))
    narrower = "runs.popularity.search={window_days: {choice: [7, 30]}}"
    context = tuned_plan_context(out, narrower)
    study.set_user_attr("context", context)  # a hand-edited database: the study now claims the new space
    monkeypatch.setattr(studies, "study_name", lambda *args: result.name)
    with pytest.raises(KdqError, match=r"has parameters outside the search space: window_days=(None|14)"):
        plan_experiment(
            SMOKE,
            PlanOptions(out=out, tuned=True, storage=storage, only=["popularity"], overrides=[narrower]),
        )


def tuned_plan_context(out: Path, overrides: str) -> dict:
    """The context `run --tuned` computes for the popularity run with ``overrides``."""
    plan = plan_experiment(SMOKE, PlanOptions(out=out, only=["popularity"], overrides=[overrides]))
    (spec,) = plan.experiment.jobs(["popularity"])
    return plan.experiment.study_context(spec, plan.hashes)


@pytest.mark.parametrize(
    "raw, inside, outside",
    [
        ({"int": [4, 16]}, [4, 9, 16], [3, 17, 9.0, True, "9"]),
        ({"float": [0.01, 0.2], "log": True}, [0.01, 0.1, 0.2], [0.005, 0.3, None]),
        ({"choice": [None, "l1", 30]}, [None, "l1", 30], ["l2", 30.0, 7, False]),
        ({"choice": [True, False]}, [True, False], [1, 0, None]),
    ],
)
def test_a_range_knows_what_a_trial_could_have_proposed(raw, inside, outside):
    span = parse_range("x", raw)
    assert all(span.contains(value) for value in inside), inside
    assert not any(span.contains(value) for value in outside), outside
