"""A worker's kept kernel: every notebook still starts from an empty namespace, in its own folder."""

from __future__ import annotations

from pathlib import Path

import nbformat

from kdq_lab.execution.notebooks import Job, run_pool


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
