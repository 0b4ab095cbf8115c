"""Tuning: one Optuna study per run × split, the same budget for every run, on the validation part only.

A study trains on the train part of the experiment's first seed's split and scores the
headline metric on its validation part (with the experiment's exclusion rule); the test
part is never read. Iterative models (LightFM's epochs, ALS's iterations) report their per-iteration validation
metric, so a pruner stops hopeless trials early, and a trial's best iteration count is kept with it (as
``best_epoch``, the name stored studies use).

Studies live in an Optuna storage: by default the SQLite file
``reports/<experiment>/tuning/optuna.db`` (the report folder keeps it across runs), or any
SQLAlchemy URL. The same command again resumes: trials that finished (complete, pruned, or
failed with an error) count against the budget; trials cut short by Ctrl-C or a killed
process do not, and are run again. A failing trial is recorded with its error and the
study goes on. With a seeded TPE sampler and one process per study, an uninterrupted
study is reproducible; a resumed one is not bit-identical (the sampler restarts), so the
best trial is always reproduced from its stored parameters.

A study is found by its *context*, not by its name alone: the model kind, the run's fixed
parameters, the search space, the metric, the exclusion rule, the dataset's raw-file hashes and
the split's configuration (:func:`study_context`). The context is stored with the study and a
short hash of it ends the study's name, so a changed context gets a new study with its own
budget, and ``run --tuned`` never takes parameters tuned in another context (:func:`tuned_trial`).

Budgets hold when several processes tune one study: the storage numbers trials atomically,
and each trial first counts the trials numbered below it that count against the budget or are
still running (a killed process's trial stops counting once its heartbeat is older than the
grace period). A trial started when the budget is already taken is *surplus*: it is failed
without an error (so it never counts) and its process stops. A time budget is kept the same way
from the seconds of finished trials, so processes may overrun it by the trials they are running.
"""

from __future__ import annotations

import errno
import functools
import json
import logging
import os
import sqlite3
import sys
import threading
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
from kdq_lab.evaluation.metrics import parse_metric
from kdq_lab.evaluation.ranking import evaluate
from kdq_lab.files import stable_hash
from kdq_lab.limits import MAX_SEED, MAX_TRIALS, MAX_TUNING_SECONDS
from kdq_lab.models import Iterative, TrainData, model_spec
from kdq_lab.processes import map_in_processes
from kdq_lab.tuning.space import parse_range

PRUNERS = ("median", "hyperband", "none")
ERROR_EXCERPT = 600
SCHEMA_ATTEMPTS = 4  # opening a storage whose tables another process is creating
#: The report's subfolder for tuning: the default study storage, its summary, the untuned comparison.
TUNING_FOLDER = "tuning"
#: SQLite URI options that keep a database in memory (refused: the studies would be lost).
IN_MEMORY = ("mode=memory", "vfs=memdb")
#: Failures of the system under a storage, by SQLite's primary result code (an extended code's low byte): the
#: errno each stands for and SQLite's own words for it.
SYSTEM_FAILURES = {
    sqlite3.SQLITE_FULL: (errno.ENOSPC, "database or disk is full"),
    sqlite3.SQLITE_IOERR: (errno.EIO, "disk I/O error"),
    sqlite3.SQLITE_READONLY: (errno.EROFS, "attempt to write a readonly database"),
}
#: A database file SQLite cannot open: a missing folder when the storage is opened, the system's fault later.
UNOPENABLE = {sqlite3.SQLITE_CANTOPEN: (errno.EACCES, "unable to open database file")}
#: What an ``OSError`` under a storage (another driver, a file operation) says when the system failed.
SYSTEM_ERRNOS = frozenset({errno.ENOSPC, errno.EIO, errno.EROFS, errno.EDQUOT, errno.EFBIG})


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
        check_number("tuning", "trials", self.trials, 1, high=MAX_TRIALS, integer=True, optional=True)
        check_number("tuning", "timeout", self.timeout, 0, high=MAX_TUNING_SECONDS, strict=True, optional=True)
        check_number("tuning", "seed", self.seed, 0, high=MAX_SEED, integer=True)
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
    context: dict[str, Any] = field(default_factory=dict)  # what the study is tuned on (see study_context)


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


