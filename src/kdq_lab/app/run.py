"""``kdq-lab run``: plan an experiment, then execute the plan into its report folder (or describe it)."""

from __future__ import annotations

from pathlib import Path

from kdq_lab.config import Paths
from kdq_lab.execution.backends import open_backend
from kdq_lab.execution.cache import lookup, unit_key
from kdq_lab.execution.cluster import cluster_address
from kdq_lab.execution.kernel import require_kernel
from kdq_lab.execution.runner import Outcome, execute_plan, job_parameters
from kdq_lab.experiment.plan import Plan, plan_experiment
from kdq_lab.limits import MAX_TRAININGS


def describe_run(plan: Plan, paths: Paths, fresh: bool = False) -> str:
    """The text of ``kdq-lab run --dry-run``: the plan, and for each run whether the run cache holds it."""
    notes = {
        step.key: "in the run cache"
        if lookup(paths.processed, unit_key(paths.notebook(step.notebook), job_parameters(step)))
        else "to run"
        for step in plan.steps()
        if step.kind == "run" and not fresh
    }
    return plan.describe(notes)


def run_experiment(
    path: Path,
    *,
    jobs: int = 2,
    only: list[str] | None = None,
    overrides: list[str] | None = None,
    out: Path | None = None,
    compare: bool = True,
    paths: Paths | None = None,
    progress: bool = True,
    max_runs: int = MAX_TRAININGS,
    force: bool = False,
    tuned: bool | None = None,
    storage: str | None = None,
    extras: bool = True,
    cluster: str | None = None,
    shared_dir: Path | None = None,
    retries: int = 2,
    fresh: bool = False,
) -> Outcome:
    """Plan an experiment and execute it into its report folder (see the module docstring).

    ``force`` replaces the report folder even if the lab did not make it. ``cluster`` (or
    ``KDQ_LAB_CLUSTER``) sends the runs to a Dask scheduler (:mod:`kdq_lab.execution.cluster`);
    ``fresh`` runs everything again instead of reusing finished runs from the run cache.
    """
    cluster_address(cluster)  # a malformed address is refused before anything is written
    require_kernel()  # before a dataset is generated or validated
    plan = plan_experiment(
        path,
        jobs=jobs,
        only=only,
        overrides=overrides,
        out=out,
        compare=compare,
        paths=paths,
        progress=progress,
        max_runs=max_runs,
        tuned=tuned,
        storage=storage,
        extras=extras,
    )
    backend = open_backend(cluster, jobs, shared_dir, retries)
    try:
        return execute_plan(plan, paths=paths, progress=progress, force=force, backend=backend, fresh=fresh)
    finally:
        backend.close()
