"""iALS equals ``implicit``'s own model for the same seed and one thread; its metrics equal an independent count."""

from __future__ import annotations

import numpy as np
import pytest
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from kdq_lab.evaluation.ranking import evaluate
from kdq_lab.models import TrainData, model_spec
from kdq_lab.models.ials import IALS, IALSConfig


@pytest.fixture(scope="module")
def data(tiny_split):
    return TrainData.from_split(tiny_split, refit=True)  # no validation: trains every iteration


@pytest.mark.parametrize(
    "factors, regularization, alpha, iterations, seed", [(8, 0.01, 1.0, 3, 0), (16, 0.5, 7.5, 6, 11)]
)
def test_factors_and_scores_are_implicits_own(data, factors, regularization, alpha, iterations, seed):
    config = IALSConfig(
        factors=factors,
        regularization=regularization,
        alpha=alpha,
        iterations=iterations,
        random_state=seed,
        patience=None,
    )
    model = IALS(config).fit(data)
    confidence = data.weights.multiply(data.interactions > 0).tocsr().astype(np.float32)
    with threadpool_limits(1, "blas"):
        reference = AlternatingLeastSquares(
            factors=factors,
            regularization=regularization,
            alpha=alpha,
            iterations=iterations,
            random_state=seed,
            num_threads=1,
        )
        reference.fit(confidence, show_progress=False)
    np.testing.assert_array_equal(model.user_factors_, reference.user_factors)
    np.testing.assert_array_equal(model.item_factors_, reference.item_factors)
    users = np.arange(data.n_users)
    scores = model.score(users)
    known = data.interactions.getnnz(axis=1) > 0
    expected = reference.user_factors[known] @ reference.item_factors.T
    np.testing.assert_allclose(scores[known], expected, rtol=1e-5, atol=1e-6)
    assert (scores[~known] == 0).all(), "a user without train history scores every item 0"
    user = int(np.flatnonzero(known)[0])
    ids, _ = reference.recommend(user, confidence[user], N=10, filter_already_liked_items=False)
    order = np.argsort(-scores[user], kind="stable")[:10]
    assert set(ids.tolist()) == set(order.tolist())


def independent_metrics(scores: np.ndarray, tie_order: np.ndarray, test, exclude, k: int) -> dict[str, np.ndarray]:
    """Per user with test positives: precision@k and recall@k from a full sort by (score desc, tie order)."""
    precision, recall = [], []
    for user in np.flatnonzero(test.getnnz(axis=1)):
        eligible = np.setdiff1d(np.arange(scores.shape[1]), exclude[user].indices)
        eligible = np.union1d(eligible, test[user].indices)
        ranked = eligible[np.lexsort((tie_order[eligible], -scores[user, eligible]))]
        hits = np.isin(ranked[:k], test[user].indices).sum()
        precision.append(hits / k)
        recall.append(hits / test[user].nnz)
    return {f"precision@{k}": np.asarray(precision), f"recall@{k}": np.asarray(recall)}


def test_ranking_metrics_equal_an_independent_count_ties_included(tiny_split):
    data = TrainData.from_split(tiny_split, refit=True)
    model = IALS(IALSConfig(factors=8, iterations=4, patience=None)).fit(data)
    test, exclude = tiny_split.test.interactions, tiny_split.known.interactions
    table = evaluate(model, test, exclude=exclude, k=5)
    scores = model.score(np.arange(data.n_users))
    assert (scores == 0).all(axis=1).any(), "users without history (all scores tied) are part of the check"
    expected = independent_metrics(scores, model.tie_order(), test, exclude, 5)
    for metric, values in expected.items():
        np.testing.assert_allclose(table[metric].to_numpy(), values, rtol=0, atol=1e-12)


def test_its_iteration_parameter_and_search_space():
    spec = model_spec("ials")
    assert spec.iterative and IALS.iteration_parameter == "iterations" and spec.persistable
    assert spec.pin_iterations({"factors": 8}, 4) == {"factors": 8, "iterations": 4, "patience": None}
    assert set(spec.search_space) == {"factors", "regularization", "alpha"}
    assert spec.config.from_dict({"num_threads": 2}).deterministic is False
