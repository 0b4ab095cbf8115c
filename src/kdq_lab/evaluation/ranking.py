"""Batched ranking and per-user metrics that equal ``lightfm.evaluation`` exactly, ties included.

How ranks are computed. Users are scored in batches (user representations @ item
representations, threads over batches, memory bounded by the batch). Each row is
sorted once; the rank of a test positive is found by a vectorised binary search.
Ranks are LightFM's: the number of *other* items, train items excluded, that score
at least as high (pessimistic on ties).

Exactness against LightFM. LightFM computes scores in float32 in its own compiled
kernel (built with ``-ffast-math``), so a BLAS score can differ from LightFM's in
the last bits. For a LightFM model every score therefore carries a rigorous
rounding bound; comparisons that the bound cannot decide (near-ties) are settled
with LightFM's own kernel (``LightFM.predict``) on exactly those pairs. The result
is LightFM's rank, bit for bit, at BLAS speed. Other models are ranked on their
own scores, exactly.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from kdq_lab.errors import KdqError

_EPS32 = float(np.finfo(np.float32).eps) / 2  # unit roundoff of float32
_BATCH_BYTES = 1 << 25  # per thread, for the score matrix and its sorted copy


# ----------------------------------------------------------------------------- score sources


class _ScorerSource:
    """Scores from any kdq_lab model, compared in float32, exactly (no tolerance)."""

    tolerance = None

    def __init__(self, scorer: Any, n_items: int):
        self.scorer = scorer
        self.n_items = n_items

    def scores(self, users: np.ndarray) -> np.ndarray:
        scores = np.asarray(self.scorer.score(users))
        if scores.shape != (len(users), self.n_items):
            raise KdqError(f"{type(self.scorer).__name__}.score returned shape {scores.shape}, "
                           f"expected {(len(users), self.n_items)}")
        if not np.isfinite(scores).all():
            raise KdqError(f"{type(self.scorer).__name__} produced non-finite scores; cannot rank")
        return scores

    def keys(self, users: np.ndarray) -> np.ndarray:
        """Sort keys: the float32 score widened to float64, item position in the low bits."""
        keys = (self.scores(users).astype(np.float32) + np.float32(0.0)).astype(np.float64)
        keys.view(np.uint64)[:] |= np.arange(keys.shape[1], dtype=np.uint64)
        return keys


class _LightFMSource:
    """BLAS scores of a ``lightfm.LightFM`` model with per-user rounding bounds and exact fallback."""

    def __init__(self, model: Any, user_features: sp.csr_matrix, item_features: sp.csr_matrix):
        self.model = model
        self.user_features = sp.csr_matrix(user_features, dtype=np.float32)
        self.item_features = sp.csr_matrix(item_features, dtype=np.float32)
        self.n_items = self.item_features.shape[0]
        ub, ue = _representation(self.user_features, model.user_biases, model.user_embeddings)
        ib, ie = _representation(self.item_features, model.item_biases, model.item_embeddings)
        # augmented so that one float64 product gives embeddings · embeddings + user bias + item bias
        self.left = np.hstack([ue, ub[:, None], np.ones((len(ub), 1))]).astype(np.float64)
        self.right = np.ascontiguousarray(np.hstack([ie, np.ones((len(ib), 1)), ib[:, None]]).T, dtype=np.float64)
        # |representation| bounds: A_u = |F_u| @ |E| (embedding part and bias part)
        ua = abs(self.user_features) @ np.hstack([np.abs(model.user_embeddings), np.abs(model.user_biases)[:, None]])
        ia = abs(self.item_features) @ np.hstack([np.abs(model.item_embeddings), np.abs(model.item_biases)[:, None]])
        ua, ia = np.asarray(ua, dtype=np.float64), np.asarray(ia, dtype=np.float64)
        d = model.no_components
        item_terms = int(self.item_features.getnnz(axis=1).max(initial=0))
        user_terms = self.user_features.getnnz(axis=1)
        # float32 rounding in LightFM's kernel (each representation: nnz terms; the dot product:
        # d + 2 terms) and in our representations, plus our cut to float32 precision; doubled for slack
        gamma = 4 * _EPS32 * (d + 2 + user_terms + item_terms + 4)
        magnitude = (np.linalg.norm(ua[:, :d], axis=1) * np.linalg.norm(ia[:, :d], axis=1).max(initial=0)
                     + ua[:, d] + ia[:, d].max(initial=0))
        self.bound = gamma * magnitude + 1e-30

    def scores(self, users: np.ndarray) -> np.ndarray:
        return self.left[users] @ self.right

    def keys(self, users: np.ndarray) -> np.ndarray:
        """Sort keys straight from the float64 product: cut to float32 precision, item in the low bits."""
        keys = self.scores(users)
        keys += 0.0  # -0.0 becomes +0.0
        bits = keys.view(np.uint64)
        bits &= ~_ITEM_BITS
        bits |= np.arange(keys.shape[1], dtype=np.uint64)
        return keys

    def tolerance(self, users: np.ndarray) -> np.ndarray:
        return self.bound[users]

    def exact(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """LightFM's own float32 scores of (user, item) pairs."""
        return self.model.predict(users.astype(np.int32), items.astype(np.int32),
                                  item_features=self.item_features, user_features=self.user_features)


