"""``kdq-lab tune``: every run with a ``search:`` block gets its study, the same budget, on validation only."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from kdq_lab.config import Paths
from kdq_lab.data.store import prepare
from kdq_lab.errors import KdqError
from kdq_lab.execution.backends import open_backend
from kdq_lab.execution.cluster import cluster_address
from kdq_lab.experiment.plan import Plan, plan_experiment
from kdq_lab.files import check_apart, check_replaceable, record_in_marker, write_json
from kdq_lab.limits import MAX_SEED
from kdq_lab.tuning.study import (
    TUNING_FOLDER,
    StudyResult,
    StudyTask,
    TuningConfig,
    check_storage,
    default_storage,
    open_storage,
    results_table,
    storage_inputs,
    study_files,
    study_name,
)


def study_tasks(plan: Plan, storage: str, budget: TuningConfig, paths: Paths) -> list[StudyTask]:
    """One task per run × split with a search space, on the first seed's split (prepared here if needed)."""
    experiment = plan.experiment
    seed = experiment.seeds[0]
    folders = {}
    for name, config in experiment.splits.items():
        seeded = replace(config, seed=seed)
        folders[name] = str(prepare(plan.dataset_dir, seeded, paths.processed, hashes=plan.hashes))
    specs = {spec.folder: spec for spec in experiment.jobs()}
    tasks = []
    for position, step in enumerate(s for s in plan.steps() if s.kind == "run"):
        spec = specs[step.key]
        if not spec.search:
            continue
        context = experiment.study_context(spec, plan.hashes)
        tasks.append(StudyTask(
            name=study_name(experiment.name, spec.run, spec.split, context), run=spec.run, split=spec.split,
            model=spec.model, params=dict(spec.params), space=spec.search, split_folder=folders[spec.split],
            seed=seed, metric=experiment.metric, exclude=experiment.exclude, storage=storage, budget=budget,
            sampler_seed=(budget.seed + position) % (MAX_SEED + 1), context=context,
        ))  # fmt: skip
    return tasks


def tune_experiment(path: Path, *, trials: int | None = None, timeout: float | None = None,
                    only: list[str] | None = None, jobs: int = 1, storage: str | None = None,
                    overrides: list[str] | None = None, out: Path | None = None, paths: Paths | None = None,
                    progress: bool = True, cluster: str | None = None,
                    shared_dir: Path | None = None, force: bool = False) -> tuple[list[StudyResult], str]:  # fmt: skip
    """Tune every run of an experiment that has a search space; return the studies and the storage URL.

    ``trials`` or ``timeout`` (per study) override the experiment's ``tuning:`` budget. ``cluster``
    (or ``KDQ_LAB_CLUSTER``) spreads every study's trials over a Dask cluster's workers. The
    report folder must be absent, empty or provably the lab's, unless ``force``; what tuning
    adds is recorded in its marker (the study file as mutable), so a later ``run`` may still
    replace it whole (keeping ``tuning/``). A SQLite ``storage`` elsewhere in the folder is refused.
    """
    cluster_address(cluster)  # a malformed address, like an in-memory storage, is refused before anything is written
    if storage:
        check_storage(storage)
    paths = paths or Paths.default()
    plan = plan_experiment(Path(path), jobs=jobs, only=only, overrides=overrides, out=out, paths=paths,
                           progress=progress, tuned=False)  # fmt: skip
    budget = plan.experiment.tuning
    if trials is not None or timeout is not None:
        budget = TuningConfig(trials=trials, timeout=timeout, seed=budget.seed, pruner=budget.pruner)
    check_replaceable(plan.report, force)
    if storage:
        check_apart(plan.report, storage_inputs(storage, plan.report))
        open_storage(storage)  # a bad URL is refused before anything is written
    storage = storage or default_storage(plan.report)
    tasks = study_tasks(plan, storage, budget, paths)
    if not tasks:
        raise KdqError(f"no run of {plan.experiment.name} has a search: block; add `search: default` to a run")
    (plan.report / TUNING_FOLDER).mkdir(parents=True, exist_ok=True)
    # the report's marker lists what tuning adds, so `run` may still replace the folder (keeping tuning/)
    record_in_marker(plan.report, study_files(plan.report), mutable=True)
    open_storage(storage)  # create the schema once, before studies in several processes open it
    backend = open_backend(cluster, jobs, shared_dir)
    try:
        results = backend.studies(tasks, progress)
    finally:
        backend.close()
    write_json(plan.report / TUNING_FOLDER / "summary.json",
               {"storage": storage, "budget": budget.describe(), "studies": results_table(results)})  # fmt: skip
    record_in_marker(plan.report, [plan.report / TUNING_FOLDER / "summary.json"])
    return results, storage
