"""Tuning: one Optuna study per run × split, the same budget for every run, on the validation part only.

A study trains on the train part of the experiment's first seed's split and scores the
headline metric on its validation part (with the experiment's exclusion rule); the test
part is never read. Iterative models (LightFM) report their per-epoch validation metric,
so a pruner stops hopeless trials early, and a trial's best epoch count is kept with it.

Studies live in an Optuna storage: by default the SQLite file
``reports/<experiment>/tuning/optuna.db`` (the report folder keeps it across runs), or any
SQLAlchemy URL. The same command again resumes: trials that finished (complete, pruned, or
failed with an error) count against the budget; trials cut short by Ctrl-C or a killed
process do not, and are run again. A failing trial is recorded with its error and the
study goes on. With a seeded TPE sampler and one process per study, an uninterrupted
study is reproducible; a resumed one is not bit-identical (the sampler restarts), so the
best trial is always reproduced from its stored parameters.
"""

from __future__ import annotations

import errno
import functools
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from kdq_lab.checks import check_choice, check_number
from kdq_lab.data.store import SplitData, load_split
from kdq_lab.errors import KdqError
from kdq_lab.evaluation.ranking import evaluate
from kdq_lab.metrics import parse_metric
from kdq_lab.models import Iterative, TrainData, model_spec
from kdq_lab.processes import map_in_processes
from kdq_lab.tuning.space import parse_range

PRUNERS = ("median", "hyperband", "none")
ERROR_EXCERPT = 600
#: The report's subfolder for tuning: the default study storage, its summary, the untuned comparison.
TUNING_FOLDER = "tuning"
#: SQLite URI options that keep a database in memory (refused: the studies would be lost).
IN_MEMORY = ("mode=memory", "vfs=memdb")
#: Errors of the system under a storage, as SQLite (and SQLAlchemy) word them, with the errno they stand for.
SYSTEM_FAILURES = (
    (errno.ENOSPC, "database or disk is full"),
    (errno.EIO, "disk I/O error"),
    (errno.EROFS, "attempt to write a readonly database"),
    (errno.ENOSPC, "no space left on device"),
)
#: A database file SQLite cannot open: a missing folder when the storage is opened, the system's fault later.
UNOPENABLE = (errno.EACCES, "unable to open database file")


@dataclass(frozen=True)
class TuningConfig:
    """An experiment's tuning budget (the ``tuning:`` block): the same for every run × split.

    Attributes
    ----------
    trials
        Trials per study (``None`` when the budget is time).
    timeout
        Seconds of trials per study (``None`` when the budget is a trial count).
    seed
        Seed of the TPE sampler (each study adds its position in the experiment).
    pruner
        ``median``, ``hyperband`` or ``none``: how iterative models' hopeless trials stop early.
    """

    trials: int | None = 20
    timeout: float | None = None
    seed: int = 0
    pruner: str = "median"

    def __post_init__(self) -> None:
        check_number("tuning", "trials", self.trials, 1, integer=True, optional=True)
        check_number("tuning", "timeout", self.timeout, 0, strict=True, optional=True)
        check_number("tuning", "seed", self.seed, 0, integer=True)
        check_choice("tuning", "pruner", self.pruner, PRUNERS)
        if (self.trials is None) == (self.timeout is None):
            raise KdqError("tuning needs exactly one budget: trials (per run) or timeout (seconds per run)")

    def describe(self) -> str:
        return f"{self.trials} trials per run" if self.trials else f"{self.timeout:g} s per run"


@dataclass(frozen=True)
class StudyTask:
    """One study, as plain values (it crosses process and machine boundaries)."""

    name: str
    run: str
    split: str
    model: str
    params: dict[str, Any]
    space: dict[str, dict[str, Any]]
    split_folder: str
    seed: int
    metric: str
    exclude: str
    storage: Any  # a URL, or (on a cluster) the shared storage object
    budget: TuningConfig
    sampler_seed: int


@dataclass
class StudyResult:
    """What a study holds after tuning: its budget use and its best trial."""

    name: str
    run: str
    split: str
    model: str
    budget: str
    complete: int = 0
    pruned: int = 0
    failed: int = 0
    seconds: float = 0.0
    best_trial: int | None = None
    best_value: float | None = None
    best_params: dict[str, Any] = field(default_factory=dict)
    best_epoch: int | None = None


def study_name(experiment: str, run: str, split: str) -> str:
    """The storage name of a run × split's study."""
    return f"{experiment}/{run}/{split}"


def default_storage(report: Path) -> str:
    """The SQLite file in the experiment's report folder (kept when the report is regenerated)."""
    return f"sqlite:///{(Path(report) / TUNING_FOLDER / 'optuna.db').resolve()}"


