"""Run an experiment: papermill executes the notebooks, in parallel processes, into an atomic report folder.

Steps: validate the experiment (before any notebook starts) → ``02_prepare_data`` once per
split × seed → ``03_train_evaluate`` per run × split × seed, in ``jobs`` processes → extra
notebooks (e.g. ``01_explore_catalog``) → ``04_compare_models`` → ``index.html`` and
``manifest.json``. The report is built in a hidden temporary folder beside
``reports/<experiment>/`` and replaces it only when complete: an interrupted or killed run
leaves the previous report untouched. A failing run does not stop the others.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from kdq_lab.config import Paths
from kdq_lab.data.registry import resolve_dataset
from kdq_lab.data.validate import raw_hashes, validate_dataset
from kdq_lab.errors import DataError, KdqError
from kdq_lab.files import atomic_dir, write_json
from kdq_lab.pipeline.experiment import Experiment, load_experiment
from kdq_lab.provenance import git_commit, package_versions

ERROR_EXCERPT = 600


@dataclass(frozen=True)
class Job:
    """One notebook execution."""

    kind: str               # split | run | notebook | compare
    key: str                # what the job is about (run folder, split name, notebook name)
    notebook: Path
    output: Path
    parameters: dict[str, Any]
    threads: int


@dataclass
class Outcome:
    """What a finished experiment produced."""

    report: Path
    index: Path
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed


def _export_html(notebook: Path) -> Path:
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))
    target = notebook.with_suffix(".html")
    target.write_text(body, encoding="utf-8")
    return target


def execute(job: Job) -> dict[str, Any]:
    """Execute one notebook with papermill and export it to HTML (runs in a worker process)."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(job.threads)
    # kernels inherit this process's stderr; their start-up chatter would scramble the progress bar
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    job.output.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    status, error = "ok", None
    try:
        papermill.execute_notebook(str(job.notebook), str(job.output), parameters=job.parameters,
                                   kernel_name="python3", progress_bar=False, cwd=str(job.notebook.parent.parent))
    except PapermillExecutionError as exc:
        status, error = "failed", f"{exc.ename}: {exc.evalue}"[:ERROR_EXCERPT]
    except Exception as exc:  # a dead kernel, a timeout: the run fails, the experiment goes on
        status, error = "failed", f"{type(exc).__name__}: {exc}"[:ERROR_EXCERPT]
    seconds = time.perf_counter() - started
    if job.output.is_file():
        try:
            _export_html(job.output)
        except Exception as exc:  # the notebook itself is the record; HTML is a convenience
            error = (error or "") + f" (HTML export failed: {exc})"
    return {"kind": job.kind, "key": job.key, "status": status, "error": error, "seconds": seconds,
            "notebook": str(job.output)}


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _run_pool(jobs: list[Job], workers: int, progress: bool, label: str) -> list[dict[str, Any]]:
    """Execute jobs in ``workers`` processes with a progress bar; results in job order."""
    if not jobs:
        return []
    context = multiprocessing.get_context("spawn")
    pool = context.Pool(processes=max(1, min(workers, len(jobs))))
    try:
        pending = [pool.apply_async(execute, (job,)) for job in jobs]
        results = []
        with tqdm(total=len(jobs), desc=label, disable=not progress, unit="nb", file=sys.stderr) as bar:
            for handle in pending:
                result = handle.get()
                results.append(result)
                bar.set_postfix_str(f"{result['key']}: {result['status']}", refresh=False)
                bar.update()
        pool.close()
        return results
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


