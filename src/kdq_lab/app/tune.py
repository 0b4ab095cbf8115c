"""``kdq-lab tune``: every run with a ``search:`` block gets its study, the same budget, on validation only."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from kdq_lab.config import Paths
from kdq_lab.data.store import prepare
from kdq_lab.errors import KdqError
from kdq_lab.execution.backends import open_backend
from kdq_lab.execution.dataset import prepare_dataset
from kdq_lab.execution.runner import ExecOptions
from kdq_lab.experiment.plan import Plan, PlanOptions, plan_experiment
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


def study_tasks(plan: Plan, storage: str, budget: TuningConfig) -> list[StudyTask]:
    """One task per run × split with a search space, on the first seed's split (prepared here if needed).

    ``plan`` is bound to its dataset (:func:`~kdq_lab.execution.dataset.prepare_dataset`): a study's context
    holds the raw files' hashes.
    """
    experiment, hashes = plan.experiment, plan.hashes
    if hashes is None:
        raise ValueError("study_tasks needs a plan bound to its dataset (prepare_dataset)")
    seed = experiment.seeds[0]
    folders = {}
    for name, config in experiment.splits.items():
        seeded = replace(config, seed=seed)
        folders[name] = str(prepare(plan.dataset_dir, seeded, plan.paths.processed, hashes=hashes))
    specs = {spec.folder: spec for spec in experiment.jobs()}
    tasks = []
    for position, step in enumerate(s for s in plan.steps() if s.kind == "run"):
        spec = specs[step.key]
        if not spec.search:
            continue
        context = experiment.study_context(spec, hashes)
        tasks.append(StudyTask(
            name=study_name(experiment.name, spec.run, spec.split, context), run=spec.run, split=spec.split,
            model=spec.model, params=dict(spec.params), space=spec.search, split_folder=folders[spec.split],
            seed=seed, metric=experiment.metric, exclude=experiment.exclude, storage=storage, budget=budget,
            sampler_seed=(budget.seed + position) % (MAX_SEED + 1), context=context,
        ))  # fmt: skip
    return tasks


@dataclass(frozen=True)
class TuneOptions:
    """A budget per run × split that overrides the experiment's ``tuning:`` (neither given: the experiment's).

    Attributes
    ----------
    trials
        Trials per study.
    timeout
        Seconds of trials per study.
    """

    trials: int | None = None
    timeout: float | None = None

    def __post_init__(self) -> None:
        if self.trials is not None or self.timeout is not None:
            TuningConfig(trials=self.trials, timeout=self.timeout)  # bounds, and exactly one of them

    def budget(self, experiment: TuningConfig) -> TuningConfig:
        """The experiment's budget, with these trials or seconds instead if given (its seed and pruner kept)."""
        if self.trials is None and self.timeout is None:
            return experiment
        return TuningConfig(trials=self.trials, timeout=self.timeout, seed=experiment.seed, pruner=experiment.pruner)


def tune_experiment(
    path: Path,
    budget: TuneOptions | None = None,
    options: PlanOptions | None = None,
    execution: ExecOptions | None = None,
    *,
    paths: Paths | None = None,
) -> tuple[list[StudyResult], str]:
    """Tune every run of an experiment that has a search space; return the studies and the storage URL.

    ``budget`` (trials or seconds per study) overrides the experiment's ``tuning:``. ``options`` choose the
    runs, overrides, report folder, ``jobs`` (studies at once) and ``storage``; ``execution.cluster`` (or
    ``KDQ_LAB_CLUSTER``) spreads every study's trials over a Dask cluster's workers. The report folder must
    be absent, empty or provably the lab's, unless ``execution.force``; what tuning adds is recorded in its
    marker (the study file as mutable), so a later ``run`` may still replace it whole (keeping ``tuning/``).
    A SQLite ``storage`` elsewhere in the folder is refused.
    """
    budget, options = budget or TuneOptions(), options or PlanOptions()
    execution = execution or ExecOptions()  # a malformed address, like an in-memory storage, is refused first
    storage = options.storage
    if storage:
        check_storage(storage)
    paths = paths or Paths.default()
    plan = plan_experiment(Path(path), replace(options, tuned=False), paths=paths)
    tuning = budget.budget(plan.experiment.tuning)
    check_replaceable(plan.report, execution.force)
    if storage:
        check_apart(plan.report, storage_inputs(storage, plan.report))
        open_storage(storage)  # a bad URL is refused before anything is written
    storage = storage or default_storage(plan.report)
    # a cluster that does not answer is refused before the dataset is made
    backend = open_backend(execution.cluster, options.jobs, execution.shared_dir, execution.retries)
    try:
        plan = prepare_dataset(plan, execution.progress)  # generated, validated and stored, then bound
        tasks = study_tasks(plan, storage, tuning)
        if not tasks:
            raise KdqError(f"no run of {plan.experiment.name} has a search: block; add `search: default` to a run")
        (plan.report / TUNING_FOLDER).mkdir(parents=True, exist_ok=True)
        # the report's marker lists what tuning adds, so `run` may still replace the folder (keeping tuning/)
        record_in_marker(plan.report, study_files(plan.report), mutable=True)
        open_storage(storage)  # create the schema once, before studies in several processes open it
        results = backend.studies(tasks, execution.progress)
    finally:
        backend.close()
    write_json(plan.report / TUNING_FOLDER / "summary.json",
               {"storage": storage, "budget": tuning.describe(), "studies": results_table(results)})  # fmt: skip
    record_in_marker(plan.report, [plan.report / TUNING_FOLDER / "summary.json"])
    return results, storage