def check_storage(url: str) -> None:
    """Refuse a storage URL the studies would not outlive: an in-memory SQLite database (before anything is written).

    In memory are ``sqlite://``, ``sqlite:///:memory:``, ``file::memory:`` and any SQLite URI with
    ``mode=memory`` or ``vfs=memdb``; each process would also get a database of its own.
    """
    import sqlalchemy

    try:
        parsed = sqlalchemy.engine.make_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError) as exc:
        raise KdqError(f"cannot open the tuning storage {url!r}: {exc.__class__.__name__}: {exc}") from None
    if parsed.get_backend_name() != "sqlite":
        return
    database = (parsed.database or "").lower()
    options = {
        f"{key.lower()}={value.lower()}"
        for key, values in parsed.query.items()
        for value in ((values,) if isinstance(values, str) else values)
    }
    if (
        database in ("", ":memory:")
        or database.startswith("file::memory:")
        or any(option in database for option in IN_MEMORY)
        or options & set(IN_MEMORY)
    ):
        raise KdqError(
            f"--storage {url!r} is an in-memory SQLite database: the studies would be lost when kdq-lab exits; "
            "give a file, e.g. sqlite:///tuning/optuna.db (default: the report's tuning/optuna.db)"
        )


def open_storage(url: str) -> Any:
    """An Optuna RDB storage: SQLite waits for locks; stale trials of killed processes are failed."""
    import optuna
    import sqlalchemy

    check_storage(url)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # heartbeats
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    try:
        with storage_failures(url, opening=True):
            return optuna.storages.RDBStorage(url, engine_kwargs=engine, heartbeat_interval=30, grace_period=90)
    except (sqlalchemy.exc.SQLAlchemyError, ValueError, ImportError) as exc:  # a bad URL, a missing driver
        first = str(exc).strip().split("\n")[0]  # SQLAlchemy adds a line pointing to its documentation
        raise KdqError(f"cannot open the tuning storage {url!r}: {exc.__class__.__name__}: {first}") from None


@contextmanager
def storage_failures(url: str, opening: bool = False) -> Iterator[None]:
    """Turn a failure of the system under the study storage into an ``OSError`` naming it (one line, exit 1).

    A full disk, an I/O error, a read-only database or (after it was opened) a database file
    that cannot be opened any more reach Optuna as an SQLAlchemy ``OperationalError``, which
    Optuna may wrap in its own error: the chain of causes is searched. ``opening``: a file that
    cannot be opened is the user's to fix (a missing folder), left to :func:`open_storage`.
    """
    try:
        yield
    except Exception as exc:
        causes = SYSTEM_FAILURES if opening else (*SYSTEM_FAILURES, UNOPENABLE)
        chain: list[str] = []
        link: BaseException | None = exc
        while link is not None and len(chain) < 20:
            chain.append(str(link).lower())
            link = link.__cause__ or link.__context__
        found = next(((code, text) for code, text in causes if any(text.lower() in message for message in chain)), None)
        if found is None:
            raise
        raise OSError(found[0], f"{found[1]} (the tuning storage)", _shown(url)) from exc


def _shown(url: str) -> str:
    """A storage URL as it may be printed: without its password."""
    import sqlalchemy

    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except (sqlalchemy.exc.ArgumentError, ValueError):
        return url


def counted(trial: Any) -> bool:
    """Whether a finished trial counts against the budget (interrupted and killed trials do not)."""
    from optuna.trial import TrialState

    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return trial.state == TrialState.FAIL and "error" in trial.user_attrs


def trial_seconds(trial: Any) -> float:
    if trial.datetime_start is None or trial.datetime_complete is None:
        return 0.0
    return (trial.datetime_complete - trial.datetime_start).total_seconds()


def make_objective(task: StudyTask, split: SplitData) -> Callable[[Any], float]:
    """The headline metric on ``split``'s validation part, for the parameters a trial proposes."""
    import optuna

    spec = model_spec(task.model)
    space = {name: parse_range(name, raw) for name, raw in task.space.items()}
    k = parse_metric(task.metric).k or 10

    @functools.cache
    def train_data() -> TrainData:  # the same for every trial: built once, inside a trial (errors count as failures)
        return TrainData.from_split(split, exclude=task.exclude)

    def objective(trial: optuna.Trial) -> float:
        proposed = {name: span.suggest(trial) for name, span in space.items()}
        params = spec.resolve({**task.params, **proposed}, seed=task.seed, metric=task.metric)
        try:
            data = train_data()
            if data.validation is None:
                raise KdqError(f"split {task.split} has no validation positives to tune on")
            model = spec.make(params)
            if isinstance(model, Iterative):

                def report(epoch: int, value: float) -> None:
                    trial.report(value, epoch)
                    if trial.should_prune():
                        raise optuna.TrialPruned(f"pruned after epoch {epoch}")

                model.fit(data, on_epoch=report)  # type: ignore[call-arg]
                curve = model.learning_curve()
                trial.set_user_attr("best_epoch", model.best_epoch())
                return float(curve.loc[curve["epoch"] == model.best_epoch(), "validation"].iloc[0])
            model.fit(data)
            table = evaluate(model, data.validation.positives, exclude=data.validation.exclude, k=k)
            return float(table[task.metric].mean())
        except optuna.TrialPruned:
            raise
        except KeyboardInterrupt:
            trial.set_user_attr("interrupted", True)
            raise
        except Exception as exc:
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:ERROR_EXCERPT])
            raise

    return objective


def pruner(name: str) -> Any:
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=2)
    return optuna.pruners.NopPruner()


