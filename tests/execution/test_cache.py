"""The run cache: a run's key changes with everything its outputs depend on, and only with that."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from links_fixture import outside_file, plant_links, regular_tree

from kdq_lab.execution import cache
from kdq_lab.execution.cache import keep, lookup, restore, unit_key
from kdq_lab.execution.runner import ExecOptions
from kdq_lab.experiment.plan import PlanOptions
from kdq_lab.files import MARKER, SkippedEntryWarning

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "03_train_evaluate.ipynb"
PARAMETERS = {
    "RUN": {"run": "pop", "split": "global", "model": "popularity", "params": {}, "threads": 1},
    "SPLITS": [{"seed": 42, "folder": "/here/data/processed/kdq-catalog-tiny/split-abc123"}],
    "OUTPUT_DIR": "/tmp/x/runs/pop__global",
}


def changed(**updates) -> dict:
    return json.loads(json.dumps(PARAMETERS)) | updates


def test_the_key_ignores_where_outputs_go_threads_and_where_splits_live():
    key = unit_key(NOTEBOOK, PARAMETERS)
    elsewhere = changed(
        OUTPUT_DIR="/elsewhere/runs/pop__global",
        RUN={**PARAMETERS["RUN"], "threads": 4},
        SPLITS=[{"seed": 42, "folder": "/worker/cache/split-abc123"}],
    )
    assert unit_key(NOTEBOOK, elsewhere) == key


@pytest.mark.parametrize(
    "updates",
    [
        {"RUN": {**PARAMETERS["RUN"], "params": {"window_days": 30}}},
        {"SPLITS": [{"seed": 43, "folder": "/here/data/processed/kdq-catalog-tiny/split-abc123"}]},
        {"SPLITS": [{"seed": 42, "folder": "/here/data/processed/kdq-catalog-tiny/split-def456"}]},
    ],
    ids=["parameters", "seed", "split-id"],
)
def test_the_key_changes_with_what_the_outputs_depend_on(updates):
    assert unit_key(NOTEBOOK, changed(**updates)) != unit_key(NOTEBOOK, PARAMETERS)


def test_the_key_changes_with_the_notebook_and_the_code(tmp_path, monkeypatch):
    key = unit_key(NOTEBOOK, PARAMETERS)
    edited = tmp_path / NOTEBOOK.name
    edited.write_bytes(NOTEBOOK.read_bytes() + b"\n")
    assert unit_key(edited, PARAMETERS) != key
    monkeypatch.setattr(cache, "code_fingerprint", lambda: "other-code")
    assert unit_key(NOTEBOOK, PARAMETERS) != key


def test_kept_outputs_are_restored_and_unfinished_entries_are_misses(tmp_path):
    outputs = tmp_path / "run"
    (outputs / "model").mkdir(parents=True)
    (outputs / "summary.json").write_text("{}")
    (outputs / "model" / "model.npz").write_bytes(b"npz")
    processed = tmp_path / "processed"
    assert lookup(processed, "k1") is None
    keep(processed, "k1", outputs)
    hit = lookup(processed, "k1")
    assert hit is not None
    target = tmp_path / "report" / "runs" / "pop__global"
    restore(hit, target)
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*")) == [
        "model",
        "model/model.npz",
        "summary.json",
    ]
    (processed / cache.CACHE / "k2").mkdir()  # a copy that never finished: no .complete marker
    assert lookup(processed, "k2") is None


@pytest.mark.slow  # a whole experiment
def test_the_dry_run_says_which_runs_the_cache_holds(tmp_path):
    from kdq_lab.app.run import describe_plan
    from kdq_lab.config import Paths
    from kdq_lab.data.registry import resolve_dataset
    from kdq_lab.execution.runner import execute_plan
    from kdq_lab.experiment.plan import plan_experiment

    smoke = ROOT / "notebooks" / "experiments" / "smoke.yaml"
    unique = [f"bootstrap.seed={os.getpid()}"]  # a key no other test of the session has filled
    options = PlanOptions(out=tmp_path / "report", only=["popularity"], overrides=unique, compare=False)
    resolve_dataset("kdq-catalog-tiny", Paths.default(), progress=False)  # generated: the plan knows its splits
    plan = plan_experiment(smoke, options)

    def run_line(text: str) -> str:
        return next(line for line in text.splitlines() if "-> runs/popularity__global/" in line)

    assert run_line(describe_plan(plan)).endswith("; to run]")
    outcome = execute_plan(plan, ExecOptions(progress=False, fresh=True))
    assert outcome.ok, outcome.failed
    plan = plan_experiment(smoke, options)
    assert run_line(describe_plan(plan)).endswith("; in the run cache]")
    assert run_line(describe_plan(plan, fresh=True)).endswith("2 seed(s)]"), "--fresh: nothing comes from the cache"


def test_links_and_special_files_never_enter_or_leave_the_cache(tmp_path):
    outputs = tmp_path / "run"
    (outputs / "model").mkdir(parents=True)
    (outputs / "summary.json").write_text("{}")
    (outputs / "model" / "model.npz").write_bytes(b"npz")
    planted = plant_links(outputs / "model", outside_file(tmp_path))
    processed = tmp_path / "processed"
    with pytest.warns(SkippedEntryWarning) as caught:
        keep(processed, "k1", outputs)
    assert {str(outputs / "model" / name) for name in planted} <= {str(w.message).split(":")[0] for w in caught}
    hit = lookup(processed, "k1")
    assert hit is not None and regular_tree(hit) == [".complete", MARKER, "model", "model/model.npz", "summary.json"]
    plant_links(hit / "model", outside_file(tmp_path))  # planted in the cache itself
    target = tmp_path / "report" / "runs" / "pop__global"
    with pytest.warns(SkippedEntryWarning):
        restore(hit, target)
    assert regular_tree(target) == ["model", "model/model.npz", "summary.json"]
