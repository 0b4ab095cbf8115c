"""Studies on the tiny catalog: resume, pruning, failed trials, validation only, storage URLs, equal budgets."""

from __future__ import annotations

import errno
import json
import os
import re
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import optuna
import pytest
from model_fixtures import SWEEPS, registered

from kdq_lab.app.tune import TuneOptions, tune_experiment
from kdq_lab.data.splits import SplitConfig
from kdq_lab.data.store import load_split, prepare
from kdq_lab.errors import KdqError
from kdq_lab.execution.runner import ExecOptions
from kdq_lab.experiment.plan import PlanOptions, plan_experiment
from kdq_lab.models.registry import ModelSpec
from kdq_lab.tuning.study import (
    StudyTask,
    TuningConfig,
    counted,
    make_objective,
    open_storage,
    run_study,
    storage_failures,
    tuned_params,
)

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "notebooks" / "experiments" / "smoke.yaml"
LIGHTFM = {"features": "both", "epochs": 6, "patience": None, "curve_users": 50}


@pytest.fixture(scope="module")
def split_folder(tiny_catalog, tmp_path_factory) -> str:
    """New users: their validation positives are all targets (nothing was seen before)."""
    config = SplitConfig(kind="cold_users", validation_fraction=0.2, seed=1)
    return str(prepare(tiny_catalog, config, tmp_path_factory.mktemp("processed")))


def task(tmp_path: Path, folder: str, space: dict, params: dict | None = None, trials: int = 3,
         pruner: str = "median", model: str = "lightfm") -> StudyTask:  # fmt: skip
    return StudyTask(
        name="t/run/split", run="run", split="split", model=model, space=space,
        params=dict(LIGHTFM) if params is None else params,
        split_folder=folder, seed=42, metric="ndcg@10", exclude="seen", storage=f"sqlite:///{tmp_path / 'db.sqlite'}",
        budget=TuningConfig(trials=trials, pruner=pruner), sampler_seed=0,
    )  # fmt: skip


def trials_of(t: StudyTask) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=t.name, storage=open_storage(t.storage)).trials


def killed_trial(t: StudyTask) -> int:
    """A trial left running by a killed process: its last heartbeat is an hour old. Returns its number."""
    storage = open_storage(t.storage)
    trial = optuna.load_study(study_name=t.name, storage=storage).ask()
    storage.record_heartbeat(trial._trial_id)
    with sqlite3.connect(t.storage.removeprefix("sqlite:///")) as db:
        db.execute("UPDATE trial_heartbeats SET heartbeat = datetime(heartbeat, '-1 hour') WHERE trial_id = ?",
                   (trial._trial_id,))  # fmt: skip
    return trial.number


