"""Every baseline beats random on a small KDQ catalog (paired bootstrap interval above zero)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from kdq_lab.data.splits import SplitConfig
from kdq_lab.data.store import load_split, prepare
from kdq_lab.errors import KdqError
from kdq_lab.evaluation import evaluate, paired_comparison, top_k
from kdq_lab.models import TrainData, make_model


@pytest.fixture(scope="module")
def splits(small_catalog, tmp_path_factory):
    root = tmp_path_factory.mktemp("processed")
    return {
        kind: load_split(prepare(small_catalog, SplitConfig(kind=kind), root))
        for kind in ("user_temporal", "cold_users")
    }


def ndcg(model, split) -> pd.Series:
    table = evaluate(model, split.test.interactions, exclude=split.train.interactions, k=10)
    return table.set_index("user")["ndcg@10"]


@pytest.mark.parametrize(
    "kind, params, split",
    [
        ("popularity", {}, "user_temporal"),
        ("popularity", {"window_days": 60}, "user_temporal"),
        ("itemknn", {}, "user_temporal"),
        ("ease", {}, "user_temporal"),
        ("content", {}, "user_temporal"),
        ("content", {}, "cold_users"),
        ("lightfm", {"features": "ids", "no_components": 16, "epochs": 15}, "user_temporal"),
        ("lightfm", {"features": "both", "no_components": 16, "epochs": 15}, "cold_users"),
        ("oracle", {}, "cold_users"),
    ],
)
def test_beats_random(splits, kind, params, split):
    data = TrainData.from_split(splits[split])
    model = make_model(kind, params).fit(data)
    baseline = make_model("random", {"seed": 1}).fit(data)
    result = paired_comparison(ndcg(model, splits[split]), ndcg(baseline, splits[split]), seed=0)
    assert result["lo"] > 0, result


def test_random_scores_do_not_depend_on_batching(splits):
    data = TrainData.from_split(splits["user_temporal"])
    model = make_model("random", {"seed": 5}).fit(data)
    users = np.arange(50)
    assert np.array_equal(model.score(users)[10:20], model.score(users[10:20]))
    assert model.score(users).min() >= 0 and model.score(users).max() < 1


def test_history_models_fall_back_to_popularity_for_cold_users(splits):
    split = splits["cold_users"]
    data = TrainData.from_split(split)
    cold = np.flatnonzero(data.interactions.getnnz(axis=1) == 0)[:5]
    nothing = sp.csr_matrix(data.interactions.shape, dtype=np.float32)
    popularity = top_k(make_model("popularity").fit(data), cold, 10, exclude=nothing)
    for kind in ("itemknn", "ease"):
        model = make_model(kind).fit(data)
        assert (model.score(cold) == 0).all(), "no history, no signal"
        assert np.array_equal(top_k(model, cold, 10, exclude=nothing), popularity), "the tie order is popularity"


def test_ease_refuses_catalogs_that_do_not_fit(splits):
    with pytest.raises(KdqError, match="max_items"):
        make_model("ease", {"max_items": 10}).fit(TrainData.from_split(splits["user_temporal"]))


def test_oracle_needs_ground_truth(splits):
    from dataclasses import replace

    data = replace(TrainData.from_split(splits["user_temporal"]), ground_truth=None)
    with pytest.raises(KdqError, match="ground truth"):
        make_model("oracle").fit(data)


def test_unknown_baseline_parameter():
    with pytest.raises(KdqError, match="allowed: neighbors, shrink"):
        make_model("itemknn", {"k": 5})
