"""Strong baselines behind the scorer protocol: random, popularity, ItemKNN, EASE, content-based, oracle.

Each is fitted on :class:`~kdq_lab.models.base.TrainData` and scores batches of users
over all items. ItemKNN, EASE and the content model add a popularity term scaled far
below their own scores, so users without signal fall back to popularity instead of a
flat tie. Parameters are checked when a model is built.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from kdq_lab.errors import KdqError
from kdq_lab.evaluation.beyond import unit_rows
from kdq_lab.models.base import TrainData, item_popularity

_BACKOFF = 1e-6  # weight of the popularity back-off in history-based scores


def _check(model: str, name: str, value: object, low: float, integer: bool = False, strict: bool = False) -> None:
    """Raise a clear error unless ``value`` is a number (an integer if asked) above ``low``."""
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if not isinstance(value, kinds) or isinstance(value, bool) or value < low or (strict and value == low):
        bound = f"> {low:g}" if strict else f">= {low:g}"
        raise KdqError(f"{model} {name} must be {'an integer' if integer else 'a number'} {bound}, not {value!r}")


def _popularity_backoff(interactions: sp.csr_matrix) -> np.ndarray:
    pop = item_popularity(interactions)
    return _BACKOFF * pop / max(pop.max(), 1.0)


class RandomScorer:
    """Uniform scores from a counter-based hash of (seed, user, item): the same for any batch."""

    name = "random"

    def __init__(self, seed: int = 0):
        _check("random", "seed", seed, 0, integer=True)
        self.seed = seed

    def fit(self, data: TrainData) -> "RandomScorer":
        self.n_items_ = data.n_items
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        counter = (np.asarray(users, dtype=np.uint64)[:, None] * np.uint64(self.n_items_)
                   + np.arange(self.n_items_, dtype=np.uint64)[None, :])
        return (_splitmix64(counter ^ np.uint64(self.seed * 0x9E3779B97F4A7C15 % (1 << 64))) >> np.uint64(40)) \
            .astype(np.float32) / np.float32(1 << 24)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


class PopularityScorer:
    """Items by the number of train users who interacted with them.

    With ``window_days``, counts only the last ``window_days`` before the latest train
    event, and breaks ties with the all-time count (scaled below one).
    """

    name = "popularity"

    def __init__(self, window_days: float | None = None):
        if window_days is not None:
            _check("popularity", "window_days", window_days, 0, strict=True)
        self.window_days = window_days

    def fit(self, data: TrainData) -> "PopularityScorer":
        overall = item_popularity(data.interactions)
        if self.window_days is None:
            scores = overall
        else:
            events = data.events
            recent = events[events["time"] >= events["time"].max() - self.window_days * 86_400]
            pairs = recent.drop_duplicates(["user", "item"])
            counts = np.bincount(pairs["item"].to_numpy(), minlength=data.n_items).astype(np.float64)
            scores = counts + overall / (overall.max() + 1.0)
        self.scores_ = scores.astype(np.float32)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.scores_, (len(users), len(self.scores_)))


class ItemKNNScorer:
    """Item-based nearest neighbours: cosine similarity of item columns of the binary train matrix.

    Keeps the ``neighbors`` most similar items per item; ``shrink`` damps similarities
    built on few co-occurrences. score(u, i) = Σ_j x_uj · sim(j, i).
    """

    name = "itemknn"

    def __init__(self, neighbors: int = 100, shrink: float = 0.0):
        _check("itemknn", "neighbors", neighbors, 1, integer=True)
        _check("itemknn", "shrink", shrink, 0)
        self.neighbors = neighbors
        self.shrink = shrink

    def fit(self, data: TrainData) -> "ItemKNNScorer":
        x = sp.csr_matrix(data.interactions, dtype=np.float32)
        co = (x.T @ x).tocsr()
        co.setdiag(0)
        co.eliminate_zeros()
        norms = np.sqrt(np.asarray(x.getnnz(axis=0), dtype=np.float64))
        rows = np.repeat(np.arange(co.shape[0]), np.diff(co.indptr))
        co.data = (co.data / (norms[rows] * norms[co.indices] + self.shrink)).astype(np.float32)
        self.similarity_ = _top_per_row(co, self.neighbors).T.tocsr()  # column j: neighbours of j
        self.history_ = x
        self.backoff_ = _popularity_backoff(x).astype(np.float32)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.asarray((self.history_[users] @ self.similarity_).todense(), dtype=np.float32) + self.backoff_


def _top_per_row(matrix: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the ``k`` largest entries of each row (vectorised)."""
    matrix = matrix.tocsr()
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    order = np.lexsort((-matrix.data, rows))
    rank = np.arange(len(order)) - matrix.indptr[rows[order]]
    keep = order[rank < k]
    return sp.csr_matrix((matrix.data[keep], (rows[keep], matrix.indices[keep])), shape=matrix.shape)


