"""The plan of an experiment: every notebook it executes, decided before any notebook starts, and nothing written.

:func:`plan_experiment` reads: the experiment (validated), where its dataset is and whether a built-in
catalog must be generated first, the raw files' hashes when the dataset exists, and the tuned parameters
from the studies. It returns a :class:`Plan`, a value you can print (``kdq-lab run --dry-run``) that says
what would run and what is already prepared. Its steps carry typed values (:class:`~kdq_lab.runs.run.RunConfig`,
:class:`~kdq_lab.runs.records.SplitRef`, :class:`~kdq_lab.experiment.schema.NotebookSpec`); the parameters
papermill writes into a notebook are made from them when execution creates a job.

A plan whose dataset is still to be generated knows neither the raw files' hashes nor, so, its prepared-split
folders or the studies behind tuned runs: execution generates and validates the dataset first, then binds
them with :func:`bind_dataset`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from kdq_lab.checks import check_number
from kdq_lab.config import Paths
from kdq_lab.data.registry import locate_dataset
from kdq_lab.data.store import split_folder
from kdq_lab.data.validate import raw_hashes
from kdq_lab.data.validated import MANIFEST, validated_folder
from kdq_lab.errors import KdqError
from kdq_lab.experiment.schema import (
    Experiment,
    NotebookSpec,
    RunSpec,
    declared_parameters,
    load_experiment,
    run_folder,
)
from kdq_lab.files import check_apart
from kdq_lab.limits import MAX_TRAININGS, MAX_TRAININGS_CEILING, MAX_WORKERS
from kdq_lab.runs.records import SplitRef
from kdq_lab.runs.run import RunConfig
from kdq_lab.tuning.study import check_storage, default_storage, storage_inputs, tuned_params, tuned_trial

#: What a step's notebook is given by the runner, besides its own values: the folder it writes its outputs to,
#: the report folder being built, the dataset's folder.
OUTPUT_DIR, REPORT_DIR, DATASET = "OUTPUT_DIR", "REPORT_DIR", "DATASET"


@dataclass(frozen=True)
class Step:
    """One notebook execution of a plan.

    Attributes
    ----------
    kind
        ``split`` (prepare a split over every seed), ``run`` (a run on a split over every seed), ``notebook``
        (an extra notebook) or ``compare`` (``04_compare_models``).
    key
        What the step is about: the split's name, the run's folder, the notebook's name.
    notebook
        The notebook and the values the experiment gives it (extra notebooks, ``06_tuning``).
    output
        The executed notebook, relative to the report folder.
    splits
        The prepared splits the step reads (split and run steps; empty while the dataset is to be generated).
    run
        The run (run steps).
    given
        What the runner gives the notebook when the job is made: :data:`OUTPUT_DIR`, :data:`REPORT_DIR`,
        :data:`DATASET`.
    note
        Shown by :meth:`Plan.describe`.
    """

    kind: str
    key: str
    notebook: NotebookSpec
    output: str
    splits: tuple[SplitRef, ...] = ()
    run: RunConfig | None = None
    given: frozenset[str] = frozenset()
    note: str = ""

    def __str__(self) -> str:
        if self.run is not None:
            return f"{self.notebook.notebook} of run {self.run.run} on split {self.run.split}"
        return f"{self.notebook.notebook} ({self.kind} {self.key})"


@dataclass(frozen=True)
class Plan:
    """Everything an experiment will execute, decided before any notebook starts.

    ``hashes`` are the raw files' (``None`` while the dataset is to be generated: then ``splits`` is empty and
    tuned parameters are not looked up yet). ``tuning`` records the storage and the best trial behind each
    tuned run, once looked up.
    """

    experiment: Experiment
    options: PlanOptions
    paths: Paths
    source: Path
    dataset_dir: Path
    hashes: dict[str, str] | None
    report: Path
    splits: tuple[SplitRef, ...]
    stages: tuple[tuple[str, tuple[Step, ...]], ...]
    threads: int
    tuning: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        check_outputs(self.steps())

    @property
    def jobs(self) -> int:
        return self.options.jobs

    @property
    def tuned(self) -> bool:
        """Whether runs with a search space take their best trial's parameters."""
        return self.experiment.tuned if self.options.tuned is None else self.options.tuned

    @property
    def storage(self) -> str:
        """The studies' storage (the report's ``tuning/optuna.db`` unless one is given)."""
        return self.options.storage or default_storage(self.report)

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
        if self.hashes is None:
            lines.append(f"  dataset {e.dataset}: to generate (built in), then to validate")
            lines += [f"  split {name} seed {seed}: to prepare once the dataset is generated"
                      for name, seed, _ in e.split_jobs()]  # fmt: skip
            if self.tuned:
                lines.append(f"  tuned parameters: from {self.storage}, once the dataset is generated (its studies "
                             "are found by the raw files' hashes)")  # fmt: skip
        else:
            stored = (validated_folder(self.dataset_dir, self.paths.processed, self.hashes) / MANIFEST).is_file()
            lines.append(f"  dataset {e.dataset}: " + ("validated copy cached" if stored else "to validate"))
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
                lines.append(
                    f"  {step.notebook.notebook} -> {step.output}" + (f"  [{'; '.join(notes)}]" if notes else "")
                )
        return "\n".join(lines)


