"""``kdq-lab run --dry-run`` (and planning in Python) writes nothing: the dataset is generated, validated and
stored, and its splits bound into the plan, only when the plan is executed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from worktree import tree_changes, tree_state

from kdq_lab.app.run import dry_run
from kdq_lab.config import DATA_ENV, Paths
from kdq_lab.data.registry import resolve_dataset
from kdq_lab.data.validate import raw_hashes
from kdq_lab.data.validated import store_validated
from kdq_lab.errors import KdqError
from kdq_lab.execution.dataset import prepare_dataset
from kdq_lab.experiment.plan import PlanOptions, plan_experiment

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "notebooks" / "experiments" / "smoke.yaml"
TINY = "kdq-catalog-tiny"  # the smoke experiment's dataset, built in


def listing(folder: Path) -> dict[str, tuple[bool, int, int]]:
    """Every entry under ``folder``, folders included: (is a folder, size, modification time in ns)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        info = path.lstat()
        found[str(path.relative_to(folder))] = (path.is_dir(), info.st_size, info.st_mtime_ns)
    info = folder.lstat()
    found["."] = (True, info.st_size, info.st_mtime_ns)
    return found


def generated(workspace: Path) -> Path:
    """The tiny catalog generated in ``workspace``, validated and stored, as a run would leave it."""
    paths = Paths(ROOT, workspace)
    folder = resolve_dataset(TINY, paths, progress=False)
    store_validated(folder, paths.processed, raw_hashes(folder))
    return folder


def cli_dry_run(workspace: Path, *flags: str) -> subprocess.CompletedProcess:
    env = {**os.environ, DATA_ENV: str(workspace)}
    return subprocess.run(
        [sys.executable, "-m", "kdq_lab.cli", "run", str(SMOKE), "--dry-run", *flags],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )


@pytest.fixture
def workspace(tmp_path) -> Path:
    folder = tmp_path / "workspace"
    folder.mkdir()
    return folder


@pytest.mark.slow  # starts another Python process
@pytest.mark.parametrize("already", [False, True], ids=["to-generate", "generated"])
def test_the_command_s_dry_run_writes_nothing(workspace, already):
    if already:
        generated(workspace)
    before, tree = listing(workspace), tree_state(ROOT)
    proc = cli_dry_run(workspace)
    assert proc.returncode == 0, proc.stderr
    assert listing(workspace) == before, "the dry run wrote into the workspace"
    assert tree_changes(tree, tree_state(ROOT)) == [], "the dry run wrote into the work tree"
    if already:
        assert "validated copy cached" in proc.stdout and "(to prepare)" in proc.stdout
        assert "to generate" not in proc.stdout
    else:
        assert f"dataset {TINY}: to generate" in proc.stdout
        assert "to prepare once the dataset is generated" in proc.stdout
        assert not (workspace / "data").exists()


@pytest.mark.parametrize("already", [False, True], ids=["to-generate", "generated"])
@pytest.mark.parametrize("tuned", [False, True], ids=["untuned", "tuned"])
def test_planning_in_python_writes_nothing(workspace, already, tuned):
    if already:
        generated(workspace)
    before, tree = listing(workspace), tree_state(ROOT)
    options = PlanOptions(tuned=tuned)
    if already and tuned:  # the studies are looked up (read) at once, and there are none
        with pytest.raises(KdqError, match="no tuning study"):
            dry_run(SMOKE, options, paths=Paths(ROOT, workspace))
    else:
        text = dry_run(SMOKE, options, paths=Paths(ROOT, workspace))
        assert ("once the dataset is generated" in text) == (not already)
    assert listing(workspace) == before, "planning wrote into the workspace"
    assert tree_changes(tree, tree_state(ROOT)) == [], "planning wrote into the work tree"


def test_execution_generates_validates_and_binds_the_plan(workspace):
    paths = Paths(ROOT, workspace)
    plan = plan_experiment(SMOKE, PlanOptions(only=["popularity"]), paths=paths)
    assert plan.hashes is None and plan.splits == ()
    assert all(step.splits == () for step in plan.steps() if step.kind in ("split", "run"))
    bound = prepare_dataset(plan, progress=False)
    assert bound.hashes == raw_hashes(bound.dataset_dir) and (bound.dataset_dir / "dataset.yaml").is_file()
    assert len(bound.splits) == len(plan.experiment.splits) * len(plan.experiment.seeds)
    run = next(step for step in bound.steps() if step.kind == "run")
    assert run.splits and all(Path(ref.folder).parent.parent == paths.processed for ref in run.splits)
    assert list((paths.processed / TINY).glob("validated-*/manifest.json")), "the validated copy is stored"
    assert not list((paths.processed / TINY).glob("global_temporal-*")), "splits are prepared by the notebooks"
    assert prepare_dataset(bound, progress=False) == bound, "a bound plan stays as it is"


def test_tuned_runs_are_looked_up_once_the_dataset_is_generated(workspace):
    plan = plan_experiment(SMOKE, PlanOptions(tuned=True), paths=Paths(ROOT, workspace))
    assert plan.hashes is None and plan.tuning is None
    assert any(step.key == "06_tuning" for step in plan.steps())
    with pytest.raises(KdqError, match="no tuning study"):
        prepare_dataset(plan, progress=False)
