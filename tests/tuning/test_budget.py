"""A study's budget holds when several processes tune it: the storage counts, surplus trials do not count."""

from __future__ import annotations

import datetime
import functools
import logging
import multiprocessing
import os
import sqlite3
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from kdq_lab.tuning.study import (
    StudyTask,
    SurplusTrial,
    TuningConfig,
    counted,
    open_storage,
    run_study,
    within_budget,
)

NAME = "t/run/split@0123456789"


def task(tmp_path: Path, trials: int | None = None, timeout: float | None = None) -> StudyTask:
    return StudyTask(
        name=NAME, run="run", split="split", model="popularity", params={}, space={}, split_folder="unused",
        seed=0, metric="ndcg@10", exclude="seen", storage=f"sqlite:///{tmp_path / 'studies.db'}",
        budget=TuningConfig(trials=trials, timeout=timeout), sampler_seed=0, context={"test": True},
    )  # fmt: skip


def cheap(trial: optuna.Trial, pause: float = 0.0, on_first=None) -> float:
    """A cheap objective that records its process; ``on_first(trial)`` runs during the study's first trial."""
    trial.set_user_attr("pid", os.getpid())
    if on_first is not None and trial.number == 0:
        on_first(trial)
    time.sleep(pause)
    return trial.suggest_float("x", 0.0, 1.0)


def tune_in_process(t: StudyTask, barrier, pause: float) -> None:
    """A worker: wait for the other one, then run the study (each trial pauses so the two interleave)."""
    barrier.wait()
    run_study(t, progress=False, objective=functools.partial(cheap, pause=pause))


def trials_of(t: StudyTask) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=t.name, storage=open_storage(t.storage)).get_trials()


