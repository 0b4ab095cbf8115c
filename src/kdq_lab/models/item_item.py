"""Scorers that rank by a user's train history times an item-item matrix (ItemKNN, RP3beta).

score(u, i) = Σ_j x_uj · W(j, i). Scoring, the shared row of users without history, the tie order
and npz + json persistence live here once; each kind's module only builds its ``W`` in ``fit``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp

from kdq_lab.models.arrays import load_arrays, save_arrays
from kdq_lab.models.base import ModelConfig, TrainData, item_popularity, no_history_row, ranked_order

LAYOUT = {"similarity": ("items", "items"), "history": ("users", "items"), "tie_order": ("items",)}


class ItemItemScorer:
    """Fitted attributes: ``similarity_`` (W, items × items), ``history_`` (binary train rows), ``tie_order_``."""

    name: str
    config_type: ClassVar[type[ModelConfig]]
    similarity_: sp.csr_matrix
    history_: sp.csr_matrix
    tie_order_: np.ndarray

    def _keep(self, similarity: sp.csr_matrix, history: sp.csr_matrix, data: TrainData) -> Self:
        """Record the fitted ``similarity``, the train ``history`` it multiplies and the tie order (popularity,
        then id)."""
        self.similarity_, self.history_ = similarity, history
        self.tie_order_ = ranked_order(data.item_ids, item_popularity(data.interactions))
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.asarray((self.history_[users] @ self.similarity_).todense(), dtype=np.float32)

    def tie_order(self) -> np.ndarray:
        return self.tie_order_

    def shared_row(self) -> tuple[np.ndarray, np.ndarray]:
        """Users without train history score every item 0."""
        return no_history_row(self.history_)

    config: Any

    def save(self, folder: Path, extra: dict[str, Any] | None = None, items: pd.DataFrame | None = None) -> Path:
        """``model.npz`` (W, train history, tie order) and ``model.json``; ``items`` is not kept."""
        sizes = {"users": self.history_.shape[0], "items": self.history_.shape[1]}
        arrays = {"similarity": self.similarity_, "history": self.history_, "tie_order": self.tie_order_}
        return save_arrays(folder, self.name, self.config, sizes, arrays, extra)

    @classmethod
    def load(cls, folder: Path) -> Self:
        config, arrays, _ = load_arrays(folder, cls.name, cls.config_type, LAYOUT, frozenset({"similarity", "history"}))
        model = cls(config)  # type: ignore[call-arg]
        model.similarity_ = arrays["similarity"].astype(np.float32)
        model.history_ = arrays["history"].astype(np.float32)
        model.tie_order_ = arrays["tie_order"].astype(np.int64)
        return model
