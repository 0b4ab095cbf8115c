"""The protocol every model follows, the capabilities a model may declare, and the training data.

A model is fitted on :class:`TrainData` and then answers one question: the scores
of a batch of users (matrix rows) over all items (:class:`Scorer`). One evaluator
serves them all. Optional capabilities are small protocols that callers test for,
never a model's kind:

* :class:`Iterative`: trains in iterations (epochs, ALS sweeps, ...) with early stopping on
  validation, then refits for the best iteration count;
* :class:`Refittable`: chooses something else on validation (e.g. the switch's threshold), then
  refits on train + validation keeping that choice;
* :class:`Persistable`: saves to and loads from npz + json;
* :class:`Explainable`: splits a score into readable terms;
* :class:`FeatureAware`: scores users it never saw (new profiles) from their features;
* ``SharedRow`` (:mod:`kdq_lab.evaluation.ranking`, where the evaluator uses it): scores some users with one
  row that does not depend on the user, which the evaluator ranks once;
* :class:`Composite`: built from other runs' fitted models (its parts), never retraining them.

A model class declares a capability by having its members: the registry answers from the
class (:func:`declares`), without building a model. Every configuration says whether the
model is ``deterministic`` (bit-identical scores for a seed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, runtime_checkable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from kdq_lab.data.build import FeatureVocabulary
from kdq_lab.data.store import SplitData
from kdq_lab.data.targets import Target, target
from kdq_lab.errors import KdqError

if TYPE_CHECKING:
    from kdq_lab.data.build import UnknownValue
    from kdq_lab.explain import Explanation

C = TypeVar("C", bound="ModelConfig")


@dataclass(frozen=True)
class ModelConfig:
    """Base of every model's frozen configuration: built from a parameter mapping, checked on creation."""

    @classmethod
    def from_dict(cls: type[C], params: dict[str, Any], kind: str = "model") -> C:
        """Build from ``params``; unknown names are an error listing the allowed ones."""
        allowed = [f.name for f in fields(cls)]
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise KdqError(
                f"unknown parameter(s) {', '.join(map(str, unknown))} for model {kind!r}; "
                f"allowed: {', '.join(allowed) or 'none'}"
            )
        return cls(**params)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def deterministic(self) -> bool:
        """Whether the same seed gives bit-identical scores (a multi-threaded model says no)."""
        return True


@dataclass(frozen=True)
class TrainData:
    """What a model may learn from: train interactions, features, times, and a validation part.

    Attributes
    ----------
    interactions, weights
        Binary train interactions and their summed event weights (users × items).
    user_features, item_features
        Multi-hot feature rows (no identity, no normalisation) with their vocabularies.
    events
        Train events: ``user``, ``item`` (row positions), ``time`` (Unix seconds), ``weight``.
    validation
        What early stopping ranks: validation positives and the items excluded from the
        ranking (the experiment's ``exclude`` rule), or ``None``.
    withheld_items
        Items the split withholds from training (held-out cold items, items published after
        a global cutoff): never training columns, scored from their features only.
    ground_truth
        The generator's ground-truth folder, when the dataset has one (oracle only).
    """

    interactions: sp.csr_matrix
    weights: sp.csr_matrix
    user_features: sp.csr_matrix
    item_features: sp.csr_matrix
    user_vocab: FeatureVocabulary
    item_vocab: FeatureVocabulary
    user_ids: pd.Index
    item_ids: pd.Index
    events: pd.DataFrame
    validation: Target | None = None
    withheld_items: np.ndarray | None = None
    ground_truth: Path | None = None

    @property
    def n_users(self) -> int:
        return self.interactions.shape[0]

    @property
    def n_items(self) -> int:
        return self.interactions.shape[1]

    @classmethod
    def from_split(cls, split: SplitData, refit: bool = False, exclude: str = "seen") -> TrainData:
        """Train on ``train`` with ``validation`` for early stopping, or (``refit``) on both, without validation.

        ``exclude`` is the experiment's exclusion rule for the validation ranking; when it
        leaves no validation positive, there is no validation (and no early stopping).
        """
        parts = ("train", "validation") if refit else ("train",)
        known = split.known if refit else split.train
        events = split.events[split.events["part"].isin(parts)][["user", "item", "time", "weight"]]
        validation = target(split, "validation", exclude) if not refit else None
        withheld = split.withheld_until_test | (split.withheld_until_validation if not refit else False)
        return cls(
            interactions=known.interactions,
            weights=known.weights,
            user_features=split.user_features,
            item_features=split.item_features,
            user_vocab=split.user_vocab,
            item_vocab=split.item_vocab,
            user_ids=split.user_ids,
            item_ids=split.item_ids,
            events=events.reset_index(drop=True),
            validation=validation if validation is not None and validation.positives.nnz else None,
            withheld_items=np.asarray(withheld, dtype=bool),
            ground_truth=split.ground_truth,
        )


@runtime_checkable
class Scorer(Protocol):
    """Fit on :class:`TrainData`; then score batches of users (rows) over all items.

    ``tie_order`` says how equal scores are ordered: a permutation (0 = first among equals;
    the model's documented secondary key), or ``None`` for LightFM's pessimistic rule
    (an equal score counts as higher), kept for exactness with ``lightfm.evaluation``.
    """

    name: str

    def fit(self, data: TrainData) -> Scorer: ...

    def score(self, users: np.ndarray) -> np.ndarray:
        """Scores of shape ``(len(users), n_items)``; higher is better."""
        ...

    def tie_order(self) -> np.ndarray | None: ...


#: ``on_epoch(iteration, validation metric)``: called after every validated iteration (raising there stops training).
OnEpoch = Callable[[int, float], None]


