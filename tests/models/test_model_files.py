"""Crafted or damaged model files: every problem is a clear error naming the file, never a crash."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kdq_lab.errors import KdqError
from kdq_lab.models import LightFMConfig, LightFMHybrid, TrainData


@pytest.fixture(scope="module")
def saved(tiny_split, tmp_path_factory) -> Path:
    model = LightFMHybrid(LightFMConfig(no_components=4, epochs=1, curve_users=50)).fit(
        TrainData.from_split(tiny_split)
    )
    folder = tmp_path_factory.mktemp("model") / "model"
    return model.save(
        folder,
        items=tiny_split.items,
        extra={"item_id_column": tiny_split.manifest["item_id_column"], "run": "t", "dataset": "d"},
    )


@pytest.fixture
def copy(saved, tmp_path) -> Path:
    return Path(shutil.copytree(saved, tmp_path / "model"))


def edit_arrays(folder: Path, change: Callable[[dict[str, np.ndarray]], None]) -> None:
    with np.load(folder / "model.npz") as npz:
        arrays = {name: npz[name].copy() for name in npz.files}
    change(arrays)
    np.savez(folder / "model.npz", **arrays)


def edit_json(folder: Path, change: Callable[[dict], None]) -> None:
    meta = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    change(meta)
    (folder / "model.json").write_text(json.dumps(meta), encoding="utf-8")


def _set(arrays, name, index, value):
    arrays[name][index] = value


ARRAY_DAMAGE = {
    "index past the end": (
        lambda a: _set(a, "item_features_indices", 0, a["item_features_shape"][1]),
        "item_features_indices",
        "outside [0,",
    ),
    "huge index": (lambda a: _set(a, "user_features_indices", -1, 2**31 - 1), "user_features_indices", "outside"),
    "negative index": (lambda a: _set(a, "item_features_indices", 3, -5), "item_features_indices", "outside"),
    "indptr too short": (
        lambda a: a.update(item_features_indptr=a["item_features_indptr"][:-1]),
        "item_features_indptr",
        "expected rows + 1",
    ),
    "indptr not at 0": (lambda a: _set(a, "user_features_indptr", 0, 1), "user_features_indptr", "must start at 0"),
    "indptr decreasing": (lambda a: _set(a, "item_features_indptr", 2, 0), "item_features_indptr", "must not decrease"),
    "indptr end": (
        lambda a: _set(a, "item_features_indptr", -1, a["item_features_indptr"][-1] - 1),
        "item_features_indptr",
        "must end at the number of stored entries",
    ),
    "data nan": (lambda a: _set(a, "item_features_data", 0, np.nan), "item_features_data", "not finite"),
    "data inf": (lambda a: _set(a, "user_features_data", 1, np.inf), "user_features_data", "not finite"),
    "data length": (
        lambda a: a.update(item_features_data=a["item_features_data"][:-1]),
        "item_features_data",
        "but indices has",
    ),
    "shape of three": (
        lambda a: a.update(item_features_shape=np.array([1, 2, 3])),
        "item_features_shape",
        "claims 3 values (shape (3,))",
    ),
    "shape of one": (lambda a: a.update(item_features_shape=np.array([7])), "item_features_shape", "two integers"),
    "negative shape": (
        lambda a: a.update(user_features_shape=np.array([-1, 5])),
        "user_features_shape",
        "two integers",
    ),
    "float indices": (
        lambda a: a.update(item_features_indices=a["item_features_indices"].astype(float)),
        "item_features_indices",
        "integer array",
    ),
    "2-d data": (
        lambda a: a.update(item_features_data=a["item_features_data"][:, None]),
        "item_features_data",
        "one-dimensional",
    ),
    "missing array": (lambda a: a.pop("item_features_indptr"), "item_features_indptr", "missing array"),
    "embedding nan": (lambda a: _set(a, "user_embeddings", (0, 0), np.nan), "user_embeddings", "not finite"),
    "bias inf": (lambda a: _set(a, "item_biases", 2, -np.inf), "item_biases", "not finite"),
    "embedding rows": (lambda a: a.update(item_embeddings=a["item_embeddings"][:-1]), "item_embeddings", "wrong shape"),
    "missing biases": (lambda a: a.pop("user_biases"), "user_biases", "missing array"),
    "text parameters": (lambda a: a.update(item_biases=a["item_biases"].astype(str)), "item_biases", "numeric"),
}


@pytest.mark.parametrize("damage", sorted(ARRAY_DAMAGE))
def test_damaged_arrays_are_reported_with_the_file(damage, copy):
    change, array, fragment = ARRAY_DAMAGE[damage]
    edit_arrays(copy, change)
    with pytest.raises(KdqError) as caught:
        LightFMHybrid.load(copy)
    problems = [p for p in caught.value.problems if p.column == array]
    assert problems and fragment in problems[0].message, str(caught.value)
    assert problems[0].file == str(copy / "model.npz")


def test_every_problem_is_reported_at_once(copy):
    edit_arrays(
        copy,
        lambda a: (
            _set(a, "item_features_indices", 0, 10**6),
            _set(a, "item_biases", 0, np.nan),
            _set(a, "user_features_data", 0, np.nan),
        ),
    )
    with pytest.raises(KdqError) as caught:
        LightFMHybrid.load(copy)
    assert {p.column for p in caught.value.problems} >= {"item_features_indices", "item_biases", "user_features_data"}


@pytest.mark.slow  # starts another Python process
def test_a_crafted_index_never_reaches_lightfm(copy, tmp_path):
    """In a separate process: before the checks, this segfaulted inside LightFM."""
    edit_arrays(copy, lambda a: _set(a, "item_features_indices", 0, 10**8))
    profile = tmp_path / "p.yaml"
    profile.write_text("interests: [AI 영상]\n", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "kdq_lab.cli", "recommend", "--model", str(copy), "--profile", str(profile)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2, proc.stderr
    assert "model.npz" in proc.stderr and "item_features_indices" in proc.stderr and "Traceback" not in proc.stderr


JSON_DAMAGE = {
    "unknown parameter": (lambda m: m["config"].update(wings=2), "unknown parameter.*wings.*lightfm"),
    "wrong type": (lambda m: m["config"].update(no_components="4"), "no_components"),
    "bad choice": (lambda m: m["config"].update(loss="hinge"), "loss"),
    "config not a mapping": (lambda m: m.update(config=[1, 2]), "'config' must be a mapping"),
    "fewer item ids": (lambda m: m.update(item_ids=m["item_ids"][:-1]), "claims 161 values .* allow at most 160"),
    "more item ids": (lambda m: m.update(item_ids=[*m["item_ids"], "extra"]), "but the item feature matrix has"),
    "repeated user ids": (lambda m: m["user_ids"].__setitem__(1, m["user_ids"][0]), "repeated id"),
    "ids not text": (lambda m: m.update(user_ids=list(range(len(m["user_ids"])))), "ids as text"),
}


@pytest.mark.parametrize("damage", sorted(JSON_DAMAGE))
def test_bad_model_json_names_the_file(damage, copy):
    change, fragment = JSON_DAMAGE[damage]
    edit_json(copy, change)
    with pytest.raises(KdqError, match=fragment) as caught:
        LightFMHybrid.load(copy)
    assert str(copy / "model.json") in str(caught.value)


def _reverse(items: pd.DataFrame) -> pd.DataFrame:
    return items.iloc[::-1]


def _swap_two(items: pd.DataFrame) -> pd.DataFrame:
    order = np.arange(len(items))
    order[[0, 1]] = order[[1, 0]]
    return items.iloc[order]


ITEM_DAMAGE = {
    "reversed": (_reverse, None, "items.parquet", "rows differ"),
    "two swapped": (_swap_two, None, "items.parquet", "row 0 should be item"),
    "one row missing": (lambda t: t.iloc[:-1], None, "items.parquet", "rows, but model.json lists"),
    "one row added": (lambda t: pd.concat([t, t.iloc[:1]]), None, "items.parquet", "rows, but model.json lists"),
    "id column renamed": (lambda t: t.rename(columns={"item_id": "id"}), None, "model.json", "must name the id column"),
    "no id column named": (
        lambda t: t,
        lambda m: m["extra"].pop("item_id_column"),
        "model.json",
        "must name the id column",
    ),
}


@pytest.mark.parametrize("damage", sorted(ITEM_DAMAGE))
def test_an_item_table_out_of_step_with_the_model_is_refused(damage, copy):
    change, change_json, file, fragment = ITEM_DAMAGE[damage]
    items = pd.read_parquet(copy / "items.parquet")
    change(items).to_parquet(copy / "items.parquet", index=False)
    if change_json:
        edit_json(copy, change_json)
    with pytest.raises(KdqError, match=fragment) as caught:
        LightFMHybrid.load(copy)
    assert str(copy / file) in str(caught.value)


def test_an_intact_model_loads_with_its_item_table(saved):
    model = LightFMHybrid.load(saved)
    assert list(model.items_["item_id"].astype(str)) == list(model.item_ids_)
