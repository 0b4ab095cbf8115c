"""Run an experiment: plan what to execute, then papermill executes it into an atomic report folder.

:func:`plan_experiment` validates the experiment and the dataset (once), hashes the raw
files (once) and returns a :class:`Plan`: a value you can print (``kdq-lab run --dry-run``)
that says what would run, what is cached and why. :func:`execute_plan` runs it:
``02_prepare_data`` per split (all seeds) → ``03_train_evaluate`` per run × split (all
seeds) in ``jobs`` processes → extra notebooks (e.g. ``01_explore_catalog``) →
``04_compare_models`` → ``index.html`` and ``manifest.json``.

The report is built in a hidden temporary folder beside ``reports/<experiment>/`` and
replaces it only when complete: an interrupted or killed run leaves the previous report
untouched. A failing run does not stop the others.
"""

from __future__ import annotations

import json
import multiprocessing.util
import os
import shutil
import signal
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from kdq_lab.config import DATA_ENV, ROOT_ENV, Paths
from kdq_lab.data.registry import resolve_dataset
from kdq_lab.data.store import split_folder
from kdq_lab.data.validate import raw_hashes
from kdq_lab.data.validated import store_validated
from kdq_lab.errors import KdqError
from kdq_lab.files import (
    FolderInUseError,
    atomic_dir,
    check_apart,
    copy_lab_file,
    copy_lab_folder,
    record_in_marker,
    write_json,
)
from kdq_lab.limits import MAX_TRAININGS
from kdq_lab.models import Iterative, model_spec
from kdq_lab.pipeline.backends import Backend, LocalBackend, OnDone, cluster_address, open_backend
from kdq_lab.pipeline.cache import keep, lookup, restore, unit_key
from kdq_lab.pipeline.experiment import Experiment, RunSpec, declared_parameters, load_experiment
from kdq_lab.pipeline.kernel import KERNEL, require_kernel
from kdq_lab.pipeline.records import ExperimentInfo, RunStatus, RunSummary, SplitRef
from kdq_lab.pipeline.runs import RunConfig
from kdq_lab.processes import map_in_processes
from kdq_lab.provenance import git_commit, package_versions
from kdq_lab.tuning.study import (
    TUNING_FOLDER,
    check_storage,
    default_storage,
    storage_inputs,
    study_files,
    tuned_params,
    tuned_trial,
)

ERROR_EXCERPT = 600
#: Where a failed 04_compare_models notebook is kept: a subfolder of the report folder (the previous report's).
FAILED_COMPARE = "failed-compare"


@dataclass(frozen=True)
class Step:
    """One notebook execution of a plan.

    ``output`` is relative to the report folder. ``parameters`` are what the notebook
    receives, except ``OUTPUT_DIR`` / ``REPORT_DIR``, which point into the report folder
    being built and are added when the step runs.
    """

    kind: str  # split | run | notebook | compare
    key: str  # what the step is about (split name, run folder, notebook name)
    notebook: str  # notebook name under notebooks/
    output: str
    parameters: dict[str, Any]
    note: str = ""
    wants_output_dir: bool = True
    wants_report_dir: bool = False


