"""The plan of an experiment: every notebook it executes, decided before any notebook starts.

:func:`plan_experiment` validates the experiment and the dataset (once), hashes the raw
files (once) and returns a :class:`Plan`: a value you can print (``kdq-lab run --dry-run``)
that says what would run and what is already prepared. Execution is :mod:`kdq_lab.execution.runner`'s.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from kdq_lab.checks import check_number
from kdq_lab.config import Paths
from kdq_lab.data.registry import resolve_dataset
from kdq_lab.data.store import split_folder
from kdq_lab.data.validate import raw_hashes
from kdq_lab.data.validated import store_validated
from kdq_lab.errors import KdqError
from kdq_lab.experiment.schema import Experiment, RunSpec, declared_parameters, load_experiment
from kdq_lab.files import check_apart
from kdq_lab.limits import MAX_TRAININGS, MAX_TRAININGS_CEILING, MAX_WORKERS
from kdq_lab.models import Iterative, model_spec
from kdq_lab.runs.records import SplitRef
from kdq_lab.runs.run import RunConfig
from kdq_lab.tuning.study import check_storage, default_storage, storage_inputs, tuned_params, tuned_trial


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

    def describe(self, run_notes: Mapping[str, str] | None = None) -> str:
        """What would run and what is already prepared: the text of ``kdq-lab run --dry-run``.

        ``run_notes`` adds a note to run steps, by step key (e.g. whether the run cache holds the run).
        """
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
                if step.kind == "run" and run_notes and step.key in run_notes:
                    notes.append(run_notes[step.key])
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


def _inputs(experiment: Path, dataset_dir: Path, paths: Paths) -> dict[str, Path | None]:
    """What running (or tuning) an experiment reads: its report folder may be none of these, nor hold or lie in one."""
    return {
        "the experiment file": experiment,
        "the dataset folder": dataset_dir,
        "the notebooks folder": paths.notebooks,
        "the processed data folder (prepared splits, validated copies, the run cache)": paths.processed,
    }


@dataclass(frozen=True)
class PlanOptions:
    """What to plan, beyond the experiment file: the flags of ``kdq-lab run`` and ``kdq-lab tune``.

    Attributes
    ----------
    jobs
        Notebooks (or studies) at once; each gets ``cpu_count // jobs`` threads.
    only
        Runs to keep (names, globs or grid base names); empty: every run.
    overrides
        ``key.path=value`` overrides of the experiment (values read as YAML).
    dataset
        Run on this dataset instead of the experiment's (an override of ``dataset``).
    out
        The report folder (default ``reports/<experiment>/``).
    compare, extras
        Whether to run ``04_compare_models``, and the extra notebooks (exploration, curation, tuning).
    max_runs
        Refuse experiments of more trainings (runs after grid expansion × splits × seeds).
    tuned, storage
        Use each run's best tuning trial (default: the experiment's ``tuned:``), from this Optuna storage
        (default: the report's ``tuning/optuna.db``).
    """

    jobs: int = 2
    only: tuple[str, ...] = ()
    overrides: tuple[str, ...] = ()
    dataset: str | None = None
    out: Path | None = None
    compare: bool = True
    extras: bool = True
    max_runs: int = MAX_TRAININGS
    tuned: bool | None = None
    storage: str | None = None

    def __post_init__(self) -> None:
        for name in ("only", "overrides"):  # lists are welcome; kept as tuples
            object.__setattr__(self, name, tuple(getattr(self, name)))
        check_number("options", "jobs", self.jobs, 1, high=MAX_WORKERS, integer=True)
        check_number("options", "max_runs", self.max_runs, 1, high=MAX_TRAININGS_CEILING, integer=True)

    def all_overrides(self) -> list[str]:
        """The overrides, with ``dataset`` as the last one."""
        return [*self.overrides, *([f"dataset={self.dataset}"] if self.dataset else [])]


def plan_experiment(
    path: Path, options: PlanOptions | None = None, *, paths: Paths | None = None, progress: bool = True
) -> Plan:
    """Validate everything and decide every step; nothing is executed (datasets may be generated).

    With ``options.tuned`` (default: the experiment's ``tuned:``) every run with a search space gets its
    best trial's parameters from ``options.storage`` (default: the report folder's study file).
    """
    options = options or PlanOptions()
    if options.storage:
        check_storage(options.storage)  # before a dataset is generated or validated
    paths = paths or Paths.default()
    experiment = load_experiment(Path(path), options.all_overrides(), paths, max_runs=options.max_runs)
    report = Path(options.out) if options.out else paths.reports / experiment.name
    dataset_dir = resolve_dataset(experiment.dataset, paths, progress=progress)
    storage = options.storage
    use_tuned = experiment.tuned if options.tuned is None else options.tuned
    check_apart(
        report, _inputs(Path(path), dataset_dir, paths) | (storage_inputs(storage, report) if use_tuned else {})
    )
    started = time.time()
    hashes = raw_hashes(dataset_dir)
    # validate once (fail before any notebook starts, with every problem listed) and store the
    # validated copy that every notebook then loads; nothing is kept in this process
    store_validated(dataset_dir, paths.processed, hashes)
    validation = {"stage": "validate", "seconds": time.time() - started, "started": started, "ended": time.time()}
    run_specs = experiment.jobs(list(options.only))
    if not run_specs:
        raise KdqError(f"--only {' '.join(options.only)} matches no run; runs: {', '.join(experiment.runs)}")
    threads = max(1, (os.cpu_count() or 1) // options.jobs)
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
            wants_report_dir="REPORT_DIR" in declared_parameters(paths.notebook(extra.notebook)),
        )
        for extra in experiment.notebooks
        if options.extras
    ) + (
        (Step("notebook", "06_tuning", "06_tuning", "06_tuning.ipynb", {"STORAGE": tuning["storage"]},
              wants_output_dir=False, wants_report_dir=True),)
        if tuning and options.extras else ()
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
        if options.compare
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
        options.jobs,
        threads,
        tuple(options.all_overrides()),
        options.only,
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
