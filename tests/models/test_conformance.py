"""Every registered model kind keeps the one protocol, and each capability it declares does what it says.

A new model is covered by registering it: these tests are parametrised over the registry.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from model_fixtures import SWEEPS, registered

from kdq_lab.evaluation.ranking import EvalOptions, SharedRow, evaluate_all, score_source
from kdq_lab.explain import explain
from kdq_lab.models import REGISTRY, Explainable, FeatureAware, Iterative, Persistable, TrainData, model_spec
from kdq_lab.models.registry import CEILING, IDS, OTHER, PROFILE

KINDS = sorted(REGISTRY)
#: Small, quick parameters per kind (the defaults otherwise).
QUICK = {"lightfm": {"no_components": 8, "epochs": 3, "curve_users": 50, "patience": None}}
QUICK["switch"] = {
    "cold": {"model": "lightfm", "params": QUICK["lightfm"] | {"features": "both", "normalize": "l1"}},
    "warm": {"model": "lightfm", "params": QUICK["lightfm"] | {"features": "ids"}},
}


def build(kind: str, seed: int = 3):
    spec = model_spec(kind)
    return spec.make(spec.resolve(QUICK.get(kind, {}), seed=seed))


@pytest.fixture(scope="module")
def data(tiny_split):
    return TrainData.from_split(tiny_split)


@pytest.fixture(scope="module")
def other(tiny_split):
    """Different training data of the same shape: train plus validation."""
    return TrainData.from_split(tiny_split, refit=True)


@pytest.mark.parametrize("kind", KINDS)
def test_scores_have_the_right_shape_and_dtype(kind, data):
    model = build(kind).fit(data)
    scores = np.asarray(model.score(np.arange(7)))
    assert scores.shape == (7, data.n_items) and scores.dtype == np.float32 and np.isfinite(scores).all()


def rounding_band(model, data, users: np.ndarray) -> np.ndarray | None:
    """What the evaluator allows between two computations of the same scores (users x items).

    A source with a rounding band (LightFM: float32 BLAS products, whose last bits may depend
    on the batch's shape) is compared within it and settled by LightFM's own kernel; any other
    source is compared exactly as given (None), so its scores must not depend on the batch at all.
    """
    source = score_source(model, data.n_users, data.n_items, users=users)
    items = np.arange(data.n_items)
    band = source.band(np.repeat(users, len(items)), np.tile(items, len(users)))
    return None if band is None else band.reshape(len(users), len(items))


def assert_same_scores(a: np.ndarray, b: np.ndarray, band: np.ndarray | None) -> None:
    if band is None:
        np.testing.assert_array_equal(a, b)
    else:
        difference = np.abs(a.astype(np.float64) - b.astype(np.float64))
        assert (difference <= band).all(), f"{int((difference > band).sum())} scores differ beyond the band"


def in_batches(score, users: np.ndarray, size: int) -> np.ndarray:
    return np.vstack([np.asarray(score(users[i : i + size])) for i in range(0, len(users), size)])


@pytest.mark.parametrize("kind", KINDS)
def test_scores_do_not_depend_on_the_batch(kind, data):
    """Within the evaluator's rounding band (exactly, for a source without one), whatever the batch."""
    model = build(kind).fit(data)
    users = np.arange(40)
    band = rounding_band(model, data, users)
    source = score_source(model, data.n_users, data.n_items, users=users)
    buffer = np.empty((len(users), data.n_items), dtype=np.float32)

    def evaluator_scores(chunk: np.ndarray) -> np.ndarray:
        return source.scores(chunk, buffer).copy()

    for score in (model.score, evaluator_scores):
        whole = np.asarray(score(users))
        for size in (1, 7, 16):
            assert_same_scores(whole, in_batches(score, users, size), band)
        picked = np.array([5, 2, 33])
        assert_same_scores(whole[picked], np.asarray(score(picked)), None if band is None else band[picked])


@pytest.mark.parametrize("kind", KINDS)
def test_ranks_do_not_depend_on_batches_or_threads(kind, data, tiny_split):
    """What the evaluator promises: identical ranks and per-user metrics for any batch size and thread count."""
    model = build(kind).fit(data)
    test, train = tiny_split.test.interactions, tiny_split.train.interactions
    first = evaluate_all(model, test, exclude=train, k=[5, 10], num_threads=1, options=EvalOptions(batch_size=1))
    for threads, size in ((1, 7), (2, 7), (2, 16), (2, None)):
        other = evaluate_all(
            model, test, exclude=train, k=[5, 10], num_threads=threads, options=EvalOptions(batch_size=size)
        )
        pd.testing.assert_frame_equal(first.ranks, other.ranks, check_exact=True)
        pd.testing.assert_frame_equal(first.per_user, other.per_user, check_exact=True)


@pytest.mark.parametrize("kind", KINDS)
def test_the_same_seed_gives_the_same_model(kind, data):
    users = np.arange(30)
    a, b = build(kind, seed=3).fit(data).score(users), build(kind, seed=3).fit(data).score(users)
    np.testing.assert_array_equal(a, b)
    if model_spec(kind).seed_parameter:
        assert not np.array_equal(a, build(kind, seed=4).fit(data).score(users)), "the seed matters"


@pytest.mark.parametrize("kind", KINDS)
def test_a_second_fit_starts_afresh(kind, data, other):
    users = np.arange(30)
    refitted = build(kind).fit(data).fit(other)
    np.testing.assert_array_equal(refitted.score(users), build(kind).fit(other).score(users))


@pytest.mark.parametrize("kind", KINDS)
def test_ties_are_decided_by_a_declared_order(kind, data):
    model = build(kind).fit(data)
    order = model.tie_order()
    if order is None:  # LightFM's pessimistic rule, for exactness with lightfm.evaluation (or a switch's LightFM parts)
        assert kind == "lightfm" or all(p.tie_order() is None for p, _ in model.routes(np.arange(data.n_users)))
    else:
        assert np.array_equal(np.sort(order), np.arange(data.n_items)), "a permutation of the items"


@pytest.mark.parametrize("kind", KINDS)
def test_persistable_models_round_trip(kind, data, tmp_path):
    model = build(kind).fit(data)
    if not isinstance(model, Persistable):
        pytest.skip(f"{kind} is not persistable")
    from kdq_lab.models import load_model

    loaded = load_model(model.save(tmp_path / "model"))
    np.testing.assert_array_equal(loaded.score(np.arange(20)), model.score(np.arange(20)))
    assert type(loaded) is type(model) and loaded.config == model.config
    assert not [p for p in (tmp_path / "model").iterdir() if p.suffix in (".pkl", ".pickle")]


@pytest.mark.parametrize("kind", KINDS)
def test_explanations_sum_to_the_score(kind, data):
    model = build(kind).fit(data)
    items = np.arange(0, data.n_items, 11)
    user = int(np.flatnonzero(data.interactions.getnnz(axis=1))[0])
    explanations = explain(model, items, user=user)
    assert len(explanations) == len(items)
    if not isinstance(model, Explainable):
        assert not any(e.available for e in explanations)
        return
    scores = np.asarray(model.score(np.array([user])))[0, items]
    assert all(e.terms for e in explanations), "an explainable model gives terms"
    np.testing.assert_allclose([e.total for e in explanations], scores, atol=1e-5)


#: Per iterative kind: at most this many iterations, early stopping on (the test-only ``sweeps`` iterates in
#: ``iterations``, LightFM in ``epochs``: the protocol is the same).
EARLY = {
    "lightfm": {"no_components": 8, "epochs": 12, "patience": 2, "curve_users": 50},
    "sweeps": {"iterations": 20, "patience": 2},
    "ials": {"factors": 16, "iterations": 30, "patience": 2, "regularization": 0.1},
}
ITERATIVE = [*(k for k in KINDS if model_spec(k).iterative), "sweeps"]


@pytest.fixture
def iterative_kind(request):
    """An iterative kind: every registered one, and the test-only ``sweeps`` registered for the test."""
    kind = request.param
    if kind in REGISTRY:
        yield kind
        return
    with registered(SWEEPS):
        yield kind


def test_every_registered_iterative_kind_has_early_stopping_settings():
    assert {k for k in KINDS if model_spec(k).iterative} <= set(EARLY), "add the kind's settings to EARLY"
    assert model_spec("lightfm").iterative and not model_spec("popularity").iterative


@pytest.mark.parametrize("iterative_kind", ITERATIVE, indirect=True)
def test_iterative_models_stop_early_and_refit(iterative_kind, tiny_split):
    spec = model_spec(iterative_kind)
    params = spec.resolve(EARLY[iterative_kind], seed=3, metric="ndcg@10")
    calls: list[tuple[int, float]] = []
    model = spec.make(params)
    assert isinstance(model, Iterative) and spec.iterative, "the spec answers from the class as the model does"
    model.fit(TrainData.from_split(tiny_split, exclude="train_positives"), on_epoch=lambda i, v: calls.append((i, v)))
    curve = model.learning_curve()
    assert {"iteration", "validation"} <= set(curve.columns) and 1 <= model.best_iteration() <= len(curve)
    assert len(curve) < params[spec.build.iteration_parameter], "early stopping fired on the tiny catalog"
    assert calls == list(zip(curve["iteration"], curve["validation"])), "on_epoch hears every validated iteration"
    refit = model.with_iterations(model.best_iteration())
    assert isinstance(refit, Iterative)
    refit.fit(TrainData.from_split(tiny_split, refit=True))
    assert len(refit.learning_curve()) == model.best_iteration() == refit.best_iteration()
    assert "validation" not in refit.learning_curve(), "a refit trains without validation"


@pytest.mark.parametrize("iterative_kind", ITERATIVE, indirect=True)
def test_the_best_iteration_is_what_that_many_iterations_train(iterative_kind, tiny_split):
    """The early-stopped model's restored state equals a fresh training of its best iteration count (same seed,
    same data): refit and ``run --tuned`` train exactly what validation chose."""
    spec = model_spec(iterative_kind)
    params = spec.resolve(EARLY[iterative_kind], seed=3, metric="ndcg@10")
    data = TrainData.from_split(tiny_split, exclude="train_positives")
    stopped = spec.make(params).fit(data)
    assert isinstance(stopped, Iterative)
    n = stopped.best_iteration()
    assert n < len(stopped.learning_curve()), "the best iteration is not the last one: restoring matters"
    users = np.arange(40)
    fresh = stopped.with_iterations(n).fit(replace(data, validation=None))
    np.testing.assert_array_equal(fresh.score(users), stopped.score(users))
    pinned = spec.make(spec.pin_iterations(params, n)).fit(replace(data, validation=None))
    np.testing.assert_array_equal(pinned.score(users), stopped.score(users))
    assert spec.build.iteration_parameter in spec.pin_iterations({}, n), "pinned in the model's own parameter"


@pytest.mark.parametrize("kind", KINDS)
def test_deterministic_models_give_bit_identical_scores(kind, data):
    spec = model_spec(kind)
    params = spec.resolve(QUICK.get(kind, {}), seed=5)
    config = spec.config.from_dict(params, kind)
    assert isinstance(config.deterministic, bool)
    if not config.deterministic:
        pytest.skip(f"{kind} with {params} is not deterministic")
    users = np.arange(30)
    np.testing.assert_array_equal(spec.make(params).fit(data).score(users), spec.make(params).fit(data).score(users))


def test_lightfm_says_when_it_is_not_deterministic():
    spec = model_spec("lightfm")
    assert spec.config.from_dict({"num_threads": 1}).deterministic
    assert not spec.config.from_dict({"num_threads": 2}).deterministic
    assert model_spec("popularity").config().deterministic


@pytest.mark.parametrize("kind", KINDS)
def test_feature_aware_models_score_new_profiles(kind, data, tiny_split):
    model = build(kind).fit(data)
    if not isinstance(model, FeatureAware):
        pytest.skip(f"{kind} does not score new profiles")
    cold = int(np.flatnonzero(data.interactions.getnnz(axis=1) == 0)[0])  # a user with features only
    rows, unknown = model.encode(tiny_split.users.iloc[[cold]])
    assert unknown == []
    np.testing.assert_allclose(model.score_rows(rows), model.score(np.array([cold])), rtol=1e-6)
    assert set(model.profile_columns()) <= set(data.user_vocab.columns)


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_declares_its_config_and_search_space(kind):
    spec = model_spec(kind)
    defaults = spec.defaults()
    assert set(defaults) == set(spec.parameter_names())
    assert spec.config.from_dict(defaults, kind) == spec.config()
    for name, space in spec.search_space.items():
        assert name in defaults, f"{kind} search space names an unknown parameter {name}"
        assert len(space) >= 1 and set(space) <= {"int", "float", "choice", "log"}
    if spec.seed_parameter:
        assert spec.seed_parameter in defaults


@pytest.mark.parametrize("kind", KINDS)
def test_the_declared_role_matches_what_the_model_reads(kind, data):
    """``profile`` models rank two new users with different profiles differently; ``ids`` models cannot."""
    spec = model_spec(kind)
    role = spec.role_of(QUICK.get(kind, {}))
    assert role in (CEILING, PROFILE, IDS, OTHER)
    if role not in (PROFILE, IDS):
        pytest.skip(f"{kind} is {role}: nothing to check against profiles")
    cold = np.flatnonzero(data.interactions.getnnz(axis=1) == 0)
    profiles = (data.user_features[cold] != 0).toarray()
    first, second = cold[0], cold[int(np.flatnonzero((profiles != profiles[0]).any(axis=1))[0])]
    scores = np.asarray(build(kind).fit(data).score(np.array([first, second])))
    assert (not np.array_equal(scores[0], scores[1])) == (role == PROFILE)


@pytest.mark.parametrize(
    "kind, params, deterministic",
    [
        ("lightfm", {"no_components": 4, "epochs": 1, "num_threads": 2}, False),
        ("lightfm", {"no_components": 4, "epochs": 1, "num_threads": 1}, True),
        ("popularity", {}, True),
    ],
)
def test_the_run_summary_records_what_the_config_says_about_determinism(kind, params, deterministic, tiny_split):
    from kdq_lab.runs.run import RunConfig, run

    config = RunConfig(run="r", model=kind, params=params, bootstrap_samples=200)
    assert run(config, {1: tiny_split}).summary.deterministic is deterministic


@pytest.mark.parametrize("kind", KINDS)
def test_a_shared_row_is_what_score_gives_those_users_bit_for_bit(kind, data):
    model = build(kind).fit(data)
    if not isinstance(model, SharedRow):
        pytest.skip(f"{kind} scores every user with a row of its own")
    mask, row = model.shared_row()
    users = np.flatnonzero(mask)
    assert len(users) and mask.shape == (data.n_users,)
    scores = np.asarray(model.score(users), dtype=np.float32)
    np.testing.assert_array_equal(scores.view(np.uint32), np.broadcast_to(row, scores.shape).view(np.uint32))
