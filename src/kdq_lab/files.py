"""Atomic writes and content hashes: nothing half-written is ever left behind."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import itertools
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def stable_hash(obj: Any, length: int = 10) -> str:
    """Short hash of a JSON-serialisable object, independent of key order."""
    text = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def to_json(obj: Any) -> str:
    """Deterministic, human-readable JSON (UTF-8 Hangul kept as is)."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, indent=2, default=str) + "\n"


@contextlib.contextmanager
def atomic_file(path: Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[Any]:
    """Open a temporary sibling of ``path`` for writing; rename it over ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; reports are shared and served
    try:
        with open(tmp, mode, encoding=None if "b" in mode else encoding) as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def current_umask() -> int:
    """The process umask (read by setting and restoring it)."""
    umask = os.umask(0)
    os.umask(umask)
    return umask


def write_json(path: Path, obj: Any) -> None:
    """Atomically write ``obj`` as deterministic JSON."""
    with atomic_file(path) as handle:
        handle.write(to_json(obj))


@contextlib.contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces ``path`` whole.

    If the block raises (or the process is killed), ``path`` keeps its previous
    content; the temporary folder is removed, or, after a kill, left as a hidden
    ``.tmp`` sibling that the next writer of ``path`` removes.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphans(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~current_umask())
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    # Directories cannot be swapped atomically: move the old one aside, then rename. If another
    # writer puts its folder in place in between, move that aside too (the last writer wins).
    for attempt in itertools.count():
        old = path.parent / f".{path.name}.{os.getpid()}.old{attempt}.tmp"
        if path.exists():
            os.replace(path, old)
        try:
            os.replace(tmp, path)
            break
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST) or attempt >= 10:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
    for stale in path.parent.glob(f".{path.name}.{os.getpid()}.old*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_orphans(path: Path) -> None:
    """Remove temporary siblings of ``path`` left by killed processes."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        match = re.match(rf"\.{re.escape(path.name)}\.(\d+)\.", stale.name)
        if match and not _pid_alive(int(match.group(1))):
            shutil.rmtree(stale, ignore_errors=True)
