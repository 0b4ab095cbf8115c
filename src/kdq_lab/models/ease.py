"""EASE (Steck 2019): closed-form item-item weights with a zero diagonal.

Ties: train popularity, then the item id.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from kdq_lab.checks import check_number
from kdq_lab.errors import KdqError
from kdq_lab.limits import MAX_EASE_ITEMS, MAX_L2
from kdq_lab.models.base import ModelConfig, TrainData, item_popularity, no_history_row, ranked_order
from kdq_lab.models.registry import IDS, ModelSpec, register


@dataclass(frozen=True)
class EASEConfig(ModelConfig):
    """``l2`` regularisation; ``max_items``: refuse catalogs whose dense items × items matrix would not fit."""

    l2: float = 500.0
    max_items: int = 20_000

    def __post_init__(self) -> None:
        check_number("ease", "l2", self.l2, 0, high=MAX_L2, strict=True)
        check_number("ease", "max_items", self.max_items, 1, high=MAX_EASE_ITEMS, integer=True)


class EASEScorer:
    """B = I - P · diag(1 / diag(P)), P = (XᵀX + λI)⁻¹; score = x_u B."""

    name = "ease"

    def __init__(self, config: EASEConfig | None = None):
        self.config = config or EASEConfig()

    def fit(self, data: TrainData) -> EASEScorer:
        if data.n_items > self.config.max_items:
            raise KdqError(
                f"EASE needs a dense {data.n_items} x {data.n_items} matrix; this catalog has more than "
                f"max_items={self.config.max_items} items. Use itemknn or lightfm instead."
            )
        x = sp.csr_matrix(data.interactions, dtype=np.float64)
        gram = (x.T @ x).toarray()
        gram[np.diag_indices_from(gram)] += self.config.l2
        inverse = np.linalg.inv(gram)
        weights = -inverse / np.diag(inverse)[None, :]
        weights[np.diag_indices_from(weights)] = 0.0
        self.weights_ = weights.astype(np.float32)
        self.history_ = sp.csr_matrix(data.interactions, dtype=np.float32)
        self.tie_order_ = ranked_order(data.item_ids, item_popularity(data.interactions))
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.asarray(self.history_[users] @ self.weights_, dtype=np.float32)

    def tie_order(self) -> np.ndarray:
        return self.tie_order_

    def shared_row(self) -> tuple[np.ndarray, np.ndarray]:
        """Users without train history score every item 0."""
        return no_history_row(self.history_)


register(
    ModelSpec(
        kind="ease",
        role=IDS,
        build=EASEScorer,
        config=EASEConfig,
        summary="EASE (Steck 2019), closed form",
        search_space={"l2": {"float": [1.0, 10_000.0], "log": True}},
    )
)
