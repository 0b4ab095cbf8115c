"""The content model's profile columns (for drop-one and only-one runs) and its new-profile scoring."""

from __future__ import annotations

import numpy as np
import pytest

from kdq_lab.errors import KdqError
from kdq_lab.models import FeatureAware, TrainData, model_spec


@pytest.fixture(scope="module")
def data(tiny_split):
    return TrainData.from_split(tiny_split)


def fit(data, **params):
    return model_spec("content").make(params).fit(data)


@pytest.mark.parametrize("columns", [["goals"], ["region", "age_band"], ["occupations", "interests", "goals"]])
def test_only_the_chosen_columns_move_the_profile_part(data, tiny_split, columns):
    model = fit(data, history_weight=0.0, user_columns=columns)
    assert isinstance(model, FeatureAware) and model.profile_columns() == tuple(columns)
    users = tiny_split.users.iloc[:20].copy()
    rows, _ = model.encode(users)
    others = [c for c in data.user_vocab.columns if c not in columns]
    changed = users.copy()
    changed[others] = users[others].sample(frac=1.0, random_state=0).to_numpy()
    moved, _ = model.encode(changed)
    np.testing.assert_array_equal(model.score_rows(rows), model.score_rows(moved))
    swapped = users.copy()
    swapped[columns] = users[columns].iloc[::-1].to_numpy()
    again, _ = model.encode(swapped)
    assert not np.array_equal(model.score_rows(rows), model.score_rows(again)), "the chosen columns do count"


def test_all_columns_by_default_and_the_same_scores_as_before(data):
    everything = fit(data)
    listed = fit(data, user_columns=list(data.user_vocab.columns))
    assert everything.profile_columns() == data.user_vocab.columns
    users = np.arange(data.n_users)
    np.testing.assert_allclose(everything.score(users), listed.score(users), rtol=1e-6)


@pytest.mark.parametrize("columns, fragment", [(["shoe_size"], "not user feature columns"), ("goals", "a list")])
def test_bad_columns_are_refused(data, columns, fragment):
    with pytest.raises(KdqError, match=fragment):
        fit(data, user_columns=columns)
