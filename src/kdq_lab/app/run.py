"""``kdq-lab run``: plan an experiment, then execute the plan into its report folder (or describe it).

The command builds :class:`~kdq_lab.experiment.plan.PlanOptions` and
:class:`~kdq_lab.execution.runner.ExecOptions` from its flags and calls these functions, as Python users do.
"""

from __future__ import annotations

from pathlib import Path

from kdq_lab.app.diff import diff_reports
from kdq_lab.app.tracking import check_uri, require_mlflow, track_report
from kdq_lab.config import Paths
from kdq_lab.execution.cache import lookup, unit_key
from kdq_lab.execution.kernel import require_kernel
from kdq_lab.execution.runner import PREVIOUS, ExecOptions, Outcome, execute_plan, job_parameters
from kdq_lab.experiment.plan import Plan, PlanOptions, plan_experiment


def describe_plan(plan: Plan, fresh: bool = False) -> str:
    """The plan as text, with each run's answer from the run cache (none with ``fresh``, nor before the dataset
    is generated: the runs' keys need its prepared splits)."""
    paths = plan.paths
    notes = {
        step.key: "in the run cache"
        if lookup(paths.processed, unit_key(paths.notebook(step.notebook.notebook), job_parameters(step, plan)))
        else "to run"
        for step in plan.steps()
        if step.kind == "run" and not fresh and plan.hashes is not None
    }
    return plan.describe(notes)


def dry_run(path: Path, options: PlanOptions | None = None, *, fresh: bool = False, paths: Paths | None = None) -> str:
    """What ``kdq-lab run --dry-run`` prints: every step, every prepared split and what is cached; writes nothing."""
    return describe_plan(plan_experiment(Path(path), options, paths=paths), fresh)


def run_experiment(
    path: Path,
    options: PlanOptions | None = None,
    execution: ExecOptions | None = None,
    *,
    paths: Paths | None = None,
    track: bool = False,
    track_uri: str | None = None,
) -> Outcome:
    """Plan an experiment and execute it into its report folder.

    ``options`` say what to plan (runs, overrides, report folder, tuned parameters, ...), ``execution`` how to
    execute it (progress, ``force``, the run cache, a Dask cluster: :mod:`kdq_lab.execution.cluster`).
    """
    execution = execution or ExecOptions()  # a malformed cluster address is refused here, before anything
    if track_uri is not None:
        check_uri(track_uri)
    require_kernel()  # before the experiment is even read
    plan = plan_experiment(Path(path), options, paths=paths)
    tracking = track or track_uri is not None or plan.experiment.tracking
    if tracking:
        require_mlflow()  # before any work
    outcome = execute_plan(plan, execution)
    if (plan.report / PREVIOUS).is_dir():  # the index links diff.html (04_compare_models)
        diff_reports(plan.report / PREVIOUS, plan.report)
    if tracking:
        track_report(plan.report, track_uri or plan.experiment.tracking_uri)
    return outcome
