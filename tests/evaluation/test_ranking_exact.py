"""Ranking metrics equal lightfm.evaluation on the same model, ties included, to 1e-6 per user."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lightfm.evaluation import auc_score, precision_at_k, recall_at_k, reciprocal_rank
from lightfm_fixtures import disjoint, random_features, random_interactions, random_model

from kdq_lab.errors import KdqError
from kdq_lab.evaluation import EvalOptions, evaluate, rank_positives

N_USERS, N_ITEMS = 300, 250
CASES = [
    # (seed, d, with features, identity in features, ties)
    (0, 8, False, False, False),
    (1, 32, True, True, False),
    (2, 16, True, False, False),
    (3, 8, False, False, True),
    (4, 16, True, True, True),
    (5, 64, False, False, False),
]


def case(seed, d, with_features, identity, ties):
    uf = random_features(N_USERS, 20, seed, identity) if with_features else None
    itf = random_features(N_ITEMS, 30, seed + 100, identity) if with_features else None
    model = random_model(
        uf.shape[1] if uf is not None else N_USERS, itf.shape[1] if itf is not None else N_ITEMS, d, seed, ties
    )
    train = random_interactions(N_USERS, N_ITEMS, 3000, seed + 1)
    test = disjoint(random_interactions(N_USERS, N_ITEMS, 1200, seed + 2), train)
    return model, train, test, uf, itf


@pytest.mark.parametrize("params", CASES)
@pytest.mark.parametrize("threads", [1, 2])
def test_ranks_equal_predict_rank_bit_for_bit(params, threads):
    model, train, test, uf, itf = case(*params)
    ours = rank_positives(model, test, exclude=train, user_features=uf, item_features=itf, num_threads=threads)
    theirs = model.predict_rank(test, train_interactions=train, user_features=uf, item_features=itf)
    assert np.array_equal(ours["rank"].to_numpy(), theirs.data.astype(np.float64))


@pytest.mark.parametrize("params", CASES)
def test_metrics_equal_lightfm_evaluation(params):
    model, train, test, uf, itf = case(*params)
    kw = {"user_features": uf, "item_features": itf}
    table = evaluate(model, test, exclude=train, k=[5, 10], **kw)
    reference = {
        "precision@5": precision_at_k(model, test, train, k=5, **kw),
        "precision@10": precision_at_k(model, test, train, k=10, **kw),
        "recall@10": recall_at_k(model, test, train, k=10, **kw),
        "auc": auc_score(model, test, train, **kw),
        "mrr": reciprocal_rank(model, test, train, **kw),
    }
    for metric, values in reference.items():
        assert len(table) == len(values)
        np.testing.assert_allclose(table[metric].to_numpy(), values, rtol=0, atol=1e-6, err_msg=metric)


def test_many_ties_are_resolved_pessimistically():
    model, train, test, _, _ = case(3, 4, False, False, True)
    model.item_embeddings[:] = 0  # every item scores its bias: 0 or 1, massive ties
    table = evaluate(model, test, exclude=train, k=10)
    np.testing.assert_allclose(table["precision@10"], precision_at_k(model, test, train, k=10), atol=1e-6)
    np.testing.assert_allclose(table["auc"], auc_score(model, test, train), atol=1e-6)


def test_without_train_and_with_overlap():
    model, _train, test, _, _ = case(0, 8, False, False, False)
    table = evaluate(model, test, k=10)
    np.testing.assert_allclose(table["precision@10"], precision_at_k(model, test, k=10), atol=1e-6)
    np.testing.assert_allclose(table["auc"], auc_score(model, test), atol=1e-6)
    with pytest.raises(KdqError, match="share"):
        evaluate(model, test, exclude=test, k=10)


@pytest.mark.parametrize("params", CASES)
def test_batches_and_threads_do_not_change_results(params):
    """BLAS may round a score differently for another batch shape; the band and LightFM's kernel settle it."""
    model, train, test, uf, itf = case(*params)
    kw = {"exclude": train, "k": [5, 10], "user_features": uf, "item_features": itf}
    one = evaluate(model, test, num_threads=1, options=EvalOptions(batch_size=1), **kw)
    for threads, size in ((1, 7), (2, 7), (2, 33), (2, None)):
        other = evaluate(model, test, num_threads=threads, options=EvalOptions(batch_size=size), **kw)
        pd.testing.assert_frame_equal(one, other, check_exact=True)


def test_lab_lightfm_model_is_evaluated_exactly(tiny_split):
    from kdq_lab.models import LightFMConfig, LightFMHybrid, TrainData

    model = LightFMHybrid(LightFMConfig(epochs=3, no_components=8, patience=None)).fit(TrainData.from_split(tiny_split))
    inner, uf, itf = model.lightfm_parts()
    test, train = tiny_split.test.interactions, tiny_split.train.interactions
    table = evaluate(model, test, exclude=train, k=5)
    np.testing.assert_allclose(
        table["precision@5"], precision_at_k(inner, test, train, k=5, user_features=uf, item_features=itf), atol=1e-6
    )
    assert list(table["user_id"]) == list(tiny_split.user_ids[table["user"]])
