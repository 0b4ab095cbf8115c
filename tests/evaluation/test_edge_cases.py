"""Evaluation edge cases: non-finite LightFM models are refused, empty tests give empty tables, shapes must agree."""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.sparse as sp
from lightfm_fixtures import disjoint, random_features, random_interactions, random_model

from kdq_lab.data.targets import Target, target
from kdq_lab.errors import KdqError
from kdq_lab.evaluation import EvalOptions, evaluate, rank_positives
from kdq_lab.evaluation.ranking import evaluate_all, top_k
from kdq_lab.models import LightFMConfig, LightFMHybrid, TrainData, make_model

N_USERS, N_ITEMS = 60, 45
PARAMETERS = ["user_embeddings", "user_biases", "item_embeddings", "item_biases"]


@pytest.fixture(scope="module")
def data(tiny_split):
    return TrainData.from_split(tiny_split)


@pytest.fixture(scope="module")
def goal(tiny_split) -> Target:
    return target(tiny_split, "test")


@pytest.fixture(scope="module")
def hybrid(data):
    return LightFMHybrid(LightFMConfig(no_components=4, epochs=1, patience=None, curve_users=20)).fit(data)


def matrices(seed: int = 0) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    train = random_interactions(N_USERS, N_ITEMS, 400, seed + 1)
    return train, disjoint(random_interactions(N_USERS, N_ITEMS, 150, seed + 2), train)


def poison(array: np.ndarray, value: float, count: int) -> None:
    flat = array.reshape(-1)
    flat[np.linspace(0, flat.size - 1, count).astype(int)] = value


# ----------------------------------------------------------------------------- non-finite parameters


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("name", PARAMETERS)
def test_a_raw_lightfm_model_with_a_non_finite_parameter_is_refused(name, value):
    model = random_model(N_USERS, N_ITEMS, 8, 0)
    train, test = matrices()
    poison(getattr(model, name), value, 2)
    with pytest.raises(KdqError, match=rf"non-finite .* in {name} \(2 of {getattr(model, name).size}\)"):
        evaluate(model, test, exclude=train)
    with pytest.raises(KdqError, match=name):
        top_k(model, np.arange(5), 3, exclude=train)


@pytest.mark.parametrize("value", [np.nan, np.inf])
@pytest.mark.parametrize("side", ["user", "item"])
def test_non_finite_feature_values_are_refused(side, value):
    uf, itf = random_features(N_USERS, 10, 0, True), random_features(N_ITEMS, 12, 1, True)
    model = random_model(uf.shape[1], itf.shape[1], 8, 0)
    train, test = matrices()
    poison((uf if side == "user" else itf).data, value, 3)
    with pytest.raises(KdqError, match=f"{side} feature values \\(3 of"):
        evaluate(model, test, exclude=train, user_features=uf, item_features=itf)


def test_every_non_finite_array_is_named_at_once():
    model = random_model(N_USERS, N_ITEMS, 8, 0)
    _, test = matrices()
    poison(model.user_biases, np.nan, 1)
    poison(model.item_embeddings, np.inf, 4)
    with pytest.raises(KdqError) as caught:
        evaluate(model, test)
    assert "user_biases (1 of 60)" in str(caught.value) and "item_embeddings (4 of 360)" in str(caught.value)


@pytest.mark.parametrize("value", [np.nan, np.inf])
@pytest.mark.parametrize("name", PARAMETERS)
def test_the_lab_wrapper_with_a_non_finite_parameter_is_refused(hybrid, goal, name, value):
    array = getattr(hybrid.model_, name)
    kept = array.copy()
    try:
        poison(array, value, 1)
        with pytest.raises(KdqError, match=rf"non-finite .* in {name} \(1 of"):
            evaluate(hybrid, goal.positives, exclude=goal.exclude)
    finally:
        array[...] = kept
    assert len(evaluate(hybrid, goal.positives, exclude=goal.exclude)) > 0


# ----------------------------------------------------------------------------- empty tests


def reference_columns(**kw) -> list[str]:
    train, test = matrices()
    return list(evaluate_all(random_model(N_USERS, N_ITEMS, 8, 0), test, exclude=train, k=[5, 10], **kw).per_user)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("top", [0, 7])
@pytest.mark.parametrize("shape", [(N_USERS, N_ITEMS), (0, N_ITEMS)], ids=["no positive", "no user"])
def test_an_empty_test_gives_an_empty_table_with_the_usual_columns(threads, top, shape):
    model = random_model(N_USERS, N_ITEMS, 8, 0)
    empty = sp.csr_matrix(shape, dtype=np.float32)
    result = evaluate_all(model, empty, exclude=empty, k=[5, 10], num_threads=threads, options=EvalOptions(top=top))
    assert result.per_user.empty and list(result.per_user) == reference_columns(options=EvalOptions(top=top))
    assert result.ranks.empty and list(result.ranks) == ["user", "item", "rank"]
    assert (result.top is None) if not top else result.top.shape == (0, top)
    assert rank_positives(model, empty, num_threads=threads).empty


@pytest.mark.parametrize("threads", [1, 2])
def test_an_empty_test_of_a_lab_model_gives_an_empty_table(data, goal, threads):
    model = make_model("popularity", {}).fit(data)
    empty = sp.csr_matrix(goal.positives.shape, dtype=np.float32)
    table = evaluate(model, empty, k=[5, 10], num_threads=threads)
    assert table.empty and "ndcg@10" in table.columns and "user_id" in table.columns


@pytest.mark.parametrize("threads", [1, 2])
def test_top_k_of_no_user_is_an_empty_list(data, goal, threads):
    model = random_model(N_USERS, N_ITEMS, 8, 0)
    train, _ = matrices()
    assert top_k(model, np.array([], dtype=np.int64), 4, exclude=train, num_threads=threads).shape == (0, 4)
    popularity = make_model("popularity", {}).fit(data)
    assert top_k(popularity, [], 4, exclude=goal.exclude, num_threads=threads).shape == (0, 4)


