"""Known answers of every metric on hand-made rankings, ties included (pessimistic, as LightFM)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from lightfm import LightFM
from lightfm.evaluation import auc_score, precision_at_k, reciprocal_rank

from kdq_lab.evaluation import beyond_accuracy, evaluate, top_k
from kdq_lab.evaluation.ranking import metrics_from_ranks

LOG3 = np.log2(3)


class Fixed:
    """A scorer returning a fixed score matrix."""

    name = "fixed"

    def __init__(self, scores):
        self.scores = np.asarray(scores, dtype=np.float32)

    def score(self, users):
        return self.scores[users]


def csr(rows, n_items, n_users=None):
    n_users = n_users or len(rows)
    r = [u for u, items in enumerate(rows) for _ in items]
    c = [i for items in rows for i in items]
    return sp.csr_matrix((np.ones(len(r), dtype=np.float32), (r, c)), shape=(n_users, n_items))


def lightfm_with_scores(scores: np.ndarray, n_users: int = 2) -> LightFM:
    """A LightFM model whose score of (u, i) is scores[i] (item biases, zero embeddings)."""
    model = LightFM(no_components=2)
    model._initialize(2, len(scores), n_users)
    model.item_embeddings[:] = 0
    model.user_embeddings[:] = 0
    model.user_biases[:] = 0
    model.item_biases[:] = scores
    return model


SCORES = np.array([0.9, 0.8, 0.8, 0.1, 0.5], dtype=np.float32)


def test_every_metric_on_a_tied_ranking():
    # item 0 is train (excluded); test = {1, 3}; item 1 ties with item 2 (a negative)
    # two identical users: lightfm.evaluation cannot handle a single-row matrix
    test, train = csr([[1, 3], [1, 3]], 5), csr([[0], [0]], 5)
    row = evaluate(Fixed([SCORES, SCORES]), test, exclude=train, k=2).iloc[0]
    # pessimistic ranks: item 1 -> 1 (item 2 ties), item 3 -> 3 (items 1, 2, 4 score higher)
    assert row["precision@2"] == 0.5 and row["recall@2"] == 0.5 and row["hit@2"] == 1
    assert row["ndcg@2"] == pytest.approx((1 / LOG3) / (1 + 1 / LOG3))
    assert row["map@2"] == pytest.approx(0.5 / 2)  # one hit at position 2: precision 1/2, over min(2, 2)
    assert row["mrr"] == pytest.approx(0.5)
    assert row["auc"] == pytest.approx(0.25)  # 4 pairs; the tie counts against the positive
    assert row["n_test"] == 2 and row["n_train"] == 1
    reference = lightfm_with_scores(SCORES)
    assert row["precision@2"] == pytest.approx(precision_at_k(reference, test, train, k=2)[0])
    assert row["auc"] == pytest.approx(auc_score(reference, test, train)[0])
    assert row["mrr"] == pytest.approx(reciprocal_rank(reference, test, train)[0])


def test_perfect_and_worst_rankings():
    test = csr([[0, 1], [3, 4]], 5)
    perfect = Fixed([[5, 4, 3, 2, 1], [1, 2, 3, 4, 5]])
    row = evaluate(perfect, test, k=[1, 2, 5])
    assert (row["precision@2"] == 1).all() and (row["ndcg@2"] == 1).all() and (row["map@2"] == 1).all()
    assert (row["auc"] == 1).all() and (row["mrr"] == 1).all() and (row["recall@1"] == 0.5).all()
    worst = evaluate(Fixed([[1, 2, 3, 4, 5], [5, 4, 3, 2, 1]]), test, k=2)
    assert (worst["precision@2"] == 0).all() and (worst["auc"] == 0).all() and (worst["hit@2"] == 0).all()
    assert worst["mrr"].tolist() == pytest.approx([1 / 4, 1 / 4])


def test_all_tied_scores_rank_every_positive_last():
    test = csr([[0, 2], [0, 2]], 4)
    row = evaluate(Fixed([[1, 1, 1, 1]] * 2), test, k=3).iloc[0]
    # each positive: 3 other items score >= it, so rank 3: no hit at k=3
    assert row["precision@3"] == 0 and row["mrr"] == pytest.approx(1 / 4)
    # LightFM's AUC subtracts i for the i-th positive only, so tied positives push it below 0:
    # ((1 - 3/2) + (1 - 2/2)) / 2 = -0.25. We match LightFM, quirk included.
    assert row["auc"] == pytest.approx(-0.25)
    assert row["auc"] == pytest.approx(auc_score(lightfm_with_scores(np.ones(4, np.float32)), test)[0])


def test_map_counts_tied_positives_together():
    # two positives tied at the top: both rank 1; precision at that position = 2/2
    ranks = pd.DataFrame({"user": [0, 0], "item": [0, 1], "rank": [1.0, 1.0]})
    table = metrics_from_ranks(ranks, np.array([2]), np.array([0]), 10, [2])
    assert table["map@2"].iloc[0] == pytest.approx(1.0)
    assert table["ndcg@2"].iloc[0] == pytest.approx(2 / LOG3 / (1 + 1 / LOG3))


def test_users_without_test_items_are_not_rows_and_k_list():
    test = csr([[1], [], [0]], 3)
    table = evaluate(Fixed([[0, 1, 2]] * 3), test, k=[1, 2])
    assert table["user"].tolist() == [0, 2]
    assert {"precision@1", "precision@2", "recall@1", "ndcg@2", "map@1", "hit@2"} <= set(table.columns)


def test_top_k_breaks_ties_by_item_and_skips_excluded():
    exclude = csr([[1], []], 4)
    top = top_k(Fixed([[3, 9, 3, 3], [0, 0, 0, 1]]), np.array([0, 1]), 3, exclude=exclude)
    assert top.tolist() == [[0, 2, 3], [3, 0, 1]]
    short = top_k(Fixed([[1, 2]]), np.array([0]), 3, exclude=csr([[0]], 2))
    assert short.tolist() == [[1, -1, -1]]


def test_beyond_accuracy_known_values():
    top = np.array([[0, 1], [0, 2]])
    popularity = np.array([3.0, 1.0, 0.0, 0.0])
    features = sp.csr_matrix(np.array([[1, 0], [1, 0], [0, 1], [0, 1]], dtype=float))
    out = beyond_accuracy(top, popularity, n_train_users=3, item_features=features)
    assert out["coverage"] == 0.75
    assert out["popularity"] == pytest.approx((3 + 1 + 3 + 0) / 4)
    assert out["novelty"] == pytest.approx(
        np.mean([-np.log2(4 / 4), -np.log2(2 / 4), -np.log2(4 / 4), -np.log2(1 / 4)])
    )
    assert out["diversity"] == pytest.approx(0.5)  # first list: identical items (0); second: orthogonal (1)
