"""Content-based: profile features × item features, plus the user's history in item-feature space.

* profile part (works for users without history): a user-feature × item-feature affinity
  learned from train co-occurrences, cosine-normalised, A = Uᵀ X I / sqrt(n_u n_i), and
  score = u A iᵀ over TF-IDF rows u, i;
* history part: cosine between the TF-IDF item-feature centroid of the user's train items
  and each item.

``history_weight`` mixes the two. Both parts decompose into feature pairs, which is what
explanations of this model show. Ties: train popularity, then the item id.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from kdq_lab.checks import check_number
from kdq_lab.explain import Explanation, Term, feature_label, unavailable
from kdq_lab.limits import MAX_WEIGHT
from kdq_lab.linalg import unit_rows
from kdq_lab.models.base import ModelConfig, TrainData, item_popularity, ranked_order
from kdq_lab.models.registry import PROFILE, ModelSpec, register


@dataclass(frozen=True)
class ContentConfig(ModelConfig):
    """``history_weight``: weight of the history part against the profile part."""

    history_weight: float = 1.0

    def __post_init__(self) -> None:
        check_number("content", "history_weight", self.history_weight, 0, high=MAX_WEIGHT)


def _tfidf_rows(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """Binary rows weighted by inverse document frequency, then L2-normalised."""
    binary = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
    binary.data[:] = 1.0
    df = np.asarray(binary.getnnz(axis=0), dtype=np.float64)
    idf = np.log((1.0 + binary.shape[0]) / (1.0 + df)) + 1.0
    return unit_rows(binary @ sp.diags(idf))


class ContentScorer:
    """Profile × item-feature affinity plus history centroid (see the module docstring)."""

    name = "content"

    def __init__(self, config: ContentConfig | None = None):
        self.config = config or ContentConfig()

    def fit(self, data: TrainData) -> ContentScorer:
        users = _tfidf_rows(data.user_features)
        items = _tfidf_rows(data.item_features)
        x = sp.csr_matrix(data.interactions, dtype=np.float64)
        co = (users.T @ x @ items).toarray()
        n_user_side = np.asarray((users.T @ x).sum(axis=1)).ravel()
        n_item_side = np.asarray((x @ items).sum(axis=0)).ravel()
        self.affinity_ = co / np.sqrt(np.outer(np.maximum(n_user_side, 1e-12), np.maximum(n_item_side, 1e-12)))
        self.user_rows_, self.item_rows_ = users.tocsr(), items.tocsr()
        self.centroids_ = unit_rows(x @ items)
        self.item_projection_ = self.affinity_ @ items.T.toarray()
        self.user_names_ = np.asarray(
            [feature_label(n, data.user_vocab.labels) for n in data.user_vocab.names], dtype=object
        )
        self.item_names_ = np.asarray(
            [feature_label(n, data.item_vocab.labels) for n in data.item_vocab.names], dtype=object
        )
        self.tie_order_ = ranked_order(data.item_ids, item_popularity(data.interactions))
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        profile = self.user_rows_[users] @ self.item_projection_
        history = (self.centroids_[users] @ self.item_rows_.T).toarray()
        return (profile + self.config.history_weight * history).astype(np.float32)

    def tie_order(self) -> np.ndarray:
        return self.tie_order_

    def explain(
        self, items: np.ndarray, user: int | None = None, user_row: sp.csr_matrix | None = None
    ) -> list[Explanation]:
        """Profile feature × item feature pairs and history × item feature terms (known users only)."""
        if user is None:
            return [unavailable(int(i), f"{self.name} (for a new profile)") for i in items]
        profile = self.user_rows_[user]
        f, u = profile.indices, profile.data
        centroid = self.centroids_[user]
        c_idx, c_val = centroid.indices, centroid.data
        scores = self.score(np.array([user]))[0]
        out = []
        for item in items:  # one object per shown item (≤ k): explanation assembly, not scoring
            row = self.item_rows_[item]
            g, i = row.indices, row.data
            pairs = u[:, None] * self.affinity_[np.ix_(f, g)] * i[None, :]
            terms = [
                Term("pair", self.user_names_[f[a]], self.item_names_[g[b]], float(pairs[a, b]))
                for a in range(len(f))
                for b in range(len(g))
                if pairs[a, b] != 0
            ]
            shared, at_c, at_i = np.intersect1d(c_idx, g, return_indices=True)
            terms += [
                Term("history", None, self.item_names_[s], float(self.config.history_weight * c_val[a] * i[b]))
                for s, a, b in zip(shared, at_c, at_i)
            ]
            out.append(Explanation(int(item), float(scores[item]), terms))
        return out


register(
    ModelSpec(
        kind="content",
        role=PROFILE,
        build=ContentScorer,
        config=ContentConfig,
        summary="profile features × item features (learned co-occurrence, TF-IDF) + history centroid",
        search_space={"history_weight": {"float": [0.0, 4.0]}},
    )
)
