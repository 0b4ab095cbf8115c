"""Atomic writes and content hashes: nothing half-written is ever left behind.

Also what keeps the lab off folders it must not touch: the marker listing what the lab wrote
in a folder (only such a folder is replaced), copies of lab folders that never follow a link,
and outputs kept apart from the inputs of the same command.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import hashlib
import itertools
import json
import os
import re
import secrets
import shutil
import socket
import stat
import tempfile
import warnings
from collections.abc import Collection, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from kdq_lab.errors import KdqError


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes (streamed)."""
    with open(path, "rb") as handle:
        return _digest(handle, chunk)


def _digest(handle: BinaryIO, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
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


#: Hidden file in every folder :func:`atomic_dir` publishes: the list of what the lab wrote there.
MARKER = ".kdq-lab"
MARKER_FORMAT = 2
#: A marker larger than this is not the lab's (a report's lists a few hundred files: tens of KB).
MARKER_MAX_BYTES = 16 << 20
#: Offending entries an error names before it says "and more".
SHOWN = 5
_HOST = hashlib.sha256(socket.gethostname().encode("utf-8")).hexdigest()[:8]
#: What follows ``.<folder name>.`` in the name of a temporary sibling: tag, host, pid, random part.
_TEMP_NAME = re.compile(r"kdq-(?:tmp|old)-(?P<host>[0-9a-f]{8})-(?P<pid>[1-9][0-9]{0,9})-[0-9a-f]{8}")


class FolderInUseError(KdqError):
    """An output folder exists, is not empty, and holds something the lab did not write."""


class SkippedEntryWarning(UserWarning):
    """A symbolic link or special file was left out of a copy of a lab folder."""


def _kind(mode: int) -> str:
    """What a non-regular, non-folder entry is, in words."""
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a special file"


def _entries(folder: Path, skip: Collection[str] = ()) -> Iterator[tuple[str, os.stat_result]]:
    """Every entry under ``folder``: (relative POSIX path, its own ``lstat``), a folder before what it holds.

    Links are never followed. ``skip``: relative paths left out (a folder with everything under it).
    """
    pending = [""]
    while pending:
        relative = pending.pop()
        with os.scandir(folder / relative if relative else folder) as scan:
            children = sorted((entry.name, entry.stat(follow_symlinks=False)) for entry in scan)
        inner = []
        for name, info in children:
            path = f"{relative}/{name}" if relative else name
            if path in skip:
                continue
            yield path, info
            if stat.S_ISDIR(info.st_mode):
                inner.append(path)
        pending.extend(reversed(inner))


def lab_entries(folder: Path, skip: Collection[str] = ()) -> Iterator[tuple[str, bool]]:
    """The folders and regular files under ``folder`` as (relative POSIX path, is a folder), parents first.

    Symbolic links (to files or folders, inside or outside) and special files (FIFOs, sockets,
    devices) are skipped with a :class:`SkippedEntryWarning` naming them; nothing is read
    through them. ``skip``: relative paths left out silently.
    """
    for path, info in _entries(Path(folder), skip):
        if stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode):
            yield path, stat.S_ISDIR(info.st_mode)
        else:
            warn_skipped(Path(folder) / path, _kind(info.st_mode))


def warn_skipped(path: Path | str, what: str) -> None:
    """Warn that ``path`` (``what``: e.g. "a symbolic link") was left out of a copy of a lab folder."""
    message = f"{path}: {what}, not copied (the lab copies only folders and regular files)"
    warnings.warn(message, SkippedEntryWarning, stacklevel=3)


