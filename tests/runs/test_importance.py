"""Permutation importance: one field's block moves between evaluated users, nothing else; the measure is paired."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from kdq_lab.data.targets import target
from kdq_lab.errors import KdqError
from kdq_lab.models import TrainData, model_spec
from kdq_lab.runs.importance import ImportanceOptions, field_mask, permutation_importance, permute_field


@pytest.mark.parametrize("field", ["occupations", "interests", "region", "age_band"])
@pytest.mark.parametrize("seed", [0, 1])
def test_only_the_fields_block_moves_and_only_between_evaluated_users(tiny_split, field, seed):
    base = sp.csr_matrix(tiny_split.user_features)
    mask = field_mask(tiny_split.user_vocab, field)
    users = np.sort(np.random.default_rng(seed).choice(base.shape[0], size=base.shape[0] // 3, replace=False))
    out = permute_field(base, mask, users, np.random.default_rng(seed)).toarray()
    dense = base.toarray()
    assert np.array_equal(out[:, ~mask], dense[:, ~mask]), "other fields stay with their user"
    others = np.setdiff1d(np.arange(base.shape[0]), users)
    assert np.array_equal(out[others], dense[others]), "users not evaluated keep their rows"
    before = sorted(map(tuple, dense[np.ix_(users, np.flatnonzero(mask))]))
    after = sorted(map(tuple, out[np.ix_(users, np.flatnonzero(mask))]))
    assert before == after, "whole blocks (all values of a multi-valued field) move together"
    moved = (out[np.ix_(users, np.flatnonzero(mask))] != dense[np.ix_(users, np.flatnonzero(mask))]).any(axis=1)
    assert moved.mean() > 0.3, "most evaluated users get another user's values"


def test_an_unknown_field_is_named_with_the_columns(tiny_split):
    with pytest.raises(KdqError, match=r"'shoe_size' is not a user feature column; the model's columns: .*region"):
        field_mask(tiny_split.user_vocab, "shoe_size")


@pytest.mark.parametrize(
    "options, fragment",
    [
        ({"fields": ()}, "at least one field"),
        ({"fields": ("goals", "goals")}, "each once"),
        ({"fields": ("goals",), "repeats": 0}, "repeats"),
        ({"fields": ("goals",), "repeats": 1001}, "repeats"),
        ({"fields": ("goals",), "seed": -1}, "seed"),
    ],
)
def test_options_are_bounded(options, fragment):
    with pytest.raises(KdqError, match=fragment):
        ImportanceOptions(**options)


@pytest.fixture(scope="module")
def content(tiny_split):
    return model_spec("content").make({"history_weight": 0.0}).fit(TrainData.from_split(tiny_split))


def test_a_model_that_cannot_score_profiles_or_does_not_read_the_field_is_refused(tiny_split, content):
    goal = target(tiny_split, "test")
    popularity = model_spec("popularity").make({}).fit(TrainData.from_split(tiny_split))
    with pytest.raises(KdqError, match="needs a feature-aware model"):
        permutation_importance(popularity, tiny_split.user_features, goal, [10], ImportanceOptions(("goals",)))
    narrow = model_spec("content").make({"user_columns": ["goals"]}).fit(TrainData.from_split(tiny_split))
    with pytest.raises(KdqError, match=r"fields \['region'\] are not read by the model; it reads: goals"):
        permutation_importance(narrow, tiny_split.user_features, goal, [10], ImportanceOptions(("goals", "region")))


def test_the_pairing_is_per_user_and_repeats_are_seeded(tiny_split, content):
    goal = target(tiny_split, "test")
    options = ImportanceOptions(("goals", "region"), repeats=3, seed=5, metric="ndcg@10")
    table = permutation_importance(content, tiny_split.user_features, goal, [10], options)
    again = permutation_importance(content, tiny_split.user_features, goal, [10], options)
    pd.testing.assert_frame_equal(table, again)
    other = permutation_importance(
        content,
        tiny_split.user_features,
        goal,
        [10],
        ImportanceOptions(("goals", "region"), repeats=3, seed=6, metric="ndcg@10"),
    )
    assert not np.allclose(table["permuted"], other["permuted"]), "another seed shuffles otherwise"
    users = np.flatnonzero(goal.positives.getnnz(axis=1) > 0)
    assert sorted(table["user"].unique()) == list(users)
    assert len(table) == 2 * len(users)
    np.testing.assert_allclose(table["drop"], table["base"] - table["permuted"])
    assert (table.groupby("user")["base"].nunique() == 1).all(), "the unshuffled metric is each user's own"


@pytest.mark.parametrize("model, params", [("content", {}), ("lightfm", {"epochs": 2, "patience": None})])
def test_a_run_asked_for_importance_saves_it_per_seed(tiny_split, tmp_path, model, params):
    from kdq_lab.runs.run import RunConfig, run, save_run

    config = RunConfig(
        "r", model, params, ks=(10,), bootstrap_samples=100, importance={"fields": ["goals", "region"], "repeats": 2}
    )
    result = run(config, {3: tiny_split})
    save_run(result, tmp_path, save_model=False)
    table = pd.read_parquet(tmp_path / "importance.parquet")
    assert set(table["field"]) == {"goals", "region"} and set(table["seed"]) == {3}
    base = result.seeds[0].per_user.set_index("user")["ndcg@10"]
    assert set(table["user"]) == set(base.index), "the users the run evaluated"
    plain = run(RunConfig("r", model, params, ks=(10,), bootstrap_samples=100), {3: tiny_split})
    save_run(plain, tmp_path / "plain", save_model=False)
    assert not (tmp_path / "plain" / "importance.parquet").exists()