@dataclass(frozen=True)
class Plan:
    """Everything an experiment will execute, decided before any notebook starts."""

    experiment: Experiment
    dataset_dir: Path
    hashes: dict[str, str]
    report: Path
    splits: tuple[SplitRef, ...]
    stages: tuple[tuple[str, tuple[Step, ...]], ...]
    jobs: int
    threads: int
    overrides: tuple[str, ...] = ()
    only: tuple[str, ...] = ()
    tuning: dict[str, Any] | None = None  # storage and the best trial behind each tuned run
    validation: dict[str, Any] = field(default_factory=dict)  # when validating and hashing took place

    def __post_init__(self) -> None:
        check_outputs(self.steps())

    def steps(self) -> list[Step]:
        return [step for _, steps in self.stages for step in steps]

    def describe(self, paths: Paths, fresh: bool = False) -> str:
        """What would run, what is cached and why: the text of ``kdq-lab run --dry-run``."""
        e = self.experiment
        lines = [
            f"experiment {e.name}: dataset {self.dataset_dir}, seeds {list(e.seeds)}, k {list(e.k)}, "
            f"metric {e.metric}, exclude {e.exclude}, refit {e.refit}"
            + (
                f", test users sampled: {e.sample_users['n']} (seed {e.sample_users['seed']})" if e.sample_users else ""
            ),
            f"report: {self.report} ({self.jobs} job(s) x {self.threads} thread(s))",
        ]
        for ref in self.splits:
            cached = (Path(ref.folder) / "manifest.json").is_file()
            why = "cached: already prepared for these raw files and settings" if cached else "to prepare"
            lines.append(f"  split {ref.name} seed {ref.seed}: {ref.folder} ({why})")
        for stage, steps in self.stages:
            lines.append(f"{stage}: {len(steps)} notebook(s)")
            for step in steps:
                notes = [step.note] if step.note else []
                if step.kind == "run" and not fresh:
                    key = unit_key(_notebook_path(paths, step.notebook), step.parameters)
                    notes.append("in the run cache" if lookup(paths.processed, key) else "to run")
                lines.append(f"  {step.notebook} -> {step.output}" + (f"  [{'; '.join(notes)}]" if notes else ""))
        return "\n".join(lines)


def _describe_step(step: Step) -> str:
    if step.kind == "run":
        return f"{step.notebook} of run {step.parameters['RUN']['run']} on split {step.parameters['RUN']['split']}"
    return f"{step.notebook} ({step.kind} {step.key})"


def check_outputs(steps: list[Step]) -> None:
    """Refuse two steps that would write the same file or output folder (compared without case, as some
    file systems do); raise :class:`KdqError` naming both."""
    claimed: dict[str, int] = {}
    for i, step in enumerate(steps):
        claims = {step.output, *([str(Path(step.output).parent)] if step.wants_output_dir else [])}
        for claim in sorted(claims):
            other = claimed.setdefault(claim.casefold(), i)
            if other != i:
                raise KdqError(
                    f"two steps of the plan would write {claim}: {_describe_step(steps[other])} and "
                    f"{_describe_step(step)}; each step needs its own output"
                )


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


def _notebook_path(paths: Paths, name: str) -> Path:
    return paths.notebooks / f"{name}.ipynb"


def _inputs(experiment: Path, dataset_dir: Path, paths: Paths) -> dict[str, Path | None]:
    """What running (or tuning) an experiment reads: its report folder may be none of these, nor hold or lie in one."""
    return {
        "the experiment file": experiment,
        "the dataset folder": dataset_dir,
        "the notebooks folder": paths.notebooks,
        "the processed data folder (prepared splits, validated copies, the run cache)": paths.processed,
    }


