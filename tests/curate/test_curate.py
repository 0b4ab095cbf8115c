"""Curation from a profile: validation with suggestions, exclusions, and MMR diversification."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from kdq_lab.curate import mmr, profile_from_dict, recommend
from kdq_lab.errors import DataError, KdqError
from kdq_lab.evaluation import intra_list_diversity
from kdq_lab.models import LightFMConfig, LightFMHybrid, TrainData

ARTIST = {
    "occupations": ["예술인", "아트딜러", "배우"],
    "interests": ["AI 영상", "AI 음악"],
    "goals": ["AI로 영화 만들기"],
    "coding_experience": "없음",
}


@pytest.fixture(scope="module")
def model(tiny_split):
    return LightFMHybrid(LightFMConfig(no_components=8, epochs=5)).fit(TrainData.from_split(tiny_split, refit=True))


def test_recommend_lists_k_explained_items(model, tiny_split):
    curation = recommend(model, profile_from_dict(ARTIST), k=5, items=tiny_split.items)
    assert list(curation.items["rank"]) == [1, 2, 3, 4, 5]
    assert {"item_id", "title", "content_type", "topics", "score", "reasons"} <= set(curation.items.columns)
    assert curation.items["score"].is_monotonic_decreasing
    for explanation, score in zip(curation.explanations, curation.items["score"]):
        assert explanation.total == pytest.approx(score, abs=1e-5)


def test_seen_and_excluded_items_are_never_recommended(model, tiny_split):
    first = recommend(model, profile_from_dict(ARTIST), k=5, items=tiny_split.items)
    top_two = list(first.items["item_id"][:2])
    again = recommend(
        model, profile_from_dict(ARTIST | {"seen": [top_two[0]]}), k=5, exclude=(top_two[1],), items=tiny_split.items
    )
    assert not set(top_two) & set(again.items["item_id"])
    with pytest.raises(KdqError, match="unknown item id"):
        recommend(model, profile_from_dict(ARTIST), k=5, exclude=("nope",), items=tiny_split.items)


def test_unknown_values_list_allowed_values_with_close_matches(model, tiny_split):
    with pytest.raises(DataError) as caught:
        recommend(model, profile_from_dict(ARTIST | {"occupations": ["배우님"]}), items=tiny_split.items)
    problem = caught.value.problems[0]
    assert problem.column == "occupations" and problem.value == "배우님"
    assert "did you mean 배우" in problem.message and "allowed:" in problem.message and "특수교사" in problem.message
    with pytest.raises(DataError, match="not a user feature column"):
        recommend(model, profile_from_dict(ARTIST | {"job": "배우"}), items=tiny_split.items)
    with warnings.catch_warnings(record=True) as caught_warnings:
        warnings.simplefilter("always")
        lenient = recommend(
            model, profile_from_dict(ARTIST | {"occupations": ["배우님", "배우"]}), lenient=True, items=tiny_split.items
        )
    assert [(u.column, u.value) for u in lenient.unknown] == [("occupations", "배우님")]
    assert any("배우님" in str(w.message) for w in caught_warnings)


def test_mmr_at_zero_keeps_the_ranking_and_never_lowers_diversity():
    rng = np.random.default_rng(0)
    features = sp.csr_matrix(rng.random((60, 12)) < 0.25, dtype=np.float32)
    relevance = np.sort(rng.random((40, 30)), axis=1)[:, ::-1]
    candidates = np.array([rng.permutation(60)[:30] for _ in range(40)])
    assert np.array_equal(mmr(relevance, candidates, features, 0.0, 10), candidates[:, :10])
    before = intra_list_diversity(candidates[:, :10], features)
    for lam in (0.1, 0.3, 0.6, 1.0):
        after = intra_list_diversity(mmr(relevance, candidates, features, lam, 10), features)
        assert (after >= before - 1e-12).all()
    assert (intra_list_diversity(mmr(relevance, candidates, features, 0.6, 10), features) > before + 1e-9).mean() > 0.5


def test_diversify_reports_before_and_after(model, tiny_split):
    plain = recommend(model, profile_from_dict(ARTIST), k=8, items=tiny_split.items)
    diverse = recommend(model, profile_from_dict(ARTIST), k=8, diversify=0.6, items=tiny_split.items)
    assert diverse.diversity_before == pytest.approx(plain.diversity_after)
    assert diverse.diversity_after >= diverse.diversity_before
    with pytest.raises(KdqError, match="between 0 and 1"):
        recommend(model, profile_from_dict(ARTIST), diversify=2, items=tiny_split.items)


def test_a_model_without_user_features_refuses_profiles(tiny_split):
    ids_only = LightFMHybrid(LightFMConfig(no_components=4, epochs=1, features="items")).fit(
        TrainData.from_split(tiny_split)
    )
    with pytest.raises(KdqError, match="does not use user features"):
        recommend(ids_only, profile_from_dict(ARTIST), items=tiny_split.items)
