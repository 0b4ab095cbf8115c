"""A snapshot of the work tree's files, to prove the test suite leaves it as it found it."""

from __future__ import annotations

import os
from pathlib import Path

#: Folders Python, pytest and the tools write by themselves, and the environment.
SKIPPED = frozenset({".git", ".venv", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"})


def tree_state(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` (skipped folders and ``*.egg-info`` aside) → (size, modification time in ns)."""
    state = {}
    for folder, folders, files in os.walk(root):
        folders[:] = [f for f in folders if f not in SKIPPED and not f.endswith(".egg-info")]
        for name in files:
            path = Path(folder, name)
            if name == ".git":
                continue
            stat = path.lstat()
            state[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns)
    return state


def tree_changes(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> list[str]:
    """Lines naming each file that appeared, vanished or changed between two snapshots."""
    lines = [f"new: {p}" for p in sorted(after.keys() - before.keys())]
    lines += [f"removed: {p}" for p in sorted(before.keys() - after.keys())]
    lines += [f"changed: {p}" for p in sorted(before.keys() & after.keys()) if before[p] != after[p]]
    return lines