def plan_experiment(
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
    tuned: bool | None = None,
    storage: str | None = None,
    extras: bool = True,
) -> Plan:
    """Validate everything and decide every step; nothing is executed (datasets may be generated).

    ``tuned`` (default: the experiment's ``tuned:``) gives every run with a search space its best
    trial's parameters from ``storage`` (default: the report folder's study file). ``extras=False``
    skips the extra notebooks (exploration, curation, tuning).
    """
    if storage:
        check_storage(storage)  # before a dataset is generated or validated
    paths = paths or Paths.default()
    experiment = load_experiment(Path(path), overrides, paths, max_runs=max_runs)
    report = Path(out) if out else paths.reports / experiment.name
    dataset_dir = resolve_dataset(experiment.dataset, paths, progress=progress)
    use_tuned = experiment.tuned if tuned is None else tuned
    check_apart(
        report, _inputs(Path(path), dataset_dir, paths) | (storage_inputs(storage, report) if use_tuned else {})
    )
    started = time.time()
    hashes = raw_hashes(dataset_dir)
    # validate once (fail before any notebook starts, with every problem listed) and store the
    # validated copy that every notebook then loads; nothing is kept in this process
    store_validated(dataset_dir, paths.processed, hashes)
    validation = {"stage": "validate", "seconds": time.time() - started, "started": started, "ended": time.time()}
    run_specs = experiment.jobs(only)
    if not run_specs:
        raise KdqError(f"--only {' '.join(only or [])} matches no run; runs: {', '.join(experiment.runs)}")
    threads = max(1, (os.cpu_count() or 1) // max(1, jobs))
    tuning = None
    if use_tuned:
        run_specs, tuning = _tuned(experiment, run_specs, storage or default_storage(report), hashes)
    refs = tuple(
        SplitRef(name, seed, config.to_dict(), str(split_folder(dataset_dir, config, paths.processed, hashes)))
        for name, seed, config in experiment.split_jobs()
    )
    by_split = {name: [asdict(r) for r in refs if r.name == name] for name in experiment.splits}
    split_steps = tuple(
        Step(
            "split",
            name,
            "02_prepare_data",
            f"splits/{name}/02_prepare_data.ipynb",
            {"DATASET": str(dataset_dir), "SPLIT_NAME": name, "SPLITS": by_split[name], "RAW_HASHES": hashes},
            note=f"{len(by_split[name])} seed(s)",
        )
        for name in experiment.splits
    )
    run_steps = tuple(
        Step(
            "run",
            spec.folder,
            "03_train_evaluate",
            f"runs/{spec.folder}/03_train_evaluate.ipynb",
            {
                "RUN": asdict(
                    RunConfig(
                        run=spec.run,
                        model=spec.model,
                        params=spec.params,
                        split=spec.split,
                        label=spec.label,
                        ks=tuple(experiment.k),
                        metric=experiment.metric,
                        exclude=experiment.exclude,
                        refit=experiment.refit,
                        bootstrap_samples=experiment.bootstrap_samples,
                        bootstrap_seed=experiment.bootstrap_seed,
                        threads=threads,
                        sample_users=experiment.sample_users,
                    )
                ),
                "SPLITS": by_split[spec.split],
            },
            note=f"{spec.model}, {len(spec.seeds)} seed(s)",
        )
        for spec in run_specs
    )
    extra_steps = tuple(
        Step(
            "notebook",
            extra.notebook,
            extra.notebook,
            f"{extra.notebook}.ipynb",
            {"DATASET": str(dataset_dir), **extra.parameters},
            wants_output_dir=False,
            wants_report_dir="REPORT_DIR" in declared_parameters(_notebook_path(paths, extra.notebook)),
        )
        for extra in experiment.notebooks
        if extras
    ) + (
        (Step("notebook", "06_tuning", "06_tuning", "06_tuning.ipynb", {"STORAGE": tuning["storage"]},
              wants_output_dir=False, wants_report_dir=True),)
        if tuning and extras else ()
    )  # fmt: skip
    compare_steps = (
        (
            Step(
                "compare",
                "04_compare_models",
                "04_compare_models",
                "04_compare_models.ipynb",
                {},
                wants_output_dir=False,
                wants_report_dir=True,
            ),
        )
        if compare
        else ()
    )
    stages = (
        ("prepare splits", split_steps),
        (f"{experiment.name} runs", run_steps),
        ("notebooks", extra_steps),
        ("compare", compare_steps),
    )
    return Plan(
        experiment,
        dataset_dir,
        hashes,
        report,
        refs,
        tuple((name, steps) for name, steps in stages if steps),
        jobs,
        threads,
        tuple(overrides or ()),
        tuple(only or ()),
        tuning,
        validation,
    )


def _tuned(experiment: Experiment, specs: list[RunSpec], storage: str,
           hashes: dict[str, str]) -> tuple[list[RunSpec], dict[str, Any]]:  # fmt: skip
    """Runs with a search space take the best trial of their study in the current context (dataset, split,
    space, ...); every missing study is one error."""
    out, studies, missing = [], {}, []
    for spec in specs:
        if not spec.search:
            out.append(spec)
            continue
        try:
            best = tuned_trial(storage, experiment.name, spec.run, spec.split, experiment.study_context(spec, hashes))
        except KdqError as exc:
            missing.append(str(exc))
            continue
        iterative = isinstance(model_spec(spec.model).make(spec.params), Iterative)
        params = tuned_params(spec.params, best, iterative)
        studies[spec.folder] = {"study": best["study"], "trial": best["number"], "value": best["value"],
                                "params": params}  # fmt: skip
        out.append(replace(spec, params=params, label=f"{spec.label} · tuned"))
    if missing:
        raise KdqError("cannot use tuned parameters:\n  " + "\n  ".join(missing))
    return out, {"storage": storage, "studies": studies}


# ----------------------------------------------------------------------------- executing


@dataclass(frozen=True)
class Job:
    """One notebook execution with its absolute paths (what a worker process receives)."""

    kind: str
    key: str
    notebook: Path
    output: Path
    parameters: dict[str, Any]
    threads: int
    cwd: Path


def _export_html(notebook: Path) -> Path:
    import nbformat

    from kdq_lab.pipeline.html_export import report_exporter

    body, _ = report_exporter().from_notebook_node(nbformat.read(notebook, as_version=4))
    target = notebook.with_suffix(".html")
    target.write_text(body, encoding="utf-8")
    return target


#: Run in the warm kernel before each notebook: a fresh namespace, the job's folder, no figures left open.
_RESET = """get_ipython().run_line_magic("reset", "-f")
import os as _os, sys as _sys
_os.chdir({cwd!r})
if "matplotlib.pyplot" in _sys.modules:
    _sys.modules["matplotlib.pyplot"].close("all")
del _os, _sys
"""


class _WarmKernel:
    """This worker process's kernel, started on its first notebook and kept for the next ones.

    A kernel start and the notebooks' imports cost seconds per notebook; a worker keeps one
    kernel instead and clears its namespace (``%reset -f``), working folder and figures before
    each notebook, so every notebook still starts from nothing of its own. Imported modules
    stay imported: that is the saving. A kernel that died, or ran a failing notebook, is
    replaced. Kernels never outlive their worker.
    """

    def __init__(self) -> None:
        self.manager: Any = None
        self.opened: list[Any] = []  # kernel clients opened on it (papermill leaves its own open)
        multiprocessing.util.Finalize(None, self.stop, exitpriority=10)  # when the worker exits

    def for_job(self, job: Job) -> Any:
        """The kernel manager to run ``job`` in, reset for it."""
        from jupyter_client.manager import AsyncKernelManager
        from jupyter_core.utils import run_sync

        opened = self.opened

        class Manager(AsyncKernelManager):
            def client(self, **kwargs: Any) -> Any:
                client = super().client(**kwargs)
                opened.append(client)
                return client

        if self.manager is not None and not run_sync(self.manager.is_alive)():
            self.manager = None
        if self.manager is None:
            self.manager = Manager(kernel_name=KERNEL)
            run_sync(self.manager.start_kernel)(cwd=str(job.cwd))
        client = self.manager.client()
        client.start_channels()
        run_sync(client.wait_for_ready)(timeout=60)
        reply = run_sync(client.execute_interactive)(
            _RESET.format(cwd=str(job.cwd)), timeout=60, store_history=False, output_hook=lambda message: None
        )
        self.release()
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"could not reset the kernel: {reply['content'].get('evalue')}")
        return self.manager

    def release(self) -> None:
        """Close the kernel clients opened so far."""
        for client in self.opened:
            client.stop_channels()
        self.opened.clear()

    def stop(self) -> None:
        """Shut the kernel down (after a failure, and when the worker exits)."""
        from jupyter_core.utils import run_sync

        self.release()
        if self.manager is not None:
            run_sync(self.manager.shutdown_kernel)(now=True)
        self.manager = None