def test_resume_runs_only_the_missing_trials(tmp_path, split_folder, monkeypatch):
    study = task(tmp_path, split_folder, {"no_components": {"int": [4, 16]}}, trials=3)
    calls = {"n": 0}
    make = ModelSpec.make  # called once per trial, to build the trial's model

    def interrupt_second(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # Ctrl-C during the second trial
        return make(self, *args, **kwargs)

    monkeypatch.setattr(ModelSpec, "make", interrupt_second)
    with pytest.raises(KeyboardInterrupt):
        run_study(study, progress=False)
    monkeypatch.undo()
    first = trials_of(study)
    assert [t.state.name for t in first] == ["COMPLETE", "FAIL"] and first[1].user_attrs["interrupted"]
    killed_trial(study)
    result = run_study(study, progress=False)
    assert result.complete == 3 and result.failed == 0, "interrupted and killed trials are not counted"
    assert sum(counted(t) for t in trials_of(study)) == 3
    assert run_study(study, progress=False).complete == 3, "a finished study runs nothing more"


def test_pruning_stops_hopeless_trials(tmp_path, split_folder):
    space = {"learning_rate": {"float": [0.0005, 0.3], "log": True}, "no_components": {"int": [2, 16]}}
    result = run_study(task(tmp_path, split_folder, space, trials=12), progress=False)
    trials = trials_of(task(tmp_path, split_folder, space))
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    assert result.pruned == len(pruned) >= 1
    assert all(len(t.intermediate_values) < LIGHTFM["epochs"] for t in pruned), "pruned before the last epoch"
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert all("best_epoch" in t.user_attrs for t in complete), "a trial keeps its best epoch count"
    assert result.best_value == max(t.value for t in complete)


def test_a_model_iterating_in_iterations_is_pruned_and_pinned_its_own_way(tmp_path, split_folder):
    """Nothing in tuning knows LightFM's ``epochs``: the test-only ``sweeps`` iterates in ``iterations``."""
    with registered(SWEEPS):
        study = task(tmp_path, split_folder, {"noise": {"float": [0.0, 50.0]}}, {}, trials=12, model="sweeps")
        result = run_study(study, progress=False)
        trials = trials_of(study)
        pruned = [t for t in trials if t.state.name == "PRUNED"]
        assert result.failed == 0 and result.pruned == len(pruned) >= 1
        assert all(len(t.intermediate_values) < SWEEPS.defaults()["iterations"] for t in pruned)
        assert result.best_epoch is not None and result.best_epoch >= 1
        best = {"params": result.best_params, "best_epoch": result.best_epoch}
        pinned = tuned_params("sweeps", {"seed": 7}, best)
        assert pinned == {"seed": 7, **result.best_params, "iterations": result.best_epoch, "patience": None}
        assert tuned_params("popularity", {}, {"params": {"window_days": 30}, "best_epoch": 4}) == {"window_days": 30}
        lightfm = tuned_params("lightfm", {"features": "ids"}, {"params": {}, "best_epoch": 4})
        assert lightfm == {"features": "ids", "epochs": 4, "patience": None}


def test_failing_trials_are_recorded_and_the_study_goes_on(tmp_path, split_folder):
    space = {"learning_rate": {"choice": [0.05, 1.0e6]}}
    params = LIGHTFM | {"normalize": "none"}
    result = run_study(task(tmp_path, split_folder, space, params, trials=6), progress=False)
    failed = [t for t in trials_of(task(tmp_path, split_folder, space)) if t.state.name == "FAIL"]
    assert result.failed == len(failed) >= 1 and result.complete >= 1 and result.complete + result.failed == 6
    assert all("diverged" in t.user_attrs["error"] for t in failed)
    assert result.best_params == {"learning_rate": 0.05}


class Poisoned:
    """Stands for the test part: touching it fails the test."""

    def __getattr__(self, name: str):
        raise AssertionError(f"tuning read the test part ({name})")


def test_tuning_never_reads_the_test_part(tmp_path, split_folder):
    split = load_split(split_folder)
    poisoned = replace(split, test=Poisoned(), seen_known=Poisoned())
    with pytest.raises(AssertionError):
        _ = poisoned.test.interactions
    for model, space, params in (
        ("lightfm", {"no_components": {"int": [4, 8]}}, None),
        ("popularity", {"window_days": {"choice": [None, 30]}}, {}),
        ("itemknn", {"neighbors": {"int": [5, 50]}}, {}),
    ):
        study = task(tmp_path, split_folder, space, params, trials=2, model=model)
        study = replace(study, name=f"t/{model}/split")
        result = run_study(study, progress=False, objective=make_objective(study, poisoned))
        assert result.complete == 2, model


@pytest.mark.slow  # starts another Python process
def test_equal_budgets_storage_url_and_tuned_runs(tmp_path):
    out, storage = tmp_path / "report", f"sqlite:///{tmp_path / 'elsewhere.db'}"
    results, used = tune_experiment(
        SMOKE, TuneOptions(trials=2), PlanOptions(storage=storage, out=out), ExecOptions(progress=False)
    )
    assert used == storage and (tmp_path / "elsewhere.db").is_file() and not (out / "tuning" / "optuna.db").exists()
    assert {r.run for r in results} == {"popularity", "lightfm_hybrid"}
    assert all(r.complete + r.pruned + r.failed == 2 for r in results), "every study gets the same budget"
    assert (out / "tuning" / "summary.json").is_file() and (out / ".kdq-lab").is_file()
    plan = plan_experiment(SMOKE, PlanOptions(out=out, tuned=True, storage=storage))
    assert plan.tuning is not None and set(plan.tuning["studies"]) == {"popularity__global", "lightfm_hybrid__global"}
    hybrid = next(s for s in plan.steps() if s.key == "lightfm_hybrid__global").run
    best = next(r for r in results if r.run == "lightfm_hybrid")
    assert hybrid is not None and hybrid.params["no_components"] == best.best_params["no_components"]
    assert hybrid.params["patience"] is None
    assert hybrid.params["epochs"] == best.best_epoch and hybrid.label.endswith("· tuned")
    assert any(s.key == "06_tuning" for s in plan.steps()), "a tuned report includes the tuning notebook"
    with pytest.raises(KdqError, match="no tuning study"):
        plan_experiment(SMOKE, PlanOptions(out=tmp_path / "other", tuned=True))


@pytest.mark.slow  # the tune and run commands on a whole experiment
def test_cli_tune_and_tuned_run_without_studies(tmp_path):
    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "kdq_lab.cli", *args], capture_output=True, text=True, cwd=ROOT)

    missing = cli("run", str(SMOKE), "--out", str(tmp_path / "r"), "--tuned", "--dry-run")
    assert missing.returncode == 2 and "no tuning study" in missing.stderr and "kdq-lab tune" in missing.stderr
    tuned = cli("tune", str(SMOKE), "--out", str(tmp_path / "r"), "--trials", "1", "--only", "popularity")
    assert tuned.returncode == 0, tuned.stderr
    assert re.search(r"^smoke/popularity/global@[0-9a-f]{10}: 1 complete", tuned.stdout, re.M), tuned.stdout
    assert "Traceback" not in tuned.stderr
    bad = cli("tune", str(SMOKE), "--trials", "2", "--timeout", "5")
    assert bad.returncode == 2 and "not allowed with argument" in bad.stderr
    for url, fragment in (("foo", "Could not parse"), (f"sqlite:///{tmp_path}/no/such/dir/x.db", "unable to open")):
        storage = cli("tune", str(SMOKE), "--out", str(tmp_path / "s"), "--trials", "1", "--storage", url)
        assert storage.returncode == 2 and "cannot open the tuning storage" in storage.stderr, storage.stderr
        assert fragment in storage.stderr and "Traceback" not in storage.stderr and storage.stderr.count("\n") == 1
        assert not (tmp_path / "s").exists(), "nothing written"


