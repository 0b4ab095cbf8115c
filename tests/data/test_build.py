"""The matrix builder gives exactly lightfm.data.Dataset's matrices."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from lightfm.data import Dataset

from kdq_lab.data.build import FeatureConfig, FeatureVocabulary, compose_features, interaction_matrices
from kdq_lab.data.schema import EntitySpec, NumericFeature
from kdq_lab.data.validate import load_dataset
from kdq_lab.errors import KdqError
from kdq_lab.linalg import identical


def feature_lists(matrix: sp.csr_matrix, names) -> list[list[str]]:
    names = np.asarray(names, dtype=object)
    return [list(names[matrix.indices[matrix.indptr[r] : matrix.indptr[r + 1]]]) for r in range(matrix.shape[0])]


@pytest.fixture(scope="module")
def raw(tiny_catalog):
    return load_dataset(tiny_catalog)


@pytest.mark.parametrize("identity", [True, False])
@pytest.mark.parametrize("normalize", ["l1", "none"])
def test_same_matrices_as_lightfm_dataset(raw, identity, normalize):
    spec = raw.spec
    users, items = pd.Index(raw.users["user_id"]), pd.Index(raw.items["item_id"])
    user_vocab = FeatureVocabulary.fit(raw.users, spec.users, "|")
    item_vocab = FeatureVocabulary.fit(raw.items, spec.items, "|")
    user_base, _ = user_vocab.transform(raw.users)
    item_base, _ = item_vocab.transform(raw.items)
    events = raw.interactions

    reference = Dataset(user_identity_features=identity, item_identity_features=identity)
    reference.fit(users, items, user_features=user_vocab.names, item_features=item_vocab.names)
    ref_inter, ref_weights = reference.build_interactions(zip(events["user_id"], events["item_id"], events["weight"]))
    ref_users = reference.build_user_features(
        zip(users, feature_lists(user_base, user_vocab.names)), normalize=normalize == "l1"
    )
    ref_items = reference.build_item_features(
        zip(items, feature_lists(item_base, item_vocab.names)), normalize=normalize == "l1"
    )

    config = FeatureConfig(identity=identity, normalize=normalize)
    binary, weights = interaction_matrices(users, items, events["user_id"], events["item_id"], events["weight"])
    assert identical(compose_features(user_base, config), ref_users)
    assert identical(compose_features(item_base, config), ref_items)
    assert identical(weights, ref_weights.tocsr())
    assert identical(binary, (ref_inter.tocsr() > 0).astype(np.int32))
    assert ref_inter.tocsr().max() > 1, "the fixture must contain repeated events of a pair"


def test_duplicates_are_summed_and_interactions_binary():
    users, items = pd.Index(["a", "b"]), pd.Index(["x", "y", "z"])
    binary, weights = interaction_matrices(
        users, items, ["a", "a", "b", "a"], ["x", "x", "z", "y"], [1.0, 2.5, 4.0, 0.5]
    )
    assert weights.toarray().tolist() == [[3.5, 0.5, 0.0], [0.0, 0.0, 4.0]]
    assert binary.toarray().tolist() == [[1, 1, 0], [0, 0, 1]]
    assert binary.dtype == np.int32 and weights.dtype == np.float32
    with pytest.raises(KeyError, match="user ids not in the id map"):
        interaction_matrices(users, items, ["c"], ["x"])


def test_feature_kinds_and_unknown_values():
    frame = pd.DataFrame(
        {
            "id": ["1", "2", "3"],
            "kind": ["강의", "영상", ""],
            "tags": ["AI|영상", "", "AI"],
            "minutes": ["5", "45", "abc"],
        }
    )
    entity = EntitySpec(
        file="x.csv",
        id="id",
        categorical=("kind",),
        multi_valued=("tags",),
        numeric=(NumericFeature("minutes", edges=(0, 10, 60)),),
    )
    vocab = FeatureVocabulary.fit(frame, entity, "|")
    assert vocab.names == ("kind:강의", "kind:영상", "tags:AI", "tags:영상", "minutes:0–10", "minutes:10–60")
    matrix, unknown = vocab.transform(frame)
    assert matrix.toarray().tolist() == [[1, 0, 1, 1, 1, 0], [0, 1, 0, 0, 0, 1], [0, 0, 1, 0, 0, 0]]
    new = pd.DataFrame({"id": ["9"], "kind": ["행사"], "tags": ["AI|웹"], "minutes": ["600"]})
    matrix, unknown = vocab.transform(new)
    assert matrix.toarray().tolist() == [[0, 0, 1, 0, 0, 0]]
    assert {(u.column, u.value) for u in unknown} == {("kind", "행사"), ("tags", "웹")}


def test_identity_weight_and_rows_without_identity():
    base = sp.csr_matrix(np.array([[1, 1, 1], [1, 0, 0]], dtype=np.float32))
    full = compose_features(base, FeatureConfig(identity=True, normalize="l1", identity_weight=1.0))
    assert np.allclose(full.toarray()[0], [0.25, 0, 0.25, 0.25, 0.25])
    heavy = compose_features(base, FeatureConfig(identity=True, normalize="l1", identity_weight=3.0))
    assert np.allclose(heavy.toarray()[1], [0, 0.75, 0.25, 0, 0])
    cold = compose_features(base, FeatureConfig(identity=True, normalize="l1"), with_identity=np.array([True, False]))
    # the cold row keeps the normalisation of a known row: each feature weighs 1/2, not 1
    assert np.allclose(cold.toarray()[1], [0, 0, 0.5, 0, 0])
    raw = compose_features(base, FeatureConfig(identity=False, normalize="none"))
    assert np.array_equal(raw.toarray(), base.toarray())


def test_quantile_bins_of_constant_and_empty_columns():
    entity = EntitySpec(file="x.csv", id="id", numeric=(NumericFeature("minutes", bins=4),))
    constant = pd.DataFrame({"id": ["1", "2"], "minutes": ["5", "5"]})
    vocab = FeatureVocabulary.fit(constant, entity, "|")
    assert vocab.names == ("minutes:5–5",) and vocab.transform(constant)[0].toarray().tolist() == [[1], [1]]
    with pytest.raises(KdqError, match="no values to compute 4 quantile bins"):
        FeatureVocabulary.fit(pd.DataFrame({"id": ["1"], "minutes": [""]}), entity, "|")


def test_benchmark_sides_build_identical_matrices():
    from kdq_lab.bench.builder import BuilderSize, build_lightfm, build_ours, make_frames

    users, items, interactions = make_frames(BuilderSize(users=300, items=120, interactions=4000, seed=1))
    ours, theirs = build_ours(users, items, interactions), build_lightfm(users, items, interactions)
    assert set(ours) == set(theirs) == {"user_features", "item_features", "interactions", "weights"}
    assert all(identical(ours[name], theirs[name]) for name in ours)


@pytest.mark.parametrize("side", ["users", "items"])
def test_the_vocabulary_size_is_bounded_when_it_is_built_and_loaded(raw, side, monkeypatch):
    import kdq_lab.data.build as build

    frame, entity = getattr(raw, side), getattr(raw.spec, side)
    size = len(FeatureVocabulary.fit(frame, entity, "|"))
    monkeypatch.setattr(build, "MAX_VOCABULARY", size)
    saved = FeatureVocabulary.fit(frame, entity, "|").to_dict()  # exactly at the bound: fine
    assert len(FeatureVocabulary.from_dict(saved)) == size
    monkeypatch.setattr(build, "MAX_VOCABULARY", size - 1)
    with pytest.raises(KdqError, match=f"{entity.file}: {size:,} distinct feature values: at most {size - 1:,}"):
        FeatureVocabulary.fit(frame, entity, "|")
    with pytest.raises(KdqError, match=f"feature vocabulary: {size:,} feature names: at most {size - 1:,}"):
        FeatureVocabulary.from_dict(saved)