@contextlib.contextmanager
def open_regular(path: Path) -> Iterator[BinaryIO | None]:
    """``path`` opened for reading if it is a regular file; ``None`` for a link or a special file.

    The file is opened without following a link and without blocking on a FIFO, then checked
    on the open handle, so a file swapped for a link meanwhile is never read through.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a symbolic link
            yield None
            return
        raise
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            yield None
            return
        os.set_blocking(fd, True)
        yield handle


def copy_lab_file(src: Path, dst: Path) -> bool:
    """Copy the regular file ``src`` to ``dst`` (never writing through a link there); whether it was copied.

    A link or a special file at ``src`` is skipped with a :class:`SkippedEntryWarning`.
    """
    mode = os.lstat(src).st_mode
    if not stat.S_ISREG(mode):
        warn_skipped(src, _kind(mode))
        return False
    with open_regular(src) as source:
        if source is None:  # swapped for a link or a special file since
            warn_skipped(src, "no longer a regular file")
            return False
        try:
            fd = os.open(
                dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o666
            )
        except OSError as exc:
            raise naming(exc, Path(dst)) from exc
        with os.fdopen(fd, "wb") as target:
            shutil.copyfileobj(source, target, 1 << 20)
    return True


def copy_lab_folder(src: Path, dst: Path, skip: Collection[str] = ()) -> list[str]:
    """Copy the folders and regular files under ``src`` into ``dst`` (created if needed); the paths copied.

    Links are never followed: symbolic links (to files or folders, inside or outside ``src``)
    and special files (FIFOs, sockets, devices) are skipped with a :class:`SkippedEntryWarning`
    naming them. Files already in ``dst`` are overwritten, never through a link. ``skip``:
    relative paths (and everything under them) left out silently.
    """
    src, dst = Path(src), Path(dst)
    mode = os.lstat(src).st_mode
    if not stat.S_ISDIR(mode):  # the folder itself is a link (or no folder): nothing is read through it
        warn_skipped(src, "not a folder" if stat.S_ISREG(mode) else _kind(mode))
        return []
    dst.mkdir(parents=True, exist_ok=True)
    copied = []
    for path, is_folder in lab_entries(src, skip):
        if is_folder:
            (dst / path).mkdir(exist_ok=True)
            copied.append(path)
        elif copy_lab_file(src / path, dst / path):
            copied.append(path)
    return copied


def _hash_regular(path: Path) -> str | None:
    """SHA-256 of a regular file, streamed; ``None`` if it is not one (never read through a link)."""
    with open_regular(path) as handle:
        return None if handle is None else _digest(handle)


def _read_marker(folder: Path) -> dict[str, Any] | None:
    """The folder's marker if it is a regular file holding a format-2 listing, else ``None``."""
    path = Path(folder) / MARKER
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None
        with open_regular(path) as handle:
            text = handle.read(MARKER_MAX_BYTES + 1) if handle is not None else b""
        data = json.loads(text.decode("utf-8")) if 0 < len(text) <= MARKER_MAX_BYTES else None
    except (OSError, ValueError):
        return None
    valid = (
        isinstance(data, dict)
        and data.get("format") == MARKER_FORMAT
        and isinstance(data.get("token"), str)
        and isinstance(data.get("files"), dict)
        and all(
            isinstance(entry, dict) and isinstance(entry.get("size"), int) and isinstance(entry.get("sha256"), str)
            for entry in data["files"].values()
        )
        and all(
            isinstance(data.get(key), list) and all(isinstance(p, str) for p in data[key])
            for key in ("mutable", "folders")
        )
    )
    return data if valid else None


def _implied_folders(paths: Iterable[str]) -> set[str]:
    """Every folder above the given relative paths."""
    return {"/".join(parts[:i]) for parts in (p.split("/") for p in paths) for i in range(1, len(parts))}