def summarise(task: StudyTask, study: Any) -> StudyResult:
    """Budget use and best trial of a study."""
    from optuna.trial import TrialState

    trials = [t for t in study.get_trials(deepcopy=False) if counted(t)]
    result = StudyResult(task.name, task.run, task.split, task.model, task.budget.describe())
    result.complete = sum(t.state == TrialState.COMPLETE for t in trials)
    result.pruned = sum(t.state == TrialState.PRUNED for t in trials)
    result.failed = sum(t.state == TrialState.FAIL for t in trials)
    result.seconds = sum(trial_seconds(t) for t in trials)
    if result.complete:
        best = study.best_trial
        result.best_trial, result.best_value = best.number, float(best.value)
        result.best_params, result.best_epoch = dict(best.params), best.user_attrs.get("best_epoch")
    return result


def run_study(task: StudyTask, progress: bool = True, position: int = 0,
              objective: Callable[[Any], float] | None = None) -> StudyResult:  # fmt: skip
    """Run the trials a study still lacks (a worker's unit of work) and return its summary."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(task.storage)
    with storage_failures(task.storage):  # raised here, in the worker: a pickled error would lose its causes
        return _run_study(task, storage, progress, position, objective)


def _run_study(
    task: StudyTask, storage: Any, progress: bool, position: int, objective: Callable[[Any], float] | None
) -> StudyResult:
    import optuna

    sampler = optuna.samplers.TPESampler(seed=task.sampler_seed)
    study = optuna.create_study(study_name=task.name, storage=storage, sampler=sampler, direction="maximize",
                                pruner=pruner(task.budget.pruner), load_if_exists=True)  # fmt: skip
    optuna.storages.fail_stale_trials(study)  # trials of killed processes: failed, not counted
    done = [t for t in study.get_trials(deepcopy=False) if counted(t)]
    remaining_trials = None if task.budget.trials is None else max(0, task.budget.trials - len(done))
    remaining_time = None
    if task.budget.timeout is not None:
        remaining_time = max(0.0, task.budget.timeout - sum(trial_seconds(t) for t in done))
    if remaining_trials != 0 and remaining_time != 0.0:
        objective = objective or make_objective(task, load_split(Path(task.split_folder)))
        bar = tqdm(total=task.budget.trials, initial=len(done), desc=task.name, unit="trial", position=position,
                   disable=not progress, file=sys.stderr, leave=True)  # fmt: skip
        started = time.perf_counter()

        def tick(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            best = study.best_value if any(t.state.name == "COMPLETE" for t in study.trials) else float("nan")
            left = (
                ""
                if remaining_time is None
                else f", {max(0.0, remaining_time - time.perf_counter() + started):.0f} s left"
            )
            bar.set_postfix_str(f"best {best:.4f}{left}", refresh=False)
            bar.update()

        try:
            study.optimize(objective, n_trials=remaining_trials, timeout=remaining_time, callbacks=[tick],
                           catch=(Exception,), gc_after_trial=False)  # fmt: skip
        finally:
            bar.close()
    return summarise(task, study)


def best_trial(storage: str, name: str) -> dict[str, Any]:
    """The best complete trial of a stored study: ``number``, ``value``, ``params``, ``best_epoch``."""
    import optuna
    import sqlalchemy.exc

    check_storage(storage)
    if storage.startswith("sqlite:///") and not Path(storage.removeprefix("sqlite:///")).is_file():
        raise KdqError(f"no tuning study {name!r}: {storage} does not exist; run `kdq-lab tune` first")
    try:
        study = optuna.load_study(study_name=name, storage=open_storage(storage))
        best = study.best_trial
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise KdqError(f"cannot read the tuning studies at {storage}: {exc.__class__.__name__}") from None
    except KeyError:
        raise KdqError(f"no tuning study {name!r} in {storage}; run `kdq-lab tune` first") from None
    except ValueError:
        raise KdqError(f"tuning study {name!r} in {storage} has no complete trial; tune it (again) first") from None
    return {"number": best.number, "value": best.value, "params": dict(best.params),
            "best_epoch": best.user_attrs.get("best_epoch")}  # fmt: skip


def tuned_params(task_params: dict[str, Any], best: dict[str, Any], iterative: bool) -> dict[str, Any]:
    """A run's parameters with its best trial's: iterative models train the trial's best epoch count."""
    params = {**task_params, **best["params"]}
    if iterative and best.get("best_epoch"):
        params |= {"epochs": int(best["best_epoch"]), "patience": None}
    return params


def run_studies(tasks: list[StudyTask], jobs: int = 1, progress: bool = True) -> list[StudyResult]:
    """Run every study, ``jobs`` at a time in processes (local backend); results in task order."""
    if jobs <= 1 or len(tasks) <= 1:
        return [run_study(task, progress) for task in tasks]
    return map_in_processes(run_study, [(task, progress, i % jobs) for i, task in enumerate(tasks)], jobs)


def results_table(results: list[StudyResult]) -> list[dict[str, Any]]:
    """The studies as plain rows (for ``tuning/summary.json`` and the manifest)."""
    return [asdict(r) for r in results]
