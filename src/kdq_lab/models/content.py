"""Content-based: profile features × item features, plus the user's history in item-feature space.

* profile part (works for users without history): a user-feature × item-feature affinity
  learned from train co-occurrences, cosine-normalised, A = Uᵀ X I / sqrt(n_u n_i), and
  score = u A iᵀ over TF-IDF rows u, i;
* history part: cosine between the TF-IDF item-feature centroid of the user's train items
  and each item.

``history_weight`` mixes the two. Both parts decompose into feature pairs, which is what
explanations of this model show. Ties: train popularity, then the item id. ``user_columns``
restricts the profile to some user feature columns (drop-one and only-one ablations). A new
profile is scored by its profile part alone (feature-aware: :meth:`ContentScorer.compose_new`,
:meth:`ContentScorer.score_rows`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from kdq_lab.checks import check_number
from kdq_lab.errors import KdqError
from kdq_lab.explain import Explanation, Term, feature_label, unavailable
from kdq_lab.limits import MAX_WEIGHT
from kdq_lab.linalg import unit_rows
from kdq_lab.models.base import ModelConfig, TrainData, item_popularity, ranked_order
from kdq_lab.models.registry import PROFILE, ModelSpec, register

if TYPE_CHECKING:
    from kdq_lab.data.build import UnknownValue


@dataclass(frozen=True)
class ContentConfig(ModelConfig):
    """``history_weight``: weight of the history part against the profile part; ``user_columns``: the profile's
    user feature columns (default: all)."""

    history_weight: float = 1.0
    user_columns: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        check_number("content", "history_weight", self.history_weight, 0, high=MAX_WEIGHT)
        if self.user_columns is not None:
            if isinstance(self.user_columns, str) or not all(isinstance(v, str) for v in self.user_columns):
                raise KdqError(
                    f"content user_columns must be a list of feature column names, not {self.user_columns!r}"
                )
            object.__setattr__(self, "user_columns", tuple(self.user_columns))


def _binary(matrix: sp.csr_matrix) -> sp.csr_matrix:
    binary = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
    binary.data[:] = 1.0
    return binary


def _idf(matrix: sp.csr_matrix) -> np.ndarray:
    """Inverse document frequency of every column of a binary matrix."""
    df = np.asarray(matrix.getnnz(axis=0), dtype=np.float64)
    return np.log((1.0 + matrix.shape[0]) / (1.0 + df)) + 1.0


def _tfidf_rows(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """Binary rows weighted by inverse document frequency, then L2-normalised."""
    binary = _binary(matrix)
    return unit_rows(binary @ sp.diags(_idf(binary)))


class ContentScorer:
    """Profile × item-feature affinity plus history centroid (see the module docstring)."""

    name = "content"

    def __init__(self, config: ContentConfig | None = None):
        self.config = config or ContentConfig()

    def _profile(self, base: sp.csr_matrix) -> sp.csr_matrix:
        """Multi-hot user rows restricted to ``user_columns`` (unchanged without it)."""
        wanted = self.config.user_columns
        if wanted is None:
            return base
        unknown = sorted(set(wanted) - set(self.user_vocab_.columns))
        if unknown:
            raise KdqError(
                f"content user_columns {unknown} are not user feature columns; "
                f"available: {', '.join(self.user_vocab_.columns)}"
            )
        return sp.csr_matrix(base @ sp.diags(np.isin(self.user_vocab_.column_of(), wanted).astype(np.float64)))

    def fit(self, data: TrainData) -> ContentScorer:
        self.user_vocab_, self.item_vocab_, self.item_ids_ = data.user_vocab, data.item_vocab, data.item_ids
        profile = _binary(self._profile(data.user_features))
        self.user_idf_ = _idf(profile)
        users = unit_rows(profile @ sp.diags(self.user_idf_))
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

    # ------------------------------------------------------------------ new profiles (feature-aware)

    def profile_columns(self) -> tuple[str, ...]:
        """The user feature columns the profile part reads."""
        return tuple(self.config.user_columns or self.user_vocab_.columns)

    def encode(self, frame: pd.DataFrame, users: bool = True) -> tuple[sp.csr_matrix, list[UnknownValue]]:
        """Model rows for new users described by their profile columns (users only), and unknown values."""
        if not users:
            raise KdqError("the content model scores new users, not new items")
        base, unknown = self.user_vocab_.transform(frame)
        return self.compose_new(base), unknown

    def compose_new(self, base: sp.csr_matrix, users: bool = True) -> sp.csr_matrix:
        """TF-IDF rows (the training IDF) of multi-hot vocabulary rows of new users."""
        if not users:
            raise KdqError("the content model scores new users, not new items")
        return unit_rows(_binary(self._profile(base)) @ sp.diags(self.user_idf_))

    def score_rows(self, user_rows: sp.csr_matrix) -> np.ndarray:
        """Scores of new users' rows (from :meth:`compose_new`): the profile part (they have no history)."""
        return np.asarray(user_rows @ self.item_projection_).astype(np.float32)

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