_KERNEL = _WarmKernel()


def execute(job: Job, warm: bool = True) -> dict[str, Any]:
    """Execute one notebook with papermill (runs in a worker process).

    ``warm``: in this process's :class:`_WarmKernel`; otherwise in a kernel of its own, started and
    shut down by papermill (a Dask worker may run several tasks at once).
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(job.threads)
    if warm:  # a local pool worker: kernels inherit its stderr, and their chatter would scramble the progress bar
        devnull = os.open(os.devnull, os.O_WRONLY)  # (a Dask worker's stderr is its log: left alone)
        os.dup2(devnull, 2)
        os.close(devnull)
    job.output.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    status, error = "ok", None
    try:
        papermill.execute_notebook(
            str(job.notebook),
            str(job.output),
            parameters=job.parameters,
            kernel_name=KERNEL,
            progress_bar=False,
            cwd=str(job.cwd),
            km=_KERNEL.for_job(job) if warm else None,
        )
    except PapermillExecutionError as exc:
        status, error = "failed", f"{exc.ename}: {exc.evalue}"[:ERROR_EXCERPT]
    except Exception as exc:  # a dead kernel, a timeout: the run fails, the experiment goes on
        status, error = "failed", f"{type(exc).__name__}: {exc}"[:ERROR_EXCERPT]
    finally:
        _KERNEL.release()
    if warm and status != "ok":
        _KERNEL.stop()  # the next notebook gets a new kernel
    seconds = time.perf_counter() - started
    if job.output.is_file() and job.output.stat().st_size == 0:
        job.output.unlink()  # papermill could not write the notebook: leave nothing empty behind
    return {"kind": job.kind, "key": job.key, "status": status, "error": error, "seconds": seconds}


def with_html(job: Job, result: dict[str, Any]) -> dict[str, Any]:
    """Export an executed notebook to HTML (in the main process, while the workers run the next notebooks)."""
    if job.output.is_file():
        try:
            _export_html(job.output)
        except Exception as exc:  # the notebook itself is the record; HTML is a convenience
            result["error"] = (result["error"] or "") + f" (HTML export failed: {exc})"
    return result


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run_pool(jobs: list[Job], workers: int, progress: bool, label: str,
             on_done: OnDone | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Execute jobs in ``workers`` processes with a progress bar; results in job order.

    Each finished notebook is exported to HTML here, while the workers run the next ones;
    then ``on_done(job, result)`` runs, in job order.
    """
    with tqdm(total=len(jobs), desc=label, disable=not progress, unit="nb", file=sys.stderr) as bar:

        def finished(i: int, result: dict[str, Any]) -> dict[str, Any]:
            result = with_html(jobs[i], result)
            if on_done is not None:
                on_done(jobs[i], result)
            bar.set_postfix_str(f"{result['key']}: {result['status']}", refresh=False)
            bar.update()
            return result

        return map_in_processes(execute, [(job,) for job in jobs], workers, finished)


