"""Atomic writes: complete or absent, never half-written; orphans of killed writers are cleaned."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from kdq_lab.files import atomic_dir, atomic_file, stable_hash


def test_atomic_dir_replaces_whole_or_not_at_all(tmp_path):
    target = tmp_path / "report"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_dir(target) as tmp:
        (tmp / "new.txt").write_text("new")
        assert (target / "old.txt").exists()
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "half.txt").write_text("half")
            raise RuntimeError("crash")
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert not list(tmp_path.glob(".report.*"))


def test_orphans_of_dead_writers_are_removed_but_live_ones_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = tmp_path / f".report.{int(dead.stdout)}.abc.tmp"
    live = tmp_path / f".report.{os.getpid()}.xyz.tmp"
    orphan.mkdir()
    live.mkdir()
    with atomic_dir(tmp_path / "report"):
        pass
    assert not orphan.exists() and live.exists()


def test_atomic_file_and_stable_hash(tmp_path):
    path = tmp_path / "a.json"
    with pytest.raises(ValueError):
        with atomic_file(path) as handle:
            handle.write("partial")
            raise ValueError
    assert not path.exists() and not list(tmp_path.iterdir())
    assert stable_hash({"a": 1, "b": [1, 2]}) == stable_hash({"b": [1, 2], "a": 1})


def test_written_files_get_the_umask_permissions_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_file(tmp_path / "a.txt") as handle:
            handle.write("x")
        with atomic_dir(tmp_path / "folder") as tmp:
            (tmp / "b.txt").write_text("y")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "folder").stat().st_mode & 0o777 == 0o755


@pytest.mark.parametrize("value", ["../x", "..", "a/b", "/etc", "", ".hidden", "a b", "x..y", "가나", "a" * 200, 3])
def test_unsafe_names_are_refused(value):
    from kdq_lab.errors import KdqError
    from kdq_lab.names import check_name, name_problem

    assert name_problem(value) is not None
    with pytest.raises(KdqError, match="split"):
        check_name(value, "split")


def test_safe_names_pass():
    from kdq_lab.names import check_name

    for value in ("kdq-default", "lightfm_hybrid-identity=true-normalize=l1", "ml-100k", "a.b", "0x"):
        assert check_name(value, "run") == value
