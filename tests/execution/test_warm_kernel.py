"""A worker's kept kernel: every notebook still starts from an empty namespace, in its own folder, and in its job's
environment, while the process executing it keeps its own environment and streams."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest

from kdq_lab.config import Paths
from kdq_lab.execution import notebooks
from kdq_lab.execution.notebooks import Job, execute, run_pool

pytestmark = pytest.mark.slow  # every test executes notebooks with papermill


def _notebook(path: Path, *sources: str) -> Path:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in sources])
    notebook.metadata["kernelspec"] = {"name": "kdq-lab", "display_name": "kdq-lab", "language": "python"}
    nbformat.write(notebook, path)
    return path


def _job(tmp_path: Path, name: str, notebook: Path) -> Job:
    cwd = tmp_path / name
    cwd.mkdir()
    return Job("notebook", name, notebook, tmp_path / "out" / f"{name}.ipynb", {}, 1, cwd)


def test_a_kept_kernel_starts_each_notebook_clean_and_is_replaced_after_a_failure(tmp_path):
    leave = _notebook(
        tmp_path / "leave.ipynb",
        "import os\nimport matplotlib.pyplot as plt\nLEFT_BEHIND = 1\nplt.figure()\n"
        "open('pid.txt', 'w').write(str(os.getpid()))",
    )
    find = _notebook(
        tmp_path / "find.ipynb",
        "import os\nassert 'LEFT_BEHIND' not in globals(), 'namespace leaked'\n"
        "import matplotlib.pyplot as plt\nassert plt.get_fignums() == [], 'figure leaked'\n"
        "open('pid.txt', 'w').write(str(os.getpid()))",
    )
    fail = _notebook(tmp_path / "fail.ipynb", "raise ValueError('on purpose')")
    jobs = [
        _job(tmp_path, "first", leave),
        _job(tmp_path, "second", find),
        _job(tmp_path, "third", fail),
        _job(tmp_path, "fourth", find),
    ]
    results = run_pool(jobs, workers=1, progress=False, label="warm")
    assert [r["status"] for r in results] == ["ok", "ok", "failed", "ok"], results
    assert "on purpose" in results[2]["error"]
    pids = {name: (tmp_path / name / "pid.txt").read_text() for name in ("first", "second", "fourth")}
    assert pids["first"] == pids["second"], "the kernel was not kept between notebooks"
    assert pids["fourth"] != pids["second"], "a kernel that ran a failing notebook was kept"
    assert all((tmp_path / "out" / f"{name}.html").is_file() for name in ("first", "second", "fourth"))


def _state() -> tuple[dict[str, str], object, object, tuple[int, int, int], tuple[int, int, int]]:
    """This process's environment, text streams and the files its descriptors 1 and 2 point at."""
    return dict(os.environ), sys.stdout, sys.stderr, _target(1), _target(2)


def _target(fd: int) -> tuple[int, int, int]:
    info = os.fstat(fd)
    return info.st_dev, info.st_ino, info.st_rdev


ENV_NOTEBOOK = (
    "import json, os\n"
    "names = ['OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'KDQ_LAB_DATA', 'KDQ_LAB_ROOT']\n"
    "json.dump({n: os.environ.get(n) for n in names} | {'pid': os.getpid()}, open('env.json', 'w'))"
)


@pytest.mark.parametrize("warm", [True, False], ids=["kept-kernel", "own-kernel"])
def test_the_kernel_gets_the_job_s_environment_and_this_process_keeps_its_own(tmp_path, warm):
    notebook = _notebook(tmp_path / "env.ipynb", ENV_NOTEBOOK)
    before = _state()
    paths = Paths(tmp_path / "root", tmp_path / "home")
    jobs = [
        replace(_job(tmp_path, name, notebook), threads=threads, env=paths.environment())
        for name, threads in (("one", 3), ("two", 3), ("three", 5))
    ]
    try:
        results = [execute(job, warm=warm) for job in jobs]
    finally:
        notebooks._KERNEL.stop()
    assert [r["status"] for r in results] == ["ok"] * 3, results
    assert _state() == before, "executing changed this process's environment or streams"
    seen = {job.key: json.loads((job.cwd / "env.json").read_text()) for job in jobs}
    for job in jobs:
        assert seen[job.key]["OMP_NUM_THREADS"] == seen[job.key]["OPENBLAS_NUM_THREADS"] == str(job.threads)
        assert (seen[job.key]["KDQ_LAB_ROOT"], seen[job.key]["KDQ_LAB_DATA"]) == (str(paths.root), str(paths.home))
    assert (seen["one"]["pid"] == seen["two"]["pid"]) == warm, "a kept kernel serves the same environment again"
    assert seen["three"]["pid"] != seen["two"]["pid"], "another environment needs another kernel"


def test_a_failing_notebook_leaves_this_process_as_it_was(tmp_path):
    before = _state()
    job = _job(tmp_path, "fails", _notebook(tmp_path / "fail.ipynb", "raise ValueError('on purpose')"))
    try:
        result = execute(replace(job, env={"KDQ_LAB_DATA": str(tmp_path)}))
    finally:
        notebooks._KERNEL.stop()
    assert result["status"] == "failed" and _state() == before
