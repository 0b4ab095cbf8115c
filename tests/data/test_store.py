"""Processed splits: parquet + npz + manifest, reused by hash, never half-written."""

from __future__ import annotations

import json

import numpy as np
import pytest
from links_fixture import outside_file, regular_tree

from kdq_lab.data.splits import SplitConfig
from kdq_lab.data.store import load_split, prepare
from kdq_lab.errors import DataError
from kdq_lab.files import SkippedEntryWarning


def test_prepare_writes_and_loads(tiny_catalog, tmp_path):
    folder = prepare(tiny_catalog, SplitConfig(kind="user_temporal"), tmp_path)
    assert folder.parent.name == "kdq-tiny" and folder.name.startswith("user_temporal-")
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert set(manifest["raw_hashes"]) >= {"users.csv", "items.csv", "interactions.csv", "dataset.yaml"}
    assert manifest["split"]["kind"] == "user_temporal" and "numpy" in manifest["versions"]
    split = load_split(folder)
    assert split.train.interactions.shape == (len(split.users), len(split.items))
    assert split.user_features.shape == (len(split.users), len(split.user_vocab))
    assert split.train.interactions.multiply(split.test.interactions).nnz == 0
    assert manifest["counts"]["test"]["pairs"] == split.test.interactions.nnz
    assert split.ground_truth is not None


def test_unchanged_inputs_are_reused_and_changes_rebuild(catalog_copy, tmp_path):
    config, processed = SplitConfig(kind="random"), tmp_path / "processed"
    first = prepare(catalog_copy, config, processed)
    stamp = (first / "manifest.json").stat().st_mtime_ns
    assert prepare(catalog_copy, config, processed) == first
    assert (first / "manifest.json").stat().st_mtime_ns == stamp
    assert prepare(catalog_copy, SplitConfig(kind="random", seed=5), processed) != first
    with open(catalog_copy / "interactions.csv", "a", encoding="utf-8") as handle:
        handle.write("")  # same bytes: still reused
    assert prepare(catalog_copy, config, processed) == first
    lines = (catalog_copy / "interactions.csv").read_text(encoding="utf-8").split("\n")
    (catalog_copy / "interactions.csv").write_text("\n".join(lines[:-5]) + "\n", encoding="utf-8")
    assert prepare(catalog_copy, config, processed) != first


def test_invalid_dataset_writes_nothing(catalog_copy, tmp_path):
    lines = (catalog_copy / "interactions.csv").read_text(encoding="utf-8").split("\n")
    lines[1] = lines[1].replace("view", "watch").replace("like", "watch")
    (catalog_copy / "interactions.csv").write_text("\n".join(lines), encoding="utf-8")
    out = tmp_path / "processed"
    with pytest.raises(DataError):
        prepare(catalog_copy, SplitConfig(), out)
    assert not out.exists() or not any(out.rglob("*.parquet"))


def test_known_part_is_train_plus_validation(tiny_catalog, tmp_path):
    split = load_split(prepare(tiny_catalog, SplitConfig(kind="random", validation_fraction=0.2), tmp_path))
    known = split.known
    assert known.interactions.nnz == split.train.interactions.nnz + split.validation.interactions.nnz
    assert np.array_equal(known.interactions.data, np.ones(known.interactions.nnz, dtype=np.int32))


def test_zero_weight_positive_events_stay_known(catalog_copy, tmp_path):
    spec = (catalog_copy / "dataset.yaml").read_text(encoding="utf-8")
    (catalog_copy / "dataset.yaml").write_text(spec.replace("like: 2.0", "like: 0.0"), encoding="utf-8")
    split = load_split(prepare(catalog_copy, SplitConfig(kind="random", validation_fraction=0.2), tmp_path / "p"))
    assert (split.train.weights.data == 0).any(), "the fixture must have zero-weight positive pairs"
    assert split.known.interactions.nnz == split.train.interactions.nnz + split.validation.interactions.nnz


def test_the_ground_truth_copy_never_follows_links(catalog_copy, tmp_path):
    # special files are refused earlier, by validation (tests/data/test_input_sizes.py)
    truth = catalog_copy / "ground_truth"
    (truth / "users-again.csv").symlink_to(catalog_copy / "users.csv")  # links inside the dataset pass validation
    (truth / "dataset").symlink_to(catalog_copy, target_is_directory=True)  # copying through it would never end
    (truth / "loop-a").symlink_to(truth / "loop-b")
    (truth / "loop-b").symlink_to(truth / "loop-a")
    with pytest.warns(SkippedEntryWarning) as caught:
        split = load_split(prepare(catalog_copy, SplitConfig(kind="random"), tmp_path / "processed"))
    assert sorted(str(w.message).split(": ")[0] for w in caught) == sorted(
        str(truth / name) for name in ("users-again.csv", "dataset", "loop-a", "loop-b")
    )
    assert split.ground_truth is not None
    assert regular_tree(split.ground_truth) == ["items.parquet", "params.json", "users.parquet"]


def test_a_link_leading_out_of_the_ground_truth_is_still_refused(catalog_copy, tmp_path):
    (catalog_copy / "ground_truth" / "passwd").symlink_to(outside_file(tmp_path))
    with pytest.raises(DataError, match="leading out of the dataset folder"):
        prepare(catalog_copy, SplitConfig(kind="random"), tmp_path / "processed")
    assert not (tmp_path / "processed").exists()
