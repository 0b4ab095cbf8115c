"""Execute a plan into an atomic report folder: splits, runs, extra notebooks, then the comparison.

:func:`execute_plan` runs ``02_prepare_data`` per split (all seeds) → ``03_train_evaluate`` per
run × split (all seeds) through a backend → extra notebooks (e.g. ``01_explore_catalog``) →
``04_compare_models`` → ``index.html`` and ``manifest.json``.

The report is built in a hidden temporary folder beside ``reports/<experiment>/`` and
replaces it only when complete: an interrupted or killed run leaves the previous report
untouched. A failing run does not stop the others.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kdq_lab.checks import check_number
from kdq_lab.config import Paths
from kdq_lab.errors import KdqError
from kdq_lab.execution.backends import Backend, open_backend
from kdq_lab.execution.cache import keep, lookup, restore, unit_key
from kdq_lab.execution.cluster import cluster_address
from kdq_lab.execution.dataset import prepare_dataset
from kdq_lab.execution.kernel import require_kernel
from kdq_lab.execution.notebooks import Job, run_pool
from kdq_lab.experiment.plan import DATASET, OUTPUT_DIR, REPORT_DIR, Plan, Step
from kdq_lab.files import (
    MARKER,
    FolderInUseError,
    atomic_dir,
    copy_lab_file,
    copy_lab_folder,
    made_by_lab,
    record_in_marker,
    write_json,
)
from kdq_lab.limits import MAX_RETRIES
from kdq_lab.provenance import git_commit, package_versions
from kdq_lab.runs.records import ExperimentInfo, RunStatus, RunSummary
from kdq_lab.tuning.study import TUNING_FOLDER, study_files

#: Where a failed 04_compare_models notebook is kept: a subfolder of the report folder (the previous report's).
FAILED_COMPARE = "failed-compare"
#: The last report of the same experiment, kept inside the new one (``kdq-lab diff`` compares them).
PREVIOUS = "previous"


@dataclass
class Outcome:
    """What a finished experiment produced."""

    report: Path
    index: Path
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    stages: list[dict[str, Any]] = field(default_factory=list)  # stage, seconds, started, ended (Unix time)

    @property
    def ok(self) -> bool:
        return not self.failed


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def job_parameters(step: Step, plan: Plan) -> dict[str, Any]:
    """What papermill gives the step's notebook (but the folders of the report being built), as plain JSON
    types: papermill writes them into the notebook as code."""
    values: dict[str, Any] = {DATASET: str(plan.dataset_dir)} if DATASET in step.given else {}
    refs = [asdict(ref) for ref in step.splits]
    if step.kind == "split":
        values |= {"SPLIT_NAME": step.key, "SPLITS": refs, "RAW_HASHES": plan.hashes}
    if step.run is not None:
        values |= {"RUN": asdict(step.run), "SPLITS": refs}
    plain: dict[str, Any] = json.loads(json.dumps(values | step.notebook.parameters))
    return plain


def _job(step: Step, plan: Plan, tmp: Path) -> Job:
    """The job of a step, its outputs in the report folder being built (``tmp``)."""
    parameters = job_parameters(step, plan)
    output = tmp / step.output
    if OUTPUT_DIR in step.given:
        parameters[OUTPUT_DIR] = str(output.parent)
    if REPORT_DIR in step.given:
        parameters[REPORT_DIR] = str(tmp)
    notebook = plan.paths.notebook(step.notebook.notebook)  # its kernel reads and writes where this run does
    return Job(
        step.kind, step.key, notebook, output, parameters, plan.threads, plan.paths.root, plan.paths.environment()
    )


@dataclass(frozen=True)
class ExecOptions:
    """How to execute a plan: the execution flags of ``kdq-lab run`` (and of ``kdq-lab tune``).

    Attributes
    ----------
    progress
        Show progress bars (on stderr).
    force
        Replace the report folder even if the lab did not make it (its content is deleted).
    fresh
        Run everything again instead of reusing finished runs from the run cache.
    cluster, shared_dir, retries
        A Dask scheduler for the runs (default: ``KDQ_LAB_CLUSTER``, else local processes), a folder every
        worker sees (instead of shipping data), and how often a run whose workers all died is resubmitted.
    """

    progress: bool = True
    force: bool = False
    fresh: bool = False
    cluster: str | None = None
    shared_dir: Path | None = None
    retries: int = 2

    def __post_init__(self) -> None:
        check_number("options", "retries", self.retries, 0, high=MAX_RETRIES, integer=True)
        cluster_address(self.cluster)  # a malformed address is refused before anything is done


def execute_plan(plan: Plan, options: ExecOptions | None = None, *, backend: Backend | None = None) -> Outcome:
    """Make the plan's dataset ready, execute every step and publish the report atomically.

    First the dataset is generated (a built-in not generated yet), validated and stored, and bound into the
    plan (:func:`~kdq_lab.execution.dataset.prepare_dataset`). The runs go to ``backend`` (default: the one
    ``options`` name, opened and closed here); the other notebooks run here. Finished runs are reused from
    the run cache unless ``options.fresh``. Without a ``kdq-lab`` kernel of this interpreter nothing is
    generated, validated or executed, and the report folder is not touched.
    """
    options = options or ExecOptions()
    require_kernel()
    started = time.perf_counter()
    own = backend is None  # a cluster that does not answer is refused before the dataset is made
    backend = backend or open_backend(options.cluster, plan.jobs, options.shared_dir, options.retries)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        validation = time.time()
        plan = prepare_dataset(plan, options.progress)
        ended = time.time()
        timings = [{"stage": "validate", "seconds": ended - validation, "started": validation, "ended": ended}]
        with atomic_dir(plan.report, options.force) as tmp:
            outcome = _build(plan, tmp, options, backend, timings)
        outcome.report = plan.report
        outcome.index = plan.report / "index.html"
    finally:
        signal.signal(signal.SIGTERM, previous)
        if own:
            backend.close()
    outcome.seconds = time.perf_counter() - started
    return outcome


def _execute_runs(
    jobs: list[Job], label: str, paths: Paths, options: ExecOptions, backend: Backend, keys: dict[str, str]
) -> list[dict[str, Any]]:
    """Run notebooks through ``backend``, reusing and filling the run cache; results in job order.

    ``keys`` holds the cache keys of the runs of earlier stages and gains these jobs': a composite's key
    includes its parts' keys (its outputs depend on theirs).
    """
    for job in jobs:
        parts = job.parameters.get("RUN", {}).get("parts") or {}
        depends = {"PART_KEYS": {name: keys.get(folder) for name, folder in parts.items()}} if parts else {}
        keys[job.key] = unit_key(job.notebook, job.parameters | depends)
    results: dict[str, dict[str, Any]] = {}
    for job in jobs:
        hit = None if options.fresh else lookup(paths.processed, keys[job.key])
        if hit is not None:
            restore(hit, job.output.parent)
            results[job.key] = {"kind": job.kind, "key": job.key, "status": "ok", "error": None, "seconds": 0.0,
                                "cached": True}  # fmt: skip

    def finished(job: Job, result: dict[str, Any]) -> None:  # cached at once: a lost cluster keeps what ran
        results[job.key] = result
        if result["status"] == "ok":
            keep(paths.processed, keys[job.key], job.output.parent)

    backend.notebooks([job for job in jobs if job.key not in results], label, options.progress, finished)
    return [results[job.key] for job in jobs]


def describe_experiment(plan: Plan) -> ExperimentInfo:
    """What ``04_compare_models`` needs to know about the planned experiment."""
    e = plan.experiment
    runs = [
        {
            "run": step.run.run,
            "label": step.run.label,
            "model": step.run.model,
            "params": step.run.params,
            "split": step.run.split,
            "seeds": list(e.seeds),
            "folder": step.key,
        }
        for step in plan.steps()
        if step.run is not None
    ]
    return ExperimentInfo(
        name=e.name,
        title=e.title,
        dataset=e.dataset,
        k=list(e.k),
        metric=e.metric,
        reference=e.reference,
        seeds=list(e.seeds),
        refit=e.refit,
        exclude=e.exclude,
        bootstrap={"samples": e.bootstrap_samples, "seed": e.bootstrap_seed},
        splits={name: {k: v for k, v in config.to_dict().items() if k != "seed"} for name, config in e.splits.items()},
        runs=runs,
        notebooks=[step.output for step in plan.steps() if step.kind == "notebook"],
        ablation=e.ablation.to_dict() if e.ablation else None,
        sample_users=e.sample_users,
        sesoi=dict(e.sesoi),
    )


def _carry_over(plan: Plan, tmp: Path) -> None:
    """Keep the previous report's studies; a tuned report also keeps the untuned comparison beside them.

    The study file stays mutable in the new report's marker: ``kdq-lab tune`` keeps changing it.
    """
    previous = plan.report / TUNING_FOLDER
    if os.path.lexists(previous):  # links and special files in it are skipped with a warning, never followed
        copy_lab_folder(previous, tmp / TUNING_FOLDER)
        record_in_marker(tmp, study_files(tmp), mutable=True)
    manifest = plan.report / "manifest.json"
    untuned = manifest.is_file() and not json.loads(manifest.read_text(encoding="utf-8")).get("tuned", False)
    if plan.tuning and untuned:
        for name in ("comparison.csv", "paired.csv"):
            if os.path.lexists(plan.report / name):
                (tmp / TUNING_FOLDER).mkdir(exist_ok=True)
                copy_lab_file(plan.report / name, tmp / TUNING_FOLDER / f"untuned_{name}")


def _keep_previous(plan: Plan, tmp: Path) -> None:
    """Keep the report being replaced as ``previous/``: the last one only, and only a lab-made report of the same
    experiment. Its own ``previous/`` (never nested), its studies (carried over beside it) and its marker are left
    out; ``previous/`` gets a marker of its own listing what was copied.
    """
    info = plan.report / "experiment.json"
    if not made_by_lab(plan.report) or not info.is_file() or not (plan.report / "manifest.json").is_file():
        return
    try:
        same = ExperimentInfo.read(info).name == plan.experiment.name
    except KdqError:
        return
    if same:
        target = tmp / PREVIOUS
        copy_lab_folder(plan.report, target, skip=(PREVIOUS, TUNING_FOLDER, FAILED_COMPARE, MARKER))
        record_in_marker(target, [p for p in target.iterdir() if p.name != MARKER])


def _keep_failed_compare(report: Path, notebook: Path) -> str:
    """Keep a failed compare notebook inside the report folder, in ``failed-compare/``; what to tell the user.

    The previous report gains that one subfolder (written atomically, recorded in its marker)
    and nothing else; a report that does not exist yet becomes a lab folder holding just it.
    Nothing is ever written beside the report folder.
    """
    if not notebook.is_file():
        return "."
    target = report / FAILED_COMPARE
    try:
        if not os.path.lexists(report):
            with atomic_dir(report) as tmp:
                (tmp / FAILED_COMPARE).mkdir()
                copy_lab_file(notebook, tmp / FAILED_COMPARE / notebook.name)
        elif report.is_dir() and not report.is_symlink():
            with atomic_dir(target) as tmp:
                copy_lab_file(notebook, tmp / notebook.name)
            record_in_marker(report, [target])
        else:
            return f"; the executed notebook was not kept ({report} is not a folder)."
    except FolderInUseError as exc:
        return f"; the executed notebook was not kept: {exc}"
    return f" but for {FAILED_COMPARE}/, which holds the executed notebook: {target / notebook.name}"


def _build(plan: Plan, tmp: Path, options: ExecOptions, backend: Backend, timings: list[dict[str, Any]]) -> Outcome:
    e = plan.experiment
    _carry_over(plan, tmp)
    _keep_previous(plan, tmp)
    describe_experiment(plan).write(tmp / "experiment.json")
    steps: list[dict[str, Any]] = []
    failed_splits: set[str] = set()
    run_keys: dict[str, str] = {}
    for stage, stage_steps in plan.stages:
        if stage == "compare":
            continue
        started = time.time()
        todo = [_job(step, plan, tmp) for step in stage_steps if not (step.run and step.run.split in failed_splits)]
        if stage_steps and stage_steps[0].kind == "run":
            results = _execute_runs(todo, stage, plan.paths, options, backend, run_keys)
        else:
            results = run_pool(todo, plan.jobs, options.progress, stage)
        for step, result in zip([s for s in stage_steps if s.key in {j.key for j in todo}], results):
            result["notebook"] = step.output
            if result["status"] != "ok" and step.kind == "split":
                failed_splits.add(step.key)
            if result["status"] != "ok" and step.kind == "run":
                RunStatus("failed", result["error"] or "", step.output).write(tmp / "runs" / step.key / "status.json")
        for step in stage_steps:
            if step.run is not None and step.run.split in failed_splits:
                RunStatus("failed", f"split {step.run.split} could not be prepared", None).write(
                    tmp / "runs" / step.key / "status.json"
                )
        steps += results
        timings.append({"stage": stage, "seconds": time.time() - started, "started": started, "ended": time.time()})
    failed = sorted(f"{r['kind']} {r['key']}: {r['error']}" for r in steps if r["status"] != "ok")
    index = tmp / "index.html"
    for step in dict(plan.stages).get("compare", ()):
        started = time.time()
        job = _job(step, plan, tmp)
        result = run_pool([job], 1, options.progress, "compare")[0] | {"notebook": step.output}
        steps.append(result)
        if result["status"] != "ok":
            kept = _keep_failed_compare(plan.report, job.output)
            raise KdqError(f"04_compare_models failed ({result['error']}); the previous report is untouched{kept}")
        if not job.output.with_suffix(".html").is_file():
            raise KdqError(f"could not export the report to HTML: {result['error']}")
        shutil.move(str(job.output.with_suffix(".html")), index)
        timings.append({"stage": "compare", "seconds": time.time() - started, "started": started, "ended": time.time()})

    ok_runs = [r for r in steps if r["kind"] == "run" and r["status"] == "ok" and not r.get("cached")]
    compute = sum(RunSummary.read(tmp / "runs" / r["key"] / "summary.json").seconds() for r in ok_runs)
    wall = sum(r["seconds"] for r in ok_runs)
    write_json(
        tmp / "manifest.json",
        {
            "experiment": e.name,
            "experiment_file": e.source,
            "overrides": plan.options.all_overrides(),
            "only": list(plan.options.only),
            "resolved": e.raw,
            "exclude": e.exclude,
            "git_commit": git_commit(plan.paths.root),
            "dataset": {"name": e.dataset, "folder": str(plan.dataset_dir), "hashes": plan.hashes},
            "seeds": list(e.seeds),
            "sample_users": e.sample_users,
            "splits": [asdict(ref) for ref in plan.splits],
            "jobs": plan.jobs,
            "threads_per_job": plan.threads,
            "backend": backend.describe(),
            "cpu_count": os.cpu_count(),
            "versions": package_versions(),
            "steps": steps,
            "failed_splits": sorted(failed_splits),
            "stages": timings,
            "papermill": {
                "run_wall_seconds": wall,
                "run_compute_seconds": compute,
                "overhead_share": (wall - compute) / wall if wall else None,
            },
            "tuned": plan.tuning is not None,
            "tuning": plan.tuning,
            "status": "failed" if failed else "ok",
        },
    )
    return Outcome(tmp, index, failed, stages=timings)