def run_concurrently(t: StudyTask, processes: int = 2, pause: float = 0.2) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(processes)
    workers = [context.Process(target=tune_in_process, args=(t, barrier, pause)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
        assert worker.exitcode == 0


@pytest.mark.slow  # starts another Python process
@pytest.mark.parametrize("budget", [3, 7])
def test_two_processes_on_one_study_run_exactly_its_budget(tmp_path, budget):
    t = task(tmp_path, trials=budget)
    run_concurrently(t)
    trials = trials_of(t)
    assert sum(counted(x) for x in trials) == budget
    assert len({x.user_attrs["pid"] for x in trials if counted(x)}) == 2, "both processes ran trials of the study"
    surplus = [x for x in trials if not counted(x)]
    assert surplus, "the second process started trials beyond the budget and gave them up"
    assert all(x.state == TrialState.FAIL and x.user_attrs.get("surplus") for x in surplus)
    assert all("error" not in x.user_attrs and "pid" not in x.user_attrs for x in surplus), "nothing ran"
    assert max(x.number for x in trials if counted(x)) < min(x.number for x in surplus), "the first ones count"


@pytest.mark.slow  # starts another Python process
def test_a_resumed_study_tops_up_to_a_larger_budget(tmp_path):
    run_concurrently(task(tmp_path, trials=4))
    result = run_study(task(tmp_path, trials=6), progress=False, objective=cheap)
    assert result.complete == 6 and sum(counted(x) for x in trials_of(task(tmp_path, trials=6))) == 6
    assert run_study(task(tmp_path, trials=6), progress=False, objective=cheap).complete == 6, "nothing more"


def another_process_starts(t: StudyTask, trial: optuna.Trial, stale: bool) -> None:
    """A trial of another process, running (heartbeat now) or killed (its heartbeat an hour old)."""
    storage = open_storage(t.storage)
    other = optuna.load_study(study_name=t.name, storage=storage).ask()
    storage.record_heartbeat(other._trial_id)
    if stale:
        with sqlite3.connect(t.storage.removeprefix("sqlite:///")) as db:
            db.execute("UPDATE trial_heartbeats SET heartbeat = datetime(heartbeat, '-1 hour') WHERE trial_id = ?",
                       (other._trial_id,))  # fmt: skip


def test_a_trial_running_in_another_process_counts_until_its_heartbeat_is_stale(tmp_path):
    t = task(tmp_path, trials=3)
    on_first = functools.partial(another_process_starts, t, stale=False)
    result = run_study(t, progress=False, objective=functools.partial(cheap, on_first=on_first))
    states = [x.state for x in trials_of(t)]
    assert result.complete == 2 and states.count(TrialState.RUNNING) == 1, "2 here + 1 running elsewhere = 3"
    with sqlite3.connect(t.storage.removeprefix("sqlite:///")) as db:
        db.execute("UPDATE trial_heartbeats SET heartbeat = datetime(heartbeat, '-1 hour')")  # that process died
    assert run_study(t, progress=False, objective=cheap).complete == 3, "its trial is failed and run again"


def test_a_killed_trial_does_not_hold_the_budget(tmp_path):
    t = task(tmp_path, trials=3)
    on_first = functools.partial(another_process_starts, t, stale=True)
    result = run_study(t, progress=False, objective=functools.partial(cheap, on_first=on_first))
    assert result.complete == 3 and [x.state for x in trials_of(t)].count(TrialState.FAIL) == 1


def another_process_finished(trial: optuna.Trial, seconds: float, count: int) -> None:
    """``count`` trials of ``seconds`` each, finished by another process while this trial runs."""
    end = datetime.datetime.now()
    for _ in range(count):
        trial.study.add_trial(optuna.trial.FrozenTrial(
            number=0, trial_id=0, state=TrialState.COMPLETE, value=0.5, values=None, params={}, distributions={},
            user_attrs={}, system_attrs={}, intermediate_values={},
            datetime_start=end - datetime.timedelta(seconds=seconds), datetime_complete=end,
        ))  # fmt: skip


@pytest.mark.parametrize("budget, finished_elsewhere, ran_here", [(5, 3, 2), (5, 4, 1), (5, 6, 1)])
def test_trials_finished_elsewhere_take_their_share_of_a_trial_budget(tmp_path, budget, finished_elsewhere, ran_here):
    t = task(tmp_path, trials=budget)
    on_first = functools.partial(another_process_finished, seconds=1.0, count=finished_elsewhere)
    result = run_study(t, progress=False, objective=functools.partial(cheap, on_first=on_first))
    assert result.complete == finished_elsewhere + ran_here
    mine = [x for x in trials_of(t) if x.user_attrs.get("pid") == os.getpid()]
    assert len(mine) == ran_here and sum(x.user_attrs.get("surplus", False) for x in trials_of(t)) == 1


@pytest.mark.parametrize("seconds, surplus", [(100.0, True), (1.0, False)])
def test_seconds_finished_elsewhere_take_their_share_of_a_time_budget(tmp_path, seconds, surplus):
    t = task(tmp_path, timeout=60)

    def objective(trial: optuna.Trial) -> float:
        if trial.number == 0:
            another_process_finished(trial, seconds=seconds, count=1)  # trial 1
        if trial.number == 3:  # this process's third trial: enough
            trial.study.stop()
        return cheap(trial)

    run_study(t, progress=False, objective=objective)
    trials = trials_of(t)
    assert any(x.user_attrs.get("surplus") for x in trials) == surplus
    assert len([x for x in trials if x.user_attrs.get("pid")]) == (1 if surplus else 3)


@pytest.mark.parametrize(
    ("error", "kept"),
    [
        (SurplusTrial("not run: the study's budget is taken"), 0),
        (ValueError("SurplusTrial(...) failed with value None"), 2),  # a real failure, whatever it says
        (RuntimeError("boom"), 2),
    ],
)
def test_optuna_s_warnings_are_dropped_for_a_surplus_trial_only(error, kept):
    """The filter goes by the exception Optuna logs and the record that follows it, never by their words."""
    from optuna.study._optimize import _log_failed_trial

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("optuna.study._optimize")
    within_budget(lambda trial: 0.0, TuningConfig(trials=1))  # what puts the filter on Optuna's logger
    logger.addHandler(handler)
    try:
        for number in (3, 4):
            try:
                raise error
            except Exception:
                _log_failed_trial(number, {}, repr(error), exc_info=sys.exc_info(), value_or_values=None)
    finally:
        logger.removeHandler(handler)
    assert len(records) == 2 * kept
    assert all(r.getMessage().startswith(f"Trial {n}") for r, n in zip(records, (3, 3, 4, 4)))