def test_tune_refuses_a_folder_the_lab_did_not_make_and_ignores_tuned(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(KdqError, match="did not make"):
        tune_experiment(
            SMOKE, TuneOptions(trials=1), PlanOptions(only=["popularity"], out=foreign), ExecOptions(progress=False)
        )
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"], "nothing written, no marker added"
    # an experiment that says `tuned: true` is tuned from its own parameters, never from earlier studies
    tuned_yaml = tmp_path / "smoke.yaml"
    tuned_yaml.write_text(SMOKE.read_text(encoding="utf-8") + "\ntuned: true\n", encoding="utf-8")
    results, _ = tune_experiment(
        tuned_yaml,
        TuneOptions(trials=1),
        PlanOptions(only=["popularity"], out=tmp_path / "r"),
        ExecOptions(progress=False),
    )
    assert [r.complete + r.pruned + r.failed for r in results] == [1]


def test_what_tuning_adds_keeps_the_report_the_lab_s(tmp_path):
    from types import SimpleNamespace

    from kdq_lab.execution.runner import _carry_over
    from kdq_lab.files import MARKER, atomic_dir, made_by_lab

    out = tmp_path / "report"
    with atomic_dir(out) as tmp:  # a published report
        (tmp / "index.html").write_text("<p>report</p>", encoding="utf-8")
    tune_experiment(
        SMOKE, TuneOptions(trials=1), PlanOptions(only=["popularity"], out=out), ExecOptions(progress=False)
    )
    marker = json.loads((out / MARKER).read_text(encoding="utf-8"))
    assert "tuning/optuna.db" in marker["mutable"] and "tuning/summary.json" in marker["files"]
    assert made_by_lab(out), "run may replace it after tuning"
    tune_experiment(
        SMOKE, TuneOptions(trials=2), PlanOptions(only=["popularity"], out=out), ExecOptions(progress=False)
    )  # the study file changes
    assert made_by_lab(out)
    (out / "tuning" / "mine.txt").write_text("mine", encoding="utf-8")
    assert not made_by_lab(out), "only what tuning wrote is listed"
    (out / "tuning" / "mine.txt").unlink()
    # the next report carries the studies over, and the study file stays mutable in its marker
    with atomic_dir(tmp_path / "next") as tmp:
        _carry_over(SimpleNamespace(report=out, tuning=None), tmp)
    with open(tmp_path / "next" / "tuning" / "optuna.db", "ab") as handle:
        handle.write(b"\0")  # tune changes it again
    assert made_by_lab(tmp_path / "next")


@pytest.mark.parametrize("where", ["tuning/mine.db", "studies.db"])
def test_a_study_file_of_its_own_inside_the_report_is_refused(where, tmp_path):
    out = tmp_path / "report"
    storage = f"sqlite:///{out / where}"
    with pytest.raises(KdqError, match="the tuning storage"):
        tune_experiment(
            SMOKE,
            TuneOptions(trials=1),
            PlanOptions(only=["popularity"], out=out, storage=storage),
            ExecOptions(progress=False),
        )
    assert not out.exists()


IN_MEMORY = [
    "sqlite://",
    "sqlite:///:memory:",
    "sqlite+pysqlite:///:memory:",
    "sqlite:///file:studies?mode=memory&cache=shared&uri=true",
    "sqlite:///file::memory:?uri=true",
    "sqlite:///?mode=memory",
    "sqlite:///file:x?MODE=Memory&uri=true",
    "sqlite:///file:/x.db?vfs=memdb&uri=true",
]


@pytest.mark.parametrize("url", IN_MEMORY)
def test_in_memory_sqlite_is_refused_before_anything_is_written(url, tmp_path, monkeypatch):
    from kdq_lab.cli import main

    monkeypatch.setenv("KDQ_LAB_DATA", str(tmp_path / "home"))  # nothing may be written here either
    monkeypatch.chdir(tmp_path)  # where a relative SQLite file would appear
    with pytest.raises(KdqError, match="in-memory SQLite database: the studies would be lost"):
        open_storage(url)
    assert main(["tune", str(SMOKE), "--out", str(tmp_path / "r"), "--trials", "1", "--storage", url]) == 2
    assert main(["run", str(SMOKE), "--out", str(tmp_path / "r"), "--tuned", "--storage", url, "--dry-run"]) == 2
    assert list(tmp_path.iterdir()) == [], "refused before anything is written"


@pytest.mark.parametrize(
    "url", ["sqlite:///{tmp}/studies.db", "sqlite:///{tmp}/memory.db", "sqlite:///file:{tmp}/x.db?mode=rwc&uri=true"]
)
def test_files_named_like_memory_are_studies_on_disk(url, tmp_path):
    storage = open_storage(url.format(tmp=tmp_path))
    optuna.create_study(study_name="s", storage=storage)
    assert len(list(tmp_path.glob("*.db"))) == 1


def operational(code: int, message: str = "words that do not matter") -> Exception:
    """An SQLite failure as Optuna raises it: its own error, caused by SQLAlchemy's, caused by sqlite3's, which
    carries SQLite's result ``code`` (as sqlite3 sets it on the errors it raises)."""
    import sqlalchemy.exc

    error = sqlite3.OperationalError(message)
    error.sqlite_errorcode = code
    try:
        try:
            raise sqlalchemy.exc.OperationalError("INSERT INTO trials ...", {}, error)
        except sqlalchemy.exc.OperationalError as exc:
            raise optuna.exceptions.StorageInternalError("An exception is raised during the commit.") from exc
    except optuna.exceptions.StorageInternalError as exc:
        return exc


@pytest.mark.parametrize(
    "code, errno_, cause",
    [
        (sqlite3.SQLITE_FULL, errno.ENOSPC, "database or disk is full"),
        (sqlite3.SQLITE_IOERR, errno.EIO, "disk I/O error"),
        (sqlite3.SQLITE_IOERR_WRITE, errno.EIO, "disk I/O error"),  # extended codes: their primary code counts
        (sqlite3.SQLITE_IOERR_FSYNC, errno.EIO, "disk I/O error"),
        (sqlite3.SQLITE_READONLY, errno.EROFS, "attempt to write a readonly database"),
        (sqlite3.SQLITE_READONLY_DBMOVED, errno.EROFS, "attempt to write a readonly database"),
        (sqlite3.SQLITE_CANTOPEN, errno.EACCES, "unable to open database file"),
    ],
)
def test_system_failures_under_the_storage_name_it(code, errno_, cause):
    url = "postgresql://lab:secret@db.example/studies"
    with pytest.raises(OSError) as caught, storage_failures(url):
        raise operational(code)
    assert caught.value.errno == errno_ and caught.value.strerror == f"{cause} (the tuning storage)"
    assert caught.value.filename == "postgresql://lab:***@db.example/studies", "never the password"


@pytest.mark.parametrize("errno_", [errno.ENOSPC, errno.EIO, errno.EROFS, errno.EDQUOT])
def test_an_os_error_under_the_storage_names_it_too(errno_):
    with pytest.raises(OSError) as caught, storage_failures("mysql://lab@db.example/studies"):
        try:
            raise OSError(errno_, "from the driver")
        except OSError as exc:
            raise optuna.exceptions.StorageInternalError("An exception is raised during the commit.") from exc
    assert caught.value.errno == errno_ and caught.value.strerror == f"{os.strerror(errno_)} (the tuning storage)"


@pytest.mark.parametrize(
    "code, message",
    [
        (sqlite3.SQLITE_ERROR, "no such table: trials"),
        (sqlite3.SQLITE_BUSY, "database is locked"),
        (sqlite3.SQLITE_CONSTRAINT_UNIQUE, "UNIQUE constraint failed"),
        (sqlite3.SQLITE_BUSY, "database or disk is full"),  # the words of a full disk, the code of a lock
        (sqlite3.SQLITE_ERROR, "disk I/O error"),
    ],
)
def test_other_storage_errors_pass_through_whatever_they_say(code, message):
    with pytest.raises(optuna.exceptions.StorageInternalError), storage_failures("sqlite:///x.db"):
        raise operational(code, message)


def test_an_os_error_of_another_kind_passes_through():
    with pytest.raises(PermissionError), storage_failures("sqlite:///x.db"):
        raise PermissionError(errno.EACCES, "disk I/O error")


def test_a_file_that_cannot_be_opened_is_the_user_s_when_opening():
    with pytest.raises(optuna.exceptions.StorageInternalError), storage_failures("sqlite:///x.db", opening=True):
        raise operational(sqlite3.SQLITE_CANTOPEN, "unable to open database file")
    with pytest.raises(OSError), storage_failures("sqlite:///x.db", opening=True):
        raise operational(sqlite3.SQLITE_FULL)


@pytest.mark.parametrize(
    "code, message", [(sqlite3.SQLITE_FULL, "database or disk is full"), (sqlite3.SQLITE_IOERR, "disk I/O error")]
)
def test_a_storage_failure_while_tuning_is_one_line_exit_1(code, message, tmp_path, monkeypatch, capsys):
    from kdq_lab.cli import main

    def failing(self, *args, **kwargs):
        raise operational(code)

    monkeypatch.setattr(optuna.study.Study, "optimize", failing)
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    args = ["tune", str(SMOKE), "--out", str(tmp_path / "r"), "--trials", "1", "--only", "popularity"]
    assert main([*args, "--storage", storage]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == f"error: {storage}: {message} (the tuning storage)"


LIMITED = """
import resource, signal, sys
from kdq_lab.cli import main
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing us
resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))  # no file may grow: the database cannot take another trial
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow  # the tune command on a whole experiment, twice
def test_a_storage_that_cannot_grow_is_one_line_exit_1(tmp_path):
    """For real: the file size limit makes every write that extends a file fail, as a full disk does."""
    args = ["tune", str(SMOKE), "--out", str(tmp_path / "r"), "--only", "popularity"]
    first = subprocess.run(
        [sys.executable, "-m", "kdq_lab.cli", *args, "--trials", "1"], capture_output=True, text=True, cwd=ROOT
    )
    assert first.returncode == 0, first.stderr
    before = (tmp_path / "r" / "tuning" / "optuna.db").read_bytes()
    proc = subprocess.run(
        [sys.executable, "-c", LIMITED, *args, "--trials", "3"], capture_output=True, text=True, cwd=ROOT
    )
    storage = f"sqlite:///{(tmp_path / 'r' / 'tuning' / 'optuna.db').resolve()}"
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and [line for line in proc.stderr.splitlines() if "error" in line] == [
        f"error: {storage}: disk I/O error (the tuning storage)"
    ]
    assert (tmp_path / "r" / "tuning" / "optuna.db").read_bytes() == before, "the studies are as they were"
