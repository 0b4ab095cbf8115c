"""The LightFM hybrid: configuration, early stopping, clear divergence errors, safe persistence.

Feature modes: ``ids`` (pure collaborative filtering), ``items`` (item features),
``users`` (user features) or ``both``. A side without features always has its
identity block; a side with features has it when its identity setting is on
(``identity`` sets both sides, ``user_identity`` / ``item_identity`` one side), and
each side has its own normalisation (``normalize``, ``user_normalize``, ``item_normalize``).

Which rows keep their identity entry follows LightFM:

* every item that is a column of the training matrix keeps it (WARP samples such items
  as negatives, so their identity embedding is trained, if only downwards);
* items the split withholds (held-out cold items, items published after a global cutoff)
  are not training columns, are never sampled as negatives, and are scored from their
  features only;
* users without train interactions never use their identity entry (LightFM never updates
  it: it is untrained noise) and are scored from their features.

A row without its identity entry keeps the training normalisation (as if the identity
weight were there), so a feature weighs the same for everyone. New users or items
(profiles outside the training data) are encoded the same way; unknown feature values
are ignored and reported.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np
import pandas as pd
import scipy.sparse as sp
from lightfm import LightFM

from kdq_lab import limits
from kdq_lab.checks import check_bool, check_choice, check_number
from kdq_lab.data.build import FeatureConfig, FeatureVocabulary, Normalization, UnknownValue, compose_features
from kdq_lab.data.targets import sample_users
from kdq_lab.errors import DataError, KdqError, Problem
from kdq_lab.evaluation.metrics import parse_metric
from kdq_lab.evaluation.ranking import evaluate
from kdq_lab.explain import ITEM_POPULARITY, OWN_AUDIENCE, OWN_HISTORY, USER_BIAS, Explanation, Term, feature_label
from kdq_lab.files import atomic_dir
from kdq_lab.jsonfile import read_json
from kdq_lab.limits import MAX_ENTITY_ROWS, MAX_MODEL_JSON_BYTES
from kdq_lab.models.base import ModelConfig, OnEpoch, TrainData
from kdq_lab.models.registry import IDS, OTHER, PROFILE, ModelSpec, register
from kdq_lab.npzfile import csr_problems, read_npz
from kdq_lab.parquetfile import read_parquet

LOSSES = ("warp", "bpr", "logistic", "warp-kos")
SCHEDULES = ("adagrad", "adadelta")
FEATURE_MODES = ("ids", "items", "users", "both")
NORMALIZATIONS = ("none", "l1")
MODEL_FORMAT = 1
#: LightFM's trained parameters: a NaN or an infinity in any of them means the training diverged.
PARAMETERS = ("item_embeddings", "item_biases", "user_embeddings", "user_biases")


class ModelDivergedError(KdqError):
    """LightFM's parameters stopped being finite during training."""