def run_experiment(path: Path, *, jobs: int = 2, only: list[str] | None = None, overrides: list[str] | None = None,
                   out: Path | None = None, compare: bool = True, paths: Paths | None = None,
                   progress: bool = True, force: bool = False) -> Outcome:
    """Run an experiment and publish its report (see the module docstring).

    Parameters
    ----------
    path
        Experiment YAML.
    jobs
        Notebooks executed at once (processes).
    only
        Run names (or globs, or base names of a grid) to execute; the others are skipped.
    overrides
        ``key.path=value`` settings applied to the YAML before validation.
    out
        Report folder (default ``reports/<experiment>/``).
    compare
        Execute ``04_compare_models`` and build ``index.html``.
    force
        Replace the report folder even if the lab did not make it.
    """
    started = time.perf_counter()
    paths = paths or Paths.default()
    experiment = load_experiment(Path(path), overrides, paths)
    dataset_dir = resolve_dataset(experiment.dataset, paths, progress=progress)
    problems = validate_dataset(dataset_dir)
    if problems:  # fail before any notebook starts, with every problem listed
        raise DataError(problems, heading=f"invalid dataset {dataset_dir}")
    run_jobs = experiment.jobs(only)
    if not run_jobs:
        raise KdqError(f"--only {' '.join(only or [])} matches no run; runs: {', '.join(experiment.runs)}")
    report = Path(out) if out else paths.reports / experiment.name
    threads = max(1, (os.cpu_count() or 1) // max(1, jobs))
    os.environ["KDQ_LAB_ROOT"] = str(paths.root)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        with atomic_dir(report, force) as tmp:
            outcome = _build(experiment, dataset_dir, run_jobs, tmp, report, paths, jobs, threads, compare, progress,
                             list(overrides or []), only)
        outcome.report = report
        outcome.index = report / "index.html"
    finally:
        signal.signal(signal.SIGTERM, previous)
    outcome.seconds = time.perf_counter() - started
    return outcome


def _notebook(paths: Paths, name: str) -> Path:
    return paths.notebooks / f"{name}.ipynb"


def _build(experiment: Experiment, dataset_dir: Path, run_jobs, tmp: Path, report: Path, paths: Paths, workers: int,
           threads: int, compare: bool, progress: bool, overrides: list[str], only: list[str] | None) -> Outcome:
    steps: list[dict[str, Any]] = []
    write_json(tmp / "experiment.json", _describe(experiment, run_jobs))

    split_jobs = []
    for split, seed, config in experiment.split_jobs():
        folder = split + (f"__s{seed}" if len(experiment.seeds) > 1 else "")
        split_jobs.append(Job("split", folder, _notebook(paths, "02_prepare_data"),
                              tmp / "splits" / folder / "02_prepare_data.ipynb",
                              {"DATASET": str(dataset_dir), "SPLIT": config.to_dict(), "SPLIT_NAME": split,
                               "OUTPUT_DIR": str(tmp / "splits" / folder)}, threads))
    steps += _run_pool(split_jobs, workers, progress, "prepare splits")
    failed_splits = {r["key"] for r in steps if r["status"] != "ok"}

    runs = [
        Job("run", spec.folder, _notebook(paths, "03_train_evaluate"), tmp / "runs" / spec.folder / "03_train_evaluate.ipynb",
            {"DATASET": str(dataset_dir), "SPLIT": spec.split_config.to_dict(), "SPLIT_NAME": spec.split,
             "RUN_NAME": spec.run, "MODEL": spec.model, "PARAMS": spec.params, "K": list(experiment.k),
             "REFIT": experiment.refit, "THREADS": threads, "BOOTSTRAP_SAMPLES": experiment.bootstrap_samples,
             "BOOTSTRAP_SEED": experiment.bootstrap_seed, "OUTPUT_DIR": str(tmp / "runs" / spec.folder)}, threads)
        for spec in run_jobs
    ]
    results = _run_pool(runs, workers, progress, f"{experiment.name} runs")
    for result in results:
        if result["status"] != "ok":
            write_json(tmp / "runs" / result["key"] / "status.json",
                       {"status": "failed", "error": result["error"], "notebook": result["notebook"]})
    # extra notebooks run after the runs: they may read the runs' outputs (e.g. a saved model)
    extras = [
        Job("notebook", extra.notebook, _notebook(paths, extra.notebook), tmp / f"{extra.notebook}.ipynb",
            {"DATASET": str(dataset_dir), **({"REPORT_DIR": str(tmp)} if _takes_report(paths, extra.notebook) else {}),
             **extra.parameters}, threads)
        for extra in experiment.notebooks
    ]
    steps += results + _run_pool(extras, workers, progress, "notebooks")

    failed = sorted(f"{r['kind']} {r['key']}: {r['error']}" for r in steps if r["status"] != "ok")
    index = tmp / "index.html"
    if compare:
        compare_job = Job("compare", "04_compare_models", _notebook(paths, "04_compare_models"),
                          tmp / "04_compare_models.ipynb", {"REPORT_DIR": str(tmp)}, threads)
        result = _run_pool([compare_job], 1, progress, "compare")[0]
        steps.append(result)
        if result["status"] == "ok" and not (tmp / "04_compare_models.html").is_file():
            raise KdqError(f"could not export the report to HTML: {result['error']}")
        if result["status"] != "ok":
            kept = ""
            if compare_job.output.is_file():
                keep = report.parent / f"{experiment.name}.failed-compare.ipynb"
                shutil.copy(compare_job.output, keep)
                kept = f" Executed notebook: {keep}"
            raise KdqError(f"04_compare_models failed ({result['error']}); the previous report is untouched.{kept}")
        shutil.move(str(tmp / "04_compare_models.html"), index)

    run_seconds = [r for r in steps if r["kind"] == "run" and r["status"] == "ok"]
    compute = sum(_compute_seconds(tmp / "runs" / r["key"]) for r in run_seconds)
    wall = sum(r["seconds"] for r in run_seconds)
    write_json(tmp / "manifest.json", {
        "experiment": experiment.name,
        "experiment_file": experiment.source,
        "overrides": overrides,
        "only": only,
        "resolved": experiment.raw,
        "git_commit": git_commit(paths.root),
        "dataset": {"name": experiment.dataset, "folder": str(dataset_dir), "hashes": raw_hashes(dataset_dir)},
        "seeds": list(experiment.seeds),
        "jobs": workers,
        "threads_per_job": threads,
        "cpu_count": os.cpu_count(),
        "versions": package_versions(),
        "steps": steps,
        "failed_splits": sorted(failed_splits),
        "papermill": {"run_wall_seconds": wall, "run_compute_seconds": compute,
                      "overhead_share": (wall - compute) / wall if wall else None},
        "status": "failed" if failed else "ok",
    })
    return Outcome(tmp, index, failed)


def _takes_report(paths: Paths, name: str) -> bool:
    import nbformat

    notebook = nbformat.read(_notebook(paths, name), as_version=4)
    return any("REPORT_DIR" in cell.source for cell in notebook.cells if "parameters" in cell.metadata.get("tags", []))


def _compute_seconds(folder: Path) -> float:
    import json

    summary = folder / "summary.json"
    if not summary.is_file():
        return 0.0
    data = json.loads(summary.read_text(encoding="utf-8"))
    return float(data.get("fit_seconds", 0.0)) + float(data.get("eval_seconds", 0.0))


def _describe(experiment: Experiment, run_jobs) -> dict[str, Any]:
    """What ``04_compare_models`` needs to know about the experiment."""
    return {
        "name": experiment.name, "title": experiment.title, "dataset": experiment.dataset,
        "k": list(experiment.k), "metric": experiment.metric, "reference": experiment.reference,
        "seeds": list(experiment.seeds), "refit": experiment.refit,
        "bootstrap": {"samples": experiment.bootstrap_samples, "seed": experiment.bootstrap_seed},
        "splits": {name: config.to_dict() for name, config in experiment.splits.items()},
        "runs": [asdict(spec) | {"split_config": spec.split_config.to_dict()} for spec in run_jobs],
    }