def check_outputs(steps: list[Step]) -> None:
    """Refuse two steps that would write the same file or output folder (compared without case, as some
    file systems do); raise :class:`KdqError` naming both."""
    claimed: dict[str, int] = {}
    for i, step in enumerate(steps):
        claims = {step.output, *([str(Path(step.output).parent)] if OUTPUT_DIR in step.given else [])}
        for claim in sorted(claims):
            other = claimed.setdefault(claim.casefold(), i)
            if other != i:
                raise KdqError(
                    f"two steps of the plan would write {claim}: {steps[other]} and {step}; each step needs its "
                    "own output"
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


def plan_experiment(path: Path, options: PlanOptions | None = None, *, paths: Paths | None = None) -> Plan:
    """Validate the experiment and decide every step, reading only: nothing is generated or written.

    With ``options.tuned`` (default: the experiment's ``tuned:``) every run with a search space gets its
    best trial's parameters from ``options.storage`` (default: the report folder's study file).
    """
    options = options or PlanOptions()
    if options.storage:
        check_storage(options.storage)
    paths = paths or Paths.default()
    experiment = load_experiment(Path(path), options.all_overrides(), paths, max_runs=options.max_runs)
    report = Path(options.out) if options.out else paths.reports / experiment.name
    dataset_dir, to_generate = locate_dataset(experiment.dataset, paths)
    tuned = experiment.tuned if options.tuned is None else options.tuned
    storage_input = storage_inputs(options.storage or default_storage(report), report) if tuned else {}
    check_apart(report, _inputs(Path(path), dataset_dir, paths) | storage_input)
    if not experiment.jobs(list(options.only)):
        raise KdqError(f"--only {' '.join(options.only)} matches no run; runs: {', '.join(experiment.runs)}")
    hashes = None if to_generate else raw_hashes(dataset_dir)
    return _plan(experiment, options, paths, Path(path), dataset_dir, report, hashes)


def bind_dataset(plan: Plan, hashes: dict[str, str]) -> Plan:
    """``plan`` for the dataset version with these raw-file ``hashes``: its prepared-split folders and the
    studies behind its tuned runs (execution binds a plan once the dataset is generated and validated)."""
    return _plan(plan.experiment, plan.options, plan.paths, plan.source, plan.dataset_dir, plan.report, hashes)


def _plan(experiment: Experiment, options: PlanOptions, paths: Paths, source: Path, dataset_dir: Path,
          report: Path, hashes: dict[str, str] | None) -> Plan:  # fmt: skip
    """Every step of the plan; without ``hashes`` (a dataset to generate), without split folders or tuned values."""
    run_specs = experiment.jobs(list(options.only))
    threads = max(1, (os.cpu_count() or 1) // options.jobs)
    tuned = experiment.tuned if options.tuned is None else options.tuned
    storage = options.storage or default_storage(report)
    tuning = None
    if tuned and hashes is not None:
        run_specs, tuning = _tuned(experiment, run_specs, storage, hashes)
    refs = (
        tuple(
            SplitRef(name, seed, config.to_dict(), str(split_folder(dataset_dir, config, paths.processed, hashes)))
            for name, seed, config in experiment.split_jobs()
        )
        if hashes is not None
        else ()
    )
    by_split = {name: tuple(r for r in refs if r.name == name) for name in experiment.splits}
    seeds = len(experiment.seeds)
    split_steps = tuple(
        Step("split", name, NotebookSpec("02_prepare_data"), f"splits/{name}/02_prepare_data.ipynb", by_split[name],
             given=frozenset({OUTPUT_DIR, DATASET}), note=f"{seeds} seed(s)")
        for name in experiment.splits
    )  # fmt: skip
    run_steps = [
        (
            experiment.depth(spec.run),
            Step(
                "run",
                spec.folder,
                NotebookSpec("03_train_evaluate"),
                f"runs/{spec.folder}/03_train_evaluate.ipynb",
                by_split[spec.split],
                _run_config(experiment, spec, threads),
                frozenset({OUTPUT_DIR}),
                note=f"{spec.model}, {len(spec.seeds)} seed(s)" + _parts_note(experiment, spec.run),
            ),
        )
        for spec in run_specs
    ]
    run_stages = tuple(  # a composite runs in a stage after its parts'
        (f"{experiment.name} runs" if level == 0 else f"{experiment.name} composite runs (level {level})",
         tuple(step for depth, step in run_steps if depth == level))
        for level in sorted({depth for depth, _ in run_steps})
    )  # fmt: skip
    extras = tuple(
        Step("notebook", extra.notebook, extra, f"{extra.notebook}.ipynb",
             given=frozenset({DATASET, *({REPORT_DIR} & set(declared_parameters(paths.notebook(extra.notebook))))}))
        for extra in experiment.notebooks
    ) + ((Step("notebook", "06_tuning", NotebookSpec("06_tuning", {"STORAGE": storage}), "06_tuning.ipynb",
               given=frozenset({REPORT_DIR})),) if tuned else ())  # fmt: skip
    compare = Step("compare", "04_compare_models", NotebookSpec("04_compare_models"), "04_compare_models.ipynb",
                   given=frozenset({REPORT_DIR}))  # fmt: skip
    stages = (
        ("prepare splits", split_steps),
        *run_stages,
        ("notebooks", extras if options.extras else ()),
        ("compare", (compare,) if options.compare else ()),
    )
    return Plan(experiment, options, paths, source, dataset_dir, hashes, report, refs,
                tuple((name, steps) for name, steps in stages if steps), threads, tuning)  # fmt: skip


def _parts_note(experiment: Experiment, run: str) -> str:
    parts = experiment.parts_of(run)
    kept = "; keeps its fitted models for composites" if run in experiment.part_runs() else ""
    return (f"; built from {', '.join(f'{k}={v}' for k, v in parts.items())}" if parts else "") + kept


def _run_config(experiment: Experiment, spec: RunSpec, threads: int) -> RunConfig:
    """What ``03_train_evaluate`` is given for a run on a split: a composite's parts are the folders of its part
    runs on the same split; a part run keeps its fitted models."""
    return RunConfig(
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
        save_models=spec.run in experiment.part_runs(),
        parts={name: run_folder(part, spec.split) for name, part in experiment.parts_of(spec.run).items()},
        importance=spec.importance,
        segments=experiment.segments,
        exposure=experiment.exposure,
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
        params = tuned_params(spec.model, spec.params, best)
        studies[spec.folder] = {"study": best["study"], "trial": best["number"], "value": best["value"],
                                "params": params}  # fmt: skip
        out.append(replace(spec, params=params, label=f"{spec.label} · tuned"))
    if missing:
        raise KdqError("cannot use tuned parameters:\n  " + "\n  ".join(missing))
    return out, {"storage": storage, "studies": studies}
