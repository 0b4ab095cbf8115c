"""The LightFM hybrid wrapper: determinism, early stopping, divergence, persistence, cold users."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from lightfm import LightFM

from kdq_lab.errors import KdqError
from kdq_lab.evaluation import evaluate
from kdq_lab.models import LightFMConfig, LightFMHybrid, TrainData, make_model
from kdq_lab.models.lightfm import ModelDivergedError

FAST = {"no_components": 8, "epochs": 4, "curve_users": 100}


@pytest.fixture(scope="module")
def data(tiny_split):
    return TrainData.from_split(tiny_split)


def parameters(model: LightFMHybrid) -> list[np.ndarray]:
    m = model.model_
    return [m.user_embeddings, m.user_biases, m.item_embeddings, m.item_biases]


def test_deterministic_mode_is_bit_identical(data):
    config = LightFMConfig(**FAST, num_threads=1, random_state=3)
    assert config.deterministic
    a, b = LightFMHybrid(config).fit(data), LightFMHybrid(config).fit(data)
    for x, y in zip(parameters(a), parameters(b)):
        assert np.array_equal(x, y)
    c = LightFMHybrid(LightFMConfig(**FAST, num_threads=1, random_state=4)).fit(data)
    assert not np.array_equal(parameters(a)[0], parameters(c)[0])


def test_wrapper_trains_exactly_like_raw_lightfm(data):
    config = LightFMConfig(**FAST, features="ids", patience=None)
    wrapped = LightFMHybrid(config).fit(data)
    raw = LightFM(no_components=8, loss="warp", learning_rate=config.learning_rate, random_state=config.random_state)
    raw.fit(
        data.interactions.tocoo().astype(np.float32),
        user_features=wrapped.user_features_,
        item_features=wrapped.item_features_,
        epochs=config.epochs,
    )
    for x, y in zip(parameters(wrapped), [raw.user_embeddings, raw.user_biases, raw.item_embeddings, raw.item_biases]):
        assert np.array_equal(x, y)


def test_early_stopping_restores_the_best_epoch(tiny_split):
    data = TrainData.from_split(tiny_split, exclude="train_positives")
    model = LightFMHybrid(
        LightFMConfig(no_components=8, epochs=25, patience=2, curve_users=100, learning_rate=0.1)
    ).fit(data)
    history = model.history_
    assert {"iteration", "train", "validation", "seconds", "validation_seconds"} <= set(history.columns)
    assert model.best_iteration_ == int(history.loc[history["validation"].idxmax(), "iteration"])
    assert len(history) < 25, "stopping fired: the validation metric stalled before the last epoch"
    assert len(history) == model.best_iteration_ + 2
    table = evaluate(model, tiny_split.validation.interactions, exclude=tiny_split.train.interactions, k=10)
    assert table["ndcg@10"].mean() == pytest.approx(history["validation"].max())


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize(
    "sides, hint",
    [
        ({"normalize": "none"}, "(user_normalize='l1', item_normalize='l1')"),
        ({"normalize": "l1", "user_normalize": "none"}, "(user_normalize='l1')"),
        ({"normalize": "l1"}, None),
    ],
)
def test_divergence_is_a_clear_error(data, sides, hint):
    with pytest.raises(ModelDivergedError) as caught:
        LightFMHybrid(LightFMConfig(no_components=8, epochs=20, learning_rate=1e6, features="both", **sides)).fit(data)
    message = str(caught.value)
    assert "diverged in epoch" in message and "learning_rate=100000" in message
    if hint is None:
        assert "normalise feature rows" not in message
    else:
        assert f"normalise feature rows {hint}" in message


LIGHTFM_WORDS = "Not all estimated parameters are finite, your model may have diverged."


@pytest.mark.parametrize(
    ("poison", "message", "expected"),
    [
        ("item_embeddings", "any words at all", ModelDivergedError),
        ("user_biases", "", ModelDivergedError),
        (None, LIGHTFM_WORDS, ValueError),  # LightFM's words, but every parameter finite: not a divergence
        (None, "Incorrect number of features in item_features", ValueError),
    ],
)
def test_divergence_is_told_by_the_parameters_not_by_lightfm_s_words(data, monkeypatch, poison, message, expected):
    """A ValueError out of LightFM is a divergence exactly when a parameter is no longer finite."""
    fit_partial = LightFM.fit_partial

    def failing(self, *args, **kwargs):
        fit_partial(self, *args, **kwargs)
        if poison is not None:
            getattr(self, poison)[0] = np.nan
        raise ValueError(message)

    monkeypatch.setattr(LightFM, "fit_partial", failing)
    with pytest.raises(expected) as caught:
        LightFMHybrid(LightFMConfig(**FAST)).fit(data)
    assert (caught.type is ModelDivergedError) == (expected is ModelDivergedError)
    if expected is ModelDivergedError:
        assert "diverged in epoch 1" in str(caught.value)
    else:
        assert str(caught.value) == message


def test_save_load_round_trip_and_corruption(data, tiny_split, tmp_path):
    model = LightFMHybrid(LightFMConfig(**FAST)).fit(data)
    folder = model.save(tmp_path / "model")
    loaded = LightFMHybrid.load(folder)
    users = np.arange(20)
    assert np.array_equal(model.score(users), loaded.score(users))
    assert loaded.config == model.config and list(loaded.item_ids_) == list(model.item_ids_)
    assert not any(p.suffix == ".pkl" for p in folder.iterdir())

    blob = (folder / "model.npz").read_bytes()
    (folder / "model.npz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(KdqError, match="truncated or corrupt"):
        LightFMHybrid.load(folder)
    folder = model.save(tmp_path / "again")  # a changed model folder is no longer the lab's to replace
    meta = (folder / "model.json").read_text(encoding="utf-8")
    (folder / "model.json").write_text(meta.replace('"format": 1', '"format": 99'), encoding="utf-8")
    with pytest.raises(KdqError, match="format 99"):
        LightFMHybrid.load(folder)
    folder = model.save(tmp_path / "once more")
    (folder / "model.json").write_text(meta.replace('"no_components": 8', '"no_components": 9'), encoding="utf-8")
    with pytest.raises(KdqError, match="shape"):
        LightFMHybrid.load(folder)


def test_unseen_users_score_from_features_only(data):
    model = LightFMHybrid(LightFMConfig(**FAST)).fit(data)
    unseen = np.flatnonzero(data.interactions.getnnz(axis=1) == 0)
    seen = np.flatnonzero(data.interactions.getnnz(axis=1) > 0)
    assert len(unseen) and len(seen)
    features = model.user_features_
    assert features[unseen, : len(data.user_ids)].nnz == 0  # no identity entry
    assert features[seen[0], seen[0]] > 0
    # a new profile with the same features as an unseen user scores exactly like that user
    values: dict[str, list[str]] = {c: [] for c in data.user_vocab.columns}
    for name in np.asarray(data.user_vocab.names)[data.user_features[unseen[0]].indices]:
        column, value = name.split(":", 1)
        values[column].append(value)
    frame = pd.DataFrame({c: ["|".join(v)] for c, v in values.items()})
    rows, unknown = model.encode(frame)
    assert unknown == []
    np.testing.assert_allclose(model.score_rows(rows), model.score(unseen[:1]), rtol=1e-6)


def test_unknown_feature_values_are_ignored_and_reported(data):
    model = LightFMHybrid(LightFMConfig(**FAST)).fit(data)
    frame = pd.DataFrame({c: [""] for c in data.user_vocab.columns})
    frame["occupations"] = ["배우|우주비행사"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows, unknown = model.encode(frame)
    assert [(u.column, u.value) for u in unknown] == [("occupations", "우주비행사")]
    assert any("우주비행사" in str(w.message) for w in caught)
    assert rows.nnz == 1


def test_config_errors_name_the_allowed_values():
    with pytest.raises(KdqError, match="warp, bpr, logistic, warp-kos"):
        LightFMConfig(loss="hinge")
    with pytest.raises(KdqError, match=r"unknown parameter.*components.*lightfm"):
        make_model("lightfm", {"components": 3})
    with pytest.raises(KdqError, match="unknown model"):
        make_model("deepfm")


def test_new_items_and_empty_profiles(data, tiny_split):
    model = LightFMHybrid(LightFMConfig(**FAST, features="both")).fit(data)
    unseen = np.flatnonzero(data.interactions.getnnz(axis=0) == 0)
    assert len(unseen), "the tiny catalog has items without train interactions"
    n_ids = len(data.item_ids)
    # as in LightFM, an item without positives is still a training column: it keeps its identity entry
    assert (model.item_features_[unseen, :n_ids].getnnz(axis=1) == 1).all()
    # a new item (a profile outside the training data) is encoded from its features alone
    rows, unknown = model.encode(tiny_split.items.iloc[unseen[:3]], users=False)
    assert unknown == [] and rows[:, :n_ids].nnz == 0
    np.testing.assert_allclose(rows[:, n_ids:].toarray(), model.item_features_[unseen[:3], n_ids:].toarray(), rtol=1e-6)
    # a user with nothing at all (cold in the RecTools sense) is ranked by item biases alone
    empty, _ = model.encode(pd.DataFrame({c: [""] for c in data.user_vocab.columns}))
    assert empty.nnz == 0
    ib = model.representations()[2]
    assert np.array_equal(np.argsort(-model.score_rows(empty)[0], kind="stable"), np.argsort(-ib, kind="stable"))
