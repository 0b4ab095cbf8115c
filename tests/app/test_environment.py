"""Running an experiment leaves this process as it found it: its environment, its text streams and their error
handling, the files its standard descriptors point at, its working folder and its SIGTERM handler. Notebooks get
the lab's folders and their threads through their kernels' own environment."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from kdq_lab.app.run import run_experiment
from kdq_lab.cli import main
from kdq_lab.config import DATA_ENV, Paths
from kdq_lab.execution.runner import ExecOptions
from kdq_lab.experiment.plan import PlanOptions

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "notebooks" / "experiments" / "smoke.yaml"


def _target(fd: int) -> tuple[int, int, int]:
    info = os.fstat(fd)
    return info.st_dev, info.st_ino, info.st_rdev


def state() -> dict[str, object]:
    """What a library function may not leave changed in the calling process."""
    return {
        "environ": dict(os.environ),
        "stdout": sys.stdout,
        "stderr": sys.stderr,
        "errors": (getattr(sys.stdout, "errors", None), getattr(sys.stderr, "errors", None)),
        "fds": (_target(0), _target(1), _target(2)),
        "cwd": os.getcwd(),
        "sigterm": signal.getsignal(signal.SIGTERM),
    }


@pytest.mark.slow  # a whole experiment
def test_running_the_smoke_experiment_leaves_this_process_as_it_was(tmp_path):
    workspace = tmp_path / "workspace"
    assert os.environ[DATA_ENV] != str(workspace), "the session's workspace is another folder"
    before = state()
    options = PlanOptions(out=tmp_path / "report", only=["popularity"])
    outcome = run_experiment(SMOKE, options, ExecOptions(progress=False, fresh=True), paths=Paths(ROOT, workspace))
    assert outcome.ok, outcome.failed
    assert state() == before
    # 02_prepare_data found the workspace through its kernel's environment: the splits are there, not elsewhere
    assert list((workspace / "data" / "processed" / "kdq-catalog-tiny").glob("global_temporal-*/manifest.json"))
    assert (tmp_path / "report" / "index.html").is_file()


def test_the_command_gives_the_streams_their_own_error_handling_back(tmp_path, capsys):
    before = state()
    assert main(["run", str(SMOKE), "--dry-run", "--out", str(tmp_path / "r")]) == 0
    assert state() == before
    assert main(["run", str(tmp_path / "missing.yaml"), "--dry-run"]) == 2, "an error: exit 2, streams restored"
    assert state() == before
