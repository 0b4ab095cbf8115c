"""The switch: its threshold rule, its routing (each user ranked exactly as the part that scores them), its refit."""

from __future__ import annotations

import numpy as np
import pytest

from kdq_lab.data.targets import target
from kdq_lab.errors import KdqError
from kdq_lab.evaluation.ranking import EvalOptions, evaluate_all
from kdq_lab.models import Refittable, TrainData, make_model
from kdq_lab.models.switch import best_threshold

QUICK = {"no_components": 8, "epochs": 3, "patience": None, "random_state": 3}
PARTS = {
    "cold": {"model": "lightfm", "params": QUICK | {"features": "both", "normalize": "l1"}},
    "warm": {"model": "lightfm", "params": QUICK | {"features": "ids"}},
}


@pytest.mark.parametrize(
    ("history", "cold", "warm", "expected"),
    [
        ([0, 0, 1, 2, 5], [0.9, 0.8, 0.7, 0.1, 0.1], [0.1, 0.1, 0.1, 0.5, 0.5], 2),  # cold wins up to 1
        ([0, 3, 3, 7], [0.1, 0.1, 0.1, 0.1], [0.2, 0.2, 0.2, 0.2], 0),  # warm everywhere
        ([0, 3, 3, 7], [0.3, 0.3, 0.3, 0.3], [0.2, 0.2, 0.2, 0.2], 8),  # cold everywhere
        ([2, 2, 4], [0.5, 0.5, 0.5], [0.5, 0.5, 0.5], 0),  # a tie: the smallest (all warm)
        ([4, 1, 1, 9], [0.0, 0.6, 0.6, 0.0], [0.5, 0.1, 0.1, 0.9], 2),  # unsorted input
    ],
)
def test_the_threshold_maximises_the_mean_and_prefers_the_smallest(history, cold, warm, expected):
    assert best_threshold(np.array(history), np.array(cold), np.array(warm)) == expected
    # brute force over every candidate agrees
    candidates = [0, *sorted({h + 1 for h in history})]
    h = np.array(history)
    means = [np.where(h < t, cold, warm).mean() for t in candidates]
    assert candidates[int(np.argmax(means))] == expected


@pytest.mark.parametrize("quantile", [0.2, 0.5, 0.8])
def test_each_user_is_ranked_exactly_as_the_part_that_scores_them(tiny_split, quantile):
    data = TrainData.from_split(tiny_split, refit=True)
    goal = target(tiny_split, "test", "seen")
    tested = goal.positives.getnnz(axis=1) > 0
    min_history = int(np.quantile(data.interactions.getnnz(axis=1)[tested], quantile)) + 1
    switch = make_model("switch", PARTS | {"min_history": min_history}).fit(data)
    options = EvalOptions(history=goal.history, top=10)
    mine = evaluate_all(switch, goal.positives, exclude=goal.exclude, k=[5, 10], options=options)
    cold, warm = switch.parts
    expected = [evaluate_all(p, goal.positives, exclude=goal.exclude, k=[5, 10], options=options) for p in (cold, warm)]
    history = data.interactions.getnnz(axis=1)[mine.per_user["user"].to_numpy()]
    scored_cold = history < min_history
    assert scored_cold.any() and (~scored_cold).any()
    for which, rows in ((0, scored_cold), (1, ~scored_cold)):
        got = mine.per_user[rows].reset_index(drop=True)
        want = expected[which].per_user.set_index("user").loc[got["user"]].reset_index()
        np.testing.assert_array_equal(got["ndcg@10"].to_numpy(), want["ndcg@10"].to_numpy())
        np.testing.assert_array_equal(got["ties@10"].to_numpy(), want["ties@10"].to_numpy())
        assert mine.top is not None and expected[which].top is not None
        np.testing.assert_array_equal(
            mine.top[rows], expected[which].top[expected[which].per_user["user"].isin(got["user"])]
        )


def test_min_history_is_tuned_on_validation_and_kept_by_the_refit(tiny_split):
    data = TrainData.from_split(tiny_split, exclude="train_positives")
    assert data.validation is not None
    switch = make_model("switch", PARTS).fit(data)
    assert isinstance(switch, Refittable)
    tuned = switch.min_history_
    users = switch.validation_[0].index.to_numpy()
    history = switch.history_[users]
    assert tuned == best_threshold(history, *(t["ndcg@10"].to_numpy() for t in switch.validation_))
    refit = switch.for_refit()
    assert refit.config.min_history == tuned
    refit.fit(TrainData.from_split(tiny_split, refit=True))
    assert refit.min_history_ == tuned


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"cold": {"model": "switch"}}, "another model kind"),
        ({"cold": {"model": "nope"}}, "unknown model"),
        ({"warm": {"model": "lightfm", "params": {"epochs": -1}}}, "epochs"),
        ({"warm": "lightfm"}, "mapping with model and params"),
        ({"warm": {"model": "lightfm", "extra": 1}}, "mapping with model and params"),
        ({"min_history": -1}, "min_history must be an integer >= 0"),
        ({"min_history": 2.5}, "min_history must be an integer"),
        ({"metric": "ndcg"}, "needs a cut-off"),
    ],
)
def test_bad_switches_are_refused(params, fragment):
    with pytest.raises(KdqError, match=fragment):
        make_model("switch", params)


def test_parts_that_order_ties_differently_are_refused(tiny_split):
    parts = {"cold": {"model": "popularity"}, "warm": PARTS["warm"]}
    with pytest.raises(KdqError, match="order ties differently"):
        make_model("switch", parts | {"min_history": 1}).fit(TrainData.from_split(tiny_split, refit=True))


@pytest.mark.parametrize(("threads", "expected"), [(1, True), (2, False)])
def test_a_switch_is_deterministic_when_both_parts_are(threads, expected):
    parts = {"cold": PARTS["cold"], "warm": {"model": "lightfm", "params": {"features": "ids", "num_threads": threads}}}
    assert make_model("switch", parts).config.deterministic is expected
