"""Models saved as named arrays (popularity, itemknn): round trip, and every damage refused with the file named."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from kdq_lab.errors import KdqError
from kdq_lab.models import TrainData, load_model, make_model


@pytest.fixture(scope="module")
def saved(tiny_split, tmp_path_factory):
    data = TrainData.from_split(tiny_split)
    root = tmp_path_factory.mktemp("saved")
    return {kind: make_model(kind).fit(data).save(root / kind) for kind in ("popularity", "itemknn")}


@pytest.fixture
def copy(saved, tmp_path):
    def make(kind):
        target = tmp_path / kind
        shutil.copytree(saved[kind], target)
        return target

    return make


def rewrite_npz(folder, change):
    arrays = dict(np.load(folder / "model.npz"))
    change(arrays)
    np.savez_compressed(folder / "model.npz", **arrays)


def rewrite_json(folder, change):
    meta = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    change(meta)
    (folder / "model.json").write_text(json.dumps(meta), encoding="utf-8")


@pytest.mark.parametrize("kind", ["popularity", "itemknn"])
def test_array_models_round_trip_exactly(kind, saved, tiny_split):
    loaded = load_model(saved[kind])
    fresh = make_model(kind).fit(TrainData.from_split(tiny_split))
    users = np.arange(25)
    np.testing.assert_array_equal(loaded.score(users), fresh.score(users))
    np.testing.assert_array_equal(loaded.tie_order(), fresh.tie_order())


@pytest.mark.parametrize(
    "kind, damage, message",
    [
        ("popularity", lambda a: a.update(scores=a["scores"][:-1]), "scores"),
        ("popularity", lambda a: a.update(scores=np.full_like(a["scores"], np.nan)), "not finite"),
        ("popularity", lambda a: a.update(tie_order=a["tie_order"].astype(str)), "tie_order"),
        ("popularity", lambda a: a.pop("scores"), "scores"),
        ("popularity", lambda a: a.update(extra=np.zeros(3)), "extra"),
        ("itemknn", lambda a: a.update(similarity_indices=a["similarity_indices"] + 10_000), "similarity_indices"),
        ("itemknn", lambda a: a.update(history_indptr=a["history_indptr"][::-1].copy()), "history_indptr"),
        ("itemknn", lambda a: a.update(similarity_shape=a["similarity_shape"] + [0, 5]), "similarity_shape"),
        ("itemknn", lambda a: a.update(history_data=np.zeros(10**6, dtype=np.float32)), "history_data"),
    ],
)
def test_damaged_arrays_are_refused_naming_the_array(kind, damage, message, copy):
    folder = copy(kind)
    rewrite_npz(folder, damage)
    with pytest.raises(KdqError, match=message) as error:
        load_model(folder)
    assert str(folder) in str(error.value)


@pytest.mark.parametrize(
    "kind, damage, message",
    [
        ("popularity", lambda m: m.update(format=99), "format 99"),
        ("popularity", lambda m: m["sizes"].update(items=-1), "sizes"),
        ("popularity", lambda m: m["sizes"].update(items="160"), "sizes"),
        ("popularity", lambda m: m["config"].update(window_days=-3), "window_days"),
        ("itemknn", lambda m: m["config"].update(unknown=1), "unknown parameter"),
        ("itemknn", lambda m: m.update(config=[1, 2]), "config"),
        ("itemknn", lambda m: m["sizes"].pop("users"), "sizes"),
    ],
)
def test_bad_model_json_is_refused_naming_the_file(kind, damage, message, copy):
    folder = copy(kind)
    rewrite_json(folder, damage)
    with pytest.raises(KdqError, match=message) as error:
        load_model(folder)
    assert "model.json" in str(error.value)


def test_a_model_of_another_kind_is_not_loaded_as_this_one(copy):
    from kdq_lab.models.itemknn import ItemKNNScorer

    with pytest.raises(KdqError, match="kind 'popularity'"):
        ItemKNNScorer.load(copy("popularity"))
