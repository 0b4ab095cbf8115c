"""The snapshot behind the suite's work-tree check notices new, removed and changed files, and skips caches."""

from __future__ import annotations

import os

from worktree import tree_changes, tree_state


def test_snapshot_names_new_removed_and_changed_files(tmp_path):
    (tmp_path / "kept.txt").write_text("a", encoding="utf-8")
    (tmp_path / "gone.txt").write_text("b", encoding="utf-8")
    (tmp_path / "edited.txt").write_text("c", encoding="utf-8")
    before = tree_state(tmp_path)
    (tmp_path / "gone.txt").unlink()
    (tmp_path / "edited.txt").write_text("cc", encoding="utf-8")
    (tmp_path / "data" / "raw").mkdir(parents=True)
    (tmp_path / "data" / "raw" / "new.csv").write_text("x", encoding="utf-8")
    assert tree_changes(before, tree_state(tmp_path)) == [
        "new: data/raw/new.csv",
        "removed: gone.txt",
        "changed: edited.txt",
    ]


def test_same_size_rewrite_is_a_change(tmp_path):
    path = tmp_path / "same.txt"
    path.write_text("a", encoding="utf-8")
    before = tree_state(tmp_path)
    os.utime(path, ns=(1, 1))
    assert tree_changes(before, tree_state(tmp_path)) == ["changed: same.txt"]


def test_caches_and_environment_are_skipped(tmp_path):
    before = tree_state(tmp_path)
    for folder in ("__pycache__", ".pytest_cache", ".venv/lib", "kdq_lab.egg-info"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "f").write_text("x", encoding="utf-8")
    assert tree_changes(before, tree_state(tmp_path)) == []
