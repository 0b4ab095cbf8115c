"""The LightFM wrapper trains and scores as LightFM does: identity rows, training columns, feature blocks per side."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from lightfm import LightFM
from lightfm.evaluation import auc_score, precision_at_k, recall_at_k

from kdq_lab.data.build import FeatureConfig, compose_features
from kdq_lab.data.splits import SplitConfig
from kdq_lab.data.store import load_split, prepare
from kdq_lab.errors import KdqError
from kdq_lab.evaluation import evaluate
from kdq_lab.models import LightFMConfig, LightFMHybrid, TrainData

FAST = {"no_components": 8, "epochs": 4, "patience": None, "curve_users": 50, "learning_rate": 0.05}


@pytest.fixture(scope="module")
def temporal(tiny_catalog, tmp_path_factory):
    """Every test user has train positives, and no item is withheld: every item is a training column."""
    config = SplitConfig(kind="user_temporal", validation_fraction=0.0)
    return load_split(prepare(tiny_catalog, config, tmp_path_factory.mktemp("processed")))


def test_wrapper_equals_raw_lightfm_with_lightfm_features(temporal):
    data = TrainData.from_split(temporal, exclude="train_positives")
    wrapped = LightFMHybrid(LightFMConfig(**FAST, features="both", normalize="l1", random_state=5)).fit(data)
    # LightFM's own recipe (lightfm.data.Dataset): identity plus features for EVERY user and item, l1 rows
    config = FeatureConfig(identity=True, normalize="l1")
    users = compose_features(temporal.user_features, config)
    items = compose_features(temporal.item_features, config)
    assert (data.interactions.getnnz(axis=0) == 0).any(), "some items have no train positive"
    assert (items != wrapped.item_features_).nnz == 0, "items without positives keep their identity, as in LightFM"
    raw = LightFM(no_components=8, loss="warp", learning_rate=0.05, random_state=5)
    raw.fit(data.interactions.tocoo().astype(np.float32), user_features=users, item_features=items, epochs=4)
    test, train = temporal.test.interactions, temporal.train.interactions
    ours = evaluate(wrapped, test, exclude=train, k=10)
    kw = {"user_features": users, "item_features": items}
    for metric, theirs in (("precision@10", precision_at_k(raw, test, train, k=10, **kw)),
                           ("recall@10", recall_at_k(raw, test, train, k=10, **kw)),
                           ("auc", auc_score(raw, test, train, **kw))):  # fmt: skip
        np.testing.assert_allclose(ours[metric].to_numpy(), theirs, rtol=0, atol=1e-6, err_msg=metric)


def test_withheld_items_are_never_training_columns(tiny_catalog, tmp_path, monkeypatch):
    split = load_split(prepare(tiny_catalog, SplitConfig(kind="cold_items", validation_fraction=0.1), tmp_path))
    data = TrainData.from_split(split)
    withheld = data.withheld_items
    assert withheld is not None and withheld.sum() > 0
    assert (split.withheld_until_validation & ~withheld).sum() == 0, "the first fit withholds validation items too"
    seen: list[tuple[int, int]] = []
    fit_partial = LightFM.fit_partial

    def spy(self, interactions, user_features=None, item_features=None, **kwargs):
        seen.append((interactions.shape[1], item_features.shape[0]))
        return fit_partial(self, interactions, user_features, item_features, **kwargs)

    monkeypatch.setattr(LightFM, "fit_partial", spy)
    model = LightFMHybrid(LightFMConfig(**FAST, features="both")).fit(data)
    columns = int((~withheld).sum())
    assert seen and set(seen) == {(columns, columns)}, "WARP samples negatives among training columns only"
    n_ids = len(data.item_ids)
    identity = model.item_features_[:, :n_ids].getnnz(axis=1)
    assert (identity[withheld] == 0).all() and (identity[~withheld] == 1).all()
    scores = model.score(np.arange(3))
    assert np.isfinite(scores[:, withheld]).all(), "withheld items are scored from their features"


def test_refit_trains_withheld_validation_items(tiny_catalog, tmp_path):
    """At refit the validation part joins train; only the test part's items stay withheld."""
    split = load_split(prepare(tiny_catalog, SplitConfig(kind="cold_items", validation_fraction=0.1), tmp_path))
    first, refit = TrainData.from_split(split), TrainData.from_split(split, refit=True)
    assert split.withheld_until_validation.any() and split.withheld_until_test.any()
    np.testing.assert_array_equal(refit.withheld_items, split.withheld_until_test)
    np.testing.assert_array_equal(first.withheld_items, split.withheld_until_test | split.withheld_until_validation)
    validation_items = np.flatnonzero(split.withheld_until_validation)
    assert refit.interactions[:, validation_items].nnz > 0, "validation items have positives to learn from at refit"


def test_feature_blocks_per_side(temporal):
    data = TrainData.from_split(temporal)
    config = LightFMConfig(**FAST, features="both", user_identity=False, item_identity=True,
                           user_normalize="none", item_normalize="l1")  # fmt: skip
    model = LightFMHybrid(config).fit(data)
    n_users, n_items = len(data.user_ids), len(data.item_ids)
    assert model.user_features_.shape[1] == len(data.user_vocab), "profile-only users: no identity block"
    assert model.item_features_.shape[1] == n_items + len(data.item_vocab), "items keep theirs"
    assert set(np.unique(model.user_features_.data)) == {1.0}, "users unnormalised"
    sums = np.asarray(model.item_features_.sum(axis=1)).ravel()
    has_features = data.item_features.getnnz(axis=1) > 0
    np.testing.assert_allclose(sums[has_features], 1.0, rtol=1e-6)
    assert config.describe() == "users features/none · items id+features/l1"
    assert model.user_features_.shape[0] == n_users


def test_shorthand_sets_both_sides_and_a_side_overrides_it():
    config = LightFMConfig(identity=False, normalize="none", item_identity=True)
    assert config.side(True)[1] == FeatureConfig(identity=False, normalize="none")
    assert config.side(False)[1] == FeatureConfig(identity=True, normalize="none")
    assert LightFMConfig(features="ids", identity=False).side(True)[1].identity, "an ids-only side keeps its ids"


@pytest.mark.parametrize(
    "params, fragment",
    [
        ({"user_identity": "yes"}, "user_identity must be true or false or null"),
        ({"item_normalize": "l2"}, "item_normalize='l2' is not allowed"),
        ({"user_normalize": 1}, "user_normalize=1 is not allowed"),
        ({"validation_users": 0}, "validation_users must be an integer >= 1 or null"),
    ],
)
def test_side_settings_are_checked(params, fragment):
    with pytest.raises(KdqError, match=fragment):
        LightFMConfig(**params)


def test_users_without_train_positives_use_features_only(temporal):
    data = TrainData.from_split(temporal)
    model = LightFMHybrid(LightFMConfig(**FAST, features="both")).fit(data)
    cold = data.interactions.getnnz(axis=1) == 0
    assert cold.any()
    identity = model.user_features_[:, : len(data.user_ids)].getnnz(axis=1)
    assert (identity[cold] == 0).all() and (identity[~cold] == 1).all()
    assert sp.isspmatrix_csr(model.user_features_)