# ----------------------------------------------------------------------------- shapes


def grow(matrix: sp.csr_matrix, users: int = 0, items: int = 0) -> sp.csr_matrix:
    """The same entries in a matrix with ``users`` more (or fewer) rows and ``items`` more (or fewer) columns."""
    coo = matrix.tocoo()
    shape = (matrix.shape[0] + users, matrix.shape[1] + items)
    keep = (coo.row < shape[0]) & (coo.col < shape[1])
    return sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=shape)


@pytest.mark.parametrize(
    "users, items, message",
    [
        (0, 1, f"test has {N_ITEMS + 1} items, the model scores {N_ITEMS}"),
        (0, -1, f"test has {N_ITEMS - 1} items, the model scores {N_ITEMS}"),
        (1, 0, f"test has {N_USERS + 1} users, the model scores {N_USERS}"),
        (-1, 0, f"test has {N_USERS - 1} users, the model scores {N_USERS}"),
    ],
)
def test_a_raw_model_and_a_test_of_other_sizes_are_refused_naming_both_counts(users, items, message):
    model = random_model(N_USERS, N_ITEMS, 8, 0)
    _, test = matrices()
    with pytest.raises(KdqError, match=re.escape(message)):
        evaluate(model, grow(test, users, items))
    with pytest.raises(KdqError, match=re.escape(message)):
        evaluate(model, sp.csr_matrix(grow(test, users, items).shape), num_threads=2)  # empty, all the same


def test_feature_matrices_must_fit_the_test_and_the_model():
    uf, itf = random_features(N_USERS, 10, 0, False), random_features(N_ITEMS, 12, 1, False)
    model = random_model(10, 12, 8, 0)
    train, test = matrices()
    cases = [
        (grow(uf, users=-2), itf, f"test has {N_USERS} users, user_features has {N_USERS - 2} rows"),
        (uf, grow(itf, users=3), f"test has {N_ITEMS} items, item_features has {N_ITEMS + 3} rows"),
        (grow(uf, items=1), itf, "user_features has 11 columns, the model has 10 user feature embeddings"),
        (uf, grow(itf, items=-1), "item_features has 11 columns, the model has 12 item feature embeddings"),
    ]
    for user_features, item_features, message in cases:
        with pytest.raises(KdqError, match=re.escape(message)):
            evaluate(model, test, exclude=train, user_features=user_features, item_features=item_features)


def test_exclusion_and_per_user_inputs_must_fit_the_test():
    model = random_model(N_USERS, N_ITEMS, 8, 0)
    train, test = matrices()
    cases = [
        ({"exclude": grow(train, items=2)}, f"test has {N_ITEMS} items, exclude has {N_ITEMS + 2} columns"),
        ({"exclude": grow(train, users=-1)}, f"test has {N_USERS} users, exclude has {N_USERS - 1} rows"),
        (
            {"options": EvalOptions(history=np.zeros(N_USERS - 1))},
            f"test has {N_USERS} users, history has {N_USERS - 1} entries",
        ),
        (
            {"options": EvalOptions(user_ids=list(range(N_USERS + 1)))},
            f"test has {N_USERS} users, user_ids has {N_USERS + 1} entries",
        ),
    ]
    for kw, message in cases:
        with pytest.raises(KdqError, match=re.escape(message)):
            evaluate(model, test, **kw)


def test_the_lab_wrapper_and_a_test_of_other_sizes_are_refused(hybrid, goal):
    test, exclude = goal.positives, goal.exclude
    n_users, n_items = test.shape
    with pytest.raises(KdqError, match=re.escape(f"test has {n_items + 1} items, the model scores {n_items}")):
        evaluate(hybrid, grow(test, items=1), exclude=grow(exclude, items=1))
    with pytest.raises(KdqError, match=re.escape(f"test has {n_users - 1} users, the model scores {n_users}")):
        evaluate(hybrid, grow(test, users=-1))


def test_a_lab_model_fitted_on_other_items_is_refused(data, goal):
    popularity = make_model("popularity", {}).fit(data)
    test = goal.positives
    n_items = test.shape[1]
    with pytest.raises(KdqError, match=re.escape(f"test has {n_items - 1} items, Popularity")):
        evaluate(popularity, grow(test, items=-1))


class WrongShape:
    """A scorer that returns one item too many (or too few) for the test."""

    def __init__(self, extra_items: int, extra_users: int = 0):
        self.extra_items, self.extra_users = extra_items, extra_users

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.zeros((len(users) + self.extra_users, N_ITEMS + self.extra_items), dtype=np.float32)


@pytest.mark.parametrize("extra_items, extra_users", [(1, 0), (-1, 0), (0, 1)])
def test_a_scorer_returning_the_wrong_shape_is_refused_naming_both(extra_items, extra_users):
    _, test = matrices()
    scorer = WrongShape(extra_items, extra_users)
    with pytest.raises(KdqError, match=r"test has \d+ users × 45 items in this batch, but WrongShape\.score returned"):
        evaluate(scorer, test)
    with pytest.raises(KdqError, match=r"WrongShape\.score returned"):
        top_k(scorer, np.arange(3), 2, exclude=test)


def test_top_k_refuses_users_outside_the_matrix():
    model = random_model(N_USERS, N_ITEMS, 8, 0)
    train, _ = matrices()
    with pytest.raises(KdqError, match=f"user {N_USERS} is not a row of exclude, which has {N_USERS} users"):
        top_k(model, np.array([0, N_USERS]), 3, exclude=train)
