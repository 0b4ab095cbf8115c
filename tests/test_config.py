"""Where the lab reads and writes: notebooks from the project root, data and reports from the workspace."""

from __future__ import annotations

from pathlib import Path

from kdq_lab.config import DATA_ENV, Paths, find_root


def test_workspace_holds_data_and_reports_the_root_holds_notebooks(tmp_path):
    paths = Paths(Path("/project"), tmp_path)
    assert paths.raw == tmp_path / "data" / "raw" and paths.processed == tmp_path / "data" / "processed"
    assert paths.reports == tmp_path / "reports"
    assert paths.notebooks == Path("/project/notebooks") and paths.experiments == Path("/project/notebooks/experiments")
    assert Paths(Path("/project")).reports == Path("/project/reports"), "without a workspace, the root"


def test_the_environment_variable_sets_the_workspace(monkeypatch, tmp_path):
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    paths = Paths.default()
    assert paths.home == tmp_path.resolve() and paths.root == find_root()
    monkeypatch.delenv(DATA_ENV)
    assert Paths.default().home == find_root()


def test_the_suite_runs_in_a_temporary_workspace():
    paths = Paths.default()
    assert paths.home != paths.root and not paths.home.is_relative_to(paths.root)
