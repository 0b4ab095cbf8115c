"""ItemKNN: cosine item-item neighbours on the binary train matrix.

Ties: train popularity, then the item id (a user without history gets the popularity ranking).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from kdq_lab.checks import check_number
from kdq_lab.limits import MAX_NEIGHBORS, MAX_SHRINK
from kdq_lab.models.arrays import load_arrays, save_arrays
from kdq_lab.models.base import ModelConfig, TrainData, item_popularity, no_history_row, ranked_order
from kdq_lab.models.registry import IDS, ModelSpec, register


@dataclass(frozen=True)
class ItemKNNConfig(ModelConfig):
    """``neighbors`` kept per item; ``shrink`` damps similarities built on few co-occurrences."""

    neighbors: int = 100
    shrink: float = 0.0

    def __post_init__(self) -> None:
        check_number("itemknn", "neighbors", self.neighbors, 1, high=MAX_NEIGHBORS, integer=True)
        check_number("itemknn", "shrink", self.shrink, 0, high=MAX_SHRINK)


class ItemKNNScorer:
    """score(u, i) = Σ_j x_uj · sim(j, i) over the ``neighbors`` most similar items of each item."""

    name = "itemknn"

    def __init__(self, config: ItemKNNConfig | None = None):
        self.config = config or ItemKNNConfig()

    def fit(self, data: TrainData) -> ItemKNNScorer:
        x = sp.csr_matrix(data.interactions, dtype=np.float32)
        co = (x.T @ x).tocsr()
        co.setdiag(0)
        co.eliminate_zeros()
        norms = np.sqrt(np.asarray(x.getnnz(axis=0), dtype=np.float64))
        rows = np.repeat(np.arange(co.shape[0]), np.diff(co.indptr))
        co.data = (co.data / (norms[rows] * norms[co.indices] + self.config.shrink)).astype(np.float32)
        self.similarity_ = top_per_row(co, self.config.neighbors).T.tocsr()  # column j: neighbours of j
        self.history_ = x
        self.tie_order_ = ranked_order(data.item_ids, item_popularity(data.interactions))
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.asarray((self.history_[users] @ self.similarity_).todense(), dtype=np.float32)

    def tie_order(self) -> np.ndarray:
        return self.tie_order_

    def shared_row(self) -> tuple[np.ndarray, np.ndarray]:
        """Users without train history score every item 0."""
        return no_history_row(self.history_)

    def save(self, folder: Path, extra: dict[str, Any] | None = None, items: pd.DataFrame | None = None) -> Path:
        """``model.npz`` (similarities, train history, tie order) and ``model.json``; ``items`` is not kept."""
        sizes = {"users": self.history_.shape[0], "items": self.history_.shape[1]}
        arrays = {"similarity": self.similarity_, "history": self.history_, "tie_order": self.tie_order_}
        return save_arrays(folder, self.name, self.config, sizes, arrays, extra)

    @classmethod
    def load(cls, folder: Path) -> ItemKNNScorer:
        layout = {"similarity": ("items", "items"), "history": ("users", "items"), "tie_order": ("items",)}
        config, arrays, _ = load_arrays(folder, cls.name, ItemKNNConfig, layout, frozenset({"similarity", "history"}))
        model = cls(config)
        model.similarity_ = arrays["similarity"].astype(np.float32)
        model.history_ = arrays["history"].astype(np.float32)
        model.tie_order_ = arrays["tie_order"].astype(np.int64)
        return model


def top_per_row(matrix: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the ``k`` largest entries of each row (vectorised)."""
    matrix = matrix.tocsr()
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    order = np.lexsort((-matrix.data, rows))
    rank = np.arange(len(order)) - matrix.indptr[rows[order]]
    keep = order[rank < k]
    return sp.csr_matrix((matrix.data[keep], (rows[keep], matrix.indices[keep])), shape=matrix.shape)


register(
    ModelSpec(
        kind="itemknn",
        role=IDS,
        build=ItemKNNScorer,
        config=ItemKNNConfig,
        summary="cosine item-item neighbours on the binary matrix",
        search_space={"neighbors": {"int": [10, 500], "log": True}, "shrink": {"float": [0.0, 100.0]}},
    )
)
