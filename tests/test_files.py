"""Atomic writes, the marker that lists what the lab wrote, copies that never follow links; orphans are cleaned."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import pytest

from kdq_lab import files
from kdq_lab.errors import KdqError
from kdq_lab.files import (
    MARKER,
    FolderInUseError,
    atomic_dir,
    atomic_file,
    check_apart,
    check_replaceable,
    made_by_lab,
    record_in_marker,
    stable_hash,
    temp_owner,
)


def test_atomic_dir_replaces_whole_or_not_at_all(tmp_path):
    target = tmp_path / "report"
    with atomic_dir(target) as tmp:
        (tmp / "old.txt").write_text("old")
    with atomic_dir(target) as tmp:
        (tmp / "new.txt").write_text("new")
        assert (target / "old.txt").exists()
    assert sorted(p.name for p in target.iterdir()) == [MARKER, "new.txt"]
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("crash")
    assert sorted(p.name for p in target.iterdir()) == [MARKER, "new.txt"]
    assert not list(tmp_path.glob(".report.*"))


def _user_folder(path: Path, kind: str) -> dict[str, bytes]:
    """Make something at ``path`` that the lab did not make; return what must survive."""
    if kind == "file":
        path.write_text("my notes")
        return {path.name: path.read_bytes()}
    target = path
    if kind == "symlink":
        target = path.parent / "real"
        path.symlink_to(target, target_is_directory=True)
    target.mkdir()
    name = {"hidden": ".env", "subfolder": "photos/cat.jpg", "web-manifest": "manifest.json"}.get(kind, "thesis.tex")
    (target / name).parent.mkdir(exist_ok=True)
    (target / name).write_text('{"name": "my app", "icons": []}' if kind == "web-manifest" else "years of work")
    return {str(p.relative_to(target)): p.read_bytes() for p in target.rglob("*") if p.is_file()}


def _content(path: Path) -> dict[str, bytes]:
    if path.is_file():
        return {path.name: path.read_bytes()}
    base = path.resolve()
    return {str(p.relative_to(base)): p.read_bytes() for p in base.rglob("*") if p.is_file()}


@pytest.mark.parametrize("kind", ["plain", "hidden", "subfolder", "web-manifest", "file", "symlink"])
def test_a_folder_the_lab_did_not_make_is_never_replaced_unforced(kind, tmp_path):
    target = tmp_path / "out"
    before = _user_folder(target, kind)
    with pytest.raises(FolderInUseError) as caught, atomic_dir(target) as tmp:
        (tmp / "new.txt").write_text("new")
    assert str(target) in str(caught.value) and "--force" in str(caught.value)
    assert _content(target) == before
    assert not list(tmp_path.glob(".out.*"))
    with atomic_dir(target, force=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert target.is_dir() and not target.is_symlink()
    assert sorted(p.name for p in target.iterdir()) == [MARKER, "new.txt"]
    assert not list(tmp_path.glob(".out.*"))


def test_an_empty_folder_may_be_replaced(tmp_path):
    (tmp_path / "out").mkdir()
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "a.txt").write_text("a")
    assert (tmp_path / "out" / "a.txt").is_file()


def test_a_foreign_folder_appearing_during_the_work_is_not_replaced(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(FolderInUseError), atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("a")
        target.mkdir()
        (target / "mine.txt").write_text("mine")
    assert [p.name for p in target.iterdir()] == ["mine.txt"] and not list(tmp_path.glob(".out.*"))


def _lab_folder(path: Path) -> Path:
    """A folder the lab published: two files, a subfolder and an empty folder."""
    with atomic_dir(path) as tmp:
        (tmp / "index.html").write_text("<p>report</p>")
        (tmp / "runs" / "a").mkdir(parents=True)
        (tmp / "runs" / "a" / "summary.json").write_text("{}")
        (tmp / "figures").mkdir()
    return path


def test_the_marker_lists_every_file_with_its_size_and_hash(tmp_path):
    target = _lab_folder(tmp_path / "out")
    marker = json.loads((target / MARKER).read_text())
    assert marker["format"] == 2 and len(marker["token"]) == 32
    assert marker["files"] == {
        "index.html": {"size": 13, "sha256": hashlib.sha256(b"<p>report</p>").hexdigest()},
        "runs/a/summary.json": {"size": 2, "sha256": hashlib.sha256(b"{}").hexdigest()},
    }
    assert marker["folders"] == ["figures"], "an empty folder is listed; the others are implied by their files"
    assert made_by_lab(target)
    check_replaceable(target)
    other = json.loads((_lab_folder(tmp_path / "other") / MARKER).read_text())
    assert other["token"] != marker["token"], "a random token per publication"


def _plant(target: Path, kind: str) -> str:
    """Change a lab folder as someone else might; return the path the error must name."""
    if kind == "unlisted file":
        (target / "thesis.tex").write_text("years of work")
        return "thesis.tex"
    if kind == "unlisted file in a subfolder":
        (target / "runs" / "a" / "notes.md").write_text("mine")
        return "runs/a/notes.md"
    if kind == "unlisted empty folder":
        (target / "photos").mkdir()
        return "photos/"
    if kind == "changed file, same size":
        (target / "index.html").write_text("<p>thesis</p>")
        return "index.html"
    if kind == "changed file, other size":
        (target / "runs" / "a" / "summary.json").write_text('{"mine": 1}')
        return "runs/a/summary.json"
    if kind == "listed file replaced by a link":
        (target / "index.html").unlink()
        (target / "index.html").symlink_to(tmp_outside(target))
        return "index.html"
    if kind == "link to a folder":
        (target / "src").symlink_to(Path(__file__).parent, target_is_directory=True)
        return "src"
    if kind == "fifo":
        os.mkfifo(target / "pipe")
        return "pipe"
    raise AssertionError(kind)


def tmp_outside(target: Path) -> Path:
    outside = target.parent / "outside.txt"
    outside.write_text("<p>report</p>")  # same bytes as the listed file: a link is refused all the same
    return outside


PLANTS = [
    "unlisted file",
    "unlisted file in a subfolder",
    "unlisted empty folder",
    "changed file, same size",
    "changed file, other size",
    "listed file replaced by a link",
    "link to a folder",
    "fifo",
]


@pytest.mark.parametrize("kind", PLANTS)
def test_a_lab_folder_holding_anything_not_on_its_list_is_refused(kind, tmp_path):
    target = _lab_folder(tmp_path / "out")
    offending = _plant(target, kind)
    before = sorted(p.relative_to(target).as_posix() for p in target.rglob("*"))
    assert not made_by_lab(target)
    with pytest.raises(FolderInUseError) as caught, atomic_dir(target) as tmp:
        (tmp / "new.txt").write_text("new")
    message = str(caught.value)
    assert str(target) in message and offending in message and "--force" in message
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*")) == before
    with atomic_dir(target, force=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == [MARKER, "new.txt"]


def _old_marker(target: Path, kind: str) -> None:
    """What older labs (or someone else) left as the marker."""
    marker = target / MARKER
    if kind == "empty file":
        marker.write_text("")
    elif kind == "text marker of older labs":
        marker.write_text("This folder was written by kdq-lab, which may replace it whole.\n")
    elif kind == "symlink to a real marker":
        real = _lab_folder(target.parent / "real") / MARKER
        marker.symlink_to(real)
    elif kind == "other format":
        marker.write_text(json.dumps({"format": 1, "token": "x", "files": {}, "mutable": [], "folders": []}))
    elif kind == "json listing nothing usable":
        marker.write_text(json.dumps({"format": 2, "token": "x", "files": {"thesis.tex": "anything"}}))
    elif kind == "a folder":
        marker.mkdir()
    elif kind == "missing":
        pass
    else:
        raise AssertionError(kind)


MARKERS = [
    "empty file",
    "text marker of older labs",
    "symlink to a real marker",
    "other format",
    "json listing nothing usable",
    "a folder",
    "missing",
]


@pytest.mark.parametrize("kind", MARKERS)
def test_a_planted_or_old_marker_is_not_trusted(kind, tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "thesis.tex").write_text("years of work")
    _old_marker(target, kind)
    assert not made_by_lab(target)
    with pytest.raises(FolderInUseError) as caught, atomic_dir(target):
        pass
    assert MARKER in str(caught.value) and "thesis.tex" in str(caught.value)
    assert (target / "thesis.tex").read_text() == "years of work"


LEGACY = {
    "split": ("manifest.json", {"format": 1, "split_id": "random-abc", "raw_hashes": {}, "split": {}}),
    "report": ("manifest.json", {"experiment": "smoke", "steps": [], "resolved": {}, "status": "ok"}),
    "catalog": ("ground_truth/params.json", {"generator_version": 2, "seed": 7, "scale": "tiny"}),
    "model": ("model.json", {"format": 1, "kind": "lightfm", "item_ids": [], "config": {}}),
    "train": ("summary.json", {"run": "lightfm", "split_id": "x", "metrics": {}}),
}


@pytest.mark.parametrize("old_marker", [False, True])
@pytest.mark.parametrize("kind", sorted(LEGACY))
def test_json_that_looks_lab_made_is_not_enough(kind, old_marker, tmp_path):
    """Folders of older labs were recognised by a JSON file alone; now they need --force once."""
    name, content = LEGACY[kind]
    target = tmp_path / "out"
    (target / name).parent.mkdir(parents=True)
    (target / name).write_text(json.dumps(content))
    (target / "thesis.tex").write_text("years of work")
    if old_marker:
        _old_marker(target, "text marker of older labs")
    assert not made_by_lab(target)
    with pytest.raises(FolderInUseError, match="needs --force once"), atomic_dir(target):
        pass
    assert (target / "thesis.tex").is_file()


def test_the_error_names_the_first_few_offending_entries_and_says_how_to_proceed(tmp_path):
    target = _lab_folder(tmp_path / "out")
    for i in range(8):
        (target / f"mine-{i}.txt").write_text("mine")
    with pytest.raises(FolderInUseError) as caught:
        check_replaceable(target)
    message = str(caught.value)
    named = [line for line in message.splitlines() if "mine-" in line]
    assert len(named) == files.SHOWN and "and more" in message
    assert "move it" in message and "--force" in message and "Choose another output folder" in message


def test_mutable_files_may_change_but_must_stay_regular_files(tmp_path):
    target = _lab_folder(tmp_path / "out")
    (target / "tuning").mkdir()
    record_in_marker(target, [target / "tuning" / "optuna.db", target / "tuning" / "optuna.db-journal"], mutable=True)
    check_replaceable(target)  # listed as mutable: absent is fine
    (target / "tuning" / "optuna.db").write_bytes(b"study v1")
    check_replaceable(target)
    (target / "tuning" / "optuna.db").write_bytes(b"study v2, longer")
    check_replaceable(target)
    (target / "tuning" / "optuna.db-wal").write_bytes(b"not listed")
    with pytest.raises(FolderInUseError, match=re.escape("optuna.db-wal")):
        check_replaceable(target)
    (target / "tuning" / "optuna.db-wal").unlink()
    (target / "tuning" / "optuna.db-journal").symlink_to(tmp_outside(target))
    with pytest.raises(FolderInUseError, match=re.escape("optuna.db-journal: a symbolic link")):
        check_replaceable(target)


def test_what_is_added_later_is_recorded_and_keeps_the_folder_replaceable(tmp_path):
    target = _lab_folder(tmp_path / "out")
    (target / "screenshots").mkdir()
    (target / "screenshots" / "a.png").write_bytes(b"png")
    with pytest.raises(FolderInUseError, match=re.escape("screenshots/a.png")):
        check_replaceable(target)
    record_in_marker(target, [target / "screenshots"])
    check_replaceable(target)
    (target / "screenshots" / "a.png").unlink()
    (target / "screenshots" / "b.png").write_bytes(b"png")
    record_in_marker(target, ["screenshots"])  # a folder recorded again: what it held before is forgotten
    marker = json.loads((target / MARKER).read_text())
    assert "screenshots/a.png" not in marker["files"] and "screenshots/b.png" in marker["files"]
    check_replaceable(target)
    (target / "summary.json").write_text("{}")
    record_in_marker(target, [target / "summary.json"])
    check_replaceable(target)
    with pytest.raises(ValueError):
        record_in_marker(target, [tmp_path / "elsewhere.txt"])


def test_recording_in_a_folder_without_a_marker_lists_only_what_was_added(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "thesis.tex").write_text("years of work")
    (target / "tuning").mkdir()
    (target / "tuning" / "summary.json").write_text("{}")
    record_in_marker(target, [target / "tuning" / "summary.json"])
    with pytest.raises(FolderInUseError, match=re.escape("thesis.tex")):
        check_replaceable(target)


def test_an_empty_folder_with_only_a_planted_marker_is_not_empty(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / MARKER).write_text("")
    with pytest.raises(FolderInUseError):
        check_replaceable(target)


def test_an_oversized_marker_is_not_read(tmp_path, monkeypatch):
    target = _lab_folder(tmp_path / "out")
    monkeypatch.setattr(files, "MARKER_MAX_BYTES", (target / MARKER).stat().st_size - 1)
    assert not made_by_lab(target)


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def test_temporary_names_parse_exactly(tmp_path):
    host, pid = files._HOST, os.getpid()
    with atomic_dir(tmp_path / "exp.123") as tmp:
        assert temp_owner(tmp_path / "exp.123", tmp) == (host, pid)
        assert temp_owner(tmp_path / "exp", tmp) is None, "another folder's temporary name never parses"


@pytest.mark.parametrize(
    "writing, live",
    [
        ("exp", "exp.123"),  # the bug: the digits after the name were read as a pid
        ("exp", "exp.1"),
        ("exp.1", "exp.1.2"),
        ("exp", "exp.kdq-tmp-00000000-1-abcdef12"),
        ("exp", "exp.kdq-old-00000000-1-abcdef12"),
        ("a", "a.a"),
        ("report", "report.99999999.x.tmp"),
    ],
)
def test_a_live_run_of_a_similarly_named_folder_is_never_touched(writing, live, tmp_path):
    """Another process is writing ``live`` right now (its temporary folder exists); we write ``writing``."""
    live_tmp = tmp_path / f".{live}.kdq-tmp-{files._HOST}-{os.getpid()}-0123abcd"
    live_tmp.mkdir()
    (live_tmp / "work.txt").write_text("in progress")
    assert temp_owner(tmp_path / writing, live_tmp) is None
    with atomic_dir(tmp_path / writing) as tmp:
        (tmp / "x").write_text("x")
    assert (live_tmp / "work.txt").read_text() == "in progress"


@pytest.mark.slow  # starts another Python process
@pytest.mark.parametrize(
    "name, removed",
    [
        (".report.kdq-tmp-{host}-{dead}-0123abcd", True),
        (".report.kdq-old-{host}-{dead}-0123abcd", True),
        (".report.kdq-tmp-{host}-{live}-0123abcd", False),  # its writer is alive
        (".report.kdq-tmp-ffffffff-{dead}-0123abcd", False),  # written on another host: its pid says nothing here
        (".report.kdq-tmp-{host}-{dead}-0123abcd.x", False),  # not exactly our name
        (".report.x.kdq-tmp-{host}-{dead}-0123abcd", False),  # the temporary folder of 'report.x'
        (".report.{dead}.abc.tmp", False),  # old-style name: kept (if in doubt, keep it)
        (".report.kdq-tmp-{host}-0-0123abcd", False),  # pid 0 is never a writer
        (".report.kdq-tmp-{host}-99999999999-0123abcd", False),  # not a pid
    ],
)
def test_orphans_are_removed_only_when_their_owner_is_surely_gone(name, removed, tmp_path):
    orphan = tmp_path / name.format(host=files._HOST, dead=_dead_pid(), live=os.getpid())
    orphan.mkdir()
    with atomic_dir(tmp_path / "report"):
        pass
    assert orphan.exists() != removed


def test_a_failed_swap_puts_the_previous_folder_back(tmp_path, monkeypatch):
    target = tmp_path / "out"
    with atomic_dir(target) as tmp:
        (tmp / "previous.txt").write_text("previous")
    real_replace = os.replace

    def failing(src, dst):
        if Path(src).name.startswith(".out.kdq-tmp-"):
            raise PermissionError(13, "Permission denied", str(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(PermissionError), atomic_dir(target) as tmp:
        (tmp / "new.txt").write_text("new")
    assert (target / "previous.txt").read_text() == "previous"
    assert not list(tmp_path.glob(".out.*"))


def test_atomic_file_and_stable_hash(tmp_path):
    path = tmp_path / "a.json"
    with pytest.raises(ValueError), atomic_file(path) as handle:
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


def hostile_folder(tmp_path: Path) -> tuple[Path, Path]:
    """A lab folder holding links and a FIFO beside its regular files; and a file outside it."""
    outside = tmp_path / "secret.txt"
    outside.write_text("outside the folder")
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("a")
    (src / "sub" / "b.bin").write_bytes(b"\0b")
    (src / "empty").mkdir()
    (src / "to-file").symlink_to(outside)  # a link to a file outside
    (src / "sub" / "to-source").symlink_to(Path(files.__file__).parent, target_is_directory=True)  # the source tree
    (src / "loop-a").symlink_to(src / "loop-b")  # a link loop
    (src / "loop-b").symlink_to(src / "loop-a")
    (src / "dangling").symlink_to(tmp_path / "nothing")
    (src / "sub" / "inside").symlink_to(src / "a.txt")  # a link even to a file inside is not followed
    os.mkfifo(src / "pipe")  # reading it would block forever
    return src, outside


SKIPPED = ["to-file", "sub/to-source", "loop-a", "loop-b", "dangling", "sub/inside", "pipe"]


def _in_thread(function, *args):
    """Run ``function`` in a thread and return its result; a copy that reads a FIFO would never return."""
    result: list = []
    worker = threading.Thread(target=lambda: result.append(function(*args)), daemon=True)
    worker.start()
    worker.join(60)  # a liveness guard, not a speed check: the copy takes milliseconds
    assert not worker.is_alive(), "the copy blocked: it opened a FIFO"
    return result[0]


def test_copying_a_lab_folder_never_follows_links_or_reads_special_files(tmp_path):
    src, outside = hostile_folder(tmp_path)
    dst = tmp_path / "dst"
    with pytest.warns(files.SkippedEntryWarning) as caught:
        copied = _in_thread(files.copy_lab_folder, src, dst)
    assert sorted(copied) == ["a.txt", "empty", "sub", "sub/b.bin"]
    assert sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*")) == ["a.txt", "empty", "sub", "sub/b.bin"]
    assert (dst / "sub" / "b.bin").read_bytes() == b"\0b"
    messages = [str(w.message) for w in caught]
    for name in SKIPPED:
        assert any(message.startswith(f"{src / name}:") for message in messages), name
    assert any("a FIFO" in m for m in messages) and any("a symbolic link" in m for m in messages)
    assert outside.read_text() == "outside the folder"


def test_a_copy_never_writes_through_a_link_in_its_target(tmp_path):
    src, outside = hostile_folder(tmp_path)
    dst = tmp_path / "dst"
    dst.mkdir()
    (dst / "a.txt").symlink_to(outside)
    with pytest.raises(OSError, match=re.escape(str(dst / "a.txt"))), warnings.catch_warnings():
        warnings.simplefilter("ignore", files.SkippedEntryWarning)
        files.copy_lab_folder(src, dst)
    assert outside.read_text() == "outside the folder"


@pytest.mark.parametrize("root", ["link to a folder", "link to a file", "fifo"])
def test_a_folder_that_is_itself_a_link_is_not_copied(root, tmp_path):
    src, outside = hostile_folder(tmp_path)
    given = tmp_path / "given"
    if root == "fifo":
        os.mkfifo(given)
    else:
        given.symlink_to(src if root == "link to a folder" else outside)
    with pytest.warns(files.SkippedEntryWarning, match=re.escape(str(given))):
        assert _in_thread(files.copy_lab_folder, given, tmp_path / "dst") == []
    assert not (tmp_path / "dst").exists()


@pytest.mark.parametrize("name", ["to-file", "pipe", "dangling"])
def test_a_single_lab_file_copy_skips_links_and_special_files(name, tmp_path):
    src, _ = hostile_folder(tmp_path)
    with pytest.warns(files.SkippedEntryWarning, match=re.escape(str(src / name))):
        assert not _in_thread(files.copy_lab_file, src / name, tmp_path / "copy")
    assert not (tmp_path / "copy").exists()
    assert files.copy_lab_file(src / "a.txt", tmp_path / "copy") and (tmp_path / "copy").read_text() == "a"


def test_an_output_path_that_is_a_link_loop_is_refused_not_a_crash(tmp_path):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    for output, given in ((tmp_path / "a", tmp_path / "input"), (tmp_path / "out", tmp_path / "b")):
        with pytest.raises(KdqError, match="loop"):
            check_apart(output, {"the input": given})