class EASEScorer:
    """EASE (Steck 2019): closed-form item-item weights with a zero diagonal.

    B = I - P · diag(1 / diag(P)), P = (XᵀX + λI)⁻¹. Needs an items × items dense matrix,
    so it refuses catalogs above ``max_items``.
    """

    name = "ease"

    def __init__(self, l2: float = 500.0, max_items: int = 20_000):
        _check("ease", "l2", l2, 0, strict=True)
        _check("ease", "max_items", max_items, 1, integer=True)
        self.l2 = l2
        self.max_items = max_items

    def fit(self, data: TrainData) -> "EASEScorer":
        if data.n_items > self.max_items:
            raise KdqError(f"EASE needs a dense {data.n_items} x {data.n_items} matrix; this catalog has more than "
                           f"max_items={self.max_items} items. Use itemknn or lightfm instead.")
        x = sp.csr_matrix(data.interactions, dtype=np.float64)
        gram = (x.T @ x).toarray()
        gram[np.diag_indices_from(gram)] += self.l2
        inverse = np.linalg.inv(gram)
        weights = -inverse / np.diag(inverse)[None, :]
        weights[np.diag_indices_from(weights)] = 0.0
        self.weights_ = weights.astype(np.float32)
        self.history_ = sp.csr_matrix(data.interactions, dtype=np.float32)
        self.backoff_ = _popularity_backoff(data.interactions).astype(np.float32)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.asarray(self.history_[users] @ self.weights_, dtype=np.float32) + self.backoff_


def _tfidf_rows(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """Binary rows weighted by inverse document frequency, then L2-normalised."""
    binary = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
    binary.data[:] = 1.0
    df = np.asarray(binary.getnnz(axis=0), dtype=np.float64)
    idf = np.log((1.0 + binary.shape[0]) / (1.0 + df)) + 1.0
    return unit_rows(binary @ sp.diags(idf))


class ContentScorer:
    """Content-based: profile features × item features, plus the user's history in item-feature space.

    * profile part (works for users without history): a user-feature × item-feature
      affinity learned from train co-occurrences, cosine-normalised,
      A = Uᵀ X I / sqrt(n_u n_i), and score = u A iᵀ over TF-IDF rows u, i;
    * history part: cosine between the TF-IDF item-feature centroid of the user's
      train items and each item.

    ``history_weight`` mixes the two. Both parts decompose into feature pairs, which is
    what explanations of this model show.
    """

    name = "content"

    def __init__(self, history_weight: float = 1.0):
        _check("content", "history_weight", history_weight, 0)
        self.history_weight = history_weight

    def fit(self, data: TrainData) -> "ContentScorer":
        users = _tfidf_rows(data.user_features)
        items = _tfidf_rows(data.item_features)
        x = sp.csr_matrix(data.interactions, dtype=np.float64)
        co = (users.T @ x @ items).toarray()
        n_user_side = np.asarray((users.T @ x).sum(axis=1)).ravel()
        n_item_side = np.asarray((x @ items).sum(axis=0)).ravel()
        self.affinity_ = (co / np.sqrt(np.outer(np.maximum(n_user_side, 1e-12), np.maximum(n_item_side, 1e-12))))
        self.user_rows_, self.item_rows_ = users.tocsr(), items.tocsr()
        self.centroids_ = unit_rows(x @ items)
        self.item_projection_ = (self.affinity_ @ items.T.toarray())
        self.backoff_ = _popularity_backoff(data.interactions)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        profile = self.user_rows_[users] @ self.item_projection_
        history = (self.centroids_[users] @ self.item_rows_.T).toarray()
        return (profile + self.history_weight * history + self.backoff_).astype(np.float32)


class OracleScorer:
    """The ceiling on a generated catalog: the generator's true probability of a positive event."""

    name = "oracle"

    def fit(self, data: TrainData) -> "OracleScorer":
        from kdq_lab.data.catalog import GroundTruth

        if data.ground_truth is None:
            raise KdqError("the oracle needs the dataset's ground truth; only generated KDQ catalogs have one")
        truth = GroundTruth.load(data.ground_truth)
        self.truth_ = truth
        self.user_rows_ = truth.user_ids.get_indexer(pd.Index(data.user_ids))
        self.item_rows_ = truth.item_ids.get_indexer(pd.Index(data.item_ids))
        if (self.user_rows_ < 0).any() or (self.item_rows_ < 0).any():
            raise KdqError("the ground truth does not cover every user and item of this split")
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.truth_.scores(self.user_rows_[np.asarray(users)], self.item_rows_).astype(np.float32)
