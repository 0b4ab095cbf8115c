"""Explanations are exact: the terms sum to the model's own score, for every configuration."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kdq_lab.explain import ITEM_POPULARITY, OWN_AUDIENCE, OWN_HISTORY, explain, feature_label
from kdq_lab.models import LightFMConfig, LightFMHybrid, TrainData, make_model


@pytest.fixture(scope="module")
def data(tiny_split):
    return TrainData.from_split(tiny_split, refit=True)


def randomise(model: LightFMHybrid, seed: int) -> None:
    """Give every parameter a random value, so no term is trivially zero."""
    rng = np.random.default_rng(seed)
    for name in ("user_embeddings", "item_embeddings"):
        getattr(model.model_, name)[:] = rng.normal(0, 0.5, getattr(model.model_, name).shape)
    for name in ("user_biases", "item_biases"):
        getattr(model.model_, name)[:] = rng.normal(0, 1, getattr(model.model_, name).shape)


@pytest.mark.parametrize("features", ["both", "items", "ids"])
@pytest.mark.parametrize("identity", [True, False])
@pytest.mark.parametrize("normalize", ["none", "l1"])
def test_terms_sum_to_lightfm_predict(data, features, identity, normalize):
    model = LightFMHybrid(
        LightFMConfig(
            no_components=8, epochs=1, features=features, identity=identity, normalize=normalize, identity_weight=2.0
        )
    ).fit(data)
    randomise(model, seed=len(features) + identity)
    items = np.arange(0, data.n_items, 7)
    for user in (0, 5, int(np.flatnonzero(data.interactions.getnnz(axis=1) == 0)[0])):
        predicted = model.model_.predict(
            np.full(len(items), user, dtype=np.int32),
            items.astype(np.int32),
            user_features=model.user_features_,
            item_features=model.item_features_,
        )
        explanations = explain(model, items, user=user)
        totals = np.array([e.total for e in explanations])
        np.testing.assert_allclose(totals, predicted, rtol=0, atol=1e-5)
        np.testing.assert_allclose([e.score for e in explanations], predicted, rtol=0, atol=1e-5)


def test_new_profile_terms_sum_to_the_score(data):
    model = LightFMHybrid(LightFMConfig(no_components=8, epochs=2)).fit(data)
    randomise(model, seed=3)
    values = {c: [""] for c in data.user_vocab.columns} | {"occupations": ["배우|예술인"], "interests": ["AI 영상"]}
    row, _ = model.encode(pd.DataFrame(values))
    scores = model.score_rows(row)[0]
    explanations = explain(model, np.arange(20), user_row=row)
    np.testing.assert_allclose([e.total for e in explanations], scores[:20], atol=1e-5)
    labels = {t.user_feature for e in explanations for t in e.terms if t.kind == "pair"}
    assert '직업 "배우"' in labels and OWN_HISTORY not in labels  # a new user has no history


def test_readable_labels(data):
    model = LightFMHybrid(LightFMConfig(no_components=4, epochs=1)).fit(data)
    explanation = explain(model, np.array([3]), user=int(np.flatnonzero(data.interactions.getnnz(axis=1))[0]))[0]
    kinds = {(t.kind, t.user_feature, t.item_feature) for t in explanation.terms}
    assert any(u == OWN_HISTORY and i == OWN_AUDIENCE for _, u, i in kinds)
    assert any(k == "item_bias" and i == ITEM_POPULARITY for k, _, i in kinds)
    assert feature_label("interests:AI 영상", {"interests": "관심사"}) == '관심사 "AI 영상"'
    positive = sorted((t for t in explanation.terms if t.kind != "user_bias" and t.value > 0), key=lambda t: -t.value)
    assert len(positive) >= 3, "a randomly initialised model has positive and negative terms"
    top = explanation.top(3)
    assert [t.value for t in top] == [t.value for t in positive[:3]], "the three largest positive terms, in order"
    assert explanation.reasons() == "; ".join(f"{t.label} {t.value:+.2f}" for t in top)
    negative = explanation.top(2, positive=False)
    assert negative and all(t.value < 0 for t in negative)


def test_content_popularity_and_unexplained_models(data, tiny_split):
    content = make_model("content").fit(data)
    explanations = explain(content, np.arange(30), user=2)
    scores = content.score(np.array([2]))[0][:30]
    np.testing.assert_allclose([e.total for e in explanations], scores, atol=1e-5)
    pairs = [t for e in explanations for t in e.terms if t.kind == "pair"]
    assert pairs and all(" × " in t.label and '"' in t.label for t in pairs), "terms read as labelled features"
    assert not explain(content, np.array([0]), user_row=content.user_rows_[2])[0].available, "new profiles: none"
    popularity = explain(make_model("popularity").fit(data), np.array([0, 1]))
    assert popularity[0].terms[0].kind == "popularity" and popularity[0].total == popularity[0].score
    knn = explain(make_model("itemknn").fit(data), np.array([0]), user=0)[0]
    assert not knn.available and "no feature-level explanation" in knn.reasons()