@dataclass(frozen=True)
class LightFMConfig(ModelConfig):
    """Every choice of a LightFM hybrid run.

    Attributes
    ----------
    loss, no_components, learning_rate, learning_schedule, item_alpha, user_alpha, max_sampled
        Passed to ``lightfm.LightFM``. WARP is the default: it optimises the top of the ranking.
    epochs
        Maximum number of epochs.
    features
        ``ids``, ``items``, ``users`` or ``both``.
    identity, normalize
        Identity block on feature sides and row normalisation (``none``/``l1``), for both sides.
    user_identity, item_identity, user_normalize, item_normalize
        One side's own setting; ``None`` follows ``identity`` / ``normalize``.
    identity_weight
        Weight of the identity entry before normalisation.
    user_columns, item_columns
        Restrict a side's features to these columns (default: every feature column).
    use_weights
        Train with event weights (divided by their mean) as sample weights.
    num_threads
        1 gives bit-identical results for a seed (deterministic mode); more threads are faster
        but LightFM's lock-free updates are then not reproducible.
    random_state
        Seed of initialisation and sampling.
    patience
        Early stopping: stop after this many epochs without a better validation metric and
        restore the best epoch. ``None`` trains all epochs.
    validation_metric
        Per-user metric averaged on the validation part, e.g. ``ndcg@10`` or ``precision@10``
        (an experiment sets its headline metric here unless the run chooses one).
    validation_users
        Validation users sampled (seeded) for early stopping; ``None`` uses them all.
    curve_users
        Train users sampled for the train-side learning curve (the validation metric on train).
    """

    loss: str = "warp"
    no_components: int = 32
    learning_rate: float = 0.05
    learning_schedule: str = "adagrad"
    item_alpha: float = 0.0
    user_alpha: float = 0.0
    max_sampled: int = 10
    epochs: int = 30
    features: str = "both"
    identity: bool = True
    normalize: str = "l1"
    user_identity: bool | None = None
    item_identity: bool | None = None
    user_normalize: str | None = None
    item_normalize: str | None = None
    identity_weight: float = 1.0
    user_columns: tuple[str, ...] | None = None
    item_columns: tuple[str, ...] | None = None
    use_weights: bool = False
    num_threads: int = 1
    random_state: int = 42
    patience: int | None = 5
    validation_metric: str = "ndcg@10"
    validation_users: int | None = None
    curve_users: int = 1000

    def __post_init__(self) -> None:
        for name in ("user_columns", "item_columns"):
            value = getattr(self, name)
            if value is not None:
                if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                    raise KdqError(f"lightfm {name} must be a list of feature column names, not {value!r}")
                object.__setattr__(self, name, tuple(value))
        for name, allowed in (
            ("loss", LOSSES),
            ("learning_schedule", SCHEDULES),
            ("features", FEATURE_MODES),
            ("normalize", NORMALIZATIONS),
            ("user_normalize", (*NORMALIZATIONS, None)),
            ("item_normalize", (*NORMALIZATIONS, None)),
        ):
            check_choice("lightfm", name, getattr(self, name), allowed)
        for name in ("identity", "use_weights"):
            check_bool("lightfm", name, getattr(self, name))
        for name in ("user_identity", "item_identity"):
            check_bool("lightfm", name, getattr(self, name), optional=True)
        for name, high in (
            ("no_components", limits.MAX_COMPONENTS),
            ("epochs", limits.MAX_EPOCHS),
            ("num_threads", limits.MAX_WORKERS),
            ("max_sampled", limits.MAX_SAMPLED),
            ("curve_users", limits.MAX_ENTITY_ROWS),
        ):
            check_number("lightfm", name, getattr(self, name), 1, high=high, integer=True)
        for name, high in (("patience", limits.MAX_EPOCHS), ("validation_users", limits.MAX_ENTITY_ROWS)):
            check_number("lightfm", name, getattr(self, name), 1, high=high, integer=True, optional=True)
        check_number("lightfm", "random_state", self.random_state, 0, high=limits.MAX_SEED, integer=True)
        for name, top in (("learning_rate", limits.MAX_LEARNING_RATE), ("identity_weight", limits.MAX_WEIGHT)):
            check_number("lightfm", name, getattr(self, name), 0, high=top, strict=True)
        for name in ("item_alpha", "user_alpha"):
            check_number("lightfm", name, getattr(self, name), 0, high=limits.MAX_ALPHA)
        parse_metric(self.validation_metric)

    @property
    def deterministic(self) -> bool:
        return self.num_threads == 1

    def side(self, users: bool) -> tuple[bool, FeatureConfig]:
        """(uses features, feature composition) for the user or item side."""
        uses = self.features in (("users", "both") if users else ("items", "both"))
        own_identity = self.user_identity if users else self.item_identity
        own_normalize = self.user_normalize if users else self.item_normalize
        identity = self.identity if own_identity is None else own_identity
        normalize = self.normalize if own_normalize is None else own_normalize
        return uses, FeatureConfig(
            identity=identity or not uses,
            normalize=cast(Normalization, normalize),
            identity_weight=self.identity_weight,
        )

    def describe(self) -> str:
        """A short readable name of the feature set-up, e.g. ``users features/l1 · items id+features/l1``."""
        parts = []
        for users, side in ((True, "users"), (False, "items")):
            uses, composition = self.side(users)
            if not uses:
                parts.append(f"{side} id")
            else:
                parts.append(f"{side} {'id+' if composition.identity else ''}features/{composition.normalize}")
        return " · ".join(parts)


def _diverged(model: Any) -> bool:
    """Whether a ``lightfm.LightFM`` holds a NaN or an infinity in its embeddings or biases."""
    return not all(np.isfinite(getattr(model, name)).all() for name in PARAMETERS)


def _metric_of(table: pd.DataFrame, metric: str) -> float:
    return float(table[metric].mean()) if len(table) else float("nan")


