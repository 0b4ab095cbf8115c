"""The evaluator's kernels (packed counts, bands, top k) and the paths only large or skewed rows take."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from lightfm import LightFM
from lightfm_fixtures import disjoint, random_interactions, random_model

from kdq_lab.evaluation import evaluate, rank_positives
from kdq_lab.evaluation.counting import (
    SORT_FROM,
    Workspace,
    band_counts,
    ordered_bits,
    query_counts,
    tie_keys,
    top_by_keys,
    top_positions,
)


@pytest.mark.parametrize("n", [1, 13, 2040, 2041, 5000])
def test_packed_counts_equal_plain_counts(n):
    rng = np.random.default_rng(n)
    matrix = rng.integers(0, 5, (7, n)).astype(np.float32)
    thresholds = rng.integers(0, 6, 7).astype(np.float32)
    ws = Workspace(7, n)
    for _ in range(2):  # a reused workspace gives the same answer
        counts = ws.count(matrix, thresholds, np.greater_equal)
        assert np.array_equal(counts, (matrix >= thresholds[:, None]).sum(axis=1))
    assert np.array_equal(ws.count(matrix, thresholds, np.greater), (matrix > thresholds[:, None]).sum(axis=1))


def _queries(lengths: np.ndarray, n: int, rng: np.random.Generator):
    rows = np.repeat(np.arange(len(lengths)), lengths)
    slots = np.arange(len(rows)) - (np.cumsum(lengths) - lengths)[rows]
    return rows, slots, rng.integers(0, n, len(rows))


def test_query_counts_light_and_heavy_rows():
    rng = np.random.default_rng(0)
    n = 300
    lengths = np.array([SORT_FROM + 30, SORT_FROM, SORT_FROM - 1, 5, 1, 0])  # sorted descending, as the evaluator does
    matrix = rng.integers(0, 40, (len(lengths), n)).astype(np.float32)  # many exact ties
    rows, slots, columns = _queries(lengths, n, rng)
    values = matrix[rows, columns]
    ws = Workspace(len(lengths), n)
    at_least, at_half = query_counts(ws, matrix, rows, slots, lengths, [values, values + 0.5], False)
    assert np.array_equal(at_least, (matrix[rows] >= values[:, None]).sum(axis=1))
    assert np.array_equal(at_half, (matrix[rows] >= values[:, None] + 0.5).sum(axis=1))
    (strict,) = query_counts(ws, matrix, rows, slots, lengths, [values], True)
    assert np.array_equal(strict, (matrix[rows] > values[:, None]).sum(axis=1))


def test_band_counts_find_every_crowded_band_light_and_heavy():
    rng = np.random.default_rng(1)
    n = 500
    lengths = np.array([SORT_FROM + 10, 9, 3, 1])
    matrix = (rng.integers(0, 50, (len(lengths), n)) * 0.5).astype(np.float32)  # crowded bands everywhere
    rows, slots, columns = _queries(lengths, n, rng)
    values = matrix[rows, columns]
    lo, hi = values - 0.25, values + 0.25  # the band holds exactly the equal scores
    certain, query, items = band_counts(Workspace(len(lengths), n), matrix, rows, slots, lengths, lo, hi)
    assert np.array_equal(certain, (matrix[rows] >= hi[:, None]).sum(axis=1))
    inside = (matrix[rows] >= lo[:, None]) & (matrix[rows] < hi[:, None])
    crowded = inside.sum(axis=1) > 1
    expected = {(int(q), int(i)) for q, i in zip(*np.nonzero(inside)) if crowded[q]}
    assert set(zip(query.tolist(), items.tolist())) == expected


def test_top_positions_match_a_full_sort_with_ties_and_exclusions():
    rng = np.random.default_rng(2)
    scores = rng.integers(0, 6, (40, 700)).astype(np.float32)
    scores[rng.random(scores.shape) < 0.3] = -np.inf  # excluded
    scores[0, :] = -np.inf
    scores[1, 5:] = -np.inf  # fewer eligible items than k
    order = rng.permutation(700)
    for k in (1, 10, 50):
        ours = top_positions(scores, order, k, Workspace(40, 700))
        for row in range(len(scores)):
            eligible = np.flatnonzero(scores[row] > -np.inf)
            best = eligible[np.lexsort((order[eligible], -scores[row, eligible]))][:k]
            expected = np.full(k, -1)
            expected[: len(best)] = best
            assert np.array_equal(ours[row], expected)


def test_top_by_keys_equals_top_positions_among_many_ties():
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 3, (30, 500)).astype(np.float32)
    scores[rng.random(scores.shape) < 0.2] = -np.inf
    scores[2, 3:] = -np.inf
    order = rng.permutation(500)
    ws = Workspace(30, 500)
    for k in (1, 10, 40):
        assert np.array_equal(top_by_keys(tie_keys(scores, order, ws), k, ws), top_positions(scores, order, k))


def test_ordered_bits_keep_the_order_of_floats():
    values = np.array([-np.inf, -3.5, -1e-30, -0.0, 0.0, 1e-30, 2.0, np.inf], dtype=np.float32)
    bits = ordered_bits(values)
    assert (np.diff(bits.astype(np.int64)) >= 0).all() and bits[3] == bits[4]
    assert (np.diff(bits.astype(np.int64))[[0, 1, 2, 4, 5, 6]] > 0).all()


def _heavy_case(ties: bool, seed: int):
    """Users with many test items (the sorted path) and Zipf-skewed item biases (ties among popular items)."""
    n_users, n_items = 60, 400
    model = random_model(n_users, n_items, 8, seed, ties)
    if ties:  # popularity-like biases: few distinct values, most items share the smallest
        counts = np.random.default_rng(seed).zipf(1.5, n_items).clip(max=20)
        model.item_biases[:] = np.log(counts)
    rng = np.random.default_rng(seed + 1)
    train = random_interactions(n_users, n_items, 2000, seed + 2)
    test = disjoint(random_interactions(n_users, n_items, 1500, seed + 3), train)
    heavy = sp.lil_matrix(test.shape, dtype=np.float32)
    for user in range(4):  # a few users with well over SORT_FROM test items
        heavy[user, rng.choice(n_items, SORT_FROM + 40 * user, replace=False)] = 1
    test = disjoint(sp.csr_matrix(test + heavy.tocsr()), train)
    return model, train, test


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("threads", [1, 2])
def test_heavy_and_skewed_rows_equal_predict_rank(ties, threads):
    model, train, test = _heavy_case(ties, 3)
    assert test.getnnz(axis=1).max() >= SORT_FROM
    ours = rank_positives(model, test, exclude=train, num_threads=threads, batch_size=7)
    theirs = model.predict_rank(test, train_interactions=train)
    assert np.array_equal(ours["rank"].to_numpy(), theirs.data.astype(np.float64))


class TieOrdered:
    """A scorer with heavy ties (integer scores) and a declared tie order."""

    name = "tie-ordered"

    def __init__(self, scores: np.ndarray, order: np.ndarray):
        self.scores, self.order = scores, order

    def score(self, users):
        return self.scores[users]

    def tie_order(self):
        return self.order


def test_tie_order_ranks_on_heavy_rows_equal_a_full_sort():
    _, train, test = _heavy_case(True, 5)
    rng = np.random.default_rng(6)
    scores = rng.integers(0, 4, test.shape).astype(np.float32)
    order = rng.permutation(test.shape[1])
    ranks = rank_positives(TieOrdered(scores, order), test, exclude=train, batch_size=5)
    eligible = ~train.toarray().astype(bool)
    for user, item, rank in ranks.itertuples(index=False):
        better = (scores[user] > scores[user, item]) | ((scores[user] == scores[user, item]) & (order < order[item]))
        assert rank == np.count_nonzero(better & eligible[user])


def test_trained_lightfm_with_crowded_bands_equals_lightfm_evaluation():
    from lightfm.evaluation import auc_score, precision_at_k

    train = random_interactions(200, 3000, 6000, 7)
    test = disjoint(random_interactions(200, 3000, 1600, 8), train)
    model = LightFM(loss="warp", no_components=16, random_state=0).fit(train, epochs=2)
    table = evaluate(model, test, exclude=train, k=10)
    np.testing.assert_allclose(table["precision@10"], precision_at_k(model, test, train, k=10), atol=1e-6)
    np.testing.assert_allclose(table["auc"], auc_score(model, test, train), atol=1e-6)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize(
    "user_scale, item_scale, item_spread, bias",
    [
        (100.0, 100.0, 1e-4, 0.0),  # large cancelling products
        (1.0, 0.0, 1e-3, 1e4),  # a large common user bias: each side rounds the sum at its size
    ],
)
def test_near_ties_beyond_one_float_step_equal_predict_rank(seed, user_scale, item_scale, item_spread, bias):
    """BLAS and LightFM differ by many float32 steps, and near-ties are everywhere.

    Items are one shared vector plus tiny perturbations; the rounding bound, not luck, must
    keep the ranks exact (a bound fifty times too small fails here).
    """
    from lightfm_fixtures import random_features

    rng = np.random.default_rng(seed)
    n_users, n_items, d = 60, 500, 64
    uf = random_features(n_users, 30, seed, identity=True)
    model = random_model(uf.shape[1], n_items, d, seed)
    model.user_embeddings[:] = rng.normal(0, user_scale, model.user_embeddings.shape)
    model.user_biases[:] = rng.normal(bias, 1, uf.shape[1])
    shared = rng.normal(0, item_scale, d)
    model.item_embeddings[:] = shared + rng.normal(0, item_spread, model.item_embeddings.shape)
    model.item_biases[:] = 0
    train = random_interactions(n_users, n_items, 3000, seed + 1)
    test = disjoint(random_interactions(n_users, n_items, 1500, seed + 2), train)
    ours = rank_positives(model, test, exclude=train, user_features=uf)
    theirs = model.predict_rank(test, train_interactions=train, user_features=uf)
    assert np.array_equal(ours["rank"].to_numpy(), theirs.data.astype(np.float64))
