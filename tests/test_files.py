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
