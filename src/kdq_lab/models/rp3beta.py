"""RP3beta (Paudel et al. 2016; Dacrema et al. 2019): three-step random walks with a popularity penalty.

On the binary user–item train matrix ``X``: ``P_ui`` is ``X`` row-normalised, ``P_iu`` is ``Xᵀ`` row-normalised, each
raised elementwise to ``alpha``; ``W = P_iu · P_ui`` (item × item) without self-transitions, each column ``j``
divided by ``popularity(j)^beta``, keeping the ``neighbors`` largest entries of each row (Dacrema et al.'s
formulation). A user's scores are ``X_u · W``. All sparse products: no loop over items or users.

Ties: train popularity, then the item id (a user without history gets the popularity ranking).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from kdq_lab.checks import check_number
from kdq_lab.limits import MAX_NEIGHBORS
from kdq_lab.models.base import ModelConfig, TrainData
from kdq_lab.models.item_item import ItemItemScorer
from kdq_lab.models.itemknn import top_per_row
from kdq_lab.models.registry import IDS, ModelSpec, register


@dataclass(frozen=True)
class RP3betaConfig(ModelConfig):
    """``alpha``: the power of the transition probabilities; ``beta``: the popularity penalty; ``neighbors`` kept
    per item."""

    alpha: float = 1.0
    beta: float = 0.5
    neighbors: int = 100

    def __post_init__(self) -> None:
        check_number("rp3beta", "alpha", self.alpha, 0, high=10.0, strict=True)
        check_number("rp3beta", "beta", self.beta, 0, high=10.0)
        check_number("rp3beta", "neighbors", self.neighbors, 1, high=MAX_NEIGHBORS, integer=True)


def _row_normalised(matrix: sp.csr_matrix) -> sp.csr_matrix:
    sums = np.asarray(matrix.sum(axis=1)).ravel()
    return sp.csr_matrix(sp.diags(np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)) @ matrix)


def rp3beta_similarity(interactions: sp.csr_matrix, alpha: float, beta: float, neighbors: int) -> sp.csr_matrix:
    """The item × item RP3beta matrix ``W`` of a binary user–item matrix (row i: item i's walk to every item)."""
    x = sp.csr_matrix(interactions, dtype=np.float64)
    x.data[:] = 1.0
    p_ui = _row_normalised(x).power(alpha)
    p_iu = _row_normalised(sp.csr_matrix(x.T)).power(alpha)
    walk = sp.csr_matrix(p_iu @ p_ui)
    walk.setdiag(0)
    walk.eliminate_zeros()
    popularity = np.asarray(x.sum(axis=0)).ravel()
    penalty = np.divide(1.0, popularity**beta, out=np.zeros_like(popularity), where=popularity > 0)
    walk = sp.csr_matrix(walk @ sp.diags(penalty))
    walk.eliminate_zeros()
    return top_per_row(walk, neighbors).astype(np.float32)


class RP3betaScorer(ItemItemScorer):
    """score(u, i) = Σ_j x_uj · W[j, i]."""

    name = "rp3beta"
    config_type = RP3betaConfig

    def __init__(self, config: RP3betaConfig | None = None):
        self.config = config or RP3betaConfig()

    def fit(self, data: TrainData) -> RP3betaScorer:
        cfg = self.config
        history = sp.csr_matrix(data.interactions, dtype=np.float32)
        history.data[:] = 1.0
        return self._keep(rp3beta_similarity(data.interactions, cfg.alpha, cfg.beta, cfg.neighbors), history, data)


register(
    ModelSpec(
        kind="rp3beta",
        role=IDS,
        build=RP3betaScorer,
        config=RP3betaConfig,
        summary="RP3beta: item-item random-walk probabilities^alpha, divided by popularity^beta, top neighbours",
        search_space={
            "alpha": {"float": [0.1, 2.0]},
            "beta": {"float": [0.0, 1.0]},
            "neighbors": {"int": [10, 1000], "log": True},
        },
    )
)
