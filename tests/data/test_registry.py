"""Dataset names: built-ins are generated on first use, user data is never overwritten."""

from __future__ import annotations

import json
import re

import pytest

from kdq_lab.config import Paths
from kdq_lab.data import registry
from kdq_lab.data.registry import dataset_exists, resolve_dataset
from kdq_lab.errors import KdqError
from kdq_lab.files import MARKER, made_by_lab


def test_builtin_is_generated_and_user_folders_are_protected(tmp_path):
    paths = Paths(tmp_path)
    folder = resolve_dataset("kdq-catalog-tiny", paths, progress=False)
    assert (folder / "dataset.yaml").is_file() and (folder / "ground_truth" / "params.json").is_file()
    stamp = (folder / "interactions.csv").stat().st_mtime_ns
    assert resolve_dataset("kdq-catalog-tiny", paths, progress=False) == folder
    assert (folder / "interactions.csv").stat().st_mtime_ns == stamp, "an up-to-date built-in is not regenerated"
    mine = paths.raw / "kdq-catalog-small"
    mine.mkdir(parents=True)
    (mine / "users.csv").write_text("user_id\nme\n", encoding="utf-8")
    with pytest.raises(KdqError, match="did not generate"):
        resolve_dataset("kdq-catalog-small", paths, progress=False)
    assert (mine / "users.csv").read_text(encoding="utf-8") == "user_id\nme\n"
    with pytest.raises(KdqError, match="no dataset 'nothing'"):
        resolve_dataset("nothing", paths)
    assert dataset_exists("kdq-catalog", paths) and not dataset_exists("nothing", paths)


@pytest.fixture
def outdated(tmp_path, monkeypatch):
    """A built-in catalog in data/raw/ whose generator has changed since it was written."""
    paths = Paths(tmp_path)
    folder = resolve_dataset("kdq-catalog-tiny", paths, progress=False)
    monkeypatch.setattr(registry, "GENERATOR_VERSION", registry.GENERATOR_VERSION + 1)
    return paths, folder


def _token(folder):
    return json.loads((folder / MARKER).read_text(encoding="utf-8"))["token"]


@pytest.mark.parametrize("marker", ["format 2", "deleted", "text of older labs", "empty"])
def test_an_outdated_builtin_the_lab_provably_wrote_is_regenerated(marker, outdated):
    paths, folder = outdated
    token = _token(folder)
    if marker != "format 2":
        (folder / MARKER).unlink()
        if marker != "deleted":
            (folder / MARKER).write_text("" if marker == "empty" else "This folder was written by kdq-lab.\n")
    assert resolve_dataset("kdq-catalog-tiny", paths, progress=False) == folder
    assert _token(folder) != token, "generated again, with a new marker"
    assert made_by_lab(folder)


def _put_outside(folder):
    outside = folder.parent.parent / "outside.csv"
    outside.write_text("mine", encoding="utf-8")
    return outside


@pytest.mark.parametrize("marker", ["format 2", "text of older labs"])
@pytest.mark.parametrize(
    "change, named",
    [
        ("notes.txt", "notes.txt"),
        ("ground_truth/mine.parquet", "ground_truth/mine.parquet"),
        ("link users.csv", "users.csv"),
        ("link folder", "photos"),
        ("empty folder", "photos"),
    ],
)
def test_an_outdated_builtin_holding_anything_else_is_never_regenerated(change, named, marker, outdated):
    paths, folder = outdated
    if marker != "format 2":
        (folder / MARKER).write_text("This folder was written by kdq-lab.\n")
    if change == "link users.csv":
        (folder / "users.csv").unlink()
        (folder / "users.csv").symlink_to(_put_outside(folder))
    elif change == "link folder":
        (folder / "photos").symlink_to(_put_outside(folder).parent, target_is_directory=True)
    elif change == "empty folder":
        (folder / "photos").mkdir()
    else:
        (folder / change).write_text("mine", encoding="utf-8")
    before = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))
    with pytest.raises(KdqError, match="older kdq-lab") as caught:
        resolve_dataset("kdq-catalog-tiny", paths, progress=False)
    assert named in str(caught.value) and str(folder) in str(caught.value)
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) == before


def test_an_outdated_builtin_with_a_changed_file_is_never_regenerated(outdated):
    paths, folder = outdated
    (folder / "users.csv").write_text("user_id\nme\n", encoding="utf-8")
    with pytest.raises(KdqError, match=re.escape("users.csv: changed")):
        resolve_dataset("kdq-catalog-tiny", paths, progress=False)
    assert (folder / "users.csv").read_text(encoding="utf-8") == "user_id\nme\n"
