"""Batched ranking and per-user metrics that equal ``lightfm.evaluation`` exactly, ties included.

How a rank is computed. Users are scored in batches (user representations @ item
representations, threads over batches, memory bounded by the batch). The rank of a
test positive is a *count*: how many other eligible items score at least as high.
Counting costs a comparison per item and positive; no row is sorted, except the
rows of the few users with very many positives (:data:`SORT_FROM` or more), where one
sort is cheaper than the comparisons.

Ties. Two rules, chosen by the model:

* **Pessimistic** (LightFM, and any scorer without a tie order): an item scoring the
  same as the positive counts as above it, as in ``lightfm.evaluation``.
* **Tie order** (every other kdq_lab model): the model declares a total order of items
  (``tie_order()``: 0 = first), its documented secondary key. Among equal scores the
  item earlier in that order ranks higher, so the model's list is one deterministic
  ranking and no tie can decide a comparison.

Exactness against LightFM. LightFM computes scores in float32 in its own compiled
kernel (built with ``-ffast-math``), so a BLAS score can differ from LightFM's in
the last bits. For a LightFM model every score carries a rigorous rounding bound;
comparisons the bound cannot decide (near-ties) are settled with LightFM's own
kernel (``LightFM.predict``) on exactly those pairs. The result is LightFM's rank,
bit for bit, at BLAS speed.

Top-k lists (coverage, diversity, the ``ties@k`` diagnostic) come from the same scores:
a sampled threshold keeps a few candidates per row, and only those are sorted.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from kdq_lab.errors import KdqError

_EPS32 = float(np.finfo(np.float32).eps) / 2  # unit roundoff of float32
_BATCH_BYTES = 1 << 22  # float32 scores per batch (a few MB: comparisons stay in cache)
#: Users with at least this many test positives are ranked by one sort instead of counting.
SORT_FROM = 48
_SAMPLE_STRIDE = 32  # top-k: one column in this many decides the candidate threshold
_LOW32 = np.uint64(0xFFFFFFFF)


# ----------------------------------------------------------------------------- score sources


class _ScorerSource:
    """Scores of any kdq_lab model (or any object with ``score``), compared exactly in float32."""

    def __init__(self, scorer: Any, n_items: int):
        self.scorer = scorer
        self.n_items = n_items
        order = scorer.tie_order() if hasattr(scorer, "tie_order") else None
        self.order = None if order is None else _check_order(np.asarray(order), n_items, scorer)

    def scores(self, users: np.ndarray) -> np.ndarray:
        scores = np.asarray(self.scorer.score(users))
        if scores.shape != (len(users), self.n_items):
            raise KdqError(
                f"{type(self.scorer).__name__}.score returned shape {scores.shape}, "
                f"expected {(len(users), self.n_items)}"
            )
        scores = np.array(scores, dtype=np.float32)  # a writable copy: exclusions are written into it
        if not np.isfinite(scores).all():
            raise KdqError(f"{type(self.scorer).__name__} produced non-finite scores; cannot rank")
        return scores

    def bound(self, users: np.ndarray) -> np.ndarray | None:
        return None


def _check_order(order: np.ndarray, n_items: int, scorer: Any) -> np.ndarray:
    if order.shape != (n_items,) or not np.array_equal(np.sort(order), np.arange(n_items)):
        raise KdqError(f"{type(scorer).__name__}.tie_order() must be a permutation of the {n_items} item positions")
    return order.astype(np.int64)


class _LightFMSource:
    """float32 BLAS scores of a ``lightfm.LightFM`` model with per-user rounding bounds and exact fallback."""

    order = None

    def __init__(self, model: Any, user_features: sp.csr_matrix, item_features: sp.csr_matrix):
        self.model = model
        self.user_features = sp.csr_matrix(user_features, dtype=np.float32)
        self.item_features = sp.csr_matrix(item_features, dtype=np.float32)
        self.n_items = self.item_features.shape[0]
        ub, ue = _representation(self.user_features, model.user_biases, model.user_embeddings)
        ib, ie = _representation(self.item_features, model.item_biases, model.item_embeddings)
        # augmented so that one product gives embeddings · embeddings + user bias + item bias
        self.left = np.hstack([ue, ub[:, None], np.ones((len(ub), 1), np.float32)])
        self.right = np.ascontiguousarray(np.hstack([ie, np.ones((len(ib), 1), np.float32), ib[:, None]]).T)
        # |representation| bounds: A_u = |F_u| @ |E| (embedding part and bias part)
        ua = abs(self.user_features) @ np.hstack([np.abs(model.user_embeddings), np.abs(model.user_biases)[:, None]])
        ia = abs(self.item_features) @ np.hstack([np.abs(model.item_embeddings), np.abs(model.item_biases)[:, None]])
        ua, ia = np.asarray(ua, dtype=np.float64), np.asarray(ia, dtype=np.float64)
        d = model.no_components
        item_terms = int(self.item_features.getnnz(axis=1).max(initial=0))
        user_terms = self.user_features.getnnz(axis=1)
        # LightFM's kernel and our float32 product each err by at most (d + 2 + feature terms) unit
        # roundoffs of the magnitude, to first order, in any summation order (FMA or not); the bound
        # is their sum, with 4 more roundoffs for the second-order terms.
        gamma = 2 * _EPS32 * (d + 2 + user_terms + item_terms + 4)
        magnitude = (
            np.linalg.norm(ua[:, :d], axis=1) * np.linalg.norm(ia[:, :d], axis=1).max(initial=0)
            + ua[:, d]
            + ia[:, d].max(initial=0)
        )
        self._bound = gamma * magnitude + 1e-30

    def scores(self, users: np.ndarray) -> np.ndarray:
        return self.left[users] @ self.right

    def bound(self, users: np.ndarray) -> np.ndarray:
        """How far our score of any item may be from LightFM's, per user."""
        return self._bound[users]

    def exact(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """LightFM's own float32 scores of (user, item) pairs."""
        return self.model.predict(
            users.astype(np.int32),
            items.astype(np.int32),
            item_features=self.item_features,
            user_features=self.user_features,
        )


def _representation(
    features: sp.csr_matrix, biases: np.ndarray, embeddings: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    return (np.asarray(features @ biases, dtype=np.float32), np.asarray(features @ embeddings, dtype=np.float32))


def _is_lightfm(model: Any) -> bool:
    return type(model).__name__ == "LightFM" and type(model).__module__.startswith("lightfm")


def score_source(
    model: Any,
    n_users: int,
    n_items: int,
    user_features: sp.spmatrix | None = None,
    item_features: sp.spmatrix | None = None,
) -> _ScorerSource | _LightFMSource:
    """How to score ``model``: a fitted ``lightfm.LightFM``, a kdq_lab LightFM wrapper, or any scorer."""
    if hasattr(model, "lightfm_parts"):
        return _LightFMSource(*model.lightfm_parts())
    if _is_lightfm(model):
        users = sp.identity(n_users, dtype=np.float32, format="csr") if user_features is None else user_features
        items = sp.identity(n_items, dtype=np.float32, format="csr") if item_features is None else item_features
        return _LightFMSource(model, users, items)
    if hasattr(model, "score"):
        return _ScorerSource(model, n_items)
    raise KdqError(
        f"cannot evaluate {type(model).__name__}: expected a lightfm.LightFM or a kdq_lab model with score()"
    )


# ----------------------------------------------------------------------------- batching


def default_threads(num_threads: int | None) -> int:
    return max(1, num_threads or os.cpu_count() or 1)


def map_batches(
    fn: Callable[[np.ndarray], Any],
    users: np.ndarray,
    n_items: int,
    num_threads: int | None = None,
    batch_size: int | None = None,
) -> list[Any]:
    """Apply ``fn`` to consecutive batches of ``users`` in threads; results in batch order.

    BLAS runs single-threaded inside each batch: batches are small, and threads work on different batches.
    """
    threads = default_threads(num_threads)
    size = batch_size or max(8, _BATCH_BYTES // (4 * max(n_items, 1)))
    batches = [users[i : i + size] for i in range(0, len(users), size)]
    with threadpool_limits(1, user_api="blas"):  # batches are small: threads over batches, not inside BLAS
        if threads == 1 or len(batches) == 1:
            return [fn(batch) for batch in batches]
        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(fn, batches))


# ----------------------------------------------------------------------------- keys and counts


def ordered_bits(scores: np.ndarray) -> np.ndarray:
    """float32 scores as uint32 with the same order (``-0.0`` equals ``0.0``)."""
    bits = (np.asarray(scores, dtype=np.float32) + np.float32(0.0)).view(np.uint32)
    return np.where(bits >> np.uint32(31), ~bits, bits | np.uint32(0x80000000))


def tie_keys(scores: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Distinct uint64 keys: the score in the high half, the tie order (earlier = higher) in the low half."""
    keys = ordered_bits(scores).astype(np.uint64) << np.uint64(32)
    keys |= _LOW32 - order.astype(np.uint64)
    return keys


def _slot_counts(matrix: np.ndarray, thresholds: np.ndarray, lengths: np.ndarray, strict: bool) -> np.ndarray:
    """``counts[r, t]`` = entries of ``matrix[r]`` >= (``strict``: >) ``thresholds[r, t]``, for t < lengths[r].

    Rows are sorted by ``lengths`` descending, so each slot is a prefix of the rows: one
    vectorised comparison per slot, no copy of the matrix.
    """
    counts = np.zeros(thresholds.shape, dtype=np.int64)
    compare = np.greater if strict else np.greater_equal
    for slot in range(int(lengths.max(initial=0))):
        rows = int(np.count_nonzero(lengths > slot))
        hit = compare(matrix[:rows], thresholds[:rows, slot, None])
        counts[:rows, slot] = np.add.reduce(hit.view(np.uint8), axis=1, dtype=np.uint64)
    return counts


def _sorted_counts(
    matrix: np.ndarray, rows: np.ndarray, values: np.ndarray, strict: bool, presorted: bool = False
) -> np.ndarray:
    """For each query (row, value): entries of ``matrix[row]`` >= (or >) value, by one sort per row."""
    ordered = matrix if presorted else np.sort(matrix, axis=1)
    side = "right" if strict else "left"
    # a vectorised binary search over the sorted rows
    n = ordered.shape[1]
    lo = np.zeros(len(rows), dtype=np.int64)
    hi = np.full(len(rows), n, dtype=np.int64)
    while True:
        active = lo < hi
        if not active.any():
            return n - lo
        mid = (lo + hi) // 2
        entry = ordered[rows, np.minimum(mid, n - 1)]
        below = entry <= values if side == "right" else entry < values
        lo = np.where(active & below, mid + 1, lo)
        hi = np.where(active & ~below, mid, hi)


def _count(
    matrix: np.ndarray, rows: np.ndarray, slots: np.ndarray, lengths: np.ndarray, values: np.ndarray, strict: bool
) -> np.ndarray:
    """How many entries of ``matrix[rows[q]]`` are >= (or >) ``values[q]``, for every query q.

    ``slots[q]`` is the query's position among its row's queries; rows are sorted by
    ``lengths`` (queries per row) descending. Rows with many queries are sorted once.
    """
    heavy = int(np.count_nonzero(lengths >= SORT_FROM))
    out = np.zeros(len(rows), dtype=np.int64)
    light = rows >= heavy
    if heavy:
        out[~light] = _sorted_counts(matrix[:heavy], rows[~light], values[~light], strict)
    if light.any():
        table = np.zeros(
            (len(lengths) - heavy, min(int(lengths[heavy:].max(initial=0)), SORT_FROM)), dtype=values.dtype
        )
        table[rows[light] - heavy, slots[light]] = values[light]
        counts = _slot_counts(matrix[heavy:], table, lengths[heavy:], strict)
        out[light] = counts[rows[light] - heavy, slots[light]]
    return out


# ----------------------------------------------------------------------------- one batch


@dataclass(frozen=True)
class _Positives:
    """Test positives of a batch: row in the batch, item, slot within the row, and per-row counts."""

    rows: np.ndarray
    items: np.ndarray
    slots: np.ndarray
    lengths: np.ndarray

    @classmethod
    def of(cls, test: sp.csr_matrix, users: np.ndarray) -> _Positives:
        sub = test[users]
        lengths = np.diff(sub.indptr)
        rows = np.repeat(np.arange(len(users)), lengths)
        return cls(rows, sub.indices.astype(np.int64), np.arange(len(rows)) - sub.indptr[rows], lengths)


def _mask_excluded(scores: np.ndarray, users: np.ndarray, exclude: sp.csr_matrix | None) -> None:
    """Give excluded items a score below every eligible one."""
    if exclude is None:
        return
    sub = exclude[users]
    scores[np.repeat(np.arange(len(users)), np.diff(sub.indptr)), sub.indices] = -np.inf


def _ranks_tie_order(scores: np.ndarray, order: np.ndarray, pos: _Positives) -> tuple[np.ndarray, np.ndarray]:
    """Ranks under the tie order (strictly higher keys), and the batch's keys for top-k."""
    keys = tie_keys(scores, order)
    return _count(keys, pos.rows, pos.slots, pos.lengths, keys[pos.rows, pos.items], strict=True), keys


def _ranks_pessimistic(
    source: Any, users: np.ndarray, scores: np.ndarray, pos: _Positives, positive: np.ndarray
) -> np.ndarray:
    """LightFM ranks: other eligible items scoring at least as high, near-ties settled exactly."""
    bound = source.bound(users)
    if bound is None:
        return _count(scores, pos.rows, pos.slots, pos.lengths, positive, strict=False) - 1
    band = 2 * bound[pos.rows]
    hi = np.nextafter((positive + band).astype(np.float32), np.float32(np.inf))
    lo = np.nextafter((positive - band).astype(np.float32), np.float32(-np.inf))
    certain, query, items = _band(scores, pos, lo, hi)
    if len(query):  # other items inside a positive's rounding band: ask LightFM's kernel
        mine = source.exact(users[pos.rows[query]], pos.items[query])
        theirs = source.exact(users[pos.rows[query]], items)
        certain += np.bincount(query, weights=theirs >= mine, minlength=len(certain)).astype(np.int64)
    return certain


def _band(
    scores: np.ndarray, pos: _Positives, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per positive: items scoring >= ``hi`` (surely at least as high), and every other item in [lo, hi).

    Returns the counts and the (positive, item) pairs inside the bands (the positive itself
    included; the caller drops it). Rows with many positives are sorted once (argsort, to
    know the items); the others are counted slot by slot, and the band items of a slot are
    read off the same two comparisons.
    """
    certain = np.zeros(len(pos.rows), dtype=np.int64)
    queries, found = [], []
    heavy = int(np.count_nonzero(pos.lengths >= SORT_FROM))
    if heavy:
        picked = np.flatnonzero(pos.rows < heavy)
        order = np.argsort(scores[:heavy], axis=1)
        ordered = np.take_along_axis(scores[:heavy], order, axis=1)
        n = scores.shape[1]
        rows = pos.rows[picked]
        above = _sorted_counts(ordered, rows, hi[picked], strict=False, presorted=True)
        start = n - _sorted_counts(ordered, rows, lo[picked], strict=False, presorted=True)
        certain[picked] = above
        width = n - above - start
        owner = np.repeat(np.arange(len(picked)), width)
        offset = np.arange(len(owner)) - np.repeat(np.cumsum(width) - width, width)
        queries.append(picked[owner])
        found.append(order[rows[owner], start[owner] + offset])
    light_rows = pos.lengths[heavy:]
    n_items = scores.shape[1]
    for slot in range(min(int(light_rows.max(initial=0)), SORT_FROM)):
        n_rows = int(np.count_nonzero(light_rows > slot))
        rows = scores[heavy : heavy + n_rows]
        picked = np.flatnonzero((pos.slots == slot) & (pos.rows >= heavy))  # CSR order: ascending rows
        at_lo = rows >= lo[picked, None]
        inside = np.flatnonzero(at_lo ^ (rows >= hi[picked, None]))  # in [lo, hi): the positive and near-ties
        owner, column = np.divmod(inside, n_items)
        in_band = np.bincount(owner, minlength=n_rows)
        certain[picked] = np.add.reduce(at_lo.view(np.uint8), axis=1, dtype=np.uint32) - in_band
        queries.append(picked[owner])
        found.append(column)
    query = np.concatenate(queries) if queries else np.zeros(0, dtype=np.int64)
    items = np.concatenate(found) if found else np.zeros(0, dtype=np.int64)
    other = items != pos.items[query]
    return certain, query[other], items[other]


def select_top(keys: np.ndarray, k: int, eligible: np.ndarray | None = None) -> np.ndarray:
    """The ``k`` largest of each row's distinct uint64 keys, best first, as column positions (-1 where fewer).

    A threshold from a strided sample of the columns keeps about ``k × stride`` candidates
    per row; only those are sorted. ``eligible`` (same shape, bool) marks columns that may
    be returned (default: all).
    """
    n_rows, n = keys.shape
    out = np.full((n_rows, k), -1, dtype=np.int64)
    k = min(k, n)
    if k == 0 or n_rows == 0:
        return out
    stride = max(1, min(_SAMPLE_STRIDE, n // (4 * k)))
    sample = keys[:, ::stride]
    threshold = np.partition(sample, sample.shape[1] - k, axis=1)[:, sample.shape[1] - k]
    rows, cols = np.nonzero(keys >= threshold[:, None])
    if eligible is not None:
        keep = eligible[rows, cols]
        rows, cols = rows[keep], cols[keep]
    order = np.lexsort((~keys[rows, cols], rows))
    rows, cols = rows[order], cols[order]
    first = np.searchsorted(rows, np.arange(n_rows))
    within = np.arange(len(rows)) - first[rows]
    keep = within < k
    out[rows[keep], within[keep]] = cols[keep]
    return out


def best_positions(scores: np.ndarray, n: int, order: np.ndarray | None = None) -> np.ndarray:
    """Positions of the ``n`` best finite scores of each row, best first (-1 where fewer).

    Equal scores follow ``order`` (0 = first; default: item position).
    """
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float32))
    order = np.arange(scores.shape[1]) if order is None else order
    return select_top(tie_keys(scores, order), n, np.isfinite(scores))


def _top_and_ties(scores: np.ndarray, keys: np.ndarray, top: int, ks: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Top-``top`` lists and, per k, whether the k-th and (k+1)-th eligible scores tie."""
    eligible = np.isfinite(scores)
    chosen = select_top(keys, max(top, max(ks, default=0) + 1), eligible)
    valid = chosen >= 0
    picked = np.where(valid, scores[np.arange(len(scores))[:, None], np.maximum(chosen, 0)], np.nan)
    ties = np.zeros((len(scores), len(ks)), dtype=bool)
    for j, k in enumerate(ks):
        if k < chosen.shape[1]:
            ties[:, j] = valid[:, k] & (picked[:, k - 1] == picked[:, k])
    return chosen[:, :top], ties


# ----------------------------------------------------------------------------- metrics


def _check_inputs(test: sp.spmatrix, exclude: sp.spmatrix | None) -> tuple[sp.csr_matrix, sp.csr_matrix | None]:
    test = sp.csr_matrix(test)
    test.sort_indices()
    if exclude is not None:
        exclude = sp.csr_matrix(exclude)
        if exclude.shape != test.shape:
            raise KdqError(f"exclusion shape {exclude.shape} differs from test shape {test.shape}")
        overlap = test.multiply(exclude).nnz
        if overlap:
            raise KdqError(f"test and excluded items share {overlap} user-item pairs; a pair must be in one part only")
    return test, exclude


@dataclass(frozen=True)
class _Groups:
    """Positives sorted by (user, rank) with their group positions."""

    user: np.ndarray  # eval-user position of each positive, sorted
    rank: np.ndarray
    start: np.ndarray  # first positive of each eval user
    within: np.ndarray  # position of each positive inside its user's sorted ranks


def _groups(user_pos: np.ndarray, ranks: np.ndarray, n_eval: int) -> _Groups:
    order = np.lexsort((ranks, user_pos))
    user, rank = user_pos[order], ranks[order]
    start = np.searchsorted(user, np.arange(n_eval), side="left")
    return _Groups(user, rank, start, np.arange(len(user)) - start[user])


def metrics_from_ranks(
    ranks: pd.DataFrame,
    n_test: np.ndarray,
    n_train: np.ndarray,
    n_items: int,
    ks: Sequence[int],
    n_excluded: np.ndarray | None = None,
) -> pd.DataFrame:
    """Per-user metrics from ranks.

    ``n_test``, ``n_train`` (history length) and ``n_excluded`` (items excluded from the
    ranking; default ``n_train``) are per evaluated user, in ascending user order as in
    ``ranks``. precision, recall and hit use hits = positives with rank < k; ndcg uses
    binary relevance with a log2 discount; map@k averages precision at each hit over
    ``min(n_test, k)``; mrr = 1 / (best rank + 1); auc follows ``lightfm.evaluation.auc_score``
    (negatives = items neither test nor excluded).
    """
    n_excluded = n_train if n_excluded is None else n_excluded
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
        precision_at_hit = np.where(hit, at_or_above / (g.rank + 1.0), 0.0)
        out[f"precision@{k}"] = hits / k
        out[f"recall@{k}"] = hits / n_test
        out[f"ndcg@{k}"] = ndcg_from_ranks(g.user, g.rank, n_test, k)
        out[f"map@{k}"] = np.bincount(g.user, weights=precision_at_hit, minlength=n) / np.minimum(n_test, k)
        out[f"hit@{k}"] = (hits > 0).astype(np.float64)
    out["mrr"] = 1.0 / (g.rank[g.start] + 1.0)
    negatives = (n_items - n_test - n_excluded).astype(np.float64)
    shifted = np.maximum(g.rank - g.within, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["auc"] = np.bincount(g.user, weights=1.0 - shifted / negatives[g.user], minlength=n) / n_test
    return pd.DataFrame(out)


def ndcg_from_ranks(owner: np.ndarray, rank: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """ndcg@k of each group (user or list) from the ranks of its relevant items: binary relevance, log2 discount.

    ``owner`` and ``rank`` list every relevant item's group and 0-based rank; NaN for a group
    without relevant items.
    """
    dcg = np.bincount(
        owner, weights=np.where(rank < k, 1.0 / np.log2(np.minimum(rank, k) + 2.0), 0.0), minlength=len(n_relevant)
    )
    ideal = ideal_dcg(n_relevant, k)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ideal > 0, dcg / ideal, np.nan)


def ideal_dcg(n_relevant: np.ndarray, k: int) -> np.ndarray:
    """DCG@k of a perfect list for users with ``n_relevant`` relevant items (0 when none)."""
    cumulative = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(k) + 2.0))])
    return cumulative[np.minimum(np.asarray(n_relevant), k)]


@dataclass(frozen=True)
class Evaluation:
    """Everything one evaluation pass produces.

    Attributes
    ----------
    per_user
        One row per user with test items: ``user``, ``user_id``, ``n_test``, ``n_train``,
        ``n_excluded``, the metrics, and ``ties@k`` (when top lists were asked for): whether
        a tie of raw scores crossed the top-k boundary for this user.
    ranks
        ``user``, ``item``, ``rank`` (0 = top) of every test positive.
    top
        Top lists of the evaluated users (rows as in ``per_user``; -1 where fewer), or ``None``.
    """

    per_user: pd.DataFrame
    ranks: pd.DataFrame
    top: np.ndarray | None


def evaluate_all(
    model: Any,
    test: sp.spmatrix,
    *,
    exclude: sp.spmatrix | None = None,
    k: int | Sequence[int] = 10,
    history: np.ndarray | None = None,
    top: int = 0,
    user_features: sp.spmatrix | None = None,
    item_features: sp.spmatrix | None = None,
    num_threads: int | None = None,
    user_ids: Sequence | None = None,
    batch_size: int | None = None,
) -> Evaluation:
    """Ranks, per-user metrics and (``top > 0``) top lists with the ``ties@k`` diagnostic, in one pass.

    Parameters
    ----------
    model
        A fitted ``lightfm.LightFM`` or any kdq_lab model.
    test
        Test positives (users × items); every stored entry is a positive.
    exclude
        Items never ranked for a user (LightFM's ``train_interactions``; the lab passes
        what the experiment's ``exclude`` rule says).
    k
        One cut-off or a list of them.
    history
        Known positives per user (all users), reported as ``n_train`` and used for
        segments; default: the row counts of ``exclude``.
    top
        Length of the top lists to return (0: none, and no ``ties@k`` columns).
    user_features, item_features
        For a raw ``lightfm.LightFM`` only, as in ``lightfm.evaluation``.
    num_threads
        Threads over user batches (default: all cores).
    user_ids
        Ids of the matrix rows, added as a ``user_id`` column (kdq_lab models know their own).
    """
    ks = [k] if isinstance(k, (int, np.integer)) else list(k)
    if not ks or any(not isinstance(v, (int, np.integer)) or v < 1 for v in ks):
        raise KdqError(f"k must be a positive integer or a list of them, not {k!r}")
    ks = sorted({int(v) for v in ks})
    test, exclude = _check_inputs(test, exclude)
    source = score_source(model, test.shape[0], test.shape[1], user_features, item_features)
    n_test_all = test.getnnz(axis=1)
    users = np.flatnonzero(n_test_all > 0)
    users = users[np.argsort(-n_test_all[users], kind="stable")]  # many positives first: counting slots are prefixes
    order = source.order if source.order is not None else np.arange(test.shape[1])

    def batch(chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        pos = _Positives.of(test, chunk)
        scores = source.scores(chunk)
        positive = scores[pos.rows, pos.items].copy()
        _mask_excluded(scores, chunk, exclude)
        keys = None
        if source.order is not None:
            ranks, keys = _ranks_tie_order(scores, source.order, pos)
        else:
            ranks = _ranks_pessimistic(source, chunk, scores, pos, positive)
        if not top:
            return ranks, None, None
        keys = tie_keys(scores, order) if keys is None else keys
        return (ranks, *_top_and_ties(scores, keys, top, ks))

    parts = map_batches(batch, users, test.shape[1], num_threads, batch_size)
    sub = test[users]
    ranks = pd.DataFrame(
        {
            "user": np.repeat(users, np.diff(sub.indptr)),
            "item": sub.indices.astype(np.int64),
            "rank": np.concatenate([p[0] for p in parts]).astype(np.float64) if parts else np.zeros(0),
        }
    )
    ranks = ranks.sort_values(["user", "item"], kind="stable").reset_index(drop=True)
    back = np.argsort(users, kind="stable")  # evaluation order -> ascending user order
    users_sorted = users[back]
    n_excluded = (exclude.getnnz(axis=1) if exclude is not None else np.zeros(test.shape[0], int))[users_sorted]
    n_train = n_excluded if history is None else np.asarray(history)[users_sorted]
    table = metrics_from_ranks(
        ranks,
        n_test_all[users_sorted].astype(np.int64),
        n_train.astype(np.int64),
        test.shape[1],
        ks,
        n_excluded.astype(np.int64),
    )
    table.insert(3, "n_excluded", n_excluded.astype(np.int64))
    ids = user_ids if user_ids is not None else getattr(model, "user_ids_", None)
    table.insert(1, "user_id", np.asarray(ids, dtype=object)[users_sorted] if ids is not None else users_sorted)
    lists = None
    if top:
        lists = np.vstack([p[1] for p in parts])[back] if parts else np.zeros((0, top), dtype=np.int64)
        ties = np.vstack([p[2] for p in parts])[back] if parts else np.zeros((0, len(ks)), dtype=bool)
        for j, cut in enumerate(ks):
            table[f"ties@{cut}"] = ties[:, j]
    return Evaluation(table, ranks, lists)


def evaluate(
    model: Any,
    test: sp.spmatrix,
    *,
    exclude: sp.spmatrix | None = None,
    k: int | Sequence[int] = 10,
    history: np.ndarray | None = None,
    user_features: sp.spmatrix | None = None,
    item_features: sp.spmatrix | None = None,
    num_threads: int | None = None,
    user_ids: Sequence | None = None,
    batch_size: int | None = None,
) -> pd.DataFrame:
    """Per-user ranking metrics, one row per user with test items (see :func:`evaluate_all`).

    precision, recall, mrr and auc equal ``lightfm.evaluation`` (``precision_at_k``,
    ``recall_at_k``, ``reciprocal_rank``, ``auc_score`` with ``train_interactions=exclude``)
    for LightFM models, ties included.
    """
    return evaluate_all(
        model,
        test,
        exclude=exclude,
        k=k,
        history=history,
        user_features=user_features,
        item_features=item_features,
        num_threads=num_threads,
        user_ids=user_ids,
        batch_size=batch_size,
    ).per_user


def rank_positives(
    model: Any,
    test: sp.spmatrix,
    *,
    exclude: sp.spmatrix | None = None,
    user_features: sp.spmatrix | None = None,
    item_features: sp.spmatrix | None = None,
    num_threads: int | None = None,
    batch_size: int | None = None,
) -> pd.DataFrame:
    """The rank of every test positive: columns ``user``, ``item``, ``rank`` (0 = top)."""
    return evaluate_all(
        model,
        test,
        exclude=exclude,
        user_features=user_features,
        item_features=item_features,
        num_threads=num_threads,
        batch_size=batch_size,
    ).ranks


def top_k(model: Any, users: np.ndarray, k: int, *, exclude: sp.spmatrix, num_threads: int | None = None) -> np.ndarray:
    """The ``k`` best items of each user (rows of item positions; -1 where fewer are eligible).

    ``exclude`` (users × items) marks items never recommended; it also gives the shape.
    Ties follow the model's tie order (item position for LightFM).
    """
    exclude = sp.csr_matrix(exclude)
    source = score_source(model, exclude.shape[0], exclude.shape[1])
    order = source.order if source.order is not None else np.arange(exclude.shape[1])

    def best(batch: np.ndarray) -> np.ndarray:
        scores = np.array(source.scores(batch), dtype=np.float32)
        _mask_excluded(scores, batch, exclude)
        return select_top(tie_keys(scores, order), k, np.isfinite(scores))

    parts = map_batches(best, np.asarray(users), exclude.shape[1], num_threads)
    return np.vstack(parts) if parts else np.zeros((0, k), dtype=np.int64)
