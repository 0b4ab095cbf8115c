"""Links and special files planted in a lab folder: what no copy of it may follow or read."""

from __future__ import annotations

import os
from pathlib import Path

import kdq_lab

SOURCE = Path(kdq_lab.__file__).parent


def plant_links(folder: Path, outside: Path) -> list[str]:
    """Plant, in ``folder``, a link to the file ``outside``, a link to the lab's source tree, a link loop, a link
    to a file inside and a FIFO; return their relative names."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "passwd").symlink_to(outside)
    (folder / "source").symlink_to(SOURCE, target_is_directory=True)
    (folder / "loop-a").symlink_to(folder / "loop-b")
    (folder / "loop-b").symlink_to(folder / "loop-a")
    inside = next((p for p in sorted(folder.iterdir()) if p.is_file() and not p.is_symlink()), None)
    planted = ["passwd", "source", "loop-a", "loop-b"]
    if inside is not None:
        (folder / "inside-link").symlink_to(inside)
        planted.append("inside-link")
    os.mkfifo(folder / "pipe")
    return [*planted, "pipe"]


def outside_file(tmp_path: Path) -> Path:
    """A file no lab folder holds (a stand-in for /etc/passwd)."""
    path = tmp_path / "etc-passwd"
    path.write_text("root:x:0:0:root:/root:/bin/bash\n", encoding="utf-8")
    return path


def regular_tree(folder: Path) -> list[str]:
    """Every entry under ``folder``, sorted, and fails if any of them is a link or a special file."""
    entries = sorted(folder.rglob("*"))
    assert all(p.is_dir() or p.is_file() for p in entries) and not any(p.is_symlink() for p in entries)
    return [p.relative_to(folder).as_posix() for p in entries]