def _job(step: Step, plan: Plan, tmp: Path, paths: Paths) -> Job:
    parameters = json.loads(json.dumps(step.parameters))  # plain JSON types: papermill writes them as code
    output = tmp / step.output
    if step.wants_output_dir:
        parameters["OUTPUT_DIR"] = str(output.parent)
    if step.wants_report_dir:
        parameters["REPORT_DIR"] = str(tmp)
    return Job(step.kind, step.key, _notebook_path(paths, step.notebook), output, parameters, plan.threads, paths.root)


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
    ``KDQ_LAB_CLUSTER``) sends the runs to a Dask scheduler (:mod:`kdq_lab.pipeline.cluster`);
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


def execute_plan(
    plan: Plan,
    *,
    paths: Paths | None = None,
    progress: bool = True,
    force: bool = False,
    backend: Backend | None = None,
    fresh: bool = False,
) -> Outcome:
    """Execute every step of ``plan`` and publish the report atomically (``force``: over a foreign folder).

    The runs go to ``backend`` (default: local processes); the other notebooks run here.
    Finished runs are reused from the run cache unless ``fresh``. Without a ``kdq-lab`` kernel of this
    interpreter nothing is executed and the report folder is not touched.
    """
    require_kernel()
    started = time.perf_counter()
    paths = paths or Paths.default()
    backend = backend or LocalBackend(plan.jobs)
    os.environ[ROOT_ENV] = str(paths.root)
    os.environ[DATA_ENV] = str(paths.home)  # notebooks write where this run writes
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        with atomic_dir(plan.report, force) as tmp:
            outcome = _build(plan, tmp, paths, progress, backend, fresh)
        outcome.report = plan.report
        outcome.index = plan.report / "index.html"
    finally:
        signal.signal(signal.SIGTERM, previous)
    outcome.seconds = time.perf_counter() - started
    return outcome