#: The fields of a study's context, as they are named in messages.
CONTEXT_FIELDS = {
    "model": "model kind",
    "params": "fixed parameters",
    "space": "search space",
    "metric": "metric",
    "exclude": "exclusion rule",
    "dataset": "dataset hashes",
    "split": "split configuration",
}


def study_context(model: str, params: dict[str, Any], space: dict[str, dict[str, Any]], metric: str, exclude: str,
                  hashes: dict[str, str], split: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """What a study is tuned on, as plain JSON (how Optuna stores it).

    ``space`` is the run's search space in YAML form, ``hashes`` the dataset's raw-file hashes and
    ``split`` the seeded split configuration (what the split id hashes besides the raw files).
    """
    context = {"model": model, "params": params, "space": space, "metric": metric, "exclude": exclude,
               "dataset": hashes, "split": split}  # fmt: skip
    return dict(json.loads(json.dumps(context, sort_keys=True, default=str)))


def study_name(experiment: str, run: str, split: str, context: dict[str, Any]) -> str:
    """The storage name of a run × split's study in ``context``, e.g. ``kdq-default/itemknn/temporal@3f9a1c20d4``."""
    return f"{study_prefix(experiment, run, split)}@{stable_hash(context)}"


def study_prefix(experiment: str, run: str, split: str) -> str:
    """What the names of every study of a run × split start with (studies before contexts were named just so)."""
    return f"{experiment}/{run}/{split}"


def context_differences(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What differs between a stored study's context and the current one, field by field (stored first)."""
    out = []
    for key, label in CONTEXT_FIELDS.items():
        before, now = stored.get(key), current.get(key)
        if before == now:
            continue
        if key == "dataset" or not (isinstance(before, dict) and isinstance(now, dict)):
            out.append(f"{label} differ" if key == "dataset" else f"{label} differs: {_text(before)} vs {_text(now)}")
            continue
        changed = [f"{name} {_text(before.get(name))} vs {_text(now.get(name))}"
                   for name in sorted(set(before) | set(now)) if before.get(name) != now.get(name)]  # fmt: skip
        out.append(f"{label} differs: {'; '.join(changed)}")
    return out


def _text(value: Any) -> str:
    return "absent" if value is None else json.dumps(value, ensure_ascii=False)


def open_study(task: StudyTask, storage: Any, sampler: Any = None) -> Any:
    """Create or load ``task``'s study; a new study stores its context, an existing one must have the same."""
    import optuna

    study = optuna.create_study(study_name=task.name, storage=storage, sampler=sampler, direction="maximize",
                                pruner=pruner(task.budget.pruner), load_if_exists=True)  # fmt: skip
    stored = study.user_attrs.get("context")
    if stored is None:
        study.set_user_attr("context", task.context)
    elif stored != task.context:  # only a hash collision or a hand-edited database gets here
        raise KdqError(f"tuning study {task.name!r} was tuned in another context: "
                       + "; ".join(context_differences(stored, task.context)))  # fmt: skip
    return study


def default_storage(report: Path) -> str:
    """The SQLite file in the experiment's report folder (kept when the report is regenerated)."""
    return f"sqlite:///{study_files(report)[0].resolve()}"


def study_files(report: Path) -> list[Path]:
    """The report's default study file and the journal files SQLite keeps beside it: the lab keeps changing them."""
    database = Path(report) / TUNING_FOLDER / "optuna.db"
    return [database, *(database.with_name(database.name + suffix) for suffix in ("-journal", "-wal", "-shm"))]


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite storage URL (``sqlite:///path``); ``None`` for other URLs and in-memory SQLite."""
    import sqlalchemy.engine
    import sqlalchemy.exc

    try:
        parsed = sqlalchemy.engine.make_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError):
        return None
    database = parsed.database
    return Path(database) if parsed.get_backend_name() == "sqlite" and database and database != ":memory:" else None


def storage_inputs(storage: str | None, report: Path) -> dict[str, Path | None]:
    """A study storage as an input of a command writing ``report``: its SQLite file, unless it is the report's own.

    The report's own study file (``tuning/optuna.db``) is kept when the report is replaced: it
    lies inside by design.
    """
    database = sqlite_file(storage) if storage else None
    own = database is not None and database.resolve() == study_files(report)[0].resolve()
    return {"the tuning storage": None if own else database}


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
    """An Optuna RDB storage: SQLite waits for locks; stale trials of killed processes are failed.

    Processes that create a new storage's tables at once collide (a table or version row that already
    exists): the losers open it again, a few times.
    """
    import optuna
    import sqlalchemy

    check_storage(url)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # heartbeats
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    for attempt in range(SCHEMA_ATTEMPTS):
        try:
            with storage_failures(url, opening=True):
                return optuna.storages.RDBStorage(url, engine_kwargs=engine, heartbeat_interval=30, grace_period=90)
        except sqlalchemy.exc.DBAPIError as exc:  # the database answered: maybe another process was creating it
            if attempt == SCHEMA_ATTEMPTS - 1:
                raise KdqError(f"cannot open the tuning storage {url!r}: {_first_line(exc)}") from None
            time.sleep(0.2 * (attempt + 1))
        except (sqlalchemy.exc.SQLAlchemyError, ValueError, ImportError) as exc:  # a bad URL, a missing driver
            raise KdqError(f"cannot open the tuning storage {url!r}: {_first_line(exc)}") from None
    raise AssertionError("unreachable")


def _first_line(exc: BaseException) -> str:
    """The error's type and first line (SQLAlchemy adds a line pointing to its documentation)."""
    return f"{exc.__class__.__name__}: {str(exc).strip().split(chr(10))[0]}"


@contextmanager
def storage_failures(url: str, opening: bool = False) -> Iterator[None]:
    """Turn a failure of the system under the study storage into an ``OSError`` naming it (one line, exit 1).

    A full disk, an I/O error, a read-only database or (after it was opened) a database file
    that cannot be opened any more reach Optuna as an SQLAlchemy ``OperationalError``, which
    Optuna may wrap in its own error: the chain of causes is searched for SQLite's result code
    (``sqlite_errorcode``) or an ``OSError``'s errno, never for words. ``opening``: a file that
    cannot be opened is the user's to fix (a missing folder), left to :func:`open_storage`.
    """
    try:
        yield
    except Exception as exc:
        found = _system_failure(exc, SYSTEM_FAILURES if opening else SYSTEM_FAILURES | UNOPENABLE)
        if found is None:
            raise
        raise OSError(found[0], f"{found[1]} (the tuning storage)", _shown(url)) from exc


def _system_failure(exc: BaseException, codes: dict[int, tuple[int, str]]) -> tuple[int, str] | None:
    """The errno and words of the first failure of the system in ``exc``'s chain of causes, if there is one.

    A link is SQLite's error (its primary result code in ``codes``), SQLAlchemy's around it (``orig``), or an
    ``OSError`` whose errno is in :data:`SYSTEM_ERRNOS`.
    """
    seen: list[BaseException] = []
    pending: list[BaseException | None] = [exc]
    while pending and len(seen) < 20:
        link = pending.pop(0)
        if link is None or any(link is other for other in seen):
            continue
        seen.append(link)
        code = getattr(link, "sqlite_errorcode", None)
        if isinstance(code, int) and code & 0xFF in codes:
            return codes[code & 0xFF]
        if isinstance(link, OSError) and link.errno in SYSTEM_ERRNOS:
            return link.errno, os.strerror(link.errno)
        orig = getattr(link, "orig", None)  # SQLAlchemy's DBAPIError: the driver's error
        pending += [orig if isinstance(orig, BaseException) else None, link.__cause__, link.__context__]
    return None


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


class SurplusTrial(Exception):
    """A trial that started when its study's budget was already taken (by this or another process)."""


class _QuietSurplus(logging.Filter):
    """Drops Optuna's two warnings about a surplus trial: no objective failed.

    The first carries the :class:`SurplusTrial` itself (its ``exc_info``); the second, the trial's value, is the
    next record the same thread logs (Optuna writes them one after the other). Nothing is told by the words.
    """

    def __init__(self) -> None:
        super().__init__()
        self.pending = threading.local()  # per thread: whether the value's warning of a surplus trial comes next

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(self.pending, "value", False):
            self.pending.value = False
            return False
        if record.exc_info and isinstance(record.exc_info[1], SurplusTrial):
            self.pending.value = True
            return False
        return True


_QUIET_SURPLUS = _QuietSurplus()


def within_budget(objective: Callable[[Any], float], budget: TuningConfig) -> Callable[[Any], float]:
    """``objective``, run only while the storage says the study's budget is not yet taken.

    Before each trial: trials of killed processes are failed (their heartbeat is stale), then the
    trials numbered below this one are counted from the storage (:func:`counted`, plus those still
    running; for a time budget, the seconds of finished ones). When they reach the budget, the trial
    is marked ``surplus``, fails without an error (it does not count) and the study stops.
    """
    import optuna
    from optuna.trial import TrialState

    optimize_log = logging.getLogger("optuna.study._optimize")
    if _QUIET_SURPLUS not in optimize_log.filters:
        optimize_log.addFilter(_QUIET_SURPLUS)

    def guarded(trial: optuna.Trial) -> float:
        study = trial.study
        optuna.storages.fail_stale_trials(study)
        earlier = [t for t in study.get_trials(deepcopy=False) if t.number < trial.number]
        if budget.trials is not None:
            taken = sum(counted(t) or t.state == TrialState.RUNNING for t in earlier)
            full = taken >= budget.trials
            why = f"{taken} of its {budget.trials} trials are done or running"
        else:
            used = sum(trial_seconds(t) for t in earlier if counted(t))
            full = used >= (budget.timeout or 0)
            why = f"its trials took {used:.0f} of its {budget.timeout:g} s"
        if full:
            trial.set_user_attr("surplus", True)
            study.stop()
            raise SurplusTrial(f"not run: the study's budget is taken ({why})")
        return objective(trial)

    return guarded


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
                unit = model.iteration_parameter

                def report(iteration: int, value: float) -> None:
                    trial.report(value, iteration)
                    if trial.should_prune():
                        raise optuna.TrialPruned(f"pruned after {unit} {iteration}")

                model.fit(data, on_epoch=report)
                curve = model.learning_curve()
                trial.set_user_attr("best_epoch", model.best_iteration())
                return float(curve.loc[curve["iteration"] == model.best_iteration(), "validation"].iloc[0])
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
    with storage_failures(task.storage):  # raised here, in the worker: a pickled error would lose its causes
        return _run_study(task, open_storage(task.storage), progress, position, objective)


def _run_study(
    task: StudyTask, storage: Any, progress: bool, position: int, objective: Callable[[Any], float] | None
) -> StudyResult:
    import optuna

    study = open_study(task, storage, optuna.samplers.TPESampler(seed=task.sampler_seed))
    optuna.storages.fail_stale_trials(study)  # trials of killed processes: failed, not counted
    done = [t for t in study.get_trials(deepcopy=False) if counted(t)]
    remaining_trials = None if task.budget.trials is None else max(0, task.budget.trials - len(done))
    remaining_time = None
    if task.budget.timeout is not None:
        remaining_time = max(0.0, task.budget.timeout - sum(trial_seconds(t) for t in done))
    if remaining_trials != 0 and remaining_time != 0.0:
        objective = within_budget(objective or make_objective(task, load_split(Path(task.split_folder))), task.budget)
        bar = tqdm(total=task.budget.trials, initial=len(done), desc=task.name, unit="trial", position=position,
                   disable=not progress, file=sys.stderr, leave=True)  # fmt: skip
        started = time.perf_counter()

        def tick(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            if trial.user_attrs.get("surplus"):
                return
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


def tuned_trial(storage: str, experiment: str, run: str, split: str, context: dict[str, Any]) -> dict[str, Any]:
    """The best complete trial of the run × split's study in ``context``: ``study``, ``number``, ``value``,
    ``params``, ``best_epoch``.

    Raises :class:`KdqError` when there is no such study (saying how the contexts of the run × split's
    other studies differ, if there are any), when it has no complete trial, or when its best
    parameters lie outside the context's search space.
    """
    import optuna
    import sqlalchemy.exc

    check_storage(storage)
    name = study_name(experiment, run, split, context)
    if storage.startswith("sqlite:///") and not Path(storage.removeprefix("sqlite:///")).is_file():
        raise KdqError(f"no tuning study {name!r}: {storage} does not exist; run `kdq-lab tune` first")
    prefix = study_prefix(experiment, run, split)
    try:
        studies = [s for s in optuna.get_all_study_summaries(open_storage(storage), include_best_trial=False)
                   if s.study_name == prefix or s.study_name.startswith(f"{prefix}@")]  # fmt: skip
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise KdqError(f"cannot read the tuning studies at {storage}: {exc.__class__.__name__}") from None
    study = next((s for s in studies if s.study_name == name), None)
    if study is None:
        others = [
            f"{s.study_name} ({'; '.join(context_differences(s.user_attrs['context'], context))})"
            if "context" in s.user_attrs
            else f"{s.study_name} (it records no context: tuned by an older kdq_lab)"
            for s in studies
        ]
        elsewhere = f"; only studies tuned in another context: {', '.join(others)}" if others else ""
        raise KdqError(f"no tuning study {name!r} in {storage}{elsewhere}; run `kdq-lab tune` first")
    if study.user_attrs.get("context") != context:
        raise KdqError(f"tuning study {name!r} in {storage} records another context: "
                       + "; ".join(context_differences(study.user_attrs.get("context") or {}, context)))  # fmt: skip
    try:
        best = optuna.load_study(study_name=name, storage=open_storage(storage)).best_trial
    except ValueError:
        raise KdqError(f"tuning study {name!r} in {storage} has no complete trial; tune it (again) first") from None
    space = {key: parse_range(key, raw) for key, raw in context["space"].items()}
    outside = [f"{key}={value!r}" for key, value in best.params.items()
               if key not in space or not space[key].contains(value)]  # fmt: skip
    if outside:
        raise KdqError(f"the best trial ({best.number}) of tuning study {name!r} has parameters outside the search "
                       f"space: {', '.join(outside)}; tune again")  # fmt: skip
    return {"study": name, "number": best.number, "value": best.value, "params": dict(best.params),
            "best_epoch": best.user_attrs.get("best_epoch")}  # fmt: skip


def tuned_params(kind: str, task_params: dict[str, Any], best: dict[str, Any]) -> dict[str, Any]:
    """A run's parameters with its best trial's: iterative models train the trial's best iteration count
    (pinned the model's own way: :meth:`~kdq_lab.models.registry.ModelSpec.pin_iterations`)."""
    spec = model_spec(kind)
    params = {**task_params, **best["params"]}
    if spec.iterative and best.get("best_epoch"):
        params = spec.pin_iterations(params, int(best["best_epoch"]))
    return params


def run_studies(tasks: list[StudyTask], jobs: int = 1, progress: bool = True) -> list[StudyResult]:
    """Run every study, ``jobs`` at a time in processes (local backend); results in task order."""
    if jobs <= 1 or len(tasks) <= 1:
        return [run_study(task, progress) for task in tasks]
    return map_in_processes(run_study, [(task, progress, i % jobs) for i, task in enumerate(tasks)], jobs)


def results_table(results: list[StudyResult]) -> list[dict[str, Any]]:
    """The studies as plain rows (for ``tuning/summary.json`` and the manifest)."""
    return [asdict(r) for r in results]
