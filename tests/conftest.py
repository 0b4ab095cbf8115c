"""Shared fixtures (a tiny KDQ catalog, a MovieLens-100k-format folder) and the suite's promise to the work tree.

The suite never writes into the work tree: ``KDQ_LAB_DATA`` points the lab's data and
report folders at a temporary workspace for the whole session (notebooks run by nbval
or papermill inherit it), and the session fails if any file under the work tree
appeared, changed or vanished (caches and the virtual environment aside).
"""

from __future__ import annotations

import multiprocessing.process
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from movielens_fixture import write_ml100k
from worktree import tree_changes, tree_state

from kdq_lab.config import DATA_ENV
from kdq_lab.data.catalog import generate_catalog
from kdq_lab.execution.runner import ExecOptions
from kdq_lab.experiment.plan import PlanOptions

WORKTREE = Path(__file__).resolve().parents[1]
_state: dict[str, object] = {}


def pytest_configure(config: pytest.Config) -> None:
    _state["workspace"] = tempfile.mkdtemp(prefix="kdq-lab-tests-")
    _state["previous"] = os.environ.get(DATA_ENV)
    os.environ[DATA_ENV] = str(_state["workspace"])


#: Fixtures that run a whole experiment or start a Dask cluster: a test using one (even through another fixture)
#: must be marked ``slow``, so that ``make test-fast`` leaves it out. A test that starts a Python process (the CLI,
#: a worker, a kernel) must be too: :func:`no_python_process` fails it otherwise.
SLOW_FIXTURES = frozenset({"smoke_report", "cluster"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unmarked = [
        f"{item.nodeid} uses {', '.join(sorted(SLOW_FIXTURES & set(item.fixturenames)))}"
        for item in items
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())) and item.get_closest_marker("slow") is None
    ]
    if unmarked:
        raise pytest.UsageError("mark these tests slow (@pytest.mark.slow):\n  " + "\n  ".join(unmarked))


@contextmanager
def no_python_process(nodeid: str) -> Iterator[None]:
    """Fail the test ``nodeid`` if it starts a Python process (the CLI, a worker, a kernel): that makes it slow."""
    popen_init = subprocess.Popen.__init__
    process_start = multiprocessing.process.BaseProcess.start
    message = f"{nodeid} starts a Python process: mark it @pytest.mark.slow (`make test-fast` leaves those out)"

    def checked_init(self, args, *rest, **kwargs):  # type: ignore[no-untyped-def]
        program = Path(str(args if isinstance(args, (str, bytes, os.PathLike)) else args[0]))
        if program.name.startswith(("python", "kdq-lab", "jupyter")) or str(program) == sys.executable:
            pytest.fail(message, pytrace=False)
        popen_init(self, args, *rest, **kwargs)

    def checked_start(self):  # type: ignore[no-untyped-def]
        pytest.fail(message, pytrace=False)

    subprocess.Popen.__init__ = checked_init  # type: ignore[method-assign]
    multiprocessing.process.BaseProcess.start = checked_start  # type: ignore[method-assign]
    try:
        yield
    finally:
        subprocess.Popen.__init__ = popen_init  # type: ignore[method-assign]
        multiprocessing.process.BaseProcess.start = process_start  # type: ignore[method-assign]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    if item.get_closest_marker("slow") is not None:
        yield
        return
    with no_python_process(item.nodeid):
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    if item.get_closest_marker("slow") is not None:
        yield
        return
    with no_python_process(item.nodeid):
        yield


def pytest_sessionstart(session: pytest.Session) -> None:
    _state["before"] = tree_state(WORKTREE)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    changes = tree_changes(_state["before"], tree_state(WORKTREE))  # type: ignore[arg-type]
    if changes:
        _state["changes"] = changes
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    changes = _state.get("changes")
    if changes:
        terminalreporter.section("the tests wrote into the work tree", red=True)
        for line in changes:  # type: ignore[attr-defined]
            terminalreporter.write_line(line)


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(str(_state["workspace"]), ignore_errors=True)
    if _state["previous"] is None:
        os.environ.pop(DATA_ENV, None)
    else:
        os.environ[DATA_ENV] = str(_state["previous"])


@pytest.fixture(scope="session")
def tiny_catalog(tmp_path_factory) -> Path:
    """A valid tiny KDQ catalog (read-only: copy it before changing files)."""
    return generate_catalog(tmp_path_factory.mktemp("catalog") / "kdq-tiny", scale="tiny", seed=7, progress=False)


@pytest.fixture
def catalog_copy(tiny_catalog, tmp_path) -> Path:
    """A writable copy of the tiny catalog."""
    return Path(shutil.copytree(tiny_catalog, tmp_path / "kdq-tiny"))


@pytest.fixture(scope="session")
def ml100k_source(tmp_path_factory) -> Path:
    """A folder in the exact MovieLens-100k format."""
    return write_ml100k(tmp_path_factory.mktemp("ml") / "ml-100k")


@pytest.fixture(scope="session")
def tiny_split(tiny_catalog, tmp_path_factory):
    """The tiny catalog split per-user temporally, with validation."""
    from kdq_lab.data.splits import SplitConfig
    from kdq_lab.data.store import load_split, prepare

    return load_split(prepare(tiny_catalog, SplitConfig(kind="user_temporal"), tmp_path_factory.mktemp("processed")))


@pytest.fixture(scope="session")
def small_catalog(tmp_path_factory) -> Path:
    return generate_catalog(tmp_path_factory.mktemp("catalog") / "kdq-small", scale="small", seed=7, progress=False)


@pytest.fixture(scope="session")
def smoke_report(tmp_path_factory) -> Path:
    """The smoke experiment (popularity, LightFM hybrid, oracle; two seeds) plus the exploration notebook, compared."""
    import yaml

    from kdq_lab.app.run import run_experiment

    experiment = yaml.safe_load((WORKTREE / "notebooks" / "experiments" / "smoke.yaml").read_text(encoding="utf-8"))
    experiment["notebooks"] = [{"notebook": "01_explore_catalog"}]
    folder = tmp_path_factory.mktemp("smoke")
    path = folder / "smoke.yaml"
    path.write_text(yaml.safe_dump(experiment, allow_unicode=True), encoding="utf-8")
    outcome = run_experiment(
        path,
        PlanOptions(out=folder / "report", jobs=2, only=["popularity", "lightfm_hybrid", "oracle"]),
        ExecOptions(progress=False, fresh=True),
    )  # fresh: every run executes here, never from the run cache other tests filled
    assert outcome.ok, outcome.failed
    return folder / "report"


@pytest.fixture(scope="session")
def tiny_parquet_catalog(tmp_path_factory) -> Path:
    """The tiny KDQ catalog stored as Parquet (as the large scale is), same content as ``tiny_catalog``."""
    return generate_catalog(
        tmp_path_factory.mktemp("catalog") / "kdq-tiny", scale="tiny", seed=7, progress=False, file_format="parquet"
    )


@pytest.fixture
def matplotlib_defaults():
    """matplotlib as a fresh process has it (restored afterwards): a figure function must set the lab's style."""
    import matplotlib

    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        yield
