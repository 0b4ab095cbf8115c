"""Every registered metric, checked the same way (the conformance test of the metric registry).

Per-user metrics equal a brute-force computation from each user's sorted list on random rankings with ties
(a tie-order scorer); list metrics equal a brute-force computation over the lists; names round-trip through
``parse_metric``; bounded metrics stay in [0, 1]; every metric has its columns in the comparison. A metric
registered without a reference below fails here, so its definition is checked when it is added.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from kdq_lab.errors import KdqError
from kdq_lab.evaluation import evaluate
from kdq_lab.evaluation.metrics import (
    ListFacts,
    MetricSpec,
    aggregate_columns,
    metric_specs,
    parse_metric,
    per_user_columns,
    register,
)
from kdq_lab.evaluation.metrics import registry as metric_registry

KS = (1, 3, 5)


def _dcg(relevant: list[bool], k: int) -> float:
    return sum(1 / math.log2(i + 2) for i, r in enumerate(relevant[:k]) if r)


#: name → brute force from (the user's ranked relevance over eligible items, n_test, n_negatives, k)
PER_USER = {
    "precision": lambda rel, n, neg, k: sum(rel[:k]) / k,
    "recall": lambda rel, n, neg, k: sum(rel[:k]) / n,
    "ndcg": lambda rel, n, neg, k: _dcg(rel, k) / _dcg([True] * n, k),
    "map": lambda rel, n, neg, k: (
        sum(sum(rel[: i + 1]) / (i + 1) for i in range(min(k, len(rel))) if rel[i]) / min(n, k)
    ),
    "hit": lambda rel, n, neg, k: float(any(rel[:k])),
    "mrr": lambda rel, n, neg, k: 1 / (rel.index(True) + 1),
    "rr": lambda rel, n, neg, k: 1 / (rel.index(True) + 1) if rel.index(True) < k else 0.0,
    # pairs (positive, negative) with the positive first, over all pairs
    "auc": lambda rel, n, neg, k: sum(rel[i + 1 :].count(False) for i in range(len(rel)) if rel[i]) / (n * neg),
}


def _diversity_of(items: list[int], features: np.ndarray) -> float:
    if len(items) < 2:
        return math.nan
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    pairs = [(a, b) for i, a in enumerate(items) for b in items[i + 1 :]]
    return float(np.mean([1 - unit[a] @ unit[b] for a, b in pairs]))


def _owner_exposure(lists: list[list[int]], owner: np.ndarray) -> list[float]:
    exposure = dict.fromkeys(range(owner.max() + 1), 0.0)
    for lst in lists:
        for position, item in enumerate(lst):
            if owner[item] >= 0:
                exposure[owner[item]] += 1 / math.log2(position + 2)
    return sorted(exposure.values())


def _gini(values: list[float]) -> float:  # mean absolute difference over twice the mean
    n = len(values)
    return sum(abs(a - b) for a in values for b in values) / (2 * n * n * (sum(values) / n))


def _top_share(values: list[float], share: float) -> float:
    top = max(1, math.ceil(share * len(values)))
    return sum(sorted(values, reverse=True)[:top]) / sum(values)


#: name → brute force from (lists in order without empty slots, popularity, train users, item features, owners)
LISTS = {
    "coverage": lambda lists, pop, users, feats, owner: len({i for lst in lists for i in lst}) / len(pop),
    "novelty": lambda lists, pop, users, feats, owner: float(
        np.mean([-math.log2((pop[i] + 1) / (users + 1)) for lst in lists for i in lst])
    ),
    "popularity": lambda lists, pop, users, feats, owner: float(np.mean([pop[i] for lst in lists for i in lst])),
    "diversity": lambda lists, pop, users, feats, owner: np.array([_diversity_of(lst, feats) for lst in lists]),
    "exposure_gini": lambda lists, pop, users, feats, owner: _gini(_owner_exposure(lists, owner)),
    "exposure_top1": lambda lists, pop, users, feats, owner: _top_share(_owner_exposure(lists, owner), 0.01),
    "exposure_top10": lambda lists, pop, users, feats, owner: _top_share(_owner_exposure(lists, owner), 0.10),
}


class TieOrdered:
    """Fixed scores with a tie order (0 = first among equal scores)."""

    name = "tie_ordered"

    def __init__(self, scores: np.ndarray, order: np.ndarray):
        self.scores, self.order = scores.astype(np.float32), order

    def score(self, users):
        return self.scores[users]

    def tie_order(self):
        return self.order


def random_case(seed: int, n_users: int = 12, n_items: int = 15):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 4, size=(n_users, n_items)).astype(np.float32)  # many ties
    order = rng.permutation(n_items)
    test = sp.csr_matrix(rng.random((n_users, n_items)) < 0.25, dtype=np.float32)
    exclude = sp.csr_matrix((rng.random((n_users, n_items)) < 0.2) & (test.toarray() == 0), dtype=np.float32)
    return scores, order, test, exclude


def test_every_registered_metric_has_a_brute_force_reference():
    assert {s.name for s in metric_specs("per_user")} == set(PER_USER)
    assert {s.name for s in metric_specs() if s.kind != "per_user"} == set(LISTS)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_per_user_metrics_equal_brute_force_with_ties(seed):
    scores, order, test, exclude = random_case(seed)
    table = evaluate(TieOrdered(scores, order), test, exclude=exclude, k=list(KS)).set_index("user")
    assert len(table) > 0
    for user in table.index:
        eligible = [i for i in range(scores.shape[1]) if not exclude[user, i]]
        ranked = sorted(eligible, key=lambda i: (-scores[user, i], order[i]))
        rel = [bool(test[user, i]) for i in ranked]
        n, neg = sum(rel), len(rel) - sum(rel)
        for spec in metric_specs("per_user"):
            for k in KS if spec.takes_k else (None,):
                column = f"{spec.name}@{k}" if spec.takes_k else spec.name
                expected = PER_USER[spec.name](rel, n, neg, k)
                assert table.loc[user, column] == pytest.approx(expected, abs=1e-12), (seed, user, column)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_list_metrics_equal_brute_force(seed):
    rng = np.random.default_rng(seed)
    n_items = 9
    top = np.array([rng.permutation(n_items)[:4] for _ in range(6)])
    top[0, 3] = -1  # a short list
    top[1, 1:] = -1  # a list of one item: no pairs
    popularity = rng.integers(0, 20, n_items).astype(np.float64)
    features = rng.random((n_items, 5)) + 0.01
    owner = rng.integers(-1, 12, n_items)  # 12 owners, most with one item or none shown; -1: no owner
    facts = ListFacts(top, popularity, 25, sp.csr_matrix(features), owner)
    lists = [[int(i) for i in row if i >= 0] for row in top]
    for spec in metric_specs():
        if spec.kind == "per_user":
            continue
        value = spec.compute(facts, 4)
        expected = LISTS[spec.name](lists, popularity, 25, features, owner)
        if spec.kind == "per_list":
            assert np.asarray(value).shape == (len(top),), spec.name
        np.testing.assert_allclose(value, expected, rtol=1e-12, atol=1e-12, err_msg=spec.name)


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_bounded_metrics_stay_in_the_unit_interval(seed):
    scores, order, test, exclude = random_case(seed, n_users=20, n_items=10)
    table = evaluate(TieOrdered(scores, order), test, exclude=exclude, k=list(KS))
    for column in per_user_columns(KS):
        spec = metric_registry.metric_spec(column.partition("@")[0])
        values = table[column].dropna()
        assert len(values) > 0
        if spec.bounded:
            assert values.between(0, 1).all(), column
    top = np.array([np.argsort(-scores[u], kind="stable")[:3] for u in range(len(scores))])
    facts = ListFacts(top, np.arange(10.0), 20, sp.csr_matrix(np.eye(10) + 0.1), np.arange(10) % 4)
    for spec in metric_specs():
        if spec.kind != "per_user" and spec.bounded:
            value = np.asarray(spec.compute(facts, 3))
            assert ((value >= 0) & (value <= 1)).all(), spec.name


@pytest.mark.parametrize("spec", metric_specs(), ids=lambda s: s.name)
def test_names_round_trip_and_columns_appear(spec):
    for column in spec.columns(KS):
        parsed = parse_metric(column, ks=KS, per_user=spec.kind == "per_user")
        assert str(parsed) == column and parsed.per_user == (spec.kind == "per_user")
        assert column in (per_user_columns(KS) if spec.kind == "per_user" else aggregate_columns(KS))
    assert spec.definition, f"{spec.name} has no definition (its compute function's docstring)"
    if spec.kind != "per_user":
        with pytest.raises(KdqError, match="unknown"):
            parse_metric(spec.columns(KS)[0])  # per-user only: list metrics are refused for early stopping
    per_user = spec.kind == "per_user"
    if spec.takes_k:
        with pytest.raises(KdqError, match="cut-off"):
            parse_metric(spec.name, per_user=per_user)
    else:
        with pytest.raises(KdqError, match="takes no @k"):
            parse_metric(f"{spec.name}@10", per_user=per_user)


def test_a_second_metric_of_the_same_name_is_refused():
    with pytest.raises(ValueError, match="registered twice"):
        register(MetricSpec("ndcg", "per_user", lambda f, k: f.hits(k)))
    with pytest.raises(ValueError, match="kind"):
        MetricSpec("x", "per_item", lambda f, k: 0.0)  # type: ignore[arg-type]
