"""Atomic writes and content hashes: nothing half-written is ever left behind."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import itertools
import json
import os
import re
import secrets
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kdq_lab.errors import KdqError


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
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise naming(exc, path) from exc
    os.close(fd)
    os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; reports are shared and served
    try:
        with open(tmp, mode, encoding=None if "b" in mode else encoding) as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename is None:
            raise naming(exc, path) from exc
        raise


def naming(exc: OSError, path: Path) -> OSError:
    """An error like ``exc`` (same class and cause) that names ``path``: the output the user asked for."""
    return OSError(exc.errno, exc.strerror or str(exc), str(path))


def current_umask() -> int:
    """The process umask (read by setting and restoring it)."""
    umask = os.umask(0)
    os.umask(umask)
    return umask


def write_json(path: Path, obj: Any) -> None:
    """Atomically write ``obj`` as deterministic JSON."""
    with atomic_file(path) as handle:
        handle.write(to_json(obj))


#: Hidden file in every folder :func:`atomic_dir` writes: the lab may replace such a folder whole.
MARKER = ".kdq-lab"
MARKER_TEXT = "This folder was written by kdq-lab, which may replace it whole. Do not keep other files here.\n"
#: Folders written before the marker existed, recognised by a JSON file the lab writes there and its keys.
LEGACY_SIGNATURES: tuple[tuple[str, frozenset[str]], ...] = (
    ("manifest.json", frozenset({"split_id", "raw_hashes", "split"})),  # a prepared split (data/store.py)
    ("manifest.json", frozenset({"experiment", "steps", "resolved"})),  # an experiment report (runner)
    ("ground_truth/params.json", frozenset({"generator_version", "seed"})),  # a generated KDQ catalog
    ("model.json", frozenset({"format", "kind", "item_ids", "config"})),  # a saved model
    ("summary.json", frozenset({"run", "split_id", "metrics"})),  # `kdq-lab train`'s run folder
)
_HOST = hashlib.sha256(socket.gethostname().encode("utf-8")).hexdigest()[:8]
#: What follows ``.<folder name>.`` in the name of a temporary sibling: tag, host, pid, random part.
_TEMP_NAME = re.compile(r"kdq-(?:tmp|old)-(?P<host>[0-9a-f]{8})-(?P<pid>[1-9][0-9]{0,9})-[0-9a-f]{8}")


class FolderInUseError(KdqError):
    """An output folder exists, is not empty, and was not made by the lab."""


def made_by_lab(folder: Path) -> bool:
    """Whether ``folder`` carries the lab's marker, or is lab output from before the marker existed."""
    folder = Path(folder)
    return (folder / MARKER).is_file() or any(keys <= _json_keys(folder / name) for name, keys in LEGACY_SIGNATURES)


def _json_keys(path: Path) -> set[str]:
    """Top-level keys of a JSON object file (empty if absent or not such a file)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    return set(data) if isinstance(data, dict) else set()


def check_replaceable(path: Path, force: bool = False) -> None:
    """Raise :class:`FolderInUseError` unless ``path`` is absent, empty, made by the lab, or ``force`` is set."""
    path = Path(path)
    if force or not (path.exists() or path.is_symlink()):
        return
    if path.is_dir() and (not any(path.iterdir()) or made_by_lab(path)):
        return
    what = f"a folder that kdq-lab did not make (no {MARKER} marker inside)" if path.is_dir() else "not a folder"
    raise FolderInUseError(
        f"{path} already exists and is {what}; the lab replaces only folders it made. "
        f"Choose another output folder, move this one away, or pass --force (force=True) to replace it, "
        f"deleting everything in it"
    )


def _temp_sibling(path: Path, kind: str) -> Path:
    return path.parent / f".{path.name}.kdq-{kind}-{_HOST}-{os.getpid()}-{secrets.token_hex(4)}"


def temp_owner(path: Path, sibling: Path) -> tuple[str, int] | None:
    """(host tag, pid) of a temporary sibling of ``path`` made by :func:`atomic_dir`, else ``None``.

    The name must be exactly ``.<name>.kdq-tmp-<host>-<pid>-<random>`` (or ``kdq-old``): the
    prefix is matched literally and the rest in full, so other folders' names never parse.
    """
    prefix = f".{path.name}."
    match = _TEMP_NAME.fullmatch(sibling.name[len(prefix) :]) if sibling.name.startswith(prefix) else None
    return (match["host"], int(match["pid"])) if match else None


@contextlib.contextmanager
def atomic_dir(path: Path, force: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces ``path`` whole.

    ``path`` may be replaced only if it is absent, empty or made by the lab (see
    :func:`check_replaceable`); ``force`` replaces any folder. The new folder carries the
    :data:`MARKER`. If the block raises (or the process is killed), ``path`` keeps its previous
    content; the temporary folder is removed, or, after a kill, left as a hidden sibling that
    the next writer of ``path`` on this host removes once its process is gone.
    """
    path = Path(path)
    check_replaceable(path, force)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphans(path)
    tmp = _temp_sibling(path, "tmp")
    try:
        tmp.mkdir()  # mode 0777 minus the umask
    except OSError as exc:
        raise naming(exc, path) from exc
    try:
        (tmp / MARKER).write_text(MARKER_TEXT, encoding="utf-8")
        yield tmp
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and exc.filename is None:
            raise naming(exc, path) from exc
        raise
    _swap(tmp, path, force)


def _swap(tmp: Path, path: Path, force: bool) -> None:
    """Move ``path`` aside and rename ``tmp`` into place; on failure put the previous content back.

    Directories cannot be swapped atomically. If another writer puts its folder in place in
    between, that one is moved aside too (the last writer wins). What appeared at ``path``
    meanwhile is checked again, so a folder the lab did not make is never replaced unforced.
    """
    aside: list[Path] = []
    try:
        for attempt in itertools.count():
            check_replaceable(path, force)
            if path.exists() or path.is_symlink():
                aside.append(_temp_sibling(path, "old"))
                os.replace(path, aside[-1])
            try:
                os.replace(tmp, path)
                break
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST) or attempt >= 10:
                    raise
    except BaseException:
        if aside and not (path.exists() or path.is_symlink()):
            previous = aside.pop(0)  # put back, or at worst kept under its hidden name
            with contextlib.suppress(OSError):
                os.replace(previous, path)
        for stale in (tmp, *aside):
            _remove(stale)
        raise
    for stale in aside:
        _remove(stale)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def _remove_orphans(path: Path) -> None:
    """Remove temporary siblings of ``path`` left by killed processes of this host.

    Only names that parse exactly (:func:`temp_owner`) are considered, and a sibling is kept
    when its owner may still be running: another host, or a pid that is alive (or reused).
    """
    for sibling in path.parent.iterdir():
        owner = temp_owner(path, sibling)
        if owner and owner[0] == _HOST and not _pid_alive(owner[1]) and not sibling.is_symlink():
            _remove(sibling)
