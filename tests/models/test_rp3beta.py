"""RP3beta against a dense NumPy computation of the same formula, on small matrices and on the tiny catalog."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from kdq_lab.models import TrainData, model_spec
from kdq_lab.models.rp3beta import RP3betaConfig, RP3betaScorer, rp3beta_similarity


def dense_rp3beta(x: np.ndarray, alpha: float, beta: float, neighbors: int) -> np.ndarray:
    """The formula, one item at a time, on dense arrays."""
    x = (x > 0).astype(np.float64)
    user_degree, item_degree = x.sum(axis=1, keepdims=True), x.sum(axis=0, keepdims=True)
    p_ui = np.divide(x, user_degree, out=np.zeros_like(x), where=user_degree > 0) ** alpha
    p_iu = np.divide(x.T, item_degree.T, out=np.zeros_like(x.T), where=item_degree.T > 0) ** alpha
    w = p_iu @ p_ui
    np.fill_diagonal(w, 0.0)
    popularity = item_degree.ravel()
    w = w * np.divide(1.0, popularity**beta, out=np.zeros_like(popularity), where=popularity > 0)[None, :]
    out = np.zeros_like(w)
    for i in range(w.shape[0]):  # test only: one row at a time
        keep = [j for j in np.argsort(-w[i], kind="stable")[:neighbors] if w[i, j] != 0]
        out[i, keep] = w[i, keep]
    return out


def random_matrix(seed: int, users: int, items: int, density: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = (rng.random((users, items)) < density).astype(np.float64)
    x[:, 0] = 0  # an item nobody used
    x[1] = 0  # a user without history
    return x * rng.integers(1, 5, size=x.shape)  # weights: RP3beta reads the binary graph only


@pytest.mark.parametrize(
    "seed, alpha, beta, neighbors", [(0, 1.0, 0.0, 50), (1, 0.5, 0.5, 5), (2, 1.7, 1.0, 3), (3, 0.1, 0.3, 1)]
)
def test_similarity_equals_the_dense_formula(seed, alpha, beta, neighbors):
    x = random_matrix(seed, 30, 12, 0.3)
    got = rp3beta_similarity(sp.csr_matrix(x), alpha, beta, neighbors).toarray()
    full, top = dense_rp3beta(x, alpha, beta, x.shape[1]), dense_rp3beta(x, alpha, beta, neighbors)
    kept = got != 0
    np.testing.assert_allclose(got[kept], full[kept], rtol=1e-6)  # every kept entry is the formula's
    # the kept values per row are the formula's top values (which of two equal values is kept is a tie)
    np.testing.assert_allclose(-np.sort(-got, axis=1), -np.sort(-top, axis=1), rtol=1e-6, atol=1e-9)
    assert (np.count_nonzero(got, axis=1) <= neighbors).all() and (np.diag(got) == 0).all()


def test_scores_are_history_times_w_and_users_without_history_follow_popularity(tiny_split):
    data = TrainData.from_split(tiny_split)
    model = RP3betaScorer(RP3betaConfig(alpha=0.8, beta=0.4, neighbors=20)).fit(data)
    x = data.interactions.toarray()
    expected = (x > 0).astype(np.float64) @ model.similarity_.toarray().astype(np.float64)
    users = np.arange(data.n_users)
    np.testing.assert_allclose(model.score(users), expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(
        -np.sort(-model.similarity_.toarray(), axis=1), -np.sort(-dense_rp3beta(x, 0.8, 0.4, 20), axis=1), rtol=1e-5
    )
    cold = np.flatnonzero(x.sum(axis=1) == 0)
    assert len(cold) and (model.score(cold) == 0).all()
    popularity = (x > 0).sum(axis=0)
    first = np.argsort(model.tie_order())[:5]
    assert (np.diff(popularity[first]) <= 0).all(), "ties fall back to popularity"


def test_registered_with_its_search_space():
    spec = model_spec("rp3beta")
    assert spec.search_space == {
        "alpha": {"float": [0.1, 2.0]},
        "beta": {"float": [0.0, 1.0]},
        "neighbors": {"int": [10, 1000], "log": True},
    }
    assert spec.persistable and not spec.iterative and spec.role_of({}) == "ids"
