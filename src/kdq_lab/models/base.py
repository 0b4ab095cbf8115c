"""The scorer protocol every model follows, and the training data they all receive.

A model is fitted on :class:`TrainData` and then answers one question: the scores
of a batch of users (matrix rows) over all items. One evaluator serves them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from kdq_lab.data.build import FeatureVocabulary
from kdq_lab.data.store import SplitData


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
        Binary validation interactions for early stopping, or ``None``.
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
    validation: sp.csr_matrix | None = None
    ground_truth: Path | None = None

    @property
    def n_users(self) -> int:
        return self.interactions.shape[0]

    @property
    def n_items(self) -> int:
        return self.interactions.shape[1]

    @classmethod
    def from_split(cls, split: SplitData, refit: bool = False) -> "TrainData":
        """Train on ``train`` with ``validation`` for early stopping, or (``refit``) on both, without validation."""
        parts = ("train", "validation") if refit else ("train",)
        known = split.known if refit else split.train
        events = split.events[split.events["part"].isin(parts)][["user", "item", "time", "weight"]]
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
            validation=None if refit or split.validation.interactions.nnz == 0 else split.validation.interactions,
            ground_truth=split.ground_truth,
        )


@runtime_checkable
class Scorer(Protocol):
    """Fit on :class:`TrainData`; then score batches of users (rows) over all items."""

    name: str

    def fit(self, data: TrainData) -> "Scorer":
        ...

    def score(self, users: np.ndarray) -> np.ndarray:
        """Scores of shape ``(len(users), n_items)``; higher is better."""
        ...


def item_popularity(interactions: sp.csr_matrix) -> np.ndarray:
    """Number of users with a train interaction, per item."""
    return np.asarray(interactions.getnnz(axis=0), dtype=np.float64)