@runtime_checkable
class Refittable(Protocol):
    """Chooses something on the validation part when fitted on train, then refits on train + validation.

    The runner fits such a model on train (with ``data.validation``) and then fits ``for_refit()`` on
    train + validation; a model that is neither this nor :class:`Iterative` is fitted once, on train +
    validation.
    """

    def for_refit(self) -> Scorer:
        """A new, unfitted model that keeps what validation chose and trains without validation."""
        ...


@runtime_checkable
class Iterative(Protocol):
    """Trains in iterations, stops early on validation, and can be refitted for the best iteration count.

    The model names its iteration parameter (``epochs`` for LightFM, ``iterations`` for ALS);
    early stopping (its patience) is its own business. ``fit(data, on_epoch)`` calls
    ``on_epoch(iteration, validation metric)`` after every validated iteration (tuning reports
    these to a pruner; raising there stops training).
    """

    iteration_parameter: ClassVar[str]

    def fit(self, data: TrainData, on_epoch: OnEpoch | None = None) -> Scorer: ...

    def learning_curve(self) -> pd.DataFrame:
        """One row per iteration: ``iteration``, ``seconds`` and, with validation, ``validation`` (and ``train`` when
        the model measures it)."""
        ...

    def best_iteration(self) -> int: ...

    def with_iterations(self, n: int) -> Scorer:
        """A new, unfitted model that trains exactly ``n`` iterations, without early stopping."""
        ...

    @classmethod
    def pin_iterations(cls, params: dict[str, Any], n: int) -> dict[str, Any]:
        """``params`` that train exactly ``n`` iterations without early stopping (``run --tuned``)."""
        ...


@runtime_checkable
class Persistable(Protocol):
    """Saves to a folder (npz + json, never pickle) and loads back with every shape checked."""

    def save(self, folder: Path, extra: dict[str, Any] | None = None, items: pd.DataFrame | None = None) -> Path: ...

    @classmethod
    def load(cls, folder: Path) -> Any: ...


@runtime_checkable
class Explainable(Protocol):
    """Splits the score of an item for a user (a row, or a new user's feature row) into readable terms."""

    def explain(
        self, items: np.ndarray, user: int | None = None, user_row: sp.csr_matrix | None = None
    ) -> list[Explanation]: ...


@runtime_checkable
class FeatureAware(Protocol):
    """Scores users it never saw from their features (new profiles), with the training vocabulary.

    Once loaded from disk, a model may also carry ``items_``: the item table saved with it.
    """

    user_vocab_: FeatureVocabulary
    item_vocab_: FeatureVocabulary
    item_ids_: pd.Index

    def profile_columns(self) -> tuple[str, ...]:
        """The user feature columns a profile can change the ranking with (empty: none)."""
        ...

    def encode(self, frame: pd.DataFrame, users: bool = True) -> tuple[sp.csr_matrix, list[UnknownValue]]:
        """Model rows for new users (or items) described by their feature columns, and unknown values."""
        ...

    def compose_new(self, base: sp.csr_matrix, users: bool = True) -> sp.csr_matrix:
        """Model rows for multi-hot vocabulary rows of new users (or items)."""
        ...

    def score_rows(self, user_rows: sp.csr_matrix) -> np.ndarray:
        """Scores of model rows (from :meth:`encode` or :meth:`compose_new`) over all items."""
        ...


def no_history_row(interactions: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """The shared row of a model that scores users without train history all 0 (``SharedRow.shared_row``)."""
    return interactions.getnnz(axis=1) == 0, np.zeros(interactions.shape[1], dtype=np.float32)


@runtime_checkable
class Composite(Protocol):
    """A model built from other runs' fitted models (its *parts*, named by the configuration parameters its
    spec lists in ``parts``), which it never retrains.

    ``fit_parts`` makes the composite's own choices on ``data`` (train, with validation) from the parts
    fitted on train; ``refit_parts`` keeps those choices and delegates to the parts refitted on
    train + validation. Its tie order and capabilities follow its parts.
    """

    def fit_parts(self, data: TrainData, parts: Mapping[str, Scorer]) -> Scorer: ...

    def refit_parts(self, data: TrainData, parts: Mapping[str, Scorer]) -> Scorer: ...


def declares(cls: object, capability: type) -> bool:
    """Whether the class ``cls`` has every member of the protocol ``capability`` (asked without building a model).

    ``issubclass`` does not take protocols with data members (``Iterative.iteration_parameter``).
    """
    members = {
        name for name in (*vars(capability).get("__annotations__", {}), *vars(capability)) if not name.startswith("_")
    }
    return isinstance(cls, type) and all(hasattr(cls, name) for name in members)


def item_popularity(interactions: sp.csr_matrix) -> np.ndarray:
    """Number of users with a train interaction, per item."""
    return np.asarray(interactions.getnnz(axis=0), dtype=np.float64)


def ranked_order(item_ids: pd.Index, *keys: np.ndarray) -> np.ndarray:
    """Position of every item when sorted by each key descending, then by item id ascending.

    This is how models document their tie order: e.g. ``ranked_order(ids, popularity)``
    puts the more popular of two equally scored items first, and the lower id among
    equally popular ones.
    """
    id_rank = np.argsort(np.argsort(np.asarray(item_ids, dtype=str), kind="stable"), kind="stable")
    permutation = np.lexsort((id_rank, *[-np.asarray(k, dtype=np.float64) for k in reversed(keys)]))
    order = np.empty(len(item_ids), dtype=np.int64)
    order[permutation] = np.arange(len(item_ids))
    return order