def foreign_entries(folder: Path, limit: int = SHOWN) -> list[str]:
    """Why ``folder`` is not provably the lab's: up to ``limit`` offending paths with the reason (none: it is).

    A folder is the lab's when it is empty, or when its :data:`MARKER` is a regular file
    listing, in format 2, every entry under it: each regular file with the same size and
    SHA-256 (files listed as *mutable* only need to be regular files), each folder (or a
    file under it). An unlisted or changed file, a symbolic link, a special file, a missing,
    linked, empty, text or old-format marker: all make it foreign.
    """
    folder = Path(folder)
    entries = [(path, info) for path, info in _entries(folder) if path != MARKER]
    marker = _read_marker(folder)
    if marker is None:
        if not entries and not os.path.lexists(folder / MARKER):
            return []
        problem = "missing" if not os.path.lexists(folder / MARKER) else "not a list of what the lab wrote (format 2)"
        if os.path.islink(folder / MARKER):
            problem = "a symbolic link"
        unlisted = [f"{path}: not on the marker's list" for path, _ in entries[: limit - 1]]
        return [f"{MARKER}: {problem}", *unlisted]
    files, mutable = marker["files"], set(marker["mutable"])
    folders = set(marker["folders"]) | _implied_folders([*files, *mutable])
    problems, to_hash = [], []
    for path, info in entries:
        if stat.S_ISDIR(info.st_mode):
            if path not in folders:
                problems.append(f"{path}/: a folder not on the marker's list")
        elif not stat.S_ISREG(info.st_mode):
            problems.append(f"{path}: {_kind(info.st_mode)}")
        elif path in mutable:
            continue
        elif path not in files:
            problems.append(f"{path}: not on the marker's list")
        elif files[path]["size"] != info.st_size:
            problems.append(f"{path}: changed since kdq-lab wrote it")
        else:
            to_hash.append(path)
    for path in to_hash:
        if len(problems) >= limit:
            break
        if _hash_regular(folder / path) != files[path]["sha256"]:
            problems.append(f"{path}: changed since kdq-lab wrote it")
    return problems[:limit]


def made_by_lab(folder: Path) -> bool:
    """Whether ``folder`` is a real folder (not a link) that the lab provably wrote (see :func:`foreign_entries`)."""
    folder = Path(folder)
    real = folder.is_dir() and not folder.is_symlink()
    return real and _read_marker(folder) is not None and not foreign_entries(folder, 1)


def check_replaceable(path: Path, force: bool = False) -> None:
    """Raise :class:`FolderInUseError` unless ``path`` is absent, empty, provably the lab's, or ``force`` is set."""
    path = Path(path)
    if force or not os.path.lexists(path):
        return
    if path.is_symlink() or not path.is_dir():
        what = "a symbolic link" if path.is_symlink() else "not a folder"
        problems = [f"{path} already exists and is {what}; the lab replaces only folders it made."]
    else:
        offending = foreign_entries(path, SHOWN + 1)
        if not offending:
            return
        problems = [
            f"{path} already exists and holds what kdq-lab did not make: the lab replaces a folder only when "
            f"its {MARKER} marker lists everything in it, unchanged. First offending entries:",
            *(f"  {entry}" for entry in offending[:SHOWN]),
            *(["  ... and more"] if len(offending) > SHOWN else []),
        ]
    raise FolderInUseError(
        "\n".join(problems) + "\nChoose another output folder, move it (or the entries named) away, or pass "
        "--force (force=True) to replace it, deleting everything in it. A folder written by an older kdq-lab "
        "(before the marker listed its files) needs --force once."
    )


def _relative(folder: Path, path: Path | str) -> str:
    """``path`` (absolute under ``folder``, or relative to it) as a relative POSIX path inside ``folder``."""
    relative = Path(path).relative_to(folder) if Path(path).is_absolute() else Path(path)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise ValueError(f"{path} is not inside {folder}")
    return relative.as_posix()


def record_in_marker(folder: Path, paths: Iterable[Path | str], mutable: bool = False) -> None:
    """Add what the lab wrote at ``paths`` (files or folders inside ``folder``) to ``folder``'s marker.

    Every lab writer that adds to a published lab folder calls this, so the folder stays
    replaceable. A folder path records everything under it (and forgets what it listed there
    before); a file records its size and SHA-256. ``mutable``: files the lab keeps changing
    (a study database and its journal): present or not, only required to be regular files.
    A folder without a format-2 marker gets a new one listing only ``paths``: the caller must
    have checked the folder (:func:`check_replaceable`) or been forced. Links and special
    files are never listed.
    """
    folder = Path(folder)
    fresh: dict[str, Any] = {"format": MARKER_FORMAT, "written_by": "kdq-lab", "token": secrets.token_hex(16)}
    recorded = _read_marker(folder)
    marker = copy.deepcopy(recorded) or fresh | {"files": {}, "mutable": [], "folders": []}
    files: dict[str, dict[str, Any]] = marker["files"]
    changing, folders = set(marker["mutable"]), set(marker["folders"])
    for item in paths:
        relative = _relative(folder, item)
        if mutable:
            changing.add(relative)
            files.pop(relative, None)
            continue
        under = relative + "/"
        files = {p: entry for p, entry in files.items() if p != relative and not p.startswith(under)}
        folders = {p for p in folders if p != relative and not p.startswith(under)}
        info = os.lstat(folder / relative)
        found = [(relative, info)]
        if stat.S_ISDIR(info.st_mode):
            found += [(f"{relative}/{p}", i) for p, i in _entries(folder / relative)]
        for path, entry in found:
            if stat.S_ISDIR(entry.st_mode):
                folders.add(path)
            elif stat.S_ISREG(entry.st_mode) and path not in changing and path != MARKER:
                digest = _hash_regular(folder / path)
                if digest is not None:
                    files[path] = {"size": entry.st_size, "sha256": digest}
    marker["files"] = dict(sorted(files.items()))
    marker["mutable"] = sorted(changing)
    marker["folders"] = sorted(folders - _implied_folders([*files, *changing]))
    if marker == recorded:  # nothing new: the folder is not written (its disk may be full)
        return
    with atomic_file(folder / MARKER) as handle:
        handle.write(to_json(marker))


