"""Composite models: the experiment names their parts, the plan runs parts first and keeps their fitted models,
the composite loads them (never retraining) and its cache key follows its parts'.

The runs execute in this process (the runner's run stage with an in-process backend doing what
``03_train_evaluate`` does), so a test-only composite kind registered here is known where it runs.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from model_fixtures import MEAN_OF_PARTS, MeanOfParts, registered

from kdq_lab.data.splits import SplitConfig
from kdq_lab.data.store import load_split, prepare
from kdq_lab.errors import DataError
from kdq_lab.execution.runner import ExecOptions, _execute_runs, _job
from kdq_lab.experiment.plan import PlanOptions, plan_experiment
from kdq_lab.experiment.schema import load_experiment
from kdq_lab.models import load_model
from kdq_lab.models.itemknn import ItemKNNScorer
from kdq_lab.models.popularity import PopularityScorer
from kdq_lab.models.registry import ModelSpec
from kdq_lab.runs.run import RunConfig, run, save_run


def experiment(tmp_path: Path, dataset: Path, runs: dict[str, Any], seeds: tuple[int, ...] = (1, 2)) -> Path:
    data = {
        "name": "composite",
        "dataset": str(dataset),
        "seeds": list(seeds),
        "k": [10],
        "splits": {"rnd": {"kind": "random", "test_fraction": 0.2, "validation_fraction": 0.15}},
        "runs": runs,
    }
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


RUNS = {
    "pop": {"model": "popularity"},
    "knn": {"model": "itemknn", "grid": {"neighbors": [20, 50]}},
    "mean": {"model": "mean_of_parts", "params": {"first": "pop", "second": "knn-neighbors=20"}},
}


class InProcess:
    """A backend doing in this process what ``03_train_evaluate`` does with a run job; keeps the results."""

    def __init__(self) -> None:
        self.results: dict[str, Any] = {}
        self.executed: list[str] = []

    def notebooks(self, jobs, label, progress, on_done=None):
        out = []
        for job in jobs:
            p = job.parameters
            config = RunConfig(**{**p["RUN"], "ks": tuple(p["RUN"]["ks"])})
            splits = {ref["seed"]: load_split(ref["folder"]) for ref in p["SPLITS"]}
            result = run(config, splits, runs_dir=Path(p["OUTPUT_DIR"]).parent)
            save_run(result, Path(p["OUTPUT_DIR"]), save_model=False)
            self.results[job.key], done = (
                result,
                {"kind": job.kind, "key": job.key, "status": "ok", "error": None, "seconds": 0.0},
            )
            self.executed.append(job.key)
            if on_done:
                on_done(job, done)
            out.append(done)
        return out


def execute_runs(plan, tmp: Path, backend: InProcess, keys: dict[str, str]) -> None:
    for ref in plan.splits:  # what 02_prepare_data does
        assert str(prepare(plan.dataset_dir, SplitConfig.from_dict(ref.config), plan.paths.processed)) == ref.folder
    for stage, steps in plan.stages:
        if steps and steps[0].kind == "run":
            jobs = [_job(step, plan, tmp) for step in steps]
            _execute_runs(jobs, stage, plan.paths, ExecOptions(progress=False), backend, keys)


@pytest.fixture
def counted_fits(monkeypatch):
    counts = {"popularity": 0, "itemknn": 0}
    for cls, kind in ((PopularityScorer, "popularity"), (ItemKNNScorer, "itemknn")):
        original = cls.fit

        def counting(self, data, _original=original, _kind=kind):
            counts[_kind] += 1
            return _original(self, data)

        monkeypatch.setattr(cls, "fit", counting)
    return counts


def test_a_composite_is_built_from_its_parts_saved_fits_never_retraining_them(tmp_path, tiny_catalog, counted_fits):
    with registered(MEAN_OF_PARTS):
        plan = plan_experiment(experiment(tmp_path, tiny_catalog, RUNS), PlanOptions(out=tmp_path / "report"))
        stages = {name: [s.key for s in steps] for name, steps in plan.stages}
        assert stages["composite runs"] == ["pop__rnd", "knn-neighbors=20__rnd", "knn-neighbors=50__rnd"]
        assert stages["composite composite runs (level 1)"] == ["mean__rnd"], "the composite runs after its parts"
        steps = {s.key: s for s in plan.steps() if s.run is not None}
        assert steps["pop__rnd"].run.save_models and steps["knn-neighbors=20__rnd"].run.save_models
        assert not steps["knn-neighbors=50__rnd"].run.save_models, "only parts keep their fitted models"
        assert steps["mean__rnd"].run.parts == {"first": "pop__rnd", "second": "knn-neighbors=20__rnd"}

        backend, keys, tmp = InProcess(), {}, tmp_path / "building"
        execute_runs(plan, tmp, backend, keys)
        # each part: a fit on train (for the composite's choices) and a refit on train + validation, per seed
        assert counted_fits == {"popularity": 2 * 2, "itemknn": 2 * 2 + 2}, "the composite retrained no part"
        for seed in (1, 2):
            for stage in ("fit", "refit"):
                assert (tmp / "runs" / "pop__rnd" / "models" / str(seed) / stage / "model.json").is_file()
        composite = backend.results["mean__rnd"]
        users = np.arange(60)
        for result in composite.seeds:
            saved = tmp / "runs" / "{}" / "models" / str(result.seed) / "refit"
            first = load_model(Path(str(saved).format("pop__rnd"))).score(users)
            second = load_model(Path(str(saved).format("knn-neighbors=20__rnd"))).score(users)
            np.testing.assert_array_equal(result.model.score(users), (first + second) / np.float32(2))
            chosen_on = result.fitted
            assert isinstance(chosen_on, MeanOfParts), "the validation-time composite was built from the train fits"
            train_part = load_model(tmp / "runs" / "pop__rnd" / "models" / str(result.seed) / "fit")
            np.testing.assert_array_equal(chosen_on.parts_["first"].score(users), train_part.score(users))
            assert not np.array_equal(chosen_on.parts_["first"].score(users), first), "fit and refit differ"

        again = InProcess()
        execute_runs(plan, tmp_path / "again", again, {})
        assert again.executed == [], "the same experiment again is served from the run cache, composite included"


def test_a_composites_cache_key_follows_its_parts_keys(tmp_path, tiny_catalog):
    with registered(MEAN_OF_PARTS):
        plan = plan_experiment(experiment(tmp_path, tiny_catalog, RUNS, seeds=(1,)), PlanOptions(out=tmp_path / "r"))
        step = next(s for s in plan.steps() if s.key == "mean__rnd")
        job = _job(step, plan, tmp_path / "b")

        class Nothing:
            def notebooks(self, jobs, label, progress, on_done=None):
                return []

        def key(parts: dict[str, str]) -> str:
            keys = dict(parts)
            with contextlib.suppress(KeyError):  # Nothing ran it: no result; the key was computed first
                _execute_runs([job], "x", plan.paths, ExecOptions(progress=False, fresh=True), Nothing(), keys)
            return keys[job.key]

        base = {"pop__rnd": "a", "knn-neighbors=20__rnd": "b", "knn-neighbors=50__rnd": "c"}
        assert key(base) == key(dict(base))
        assert key(base) != key(base | {"pop__rnd": "z"}) != key(base | {"knn-neighbors=20__rnd": "z"})
        assert key(base) == key(base | {"knn-neighbors=50__rnd": "z"}), "a run that is no part does not count"


def test_only_a_composite_brings_its_parts(tmp_path, tiny_catalog):
    with registered(MEAN_OF_PARTS):
        plan = plan_experiment(
            experiment(tmp_path, tiny_catalog, RUNS), PlanOptions(out=tmp_path / "r", only=("mean",))
        )
        assert [s.key for s in plan.steps() if s.run] == ["pop__rnd", "knn-neighbors=20__rnd", "mean__rnd"]


class PersistableMean(MeanOfParts):
    """A composite that could be saved (only to show that cycles are refused)."""

    def save(self, folder, extra=None, items=None):
        raise NotImplementedError

    @classmethod
    def load(cls, folder):
        raise NotImplementedError


SAVED_MEAN = replace(MEAN_OF_PARTS, kind="saved_mean", build=PersistableMean)


@pytest.mark.parametrize(
    "runs, key, value, fragment",
    [
        (
            RUNS | {"mean": {"model": "mean_of_parts", "params": {"first": "pop", "second": "nope"}}},
            "runs.mean.params.second",
            "nope",
            "another run of this experiment",
        ),
        (
            RUNS | {"mean": {"model": "mean_of_parts", "params": {"first": "mean", "second": "pop"}}},
            "runs.mean.params.first",
            "mean",
            "from itself",
        ),
        (
            RUNS | {"mean": {"model": "mean_of_parts", "params": {"first": "pop", "second": "knn"}}},
            "runs.mean.params.second",
            "knn",
            "another run",
        ),  # the grid's base name is not a run
        (
            RUNS
            | {
                "ease": {"model": "ease"},
                "mean": {"model": "mean_of_parts", "params": {"first": "ease", "second": "pop"}},
            },
            "runs.mean.params.first",
            "ease",
            "cannot be saved",
        ),
        (
            RUNS | {"mean": {"model": "mean_of_parts", "params": {"first": "pop"}, "grid": {"second": ["pop", "x"]}}},
            "runs.mean.grid.second",
            "x",
            "another run",
        ),
        (
            RUNS
            | {
                "a": {"model": "saved_mean", "params": {"first": "b", "second": "pop"}},
                "b": {"model": "saved_mean", "params": {"first": "a", "second": "pop"}},
            },
            "runs.b.params.first",
            "a -> b -> a",
            "cycle",
        ),
    ],
)
def test_bad_parts_are_refused_with_the_key_and_its_line(tmp_path, tiny_catalog, runs, key, value, fragment):
    with registered(MEAN_OF_PARTS, SAVED_MEAN):
        path = experiment(tmp_path, tiny_catalog, runs)
        with pytest.raises(DataError) as error:
            load_experiment(path)
    problems = [p for p in error.value.problems if p.column == key]
    assert problems and fragment in problems[0].message and problems[0].value == value
    lines = path.read_text(encoding="utf-8").splitlines()
    assert problems[0].line is not None and key.split(".")[-1] + ":" in lines[problems[0].line - 1]


def test_a_part_named_in_a_grid_expands_to_one_composite_per_part(tmp_path, tiny_catalog):
    runs = RUNS | {
        "mean": {
            "model": "mean_of_parts",
            "params": {"first": "pop"},
            "grid": {"second": ["knn-neighbors=20", "knn-neighbors=50"]},
        }
    }
    with registered(MEAN_OF_PARTS):
        loaded = load_experiment(experiment(tmp_path, tiny_catalog, runs))
        assert loaded.part_runs() == {"pop", "knn-neighbors=20", "knn-neighbors=50"}
        assert {name: loaded.depth(name) for name in loaded.runs if name.startswith("mean")} == {
            "mean-second=knn-neighbors=20": 1,
            "mean-second=knn-neighbors=50": 1,
        }


def test_a_spec_naming_parts_must_be_a_composite_and_the_reverse():
    with pytest.raises(ValueError, match="not a Composite"):
        replace(MEAN_OF_PARTS, kind="x", build=PopularityScorer)
    with pytest.raises(ValueError, match="names no parts"):
        ModelSpec(kind="y", build=MeanOfParts, config=MEAN_OF_PARTS.config, summary="", parts=())
    assert MEAN_OF_PARTS.composite and not MEAN_OF_PARTS.persistable and not MEAN_OF_PARTS.iterative
