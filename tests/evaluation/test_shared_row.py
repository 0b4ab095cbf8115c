"""Scorers whose rows do not depend on the user are ranked once: ranks, metrics, top lists and ties@k equal the
dense path's exactly, ties included, whatever the exclusions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from kdq_lab.errors import KdqError
from kdq_lab.evaluation.ranking import EvalOptions, SharedRow, evaluate_all
from kdq_lab.models import TrainData, make_model


class Dense:
    """The same model without its shared row: the evaluator scores every user densely."""

    def __init__(self, model):
        self.model = model

    def score(self, users):
        return self.model.score(users)

    def tie_order(self):
        return self.model.tie_order()


@pytest.fixture(scope="module")
def data(tiny_split):
    return TrainData.from_split(tiny_split)


@pytest.mark.parametrize("kind", ["popularity", "itemknn", "ease", "ials", "rp3beta"])
@pytest.mark.parametrize("ks, top, batch", [([10], 10, None), ([1, 5, 20], 25, 7), ([3], 0, 1)])
def test_the_shared_row_path_equals_the_dense_path(kind, ks, top, batch, data, tiny_split):
    model = make_model(kind).fit(data)
    assert isinstance(model, SharedRow) and model.shared_row()[0].any(), "some users are on the shared row"
    test, exclude = tiny_split.test.interactions, tiny_split.known.interactions
    options = EvalOptions(top=top, batch_size=batch, user_ids=tiny_split.user_ids)
    fast = evaluate_all(model, test, exclude=exclude, k=ks, options=options, num_threads=2)
    dense = evaluate_all(Dense(model), test, exclude=exclude, k=ks, options=options, num_threads=1)
    pd.testing.assert_frame_equal(fast.ranks, dense.ranks, check_exact=True)
    pd.testing.assert_frame_equal(fast.per_user, dense.per_user, check_exact=True)
    if top:
        np.testing.assert_array_equal(fast.top, dense.top)
        if kind == "popularity":
            assert any(fast.per_user[f"ties@{k}"].any() for k in ks), "ties of the shared row cross a cut-off"


def test_a_user_with_fewer_eligible_items_than_the_list_gets_minus_one(tiny_split, data):
    model = make_model("popularity").fit(data)
    test = tiny_split.test.interactions
    user = int(np.flatnonzero(test.getnnz(axis=1))[0])
    everything = np.ones(test.shape, dtype=bool)
    everything[test.toarray() > 0] = False
    exclude = sp.csr_matrix(everything)
    lil = exclude.tolil()
    lil[user, :3] = 0  # three items besides the test positives stay eligible for this user
    lil[user, test[user].indices] = 0
    exclude = sp.csr_matrix(lil)
    exclude.eliminate_zeros()
    options = EvalOptions(top=30)
    fast = evaluate_all(model, test, exclude=exclude, k=[5, 20], options=options)
    dense = evaluate_all(Dense(model), test, exclude=exclude, k=[5, 20], options=options)
    np.testing.assert_array_equal(fast.top, dense.top)
    pd.testing.assert_frame_equal(fast.per_user, dense.per_user, check_exact=True)
    assert (fast.top == -1).any()


class Lying:
    def __init__(self, mask, row):
        self.mask, self.row = mask, row

    def score(self, users):
        return np.zeros((len(users), 4), dtype=np.float32)

    def tie_order(self):
        return np.arange(4)

    def shared_row(self):
        return self.mask, self.row


@pytest.mark.parametrize(
    "mask, row, message",
    [
        (np.ones(3, dtype=bool), np.zeros(4, dtype=np.float32), "gives a mask"),
        (np.ones(2, dtype=bool), np.zeros(5, dtype=np.float32), "gives a row"),
        (np.ones(2, dtype=bool), np.array([0, np.nan, 0, 0], dtype=np.float32), "non-finite"),
        (np.ones(2), np.zeros(4, dtype=np.float32), "gives a mask"),
    ],
)
def test_a_bad_shared_row_is_refused(mask, row, message):
    with pytest.raises(KdqError, match=message):
        evaluate_all(Lying(mask, row), sp.csr_matrix(np.eye(2, 4)), k=2)
