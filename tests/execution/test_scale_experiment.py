"""The kdq-large experiment's path on the tiny catalog: Parquet raw tables, one validation, sampled test users."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kdq_lab.app.run import run_experiment
from kdq_lab.config import Paths
from kdq_lab.data.splits import SplitConfig
from kdq_lab.data.store import load_split, prepare
from kdq_lab.data.validated import validated_folder
from kdq_lab.errors import DataError
from kdq_lab.execution.runner import ExecOptions
from kdq_lab.experiment.plan import PlanOptions
from kdq_lab.experiment.schema import load_experiment
from kdq_lab.runs.records import RunSummary
from kdq_lab.runs.run import RunConfig, run

ROOT = Path(__file__).resolve().parents[2]
LARGE = ROOT / "notebooks" / "experiments" / "kdq-large.yaml"
TINY = [
    "sample_users={n: 40, seed: 3}",
    "bootstrap.samples=100",
    "runs.lightfm_hybrid.params.epochs=3",
    "runs.lightfm_hybrid.params.no_components=8",
    "runs.lightfm_hybrid.params.validation_users=30",
    "runs.lightfm_hybrid.params.curve_users=50",
]


@pytest.mark.slow  # a whole experiment
def test_kdq_large_runs_end_to_end_on_the_tiny_parquet_catalog(tiny_parquet_catalog, tmp_path):
    out = tmp_path / "kdq-large"
    outcome = run_experiment(
        LARGE,
        PlanOptions(out=out, jobs=2, overrides=[f"dataset={tiny_parquet_catalog}", *TINY]),
        ExecOptions(progress=False),
    )
    assert outcome.ok, outcome.failed
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["sample_users"] == {"n": 40, "seed": 3}
    stages = [stage["stage"] for stage in manifest["stages"]]
    assert stages == ["validate", "prepare splits", "kdq-large runs", "compare"]
    assert all(stage["seconds"] >= 0 and stage["ended"] >= stage["started"] for stage in manifest["stages"])
    hashes = manifest["dataset"]["hashes"]
    assert (validated_folder(tiny_parquet_catalog, Paths.default().processed, hashes) / "manifest.json").is_file()
    for run_name in ("popularity__cold_users", "lightfm_hybrid__cold_users"):
        summary = RunSummary.read(out / "runs" / run_name / "summary.json")
        assert summary.sample_users == {"n": 40, "seed": 3}
        facts = summary.seed(42)
        assert facts.n_users == 40 < facts.n_test_users
    lightfm = RunSummary.read(out / "runs" / "lightfm_hybrid__cold_users" / "summary.json")
    assert lightfm.seed(42).validation_share > 0  # reported (at this size validation outweighs an epoch)


def test_sampled_users_are_the_same_for_every_run(tiny_parquet_catalog, tmp_path):
    split = load_split(prepare(tiny_parquet_catalog, SplitConfig(kind="cold_users", seed=42), tmp_path))
    users = []
    for model in ("popularity", "random"):
        config = RunConfig(run=model, model=model, bootstrap_samples=100, sample_users={"n": 25, "seed": 1})
        users.append(run(config, {42: split}).per_user()["user"].tolist())
    assert users[0] == users[1] and len(users[0]) == 25


@pytest.mark.parametrize(
    "value, fragment",
    [
        ("{n: 0}", "integer >= 1"),
        ("{n: 10, seed: -1}", "integer >= 0"),
        ("{size: 10}", "unknown key"),
        ("10", "mapping"),
    ],
)
def test_sample_users_is_checked(value, fragment):
    with pytest.raises(DataError, match=fragment):
        load_experiment(LARGE, [f"sample_users={value}", "dataset=kdq-catalog-tiny"])