def _execute_runs(jobs: list[Job], label: str, paths: Paths, progress: bool, backend: Backend,
                  fresh: bool) -> list[dict[str, Any]]:  # fmt: skip
    """Run notebooks through ``backend``, reusing and filling the run cache; results in job order."""
    keys = {job.key: unit_key(job.notebook, job.parameters) for job in jobs}
    results: dict[str, dict[str, Any]] = {}
    for job in jobs:
        hit = None if fresh else lookup(paths.processed, keys[job.key])
        if hit is not None:
            restore(hit, job.output.parent)
            results[job.key] = {"kind": job.kind, "key": job.key, "status": "ok", "error": None, "seconds": 0.0,
                                "cached": True}  # fmt: skip

    def finished(job: Job, result: dict[str, Any]) -> None:  # cached at once: a lost cluster keeps what ran
        results[job.key] = result
        if result["status"] == "ok":
            keep(paths.processed, keys[job.key], job.output.parent)

    backend.notebooks([job for job in jobs if job.key not in results], label, progress, finished)
    return [results[job.key] for job in jobs]


def describe_experiment(plan: Plan) -> ExperimentInfo:
    """What ``04_compare_models`` needs to know about the planned experiment."""
    e = plan.experiment
    runs = [
        {
            "run": step.parameters["RUN"]["run"],
            "label": step.parameters["RUN"]["label"],
            "model": step.parameters["RUN"]["model"],
            "params": step.parameters["RUN"]["params"],
            "split": step.parameters["RUN"]["split"],
            "seeds": list(e.seeds),
            "folder": step.key,
        }
        for step in plan.steps()
        if step.kind == "run"
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
        sample_users=e.sample_users,
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


def _build(plan: Plan, tmp: Path, paths: Paths, progress: bool, backend: Backend, fresh: bool) -> Outcome:
    e = plan.experiment
    _carry_over(plan, tmp)
    describe_experiment(plan).write(tmp / "experiment.json")
    steps: list[dict[str, Any]] = []
    failed_splits: set[str] = set()
    timings = [plan.validation] if plan.validation else []
    for stage, stage_steps in plan.stages:
        if stage == "compare":
            continue
        started = time.time()
        todo = [
            _job(step, plan, tmp, paths)
            for step in stage_steps
            if not (step.kind == "run" and step.parameters["RUN"]["split"] in failed_splits)
        ]
        if stage_steps and stage_steps[0].kind == "run":
            results = _execute_runs(todo, stage, paths, progress, backend, fresh)
        else:
            results = run_pool(todo, plan.jobs, progress, stage)
        for step, result in zip([s for s in stage_steps if s.key in {j.key for j in todo}], results):
            result["notebook"] = step.output
            if result["status"] != "ok" and step.kind == "split":
                failed_splits.add(step.key)
            if result["status"] != "ok" and step.kind == "run":
                RunStatus("failed", result["error"] or "", step.output).write(tmp / "runs" / step.key / "status.json")
        for step in stage_steps:
            if step.kind == "run" and step.parameters["RUN"]["split"] in failed_splits:
                RunStatus("failed", f"split {step.parameters['RUN']['split']} could not be prepared", None).write(
                    tmp / "runs" / step.key / "status.json"
                )
        steps += results
        timings.append({"stage": stage, "seconds": time.time() - started, "started": started, "ended": time.time()})
    failed = sorted(f"{r['kind']} {r['key']}: {r['error']}" for r in steps if r["status"] != "ok")
    index = tmp / "index.html"
    for step in dict(plan.stages).get("compare", ()):
        started = time.time()
        job = _job(step, plan, tmp, paths)
        result = run_pool([job], 1, progress, "compare")[0] | {"notebook": step.output}
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
            "overrides": list(plan.overrides),
            "only": list(plan.only),
            "resolved": e.raw,
            "exclude": e.exclude,
            "git_commit": git_commit(paths.root),
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
