"""ItemKNN: cosine item-item neighbours on the binary train matrix.

Ties: train popularity, then the item id (a user without history gets the popularity ranking).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from kdq_lab.checks import check_number
from kdq_lab.limits import MAX_NEIGHBORS, MAX_SHRINK
from kdq_lab.models.base import ModelConfig, TrainData
from kdq_lab.models.item_item import ItemItemScorer
from kdq_lab.models.registry import IDS, ModelSpec, register


@dataclass(frozen=True)
class ItemKNNConfig(ModelConfig):
    """``neighbors`` kept per item; ``shrink`` damps similarities built on few co-occurrences."""

    neighbors: int = 100
    shrink: float = 0.0

    def __post_init__(self) -> None:
        check_number("itemknn", "neighbors", self.neighbors, 1, high=MAX_NEIGHBORS, integer=True)
        check_number("itemknn", "shrink", self.shrink, 0, high=MAX_SHRINK)


class ItemKNNScorer(ItemItemScorer):
    """score(u, i) = Σ_j x_uj · sim(j, i) over the ``neighbors`` most similar items of each item."""

    name = "itemknn"
    config_type = ItemKNNConfig

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
        return self._keep(top_per_row(co, self.config.neighbors).T.tocsr(), x, data)  # column j: neighbours of j


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
