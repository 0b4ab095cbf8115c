"""Ties never decide a comparison: documented tie orders, LightFM's pessimistic rule, and the ties@k diagnostic."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from kdq_lab.evaluation.ranking import EvalOptions, evaluate, evaluate_all, top_k
from kdq_lab.models import make_model

# Popularity counts 10, 6, 6, 6, 2, 0, 0, 0: items 1, 2 and 3 tie across the top-2 cut-off.
COUNTS = [10, 6, 6, 6, 2, 0, 0, 0]
# Item ids: among the tied items, the lowest id is item 2, then item 1, then item 3.
IDS = pd.Index(["i7", "i3", "i1", "i5", "i2", "i8", "i4", "i6"])
N_USERS = 20  # train users 0-9 make the counts; test users 10-19 have no history


def tied_catalog() -> tuple[SimpleNamespace, sp.csr_matrix]:
    rows, cols = [], []
    for item, count in enumerate(COUNTS):
        rows += list(range(count))
        cols += [item] * count
    train = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(N_USERS, len(COUNTS)))
    # test users want one of the tied items each: item 1, 2 or 3 in turn
    test_rows = np.arange(10, N_USERS)
    test = sp.csr_matrix(
        (np.ones(len(test_rows), np.float32), (test_rows, 1 + test_rows % 3)), shape=(N_USERS, len(COUNTS))
    )
    data = SimpleNamespace(interactions=train, item_ids=IDS, n_items=len(COUNTS), events=None)
    return data, test


class Fixed:
    """Fixed scores for every user, with or without a tie order."""

    name = "fixed"

    def __init__(self, scores: list[float], order: np.ndarray | None = None):
        self.scores, self.order = np.asarray(scores, dtype=np.float32), order

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.tile(self.scores, (len(users), 1))

    def tie_order(self) -> np.ndarray | None:
        return self.order


def test_popularity_scores_as_a_hand_made_tie_break():
    data, test = tied_catalog()
    popularity = make_model("popularity").fit(data)
    # by hand: the count, then (among equal counts) the lower item id first: 0, 2, 1, 3, 4, then 6, 7, 5 by id
    hand_made = Fixed([100, 60 + 2, 60 + 3, 60 + 1, 20, 1, 3, 2])
    ours = evaluate(popularity, test, k=[1, 2, 3])
    theirs = evaluate(hand_made, test, k=[1, 2, 3])
    pd.testing.assert_frame_equal(ours, theirs)
    # item 2 (id i1) takes the second slot: its users get a hit at 2, the users of items 1 and 3 do not
    wants_item_2 = ours["user"].to_numpy() % 3 == 1
    assert (ours.loc[wants_item_2, "precision@2"] == 0.5).all()
    assert (ours.loc[~wants_item_2, "precision@2"] == 0).all()


def test_without_a_tie_order_the_tie_costs_every_user_the_slot():
    data, test = tied_catalog()
    pessimistic = evaluate(Fixed(COUNTS), test, k=2)  # as LightFM ranks equal scores
    tie_broken = evaluate(make_model("popularity").fit(data), test, k=2)
    assert pessimistic["precision@2"].sum() == 0, "all three tied items count as above each other: rank >= 2"
    assert tie_broken["precision@2"].sum() > 0


def test_ties_at_k_counts_users_whose_cut_off_falls_in_a_tie():
    data, test = tied_catalog()
    per_user = evaluate_all(make_model("popularity").fit(data), test, k=[1, 2, 3], options=EvalOptions(top=3)).per_user
    assert not per_user["ties@1"].any(), "the first item is alone at the top"
    assert per_user["ties@2"].all() and per_user["ties@3"].all(), "positions 2-4 all hold a count of 6"
    # a user who saw item 2 before: the tie at 2 is items 1 and 3, still a tie
    exclude = sp.csr_matrix(([1.0], ([10], [2])), shape=test.shape)
    test_without = sp.csr_matrix(test - test.multiply(exclude))
    test_without.eliminate_zeros()
    per_user = evaluate_all(
        make_model("popularity").fit(data), test_without, exclude=exclude, k=[2, 4], options=EvalOptions(top=4)
    )
    assert per_user.per_user["ties@2"].all() and not per_user.per_user["ties@4"].any()


def test_recent_popularity_breaks_ties_by_all_time_count_then_id():
    data, _ = tied_catalog()
    # in the last 30 days every item with a count got exactly one user: all tie; all-time counts decide
    day = 86_400
    events = pd.DataFrame({"user": [0, 1, 2, 3, 4], "item": [4, 3, 2, 1, 0], "time": [100 * day] * 5})
    data.events = pd.concat([pd.DataFrame({"user": [9], "item": [0], "time": [0]}), events], ignore_index=True)
    recent = make_model("popularity", {"window_days": 30}).fit(data)
    assert set(recent.scores_[:5]) == {1.0}
    top = top_k(recent, np.array([0]), 5, exclude=sp.csr_matrix((N_USERS, len(COUNTS))))[0]
    assert top.tolist() == [0, 2, 1, 3, 4]


def test_top_lists_follow_the_tie_order():
    data, _ = tied_catalog()
    top = top_k(make_model("popularity").fit(data), np.array([10, 11]), 8, exclude=sp.csr_matrix((N_USERS, 8)))
    assert top.tolist() == [[0, 2, 1, 3, 4, 6, 7, 5]] * 2, "counts, then ids i4 < i6 < i8 among the zeros"


@pytest.mark.parametrize("order", [np.array([0, 0, 1]), np.array([0, 1]), np.array([0, 1, 3])])
def test_a_tie_order_must_be_a_permutation(order):
    from kdq_lab.errors import KdqError

    test = sp.csr_matrix(([1.0], ([0], [1])), shape=(1, 3))
    with pytest.raises(KdqError, match="permutation"):
        evaluate(Fixed([1, 1, 1], order), test)