def _representation(features: sp.csr_matrix, biases: np.ndarray, embeddings: np.ndarray):
    return (np.asarray(features @ biases, dtype=np.float32),
            np.asarray(features @ embeddings, dtype=np.float32))


def _is_lightfm(model: Any) -> bool:
    return type(model).__name__ == "LightFM" and type(model).__module__.startswith("lightfm")


def score_source(model: Any, n_users: int, n_items: int, user_features: sp.spmatrix | None = None,
                 item_features: sp.spmatrix | None = None) -> _ScorerSource | _LightFMSource:
    """How to score ``model``: a fitted ``lightfm.LightFM``, a kdq_lab LightFM wrapper, or any scorer."""
    if hasattr(model, "lightfm_parts"):
        return _LightFMSource(*model.lightfm_parts())
    if _is_lightfm(model):
        users = sp.identity(n_users, dtype=np.float32, format="csr") if user_features is None else user_features
        items = sp.identity(n_items, dtype=np.float32, format="csr") if item_features is None else item_features
        return _LightFMSource(model, users, items)
    if hasattr(model, "score"):
        return _ScorerSource(model, n_items)
    raise KdqError(f"cannot evaluate {type(model).__name__}: expected a lightfm.LightFM or a kdq_lab model with score()")


# ----------------------------------------------------------------------------- batching


def default_threads(num_threads: int | None) -> int:
    return max(1, num_threads or os.cpu_count() or 1)