def adopt(folder: Path, allowed: Collection[str], limit: int = SHOWN) -> list[str]:
    """Make sure ``folder`` is provably the lab's, recording an older lab version's folder; what stands in the way.

    A folder with a format-2 marker is judged by it (:func:`foreign_entries`). One without
    (written before the marker listed files, for a kind of folder whose content is known
    exactly, e.g. a generated catalog) is recorded in a new marker when every entry is a
    folder or a regular file whose relative path is in ``allowed`` (an old marker included).
    Returns up to ``limit`` offending entries; none: the folder is now provably the lab's.
    """
    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir():
        return [f"{folder}: {'a symbolic link' if folder.is_symlink() else 'not a folder'}"]
    if _read_marker(folder) is not None:
        return foreign_entries(folder, limit)
    entries = list(_entries(folder))
    offending = [
        f"{path}: {'not a file this kind of folder holds' if path not in allowed else _kind(info.st_mode)}"
        for path, info in entries
        if path not in allowed or not (stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode))
    ]
    if not offending:
        record_in_marker(folder, [path for path, _ in entries if "/" not in path and path != MARKER])
    return offending[:limit]


def _resolved(path: Path) -> Path:
    """``path`` with every symbolic link resolved; a link loop is refused, naming it."""
    try:
        return path.resolve()
    except (RuntimeError, OSError) as exc:  # Python raises RuntimeError for a loop
        raise KdqError(f"{path}: cannot be resolved ({exc}); a symbolic link loop?") from None


def check_apart(output: Path, inputs: Mapping[str, Path | None]) -> None:
    """Refuse an output folder that is, contains or lies inside one of ``inputs`` (label -> path).

    Paths are compared resolved (symbolic links followed), in both directions; ``None``
    inputs are ignored. The error names the input, so the user knows what would be replaced.
    """
    out = _resolved(Path(output))
    for label, given in inputs.items():
        if given is None:
            continue
        source = _resolved(Path(given))
        if out == source:
            relation = "is"
        elif out.is_relative_to(source):
            relation = "lies inside"
        elif source.is_relative_to(out):
            relation = "contains"
        else:
            continue
        where = f"{given}" + (f" (resolved: {source})" if str(source) != str(given) else "")
        raise KdqError(
            f"the output folder {output} {relation} {label}, {where}; writing there could replace or change it. "
            "Choose an output folder apart from every input of this command: none of them, holding none, "
            "inside none"
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

    ``path`` may be replaced only if it is absent, empty or provably the lab's (see
    :func:`check_replaceable`); ``force`` replaces any folder. When the block ends, the
    :data:`MARKER` is written, listing every folder and regular file in it with its size and
    SHA-256 (files recorded as mutable inside the block stay so). If the block raises (or the
    process is killed), ``path`` keeps its previous content; the temporary folder is removed,
    or, after a kill, left as a hidden sibling that the next writer of ``path`` on this host
    removes once its process is gone.
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
        yield tmp
        record_in_marker(tmp, [p for p in tmp.iterdir() if p.name != MARKER])
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