class LightFMHybrid:
    """A LightFM model with the lab's feature handling, early stopping and persistence.

    Fitted attributes end in ``_``: ``model_`` (the ``lightfm.LightFM``), ``user_features_``,
    ``item_features_`` (the composed matrices it scores with), ``user_ids_``, ``item_ids_``,
    ``user_vocab_``, ``item_vocab_``, ``history_`` (per-epoch learning curve), ``best_iteration_``
    and ``fit_seconds_``. A loaded model also has ``items_`` (its item table, if saved) and
    ``provenance_`` (dataset, split and run it was trained on).
    """

    name = "lightfm"
    iteration_parameter: ClassVar[str] = "epochs"

    def __init__(self, config: LightFMConfig | None = None):
        self.config = config or LightFMConfig()
        self.selected_epoch_: int | None = None  # the epoch count a refit trains (set by with_iterations)
        self.provenance_: dict[str, Any] = {}  # what a loaded model was trained on
        self.items_: pd.DataFrame | None = None  # the item table saved with the model

    # ------------------------------------------------------------------ features

    def _columns(self, users: bool) -> np.ndarray:
        """Mask of the vocabulary features this model uses on one side."""
        vocab = self.user_vocab_ if users else self.item_vocab_
        wanted = self.config.user_columns if users else self.config.item_columns
        if wanted is None:
            return np.ones(len(vocab), dtype=bool)
        unknown = sorted(set(wanted) - set(vocab.columns))
        if unknown:
            side = "user" if users else "item"
            raise KdqError(
                f"lightfm {side}_columns {unknown} are not {side} feature columns; "
                f"available: {', '.join(vocab.columns)}"
            )
        return np.isin(vocab.column_of(), list(wanted))

    def _select(self, base: sp.csr_matrix, users: bool) -> sp.csr_matrix:
        """The side's feature rows as the model sees them (selected columns, or none for ids-only sides)."""
        uses, _ = self.config.side(users)
        if not uses:
            return sp.csr_matrix((base.shape[0], 0), dtype=np.float32)
        return sp.csr_matrix(base)[:, np.flatnonzero(self._columns(users))]

    def _compose(self, base: sp.csr_matrix, users: bool, seen: np.ndarray) -> sp.csr_matrix:
        _, composition = self.config.side(users)
        return compose_features(
            self._select(base, users), composition, with_identity=seen if composition.identity else None
        )

    def profile_columns(self) -> tuple[str, ...]:
        """The user feature columns a profile can move the ranking with (none when users are ids only)."""
        if not self.config.side(True)[0]:
            return ()
        return tuple(self.config.user_columns or self.user_vocab_.columns)

    def encode(self, frame: pd.DataFrame, users: bool = True) -> tuple[sp.csr_matrix, list[UnknownValue]]:
        """Feature rows for new users (or items) described by their profile columns.

        The rows have no identity entry and the training normalisation. Unknown values
        are ignored and returned.
        """
        vocab = self.user_vocab_ if users else self.item_vocab_
        base, unknown = vocab.transform(frame)
        if unknown:
            shown = ", ".join(sorted({f"{u.column}={u.value!r}" for u in unknown})[:10])
            warnings.warn(f"ignored feature values unknown to the model: {shown}", stacklevel=2)
        return self.compose_new(base, users), unknown

    def compose_new(self, base: sp.csr_matrix, users: bool = True) -> sp.csr_matrix:
        """Composed rows for multi-hot vocabulary rows of new users (or items): no identity, training normalisation."""
        _, composition = self.config.side(users)
        width = len(self.user_ids_ if users else self.item_ids_)
        return compose_features(
            self._select(base, users),
            composition,
            with_identity=np.zeros(base.shape[0], dtype=bool),
            n_identity=width if composition.identity else None,
        )

    # ------------------------------------------------------------------ training

    def fit(self, data: TrainData, on_epoch: OnEpoch | None = None) -> LightFMHybrid:
        """Train, with early stopping on ``data.validation`` when there is one and ``patience`` is set.

        ``on_epoch(epoch, validation metric)`` is called after each validated epoch (tuning
        reports it to a pruner); an exception raised there stops training.
        """
        cfg = self.config
        started = time.perf_counter()
        seen_users = data.interactions.getnnz(axis=1) > 0
        columns = ~data.withheld_items if data.withheld_items is not None else np.ones(data.n_items, dtype=bool)
        self.user_ids_, self.item_ids_ = data.user_ids, data.item_ids
        self.user_vocab_, self.item_vocab_ = data.user_vocab, data.item_vocab
        self.user_features_ = self._compose(data.user_features, True, seen_users)
        self.item_features_ = self._compose(data.item_features, False, columns)
        self.model_ = _new_lightfm(cfg)
        # withheld items are not columns of the training matrix: never positives, never sampled negatives
        train_items = np.flatnonzero(columns)
        interactions = data.interactions[:, train_items].tocoo().astype(np.float32)
        item_rows = self.item_features_[train_items]
        weights = None
        if cfg.use_weights:
            weights = data.weights[:, train_items].tocoo().astype(np.float32)
            weights.data /= max(float(weights.data.mean()), 1e-12)
        metric = cfg.validation_metric
        k = parse_metric(metric).k or 10
        rng = np.random.default_rng(cfg.random_state)
        validation = sample_users(data.validation, cfg.validation_users, rng) if data.validation else None
        trained = np.flatnonzero(seen_users)
        curve_users = rng.choice(trained, size=min(cfg.curve_users, len(trained)), replace=False)
        history, best, best_epoch, waited, snapshot = [], -np.inf, 0, 0, None
        for epoch in range(1, cfg.epochs + 1):
            tick = time.perf_counter()
            try:
                self.model_.fit_partial(
                    interactions,
                    user_features=self.user_features_,
                    item_features=item_rows,
                    sample_weight=weights,
                    epochs=1,
                    num_threads=cfg.num_threads,
                )
            except ValueError:  # LightFM refuses to go on with a parameter that is not finite; anything else stays
                if _diverged(self.model_):
                    raise ModelDivergedError(self._divergence_message(epoch)) from None
                raise
            row: dict[str, float] = {"iteration": epoch, "seconds": time.perf_counter() - tick}
            if validation is not None:
                tick = time.perf_counter()
                row["train"] = self._train_metric(data.interactions, curve_users, metric, k)
                row["validation"] = _metric_of(
                    evaluate(self, validation.positives, exclude=validation.exclude, k=k), metric
                )
                row["validation_seconds"] = time.perf_counter() - tick
                if on_epoch is not None:
                    on_epoch(epoch, row["validation"])
                if row["validation"] > best:
                    best, best_epoch, waited, snapshot = row["validation"], epoch, 0, self._snapshot()
                else:
                    waited += 1
            history.append(row)
            if validation is not None and cfg.patience is not None and waited >= cfg.patience:
                break
        if validation is not None and cfg.patience is not None and snapshot is not None:
            self._restore(snapshot)
            self.best_iteration_ = best_epoch
        else:
            self.best_iteration_ = self.selected_epoch_ or len(history)
        self.history_ = pd.DataFrame(history)
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def tie_order(self) -> None:
        """None: LightFM's pessimistic rule (an equal score counts as higher), exact with ``lightfm.evaluation``."""
        return None

    def learning_curve(self) -> pd.DataFrame:
        return self.history_

    def best_iteration(self) -> int:
        return int(self.best_iteration_)

    def with_iterations(self, n: int) -> LightFMHybrid:
        """A new model that trains exactly ``n`` epochs without early stopping; it remembers that count."""
        refit = LightFMHybrid(LightFMConfig.from_dict(self.pin_iterations(self.config.to_dict(), n), self.name))
        refit.selected_epoch_ = n
        return refit

    @classmethod
    def pin_iterations(cls, params: dict[str, Any], n: int) -> dict[str, Any]:
        """``params`` with ``epochs=n`` and no early stopping."""
        return {**params, "epochs": int(n), "patience": None}

    def _train_metric(self, interactions: sp.csr_matrix, users: np.ndarray, metric: str, k: int) -> float:
        """The validation metric measured on a sample of train users' own train items (no exclusion)."""
        keep = np.zeros(interactions.shape[0], dtype=bool)
        keep[users] = True
        sample = sp.diags(keep.astype(np.float32)) @ interactions
        return _metric_of(evaluate(self, sample, k=k), metric)

    def _divergence_message(self, epoch: int) -> str:
        cfg = self.config
        hints = [f"lower the learning rate (try learning_rate={cfg.learning_rate / 10:g})"]
        sides = {name: cfg.side(name == "user") for name in ("user", "item")}
        unnormalised = [name for name, (uses, features) in sides.items() if uses and features.normalize == "none"]
        if unnormalised:
            settings = ", ".join(f"{name}_normalize='l1'" for name in unnormalised)
            hints.append(f"normalise feature rows ({settings})")
        if cfg.use_weights:
            hints.append("train without sample weights (use_weights=false) or with smaller weights")
        hints.append("add regularisation (item_alpha/user_alpha=1e-6)")
        return (
            f"LightFM diverged in epoch {epoch}: its parameters are no longer finite "
            f"(loss={cfg.loss}, learning_rate={cfg.learning_rate:g}, "
            f"{', '.join(f'{n}_normalize={f.normalize}' for n, (uses, f) in sides.items() if uses) or 'ids only'}, "
            f"use_weights={cfg.use_weights}). Likely causes: a learning rate too high for this data, or "
            f"unnormalised feature values / sample weights. Try: {'; '.join(hints)}."
        )

    def _snapshot(self) -> dict[str, np.ndarray]:
        m = self.model_
        return {name: getattr(m, name).copy() for name in _PARAMETERS}

    def _restore(self, snapshot: dict[str, np.ndarray]) -> None:
        for name, value in snapshot.items():
            getattr(self.model_, name)[...] = value

    # ------------------------------------------------------------------ scoring

    def lightfm_parts(self) -> tuple[LightFM, sp.csr_matrix, sp.csr_matrix]:
        """The ``lightfm.LightFM`` model and the feature matrices it scores with (for the evaluator)."""
        return self.model_, self.user_features_, self.item_features_

    def representations(
        self, user_rows: sp.csr_matrix | None = None, item_rows: sp.csr_matrix | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(user biases, user embeddings, item biases, item embeddings) of feature rows (default: all)."""
        users = self.user_features_ if user_rows is None else user_rows
        items = self.item_features_ if item_rows is None else item_rows
        ub, ue = self.model_.get_user_representations(users)
        ib, ie = self.model_.get_item_representations(items)
        return ub, ue, ib, ie

    def score(self, users: np.ndarray) -> np.ndarray:
        """Scores of known users (rows) over all items."""
        return self.score_rows(self.user_features_[np.asarray(users)])

    def score_rows(self, user_rows: sp.csr_matrix) -> np.ndarray:
        """Scores of arbitrary user feature rows (e.g. from :meth:`encode`) over all items."""
        ub, ue, ib, ie = self.representations(user_rows)
        return (ue @ ie.T + ub[:, None] + ib[None, :]).astype(np.float32)

    # ------------------------------------------------------------------ explanations

    def explain(
        self, items: np.ndarray, user: int | None = None, user_row: sp.csr_matrix | None = None
    ) -> list[Explanation]:
        """Every term of each item's score: feature pairs, user-feature biases, item-feature biases.

        The score is bilinear, so Σ_f Σ_g w_f v_g ⟨e_f, e_g⟩ + Σ_f w_f b_f + Σ_g v_g b_g is
        exact: the terms sum to the model's own ``predict`` score.
        """
        lfm = self.model_
        row = sp.csr_matrix(user_row if user_row is not None else self.user_features_[user])
        items = np.asarray(items, dtype=np.int64)
        f, w = row.indices, row.data.astype(np.float64)
        rows = self.item_features_[items]
        owner = np.repeat(np.arange(len(items)), np.diff(rows.indptr))
        g, v = rows.indices, rows.data.astype(np.float64)
        user_names, item_names = self._feature_names(True), self._feature_names(False)
        identity_items = self.config.side(False)[1].identity
        n_item_ids = len(self.item_ids_)
        dots = lfm.user_embeddings[f].astype(np.float64) @ lfm.item_embeddings[g].astype(np.float64).T
        pair_values = w[:, None] * v[None, :] * dots  # user features × item feature entries
        user_bias = w * lfm.user_biases[f].astype(np.float64)
        item_bias = v * lfm.item_biases[g].astype(np.float64)
        scores = self.score_rows(row)[0, items] if len(items) else np.zeros(0)
        out = []
        for position, item in enumerate(items):  # one object per shown item (≤ k): explanation assembly, not scoring
            mine = np.flatnonzero(owner == position)
            terms = [
                Term("pair", user_names[f[a]], item_names[g[b]], float(pair_values[a, b]))
                for a in range(len(f))
                for b in mine
            ]
            terms += [Term("user_bias", USER_BIAS, None, float(user_bias.sum()))] if len(f) else []
            for b in mine:
                is_identity = identity_items and g[b] < n_item_ids
                terms.append(
                    Term(
                        "item_bias",
                        None,
                        ITEM_POPULARITY if is_identity else f"{item_names[g[b]]} (bias)",
                        float(item_bias[b]),
                    )
                )
            out.append(Explanation(int(item), float(scores[position]), terms))
        return out

    def _feature_names(self, users: bool) -> np.ndarray:
        """Readable name of every column of the composed feature matrix on one side."""
        vocab = self.user_vocab_ if users else self.item_vocab_
        ids = self.user_ids_ if users else self.item_ids_
        uses, composition = self.config.side(users)
        names = [OWN_HISTORY if users else OWN_AUDIENCE] * len(ids) if composition.identity else []
        if uses:
            names += [feature_label(vocab.names[j], vocab.labels) for j in np.flatnonzero(self._columns(users))]
        return np.asarray(names, dtype=object)

    # ------------------------------------------------------------------ persistence

    def save(self, folder: Path, extra: dict[str, Any] | None = None, items: pd.DataFrame | None = None) -> Path:
        """Write ``model.npz`` (parameters, feature matrices) and ``model.json`` (config, ids, vocabularies).

        ``items`` (the item table, row i = item i) is kept as ``items.parquet`` so the model can
        show titles on its own.
        """
        arrays: dict[str, np.ndarray] = {name: getattr(self.model_, name) for name in _PARAMETERS}
        for side, matrix in (("user", self.user_features_), ("item", self.item_features_)):
            matrix = sp.csr_matrix(matrix)
            arrays |= {
                f"{side}_features_data": matrix.data,
                f"{side}_features_indices": matrix.indices,
                f"{side}_features_indptr": matrix.indptr,
                f"{side}_features_shape": np.asarray(matrix.shape, dtype=np.int64),
            }
        meta = {
            "format": MODEL_FORMAT,
            "kind": self.name,
            "config": asdict(self.config),
            "user_ids": self.user_ids_.astype(str).tolist(),
            "item_ids": self.item_ids_.astype(str).tolist(),
            "user_vocab": self.user_vocab_.to_dict(),
            "item_vocab": self.item_vocab_.to_dict(),
            "best_epoch": int(self.best_iteration_),
            "history": self.history_.to_dict(orient="list"),
            "extra": extra or {},
        }
        with atomic_dir(Path(folder)) as tmp:
            np.savez_compressed(tmp / "model.npz", **cast(dict[str, Any], arrays))
            (tmp / "model.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
            if items is not None:
                items.to_parquet(tmp / "items.parquet", index=False)
        return Path(folder)

    @classmethod
    def load(cls, folder: Path) -> LightFMHybrid:
        """Load a model written by :meth:`save`, checking format, contents and shapes.

        Every array is checked before LightFM sees it (its C code trusts sparse indices), and
        a saved item table must list the model's items in order; every problem found is
        reported at once as a :class:`DataError` naming the file.
        """
        folder = Path(folder)
        meta = _read_meta(folder, cls.name)
        config = _read_config(folder, meta)
        arrays = _read_arrays(folder, meta, config.no_components)
        items, problems = _read_items(folder, meta)
        problems = _array_problems(str(folder / "model.npz"), arrays, config.no_components) + problems
        problems += _id_problems(str(folder / "model.json"), meta, arrays)
        if problems:
            raise DataError(problems, heading=f"invalid saved model {folder}")
        try:
            model = cls(config)
            features = {
                side: sp.csr_matrix(
                    (
                        arrays[f"{side}_features_data"],
                        arrays[f"{side}_features_indices"],
                        arrays[f"{side}_features_indptr"],
                    ),
                    shape=tuple(arrays[f"{side}_features_shape"]),
                )
                for side in ("user", "item")
            }
            parameters = {name: arrays[name] for name in _PARAMETERS}
            user_ids, item_ids = pd.Index(meta["user_ids"]), pd.Index(meta["item_ids"])
            vocabs = FeatureVocabulary.from_dict(meta["user_vocab"]), FeatureVocabulary.from_dict(meta["item_vocab"])
            best_epoch, history = int(meta["best_epoch"]), pd.DataFrame(meta["history"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise KdqError(f"{folder}: missing or malformed model entry ({type(exc).__name__}: {exc})") from None
        d = model.config.no_components
        model.model_ = _new_lightfm(model.config)
        model.model_._initialize(d, features["item"].shape[1], features["user"].shape[1])
        for name, value in parameters.items():
            getattr(model.model_, name)[...] = value
        model.user_features_, model.item_features_ = features["user"], features["item"]
        model.user_ids_, model.item_ids_ = user_ids, item_ids
        model.user_vocab_, model.item_vocab_ = vocabs
        model.best_iteration_, model.history_ = best_epoch, history
        model.provenance_ = meta.get("extra") or {}
        model.items_ = items
        _check_vocabularies(model, folder / "model.json")
        return model


def _read_config(folder: Path, meta: dict[str, Any]) -> LightFMConfig:
    """The saved configuration; a bad one is an error naming ``model.json``."""
    file = folder / "model.json"
    params = meta.get("config")
    if not isinstance(params, dict):
        raise KdqError(f"{file}: 'config' must be a mapping of LightFM parameters, not {type(params).__name__}")
    try:
        return LightFMConfig.from_dict(params, "lightfm")
    except KdqError as exc:
        raise KdqError(f"{file}: bad 'config': {exc}") from None
    except (TypeError, ValueError) as exc:
        raise KdqError(f"{file}: bad 'config' ({type(exc).__name__}: {exc})") from None


def _array_problems(file: str, arrays: dict[str, np.ndarray], d: int) -> list[Problem]:
    """Feature matrices, then parameters: present, finite, and shaped like the feature columns."""
    out = [
        problem
        for side in ("user", "item")
        for problem in csr_problems(
            file,
            f"{side}_features_",
            {part: arrays.get(f"{side}_features_{part}") for part in ("data", "indices", "indptr", "shape")},
        )
    ]
    columns = {
        side: int(arrays[f"{side}_features_shape"][1])
        if not any((p.column or "").startswith(side) for p in out)
        else None
        for side in ("user", "item")
    }
    for name in _PARAMETERS:
        value, side = arrays.get(name), name.partition("_")[0]
        expected = None if columns[side] is None else (columns[side], d) if "embeddings" in name else (columns[side],)
        if value is None:
            out.append(Problem(file, None, name, None, "missing array", "array"))
        elif value.dtype.kind not in "iuf":
            out.append(Problem(file, None, name, str(value.dtype), "expected a numeric array", "array"))
        elif expected is not None and value.shape != expected:
            out.append(
                Problem(
                    file,
                    None,
                    name,
                    str(value.shape),
                    f"has the wrong shape; expected {expected} ({side} feature columns x no_components)",
                    "array",
                )
            )
        elif not np.isfinite(value).all():
            out.append(
                Problem(
                    file,
                    None,
                    name,
                    None,
                    f"{int((~np.isfinite(value)).sum())} values are not finite (NaN or infinite)",
                    "array",
                )
            )
    return out


def _id_problems(file: str, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> list[Problem]:
    """Saved ids: unique text, one per feature row."""
    out = []
    for side in ("user", "item"):
        ids, shape = meta.get(f"{side}_ids"), arrays.get(f"{side}_features_shape")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            out.append(Problem(file, None, f"{side}_ids", None, "expected a list of ids as text", "key"))
            continue
        repeated = pd.Index(ids)[pd.Index(ids).duplicated()]
        if len(repeated):
            out.append(Problem(file, None, f"{side}_ids", repeated[0], f"{len(repeated)} repeated id(s)", "key"))
        if shape is not None and shape.shape == (2,) and int(shape[0]) != len(ids):
            out.append(
                Problem(
                    file,
                    None,
                    f"{side}_ids",
                    None,
                    f"{len(ids)} ids, but the {side} feature matrix has {int(shape[0])} rows",
                    "key",
                )
            )
    return out


def _read_items(folder: Path, meta: dict[str, Any]) -> tuple[pd.DataFrame | None, list[Problem]]:
    """The saved item table (if any), checked to list exactly the model's items in the model's order."""
    path = folder / "items.parquet"
    if not path.is_file():
        return None, []
    extra = meta.get("extra") or {}
    column = extra.get("item_id_column") if isinstance(extra, dict) else None
    try:
        items = read_parquet(path, MAX_ENTITY_ROWS, "saved item table")
    except DataError as exc:
        return None, exc.problems
    if column not in items.columns:
        return None, [
            Problem(
                str(folder / "model.json"),
                None,
                "extra.item_id_column",
                column,
                f"must name the id column of {path.name} (its columns: {', '.join(map(str, items.columns))})",
                "key",
            )
        ]
    ids, expected = items[column].astype(str).to_numpy(), np.asarray(meta.get("item_ids") or [], dtype=object)
    if len(ids) != len(expected):
        return None, [
            Problem(str(path), None, column, None, f"{len(ids)} rows, but model.json lists {len(expected)} items")
        ]
    differ = np.flatnonzero(ids != expected)
    if differ.size:
        row = differ[0]
        return None, [
            Problem(
                str(path),
                None,
                column,
                ids[row],
                f"row {row} should be item {expected[row]!r} (model.json item_ids order); "
                f"{differ.size} rows differ, so titles would be shown for the wrong items",
            )
        ]
    return items, []


def _check_vocabularies(model: LightFMHybrid, file: Path) -> None:
    """New profiles must encode to exactly as many feature columns as the saved matrices have."""
    for users, vocab, matrix in (
        (True, model.user_vocab_, model.user_features_),
        (False, model.item_vocab_, model.item_features_),
    ):
        try:
            width = model.compose_new(sp.csr_matrix((0, len(vocab)), dtype=np.float32), users).shape[1]
        except KdqError as exc:
            raise KdqError(f"{file}: {exc}") from None
        if width != matrix.shape[1]:
            side = "user" if users else "item"
            raise KdqError(
                f"{file}: the {side} vocabulary and config give {width} feature columns, but the saved "
                f"{side} feature matrix has {matrix.shape[1]}"
            )


def _new_lightfm(cfg: LightFMConfig) -> LightFM:
    return LightFM(
        no_components=cfg.no_components,
        loss=cfg.loss,
        learning_schedule=cfg.learning_schedule,
        learning_rate=cfg.learning_rate,
        item_alpha=cfg.item_alpha,
        user_alpha=cfg.user_alpha,
        max_sampled=cfg.max_sampled,
        random_state=cfg.random_state,
    )


def _read_meta(folder: Path, kind: str) -> dict[str, Any]:
    try:
        meta = read_json(folder / "model.json", "saved model's model.json", MAX_MODEL_JSON_BYTES)
    except FileNotFoundError:
        raise KdqError(f"{folder}: no model.json; not a saved kdq_lab model") from None
    if not isinstance(meta, dict) or meta.get("format") != MODEL_FORMAT or meta.get("kind") != kind:
        found = (meta.get("format"), meta.get("kind")) if isinstance(meta, dict) else (None, None)
        raise KdqError(
            f"{folder / 'model.json'}: format {found[0]!r} kind {found[1]!r}; "
            f"this lab reads format {MODEL_FORMAT} kind {kind!r}"
        )
    return meta


def _array_bounds(meta: dict[str, Any], d: int) -> dict[str, int]:
    """The most elements each array of ``model.npz`` may hold, from the sizes ``model.json`` declares.

    A side's feature matrix has a row per id and at most a column per id (the identity block) plus
    one per vocabulary feature; its embeddings have ``d`` values per column.
    """
    bounds: dict[str, int] = {}
    for side in ("user", "item"):
        ids, vocab = meta.get(f"{side}_ids"), meta.get(f"{side}_vocab")
        names = vocab.get("names") if isinstance(vocab, dict) else None
        rows = len(ids) if isinstance(ids, list) else 0
        columns = rows + (len(names) if isinstance(names, list) else 0)
        entries = rows * columns
        bounds |= {
            f"{side}_embeddings": columns * d,
            f"{side}_biases": columns,
            f"{side}_features_data": entries,
            f"{side}_features_indices": entries,
            f"{side}_features_indptr": rows + 1,
            f"{side}_features_shape": 2,
        }
    return bounds


def _read_arrays(folder: Path, meta: dict[str, Any], d: int) -> dict[str, np.ndarray]:
    try:
        basis = f"the ids and vocabularies in {folder / 'model.json'}"
        return read_npz(folder / "model.npz", _array_bounds(meta, d), "saved model's arrays", basis)
    except FileNotFoundError:
        raise KdqError(f"{folder}: model.npz is missing") from None


_PARAMETERS = ("user_embeddings", "user_biases", "item_embeddings", "item_biases")


def _narrow_search(space: dict[str, dict[str, Any]], fixed: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Drop a side's identity or normalisation range when that side has no features, or a run fixes it for both."""
    config = LightFMConfig.from_dict({k: v for k, v in fixed.items() if k in LightFMConfig().to_dict()}, "lightfm")
    out = dict(space)
    for users, side in ((True, "user"), (False, "item")):
        uses, _ = config.side(users)
        for setting in ("identity", "normalize"):
            if not uses or setting in fixed:
                out.pop(f"{side}_{setting}", None)
    return out


def _role(config: LightFMConfig) -> str:
    """Profile features on the user side: ``profile``; no features on either side: ``ids``; else ``other``."""
    if config.side(True)[0]:
        return PROFILE
    return OTHER if config.side(False)[0] else IDS


register(
    ModelSpec(
        kind="lightfm",
        build=LightFMHybrid,
        config=LightFMConfig,
        summary="the LightFM hybrid: user and item features, identity and normalisation per side, early stopping",
        seed_parameter="random_state",
        metric_parameter="validation_metric",
        search_space={
            "no_components": {"int": [8, 128], "log": True},
            "learning_rate": {"float": [0.005, 0.2], "log": True},
            "item_alpha": {"float": [1.0e-8, 1.0e-3], "log": True},
            "user_alpha": {"float": [1.0e-8, 1.0e-3], "log": True},
            "loss": {"choice": ["warp", "bpr"]},
            "max_sampled": {"int": [5, 50]},
            "user_identity": {"choice": [True, False]},
            "item_identity": {"choice": [True, False]},
            "user_normalize": {"choice": ["none", "l1"]},
            "item_normalize": {"choice": ["none", "l1"]},
        },
        narrow_search=_narrow_search,
        role=_role,
    )
)