def map_batches(fn: Callable[[np.ndarray], Any], users: np.ndarray, n_items: int,
                num_threads: int | None = None, batch_size: int | None = None) -> list[Any]:
    """Apply ``fn`` to consecutive batches of ``users`` in threads; results in batch order.

    With several threads, BLAS runs single-threaded inside each batch (no oversubscription).
    """
    threads = default_threads(num_threads)
    size = batch_size or max(16, _BATCH_BYTES // (8 * max(n_items, 1)))
    batches = [users[i:i + size] for i in range(0, len(users), size)]
    if threads == 1 or len(batches) == 1:
        return [fn(batch) for batch in batches]
    with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(threads) as pool:
        return list(pool.map(fn, batches))


def _count_at_least(sorted_rows: np.ndarray, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """For each query, how many entries of ``sorted_rows[row]`` (ascending) are >= value."""
    n = sorted_rows.shape[1]
    lo = np.zeros(len(rows), dtype=np.int64)
    hi = np.full(len(rows), n, dtype=np.int64)
    while True:
        active = lo < hi
        if not active.any():
            return n - lo
        mid = (lo + hi) // 2
        below = sorted_rows[rows, np.minimum(mid, n - 1)] < values
        lo = np.where(active & below, mid + 1, lo)
        hi = np.where(active & ~below, mid, hi)


# Sort keys. A float32 score widened to float64 leaves the low 29 mantissa bits zero; they
# carry the item position, so one float64 sort orders items by score *and* tells which
# item sits where. Every key of score s lies between ``_low_key(s)`` and the keys of the
# next float32 above s, so counts by score stay exact.
_ITEM_BITS = np.uint64((1 << 29) - 1)
_EXCLUDED = np.float32(-np.finfo(np.float32).max)


def _low_key(values: np.ndarray) -> np.ndarray:
    """The smallest key any item with this float32 score can have."""
    wide = (values.astype(np.float32) + np.float32(0.0)).astype(np.float64)
    bits = wide.view(np.uint64)
    return np.where(wide < 0, bits | _ITEM_BITS, bits).view(np.float64)


def _exclude(keys: np.ndarray, users: np.ndarray, exclude: sp.csr_matrix | None) -> None:
    """Give excluded (e.g. train) items a key below every score."""
    if exclude is None:
        return
    sub = exclude[users]
    rows = np.repeat(np.arange(len(users)), np.diff(sub.indptr))
    keys[rows, sub.indices] = (np.float64(_EXCLUDED).view(np.uint64) | _ITEM_BITS).view(np.float64)


def _batch_ranks(source, users: np.ndarray, test: sp.csr_matrix, exclude: sp.csr_matrix | None) -> np.ndarray:
    """LightFM ranks of the test positives of ``users`` (in CSR order)."""
    keys = source.keys(users)
    sub = test[users]
    rows = np.repeat(np.arange(len(users)), np.diff(sub.indptr))
    cols = sub.indices
    # a key's score: clear the position bits (scores are on the float32 grid)
    positive = (keys[rows, cols].view(np.uint64) & ~_ITEM_BITS).view(np.float64).astype(np.float32)
    _exclude(keys, users, exclude)
    keys.sort(axis=1)
    ordered, n = keys, keys.shape[1]
    if source.tolerance is None:
        return (_count_at_least(ordered, rows, _low_key(positive)) - 1).astype(np.float64)
    band = 2 * source.tolerance(users)[rows]
    hi = np.nextafter((positive + band).astype(np.float32), np.float32(np.inf))
    lo = np.nextafter((positive - band).astype(np.float32), np.float32(-np.inf))
    certain = _count_at_least(ordered, rows, _low_key(hi))
    start = n - _count_at_least(ordered, rows, _low_key(lo))  # sorted positions [start, n - certain) are unsure
    length = n - certain - start
    ranks = certain.astype(np.float64)
    need = np.flatnonzero(length > 1)  # the positive itself is always in its band
    if len(need):
        owner = np.repeat(need, length[need])
        offset = np.arange(len(owner)) - np.repeat(np.cumsum(length[need]) - length[need], length[need])
        items = (ordered[rows[owner], start[owner] + offset].view(np.uint64) & _ITEM_BITS).astype(np.int64)
        other = items != cols[owner]
        owner, items = owner[other], items[other]
        mine = source.exact(users[rows[need]], cols[need])
        theirs = source.exact(users[rows[owner]], items)
        position = np.searchsorted(need, owner)
        ranks[need] += np.bincount(position, weights=theirs >= mine[position], minlength=len(need))
    return ranks


# ----------------------------------------------------------------------------- metrics


def _check_inputs(test: sp.spmatrix, train: sp.spmatrix | None) -> tuple[sp.csr_matrix, sp.csr_matrix | None]:
    test = sp.csr_matrix(test)
    test.sort_indices()
    if train is not None:
        train = sp.csr_matrix(train)
        if train.shape != test.shape:
            raise KdqError(f"train shape {train.shape} differs from test shape {test.shape}")
        overlap = test.multiply(train).nnz
        if overlap:
            raise KdqError(f"train and test share {overlap} user-item pairs; a pair must be in one part only")
    return test, train


def rank_positives(model: Any, test: sp.spmatrix, *, train: sp.spmatrix | None = None,
                   user_features: sp.spmatrix | None = None, item_features: sp.spmatrix | None = None,
                   num_threads: int | None = None, batch_size: int | None = None) -> pd.DataFrame:
    """LightFM rank of every test positive: columns ``user``, ``item``, ``rank`` (0 = top)."""
    test, train = _check_inputs(test, train)
    return _rank(model, test, train, user_features, item_features, num_threads, batch_size)


def _rank(model: Any, test: sp.csr_matrix, train: sp.csr_matrix | None, user_features, item_features,
          num_threads: int | None, batch_size: int | None) -> pd.DataFrame:
    source = score_source(model, test.shape[0], test.shape[1], user_features, item_features)
    users = np.flatnonzero(test.getnnz(axis=1) > 0)
    parts = map_batches(lambda batch: _batch_ranks(source, batch, test, train), users, test.shape[1],
                        num_threads, batch_size)
    sub = test[users]
    return pd.DataFrame({
        "user": np.repeat(users, np.diff(sub.indptr)),
        "item": sub.indices.astype(np.int64),
        "rank": np.concatenate(parts) if parts else np.zeros(0),
    })


@dataclass(frozen=True)
class _Groups:
    """Positives sorted by (user, rank) with their group positions."""

    user: np.ndarray      # eval-user position of each positive, sorted
    rank: np.ndarray
    start: np.ndarray     # first positive of each eval user
    within: np.ndarray    # position of each positive inside its user's sorted ranks


def _groups(user_pos: np.ndarray, ranks: np.ndarray, n_eval: int) -> _Groups:
    order = np.lexsort((ranks, user_pos))
    user, rank = user_pos[order], ranks[order]
    start = np.searchsorted(user, np.arange(n_eval), side="left")
    return _Groups(user, rank, start, np.arange(len(user)) - start[user])


def metrics_from_ranks(ranks: pd.DataFrame, n_test: np.ndarray, n_train: np.ndarray, n_items: int,
                       ks: Sequence[int]) -> pd.DataFrame:
    """Per-user metrics from LightFM ranks.

    ``n_test`` and ``n_train`` are per evaluated user (ascending user order, as in ``ranks``).
    precision, recall and hit use hits = positives with rank < k; ndcg uses binary
    relevance with a log2 discount; map@k averages precision at each hit over
    ``min(n_test, k)``; mrr = 1 / (best rank + 1); auc follows ``lightfm.evaluation.auc_score``.
    """
    users = np.unique(ranks["user"].to_numpy())
    pos = np.searchsorted(users, ranks["user"].to_numpy())
    g = _groups(pos, ranks["rank"].to_numpy(dtype=np.float64), len(users))
    key = g.user * float(n_items + 2) + g.rank
    at_or_above = np.searchsorted(key, key, side="right") - g.start[g.user]
    n = len(users)
    out: dict[str, np.ndarray] = {"user": users, "n_test": n_test, "n_train": n_train}
    for k in ks:
        hit = g.rank < k
        hits = np.bincount(g.user, weights=hit, minlength=n)
        discount = 1.0 / np.log2(np.arange(k) + 2.0)
        ideal = np.cumsum(discount)[np.minimum(n_test, k) - 1]
        dcg = np.bincount(g.user, weights=np.where(hit, 1.0 / np.log2(np.minimum(g.rank, k) + 2.0), 0.0),
                          minlength=n)
        precision_at_hit = np.where(hit, at_or_above / (g.rank + 1.0), 0.0)
        out[f"precision@{k}"] = hits / k
        out[f"recall@{k}"] = hits / n_test
        out[f"ndcg@{k}"] = dcg / ideal
        out[f"map@{k}"] = np.bincount(g.user, weights=precision_at_hit, minlength=n) / np.minimum(n_test, k)
        out[f"hit@{k}"] = (hits > 0).astype(np.float64)
    out["mrr"] = 1.0 / (g.rank[g.start] + 1.0)
    negatives = (n_items - n_test - n_train).astype(np.float64)
    shifted = np.maximum(g.rank - g.within, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["auc"] = np.bincount(g.user, weights=1.0 - shifted / negatives[g.user], minlength=n) / n_test
    return pd.DataFrame(out)


def evaluate(model: Any, test: sp.spmatrix, *, train: sp.spmatrix | None = None, k: int | Sequence[int] = 10,
             user_features: sp.spmatrix | None = None, item_features: sp.spmatrix | None = None,
             num_threads: int | None = None, user_ids: Sequence | None = None,
             batch_size: int | None = None) -> pd.DataFrame:
    """Per-user ranking metrics, one row per user with test items.

    Parameters
    ----------
    model
        A fitted ``lightfm.LightFM`` or any kdq_lab model.
    test
        Test positives (users × items); every stored entry is a positive.
    train
        Known positives excluded from the ranking (as ``train_interactions`` in LightFM).
    k
        One cut-off or a list of them.
    user_features, item_features
        For a raw ``lightfm.LightFM`` only, as in ``lightfm.evaluation``.
    num_threads
        Threads over user batches (default: all cores).
    user_ids
        Ids of the matrix rows, added as a ``user_id`` column (kdq_lab models know their own).

    Returns
    -------
    pandas.DataFrame
        ``user`` (row), ``user_id``, ``n_test``, ``n_train``, then ``precision@k``,
        ``recall@k``, ``ndcg@k``, ``map@k``, ``hit@k`` for each k, ``mrr`` and ``auc``.
        precision, recall, mrr and auc equal ``lightfm.evaluation`` (``precision_at_k``,
        ``recall_at_k``, ``reciprocal_rank``, ``auc_score`` with ``train_interactions``).
    """
    return evaluate_with_ranks(model, test, train=train, k=k, user_features=user_features,
                               item_features=item_features, num_threads=num_threads, user_ids=user_ids,
                               batch_size=batch_size)[0]


def evaluate_with_ranks(model: Any, test: sp.spmatrix, *, train: sp.spmatrix | None = None,
                        k: int | Sequence[int] = 10, user_features: sp.spmatrix | None = None,
                        item_features: sp.spmatrix | None = None, num_threads: int | None = None,
                        user_ids: Sequence | None = None,
                        batch_size: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`evaluate` plus the rank of every test positive (from :func:`rank_positives`)."""
    ks = [k] if isinstance(k, int) else list(k)
    if not ks or any(int(v) < 1 for v in ks):
        raise KdqError(f"k must be a positive integer or a list of them, not {k!r}")
    test, train = _check_inputs(test, train)
    ranks = _rank(model, test, train, user_features, item_features, num_threads, batch_size)
    users = np.flatnonzero(test.getnnz(axis=1) > 0)
    n_test = test.getnnz(axis=1)[users].astype(np.int64)
    n_train = (train.getnnz(axis=1)[users] if train is not None else np.zeros(len(users))).astype(np.int64)
    table = metrics_from_ranks(ranks, n_test, n_train, test.shape[1], ks)
    ids = user_ids if user_ids is not None else getattr(model, "user_ids_", None)
    table.insert(1, "user_id", np.asarray(ids, dtype=object)[users] if ids is not None else users)
    return table, ranks


def top_k(model: Any, users: np.ndarray, k: int, *, exclude: sp.spmatrix,
          num_threads: int | None = None) -> np.ndarray:
    """The ``k`` best items of each user (rows of item positions; -1 where fewer are eligible).

    ``exclude`` (users × items; e.g. train) marks items never recommended; it also gives
    the shape. Ties are broken by item position. Batches run in threads.
    """
    exclude = sp.csr_matrix(exclude)
    source = score_source(model, exclude.shape[0], exclude.shape[1])
    shape_items = exclude.shape[1]

    def best(batch: np.ndarray) -> np.ndarray:
        scores = np.array(source.scores(batch), dtype=np.float32)
        sub = exclude[batch]
        scores[np.repeat(np.arange(len(batch)), np.diff(sub.indptr)), sub.indices] = -np.inf
        kk = min(k, scores.shape[1])
        # order by score desc, then item asc: partition on negated scores, then sort the candidates
        part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        part_scores = np.take_along_axis(scores, part, axis=1)
        threshold = part_scores.min(axis=1, keepdims=True)
        # include every item tied with the threshold so that ties resolve by item position
        tied = scores >= threshold
        rows, cols = np.nonzero(tied)
        order = np.lexsort((cols, -scores[rows, cols], rows))
        rows, cols = rows[order], cols[order]
        first = np.searchsorted(rows, np.arange(len(batch)))
        within = np.arange(len(rows)) - first[rows]
        out = np.full((len(batch), k), -1, dtype=np.int64)
        keep = within < kk
        out[rows[keep], within[keep]] = cols[keep]
        out[np.isneginf(np.take_along_axis(scores, np.maximum(out, 0), axis=1))] = -1
        return out

    parts = map_batches(best, np.asarray(users), shape_items, num_threads)
    return np.vstack(parts) if parts else np.zeros((0, k), dtype=np.int64)
