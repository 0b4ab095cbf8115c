"""Dataset names: built-ins are generated on first use, user data is never overwritten."""

from __future__ import annotations

import pytest

from kdq_lab.config import Paths
from kdq_lab.data.registry import dataset_exists, resolve_dataset
from kdq_lab.errors import KdqError


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
