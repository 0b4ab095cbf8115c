"""Batched ranking and per-user metrics that equal ``lightfm.evaluation`` exactly, ties included.

How a rank is computed. Users are scored in batches (user representations @ item
representations, threads over batches, memory bounded by the batch). The rank of a
test positive is a *count*: how many other eligible items score at least as high.
Counting costs a comparison per item and positive; no row is sorted, except the
rows of the few users with very many positives (``counting.SORT_FROM`` or more), where one
sort is cheaper than the comparisons. The kernels live in :mod:`kdq_lab.evaluation.counting`.

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
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from kdq_lab.errors import KdqError
from kdq_lab.evaluation.counting import Workspace, band_counts, query_counts, tie_keys, top_by_keys, top_positions
from kdq_lab.evaluation.metrics.registry import RankFacts, metric_specs

_EPS32 = float(np.finfo(np.float32).eps) / 2  # unit roundoff of float32
_BATCH_BYTES = 1 << 23  # float32 scores per batch: 8 MB keeps the comparisons in cache
_MIN_BATCH = 16  # fewer rows per product and BLAS spends its time packing the item matrix


# ----------------------------------------------------------------------------- score sources


class _ScorerSource:
    """Scores of any kdq_lab model (or any object with ``score``), compared exactly in float32.

    Its item count shows in its tie order and in every batch of scores; both must match the test's.
    """

    def __init__(self, scorer: Any, n_items: int):
        self.scorer = scorer
        self.n_items = n_items
        order = scorer.tie_order() if hasattr(scorer, "tie_order") else None
        self.order = None if order is None else _check_order(np.asarray(order), n_items, scorer)

    def scores(self, users: np.ndarray, out: np.ndarray) -> np.ndarray:
        """float32 scores of ``users`` written into ``out`` (rows × items; exclusions are written into it)."""
        scores = np.asarray(self.scorer.score(users))
        if scores.shape != (len(users), self.n_items):
            raise KdqError(
                f"test has {len(users)} users × {self.n_items} items in this batch, but "
                f"{type(self.scorer).__name__}.score returned {' × '.join(map(str, scores.shape))} scores"
            )
        out = out[: len(users)]
        np.copyto(out, scores, casting="unsafe")
        if not np.isfinite(out).all():
            raise KdqError(f"{type(self.scorer).__name__} produced non-finite scores; cannot rank")
        return out

    def band(self, users: np.ndarray, items: np.ndarray) -> np.ndarray | None:
        """None: scores are compared exactly as given."""
        return None


def _check_order(order: np.ndarray, n_items: int, scorer: Any) -> np.ndarray:
    name, rule = type(scorer).__name__, f"a permutation of the {n_items} item positions"
    if order.ndim != 1 or len(order) != n_items:
        raise KdqError(f"test has {n_items} items, {name}.tie_order() orders {order.size} (expected {rule})")
    if not np.array_equal(np.sort(order), np.arange(n_items)):
        raise KdqError(f"{name}.tie_order() must be {rule}")
    return order.astype(np.int64)


def check_count(what: str, test: int, model: int, how: str = "the model scores {}") -> None:
    """Refuse a test matrix with another number of ``what`` (users, items) than the model: name both counts.

    ``how`` says what the model's count is, e.g. ``"user_features has {} rows"``.
    """
    if test != model:
        raise KdqError(f"test has {test} {what}, {how.format(model)}")


def check_finite_parameters(model: Any, user_features: sp.csr_matrix, item_features: sp.csr_matrix) -> None:
    """Refuse a LightFM model with a NaN or an infinity in its parameters or feature values, naming each array.

    Non-finite scores compare as neither higher nor lower, so every positive would rank first.
    """
    arrays = {
        "user_embeddings": model.user_embeddings,
        "user_biases": model.user_biases,
        "item_embeddings": model.item_embeddings,
        "item_biases": model.item_biases,
        "user feature values": user_features.data,
        "item feature values": item_features.data,
    }
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: the NaN is the answer
        suspect = [name for name, values in arrays.items() if not np.isfinite(values.sum(dtype=np.float64))]
    bad = {name: int(np.count_nonzero(~np.isfinite(arrays[name]))) for name in suspect}
    if bad:
        listed = ", ".join(f"{name} ({count} of {arrays[name].size})" for name, count in bad.items())
        raise KdqError(
            f"the LightFM model has non-finite entries (NaN or infinity) in {listed}: it cannot be ranked "
            "(a diverged fit, or a damaged model file)"
        )


def _check_features(side: str, features: sp.csr_matrix, embeddings: np.ndarray, biases: np.ndarray) -> None:
    """A side's feature matrix must have one column per embedding row and bias of the model."""
    if embeddings.ndim != 2 or len(biases) != len(embeddings):
        raise KdqError(
            f"the LightFM model has {len(embeddings)} {side} feature embeddings but {len(biases)} {side} biases"
        )
    if features.shape[1] != len(embeddings):
        raise KdqError(
            f"{side}_features has {features.shape[1]} columns, the model has {len(embeddings)} {side} feature "
            "embeddings"
        )


class _LightFMSource:
    """float32 BLAS scores of a ``lightfm.LightFM`` model with rounding bounds and exact fallback.

    User-side arrays are built for ``users`` only (default: all), the users to be scored.
    """

    order = None

    def __init__(
        self, model: Any, user_features: sp.csr_matrix, item_features: sp.csr_matrix, users: np.ndarray | None = None
    ):
        self.model = model
        self.user_features = sp.csr_matrix(user_features, dtype=np.float32)
        self.item_features = sp.csr_matrix(item_features, dtype=np.float32)
        _check_features("user", self.user_features, model.user_embeddings, model.user_biases)
        _check_features("item", self.item_features, model.item_embeddings, model.item_biases)
        check_finite_parameters(model, self.user_features, self.item_features)
        self.n_items = self.item_features.shape[0]
        n_users = self.user_features.shape[0]
        users = np.arange(n_users) if users is None else np.asarray(users, dtype=np.int64)
        self.row = np.full(n_users, -1, dtype=np.int64)
        self.row[users] = np.arange(len(users))
        rows = self.user_features[users]
        ub, ue = _representation(rows, model.user_biases, model.user_embeddings)
        ib, ie = _representation(self.item_features, model.item_biases, model.item_embeddings)
        # augmented so that one product gives embeddings · embeddings + user bias + item bias
        self.left = np.hstack([ue, ub[:, None], np.ones((len(ub), 1), np.float32)])
        self.right = np.ascontiguousarray(np.hstack([ie, np.ones((len(ib), 1), np.float32), ib[:, None]]).T)
        self._bounds(model, rows, ub, ue, ib, ie)

    def _bounds(
        self, model: Any, rows: sp.csr_matrix, ub: np.ndarray, ue: np.ndarray, ib: np.ndarray, ie: np.ndarray
    ) -> None:
        """Rounding bounds, per user row and per item (see :meth:`band`)."""
        d = model.no_components
        # |F| @ |E|: bounds of every representation entry's terms (its rounding scales with them)
        self._user_terms = np.asarray(abs(rows) @ np.abs(model.user_embeddings), dtype=np.float64)
        item_terms = abs(self.item_features) @ _magnitudes(model.item_embeddings, model.item_biases)
        self._item_terms = np.asarray(item_terms, dtype=np.float64)
        self._user = np.abs(ue.astype(np.float64))
        self._user_bias = np.abs(ub.astype(np.float64))
        self._item = np.abs(ie.astype(np.float64))
        self._item_bias = np.abs(ib.astype(np.float64))
        self._final = _gamma(d + 2)  # the score: d products and two biases, summed in any order
        self._user_gamma = _gamma(rows.getnnz(axis=1) + 1)  # a user representation: its feature terms
        self._item_gamma = _gamma(int(self.item_features.getnnz(axis=1).max(initial=0)) + 1)
        # the largest error of any item's score in each user's row (Cauchy-Schwarz over the items)
        largest_item = np.linalg.norm(self._item, axis=1).max(initial=0)
        largest_terms = np.linalg.norm(self._item_terms[:, :d], axis=1).max(initial=0)
        self._largest = (
            self._final
            * (self._user_bias + self._item_bias.max(initial=0) + np.linalg.norm(self._user, axis=1) * largest_item)
            + 2 * self._user_gamma * np.linalg.norm(self._user_terms, axis=1) * largest_item
            + 2
            * self._item_gamma
            * (self._item_terms[:, d].max(initial=0) + np.linalg.norm(self._user, axis=1) * largest_terms)
        )

    def scores(self, users: np.ndarray, out: np.ndarray) -> np.ndarray:
        """float32 scores of ``users`` (one BLAS product) written into ``out``."""
        return np.matmul(self.left[self.row[users]], self.right, out=out[: len(users)])

    def band(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Per (user, item): how far apart our scores of that item and of any other item may be from LightFM's.

        LightFM and this product compute the same score in float32 in different orders, from
        representations they each sum in float32. What can make the two disagree on the order
        of items i and p of one user row: each side's rounding of the two scores (at most
        ``γ(d+2)`` times the scores' term magnitudes) and the two sides' different
        representations of the items (``2γ(item terms)``) and of the user (``2γ(user terms)``)
        as they weigh on the two items' scores. The user's bias is common to the row: its
        representation error cancels, and only its size enters the score's rounding. The
        band is item p's part plus the largest part of any item, to first order, with a 1%
        margin for the second-order terms.
        """
        rows = self.row[users]
        d = self._item_terms.shape[1] - 1
        user, terms = self._user[rows], self._user_terms[rows]
        own = (
            self._final[None]
            * (self._user_bias[rows] + self._item_bias[items] + np.einsum("ij,ij->i", user, self._item[items]))
            + 2 * self._user_gamma[rows] * np.einsum("ij,ij->i", terms, self._item[items])
            + 2
            * self._item_gamma
            * (self._item_terms[items, d] + np.einsum("ij,ij->i", user, self._item_terms[items, :d]))
        )
        return (self._largest[rows] + own) * 1.01 + 1e-30

    def exact(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """LightFM's own float32 scores of (user, item) pairs."""
        return self.model.predict(
            users.astype(np.int32),
            items.astype(np.int32),
            item_features=self.item_features,
            user_features=self.user_features,
        )


class _RoutedSource:
    """A model that scores each user with one of its parts (``routes(users)``: a list of (part, users)).

    Each user's scores, rounding band and exact scores are those of the part that scores them, so the user's
    ranking, ties included, is that part's. The parts must order ties alike (one tie order per source).
    """

    def __init__(self, model: Any, n_users: int, n_items: int, users: np.ndarray | None = None):
        users = np.arange(n_users) if users is None else np.asarray(users, dtype=np.int64)
        routes = model.routes(users)
        self.part = np.full(max(n_users, int(users.max(initial=-1)) + 1), -1, dtype=np.int64)
        self.sources: list[Any] = []
        for j, (part, mine) in enumerate(routes):
            self.part[mine] = j
            self.sources.append(score_source(part, n_users, n_items, users=np.asarray(mine, dtype=np.int64)))
        orders: list[np.ndarray | None] = [source.order for source in self.sources]
        first = orders[0] if orders else None
        if any(o is not first and (o is None or first is None or not np.array_equal(o, first)) for o in orders):
            raise KdqError(f"{type(model).__name__}: its parts order ties differently; one tie order per model")
        self.order = first
        self.n_items = n_items

    def _each(self, users: np.ndarray) -> list[tuple[Any, np.ndarray]]:
        which = self.part[users]
        return [(source, np.flatnonzero(which == j)) for j, source in enumerate(self.sources)]

    def scores(self, users: np.ndarray, out: np.ndarray) -> np.ndarray:
        out = out[: len(users)]
        for source, rows in self._each(users):
            if len(rows):
                out[rows] = source.scores(users[rows], np.empty((len(rows), self.n_items), dtype=np.float32))
        return out

    def band(self, users: np.ndarray, items: np.ndarray) -> np.ndarray | None:
        found = np.zeros(len(users), dtype=np.float64)
        any_band = False
        for source, rows in self._each(users):
            band = source.band(users[rows], items[rows]) if len(rows) else None
            if band is not None:
                found[rows], any_band = band, True
        return found if any_band else None

    def exact(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        found = np.zeros(len(users), dtype=np.float32)
        for source, rows in self._each(users):
            if len(rows):
                found[rows] = source.exact(users[rows], items[rows])
        return found


def _gamma(terms: int | np.ndarray) -> np.ndarray:
    """The relative rounding bound of a float32 sum of ``terms`` products, in any order: n u / (1 - n u)."""
    n = np.asarray(terms, dtype=np.float64)
    return n * _EPS32 / (1 - n * _EPS32)


def _magnitudes(embeddings: np.ndarray, biases: np.ndarray) -> np.ndarray:
    return np.hstack([np.abs(embeddings), np.abs(biases)[:, None]]).astype(np.float64)


def _representation(
    features: sp.csr_matrix, biases: np.ndarray, embeddings: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    return (np.asarray(features @ biases, dtype=np.float32), np.asarray(features @ embeddings, dtype=np.float32))


@runtime_checkable
class LightFMBacked(Protocol):
    """A model that scores with a ``lightfm.LightFM``: the evaluator ranks it exactly, with LightFM's own kernel
    settling near-ties (see the module's notes)."""

    def lightfm_parts(self) -> tuple[Any, sp.csr_matrix, sp.csr_matrix]:
        """The ``lightfm.LightFM`` model and the user and item feature matrices it scores with."""
        ...


@runtime_checkable
class Routed(Protocol):
    """A model that hands each user to one of its parts (the switch): the evaluator scores and ranks every user
    exactly as the part that scores them (their scores, rounding band and ties)."""

    def routes(self, users: np.ndarray) -> list[tuple[Any, np.ndarray]]:
        """(part, the users it scores) for every part; each of ``users`` in exactly one."""
        ...


@runtime_checkable
class SharedRow(Protocol):
    """A model that scores some users (or all) with one row that does not depend on the user (popularity; users
    without history under ItemKNN, EASE, iALS, RP3beta). With a tie order, the evaluator ranks that row once and
    derives each such user's ranks and top list from it and the user's exclusions (see :func:`_rank_shared`)."""

    def shared_row(self) -> tuple[np.ndarray, np.ndarray]:
        """(mask over all users: whose ``score`` rows equal the row bit for bit, the row: float32 per item)."""
        ...


def _is_lightfm(model: Any) -> bool:
    return type(model).__name__ == "LightFM" and type(model).__module__.startswith("lightfm")


def score_source(
    model: Any,
    n_users: int,
    n_items: int,
    user_features: sp.spmatrix | None = None,
    item_features: sp.spmatrix | None = None,
    users: np.ndarray | None = None,
) -> _ScorerSource | _LightFMSource | _RoutedSource:
    """How to score ``model``: a fitted ``lightfm.LightFM``, a kdq_lab LightFM wrapper, a routing model, or any scorer.

    ``n_users`` × ``n_items`` is the shape of the test (or exclusion) matrix: the model must score exactly
    that many users (unless there are none) and items, or :class:`KdqError` names both counts. A LightFM model
    with a non-finite parameter or feature value is refused before anything is scored.
    ``users``: the users that will be scored (default: all).
    """
    scores, rows_of = "the model scores {}", "{} has {{}} rows"
    if isinstance(model, Routed):
        return _RoutedSource(model, n_users, n_items, users)
    if isinstance(model, LightFMBacked):
        inner, rows, items = model.lightfm_parts()
        user_how = item_how = scores
    elif _is_lightfm(model):  # a pure-id side has one feature per user or item, as in lightfm.evaluation
        inner = model
        rows = sp.identity(len(model.user_biases), format="csr") if user_features is None else user_features
        items = sp.identity(len(model.item_biases), format="csr") if item_features is None else item_features
        user_how = scores if user_features is None else rows_of.format("user_features")
        item_how = scores if item_features is None else rows_of.format("item_features")
    elif hasattr(model, "score"):
        return _ScorerSource(model, n_items)
    else:
        raise KdqError(
            f"cannot evaluate {type(model).__name__}: expected a lightfm.LightFM or a kdq_lab model with score()"
        )
    if n_users:  # a test without users has none to match
        check_count("users", n_users, rows.shape[0], user_how)
    check_count("items", n_items, items.shape[0], item_how)
    return _LightFMSource(inner, rows, items, users)


# ----------------------------------------------------------------------------- batching


def default_threads(num_threads: int | None) -> int:
    return max(1, num_threads or os.cpu_count() or 1)


def batch_rows(n_items: int, batch_size: int | None = None) -> int:
    """Users per batch: a batch's float32 scores take about :data:`_BATCH_BYTES` (at least :data:`_MIN_BATCH` rows)."""
    return batch_size or max(_MIN_BATCH, _BATCH_BYTES // (4 * max(n_items, 1)))


def map_batches(
    fn: Callable[[slice, Workspace], Any],
    n: int,
    n_items: int,
    num_threads: int | None = None,
    batch_size: int | None = None,
) -> list[Any]:
    """Apply ``fn(span, workspace)`` to consecutive spans of ``range(n)`` in threads; results in span order.

    Each thread allocates one :class:`Workspace` and reuses it for all its batches. BLAS runs
    single-threaded inside each batch: threads work on different batches.
    """
    threads = default_threads(num_threads)
    size = batch_rows(n_items, batch_size)
    spans = [slice(i, min(i + size, n)) for i in range(0, n, size)]
    if not spans:  # nothing to score (no thread pool of size 0)
        return []
    local = threading.local()

    def run(span: slice) -> Any:
        if not hasattr(local, "workspace"):
            local.workspace = Workspace(size, n_items)
        return fn(span, local.workspace)

    with threadpool_limits(1, user_api="blas"):  # batches are small: threads over batches, not inside BLAS
        if threads == 1 or len(spans) == 1:
            return [run(span) for span in spans]
        with ThreadPoolExecutor(min(threads, len(spans))) as pool:
            return list(pool.map(run, spans))


def _span_entries(matrix: sp.csr_matrix, span: slice) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row within the span, column, row lengths) of the stored entries of a span of CSR rows."""
    pointers = matrix.indptr[span.start : span.stop + 1]
    lengths = np.diff(pointers)
    rows = np.repeat(np.arange(len(lengths)), lengths)
    return rows, matrix.indices[pointers[0] : pointers[-1]].astype(np.int64), lengths


# ----------------------------------------------------------------------------- one batch


@dataclass(frozen=True)
class _Positives:
    """Test positives of a batch: row in the batch, item, slot within the row, and per-row counts."""

    rows: np.ndarray
    items: np.ndarray
    slots: np.ndarray
    lengths: np.ndarray

    @classmethod
    def of(cls, test: sp.csr_matrix, span: slice) -> _Positives:
        """The positives of a span of ``test``'s rows."""
        rows, items, lengths = _span_entries(test, span)
        starts = np.cumsum(lengths) - lengths
        return cls(rows, items, np.arange(len(rows)) - starts[rows], lengths)

    def counts(
        self, ws: Workspace, matrix: np.ndarray, values: Sequence[np.ndarray], strict: bool = False
    ) -> list[np.ndarray]:
        """Per array of ``values``: entries of each positive's row of ``matrix`` >= (``strict``: >) its value."""
        return query_counts(ws, matrix, self.rows, self.slots, self.lengths, values, strict)


def _mask_excluded(scores: np.ndarray, exclude: sp.csr_matrix | None, span: slice) -> None:
    """Give the items ``exclude`` lists for a span of its rows a score below every eligible one."""
    if exclude is not None:
        rows, items, _ = _span_entries(exclude, span)
        scores[rows, items] = -np.inf


def _ranks_tie_order(
    ws: Workspace, scores: np.ndarray, order: np.ndarray, pos: _Positives
) -> tuple[np.ndarray, np.ndarray]:
    """Ranks under the tie order (other items with strictly higher keys), and the keys."""
    keys = tie_keys(scores, order, ws)
    return pos.counts(ws, keys, [keys[pos.rows, pos.items]], strict=True)[0], keys


def _ranks_pessimistic(
    ws: Workspace, source: Any, users: np.ndarray, scores: np.ndarray, pos: _Positives, positive: np.ndarray
) -> np.ndarray:
    """LightFM ranks: other eligible items scoring at least as high, near-ties settled exactly.

    With a rounding bound, every positive gets a band [lo, hi) around its score: items at or
    above ``hi`` surely score at least as high in LightFM's kernel too, items below ``lo``
    surely not. Two counts give both numbers; only positives with another item inside their
    band (rare, except with exact ties) look at those items, and LightFM's own kernel decides.
    """
    band = source.band(users[pos.rows], pos.items)
    if band is None:
        return pos.counts(ws, scores, [positive])[0] - 1
    hi = np.nextafter((positive + band).astype(np.float32), np.float32(np.inf))
    lo = np.nextafter((positive - band).astype(np.float32), np.float32(-np.inf))
    certain, query, items = band_counts(ws, scores, pos.rows, pos.slots, pos.lengths, lo, hi)
    other = items != pos.items[query]
    query, items = query[other], items[other]
    if len(query):  # other items inside a positive's rounding band: ask LightFM's kernel
        owners = users[pos.rows[query]]
        mine = source.exact(owners, pos.items[query])
        theirs = source.exact(owners, items)
        certain += np.bincount(query, weights=theirs >= mine, minlength=len(certain)).astype(np.int64)
    return certain


def best_positions(scores: np.ndarray, n: int, order: np.ndarray | None = None) -> np.ndarray:
    """Positions of the ``n`` best finite scores of each row, best first (-1 where fewer).

    Equal scores follow ``order`` (0 = first; default: item position).
    """
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float32))
    scores = np.where(np.isfinite(scores), scores, np.float32(-np.inf))
    order = np.arange(scores.shape[1]) if order is None else order
    return top_positions(scores, order, n)


def _top_and_ties(
    ws: Workspace, scores: np.ndarray, order: np.ndarray, keys: np.ndarray | None, top: int, ks: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``top`` lists and, per k, whether the k-th and (k+1)-th eligible scores tie (from ``keys`` if given)."""
    length = max(top, max(ks, default=0) + 1)
    chosen = top_positions(scores, order, length, ws) if keys is None else top_by_keys(keys, length, ws)
    valid = chosen >= 0
    picked = np.where(valid, scores[np.arange(len(scores))[:, None], np.maximum(chosen, 0)], np.nan)
    ties = np.zeros((len(scores), len(ks)), dtype=bool)
    for j, k in enumerate(ks):
        if k < chosen.shape[1]:
            ties[:, j] = valid[:, k] & (picked[:, k - 1] == picked[:, k])
    return chosen[:, :top], ties


def _shared_row(model: Any, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray] | None:
    """A :class:`SharedRow` model's (users on the row, the row), checked against the test's shape; else ``None``."""
    if not isinstance(model, SharedRow):
        return None
    mask, row = (np.asarray(a) for a in model.shared_row())
    name = type(model).__name__
    if mask.shape != (shape[0],) or mask.dtype != bool:
        raise KdqError(f"test has {shape[0]} users, {name}.shared_row() gives a mask of shape {mask.shape}")
    if row.shape != (shape[1],):
        raise KdqError(f"test has {shape[1]} items, {name}.shared_row() gives a row of shape {row.shape}")
    row = row.astype(np.float32)
    if not np.isfinite(row).all():
        raise KdqError(f"{name} produced non-finite scores; cannot rank")
    return mask, row


def _rank_shared(
    row: np.ndarray,
    order: np.ndarray,
    sub: sp.csr_matrix,
    excluded: sp.csr_matrix | None,
    start: int,
    top: int,
    ks: Sequence[int],
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Ranks (and top lists, ``ties@k``) of the rows ``start:`` of ``sub``, all scored with ``row``, from one order.

    Every item gets its position in the row's order (the same tie keys as the dense path); a positive's rank is its
    position minus the user's excluded items placed before it, and the j-th eligible item of a user is the one at
    position q = j + #{excluded e_i (sorted, i from 0) with e_i - i <= j}. Both counts are searches over
    (user, position) keys: no loop over users.
    """
    n_items = len(row)
    ranked = np.argsort(~tie_keys(row[None, :], order)[0], kind="stable")  # distinct keys: best first
    position = np.empty(n_items, dtype=np.int64)
    position[ranked] = np.arange(n_items)
    span, width = slice(start, sub.shape[0]), n_items + 1
    rows, items, _ = _span_entries(sub, span)
    if excluded is not None:
        excluded_rows, excluded_items, _ = _span_entries(excluded, span)
    else:
        excluded_rows = excluded_items = np.zeros(0, dtype=np.int64)
    excluded_keys = np.sort(excluded_rows * width + position[excluded_items])
    before = np.searchsorted(excluded_keys, rows * width + position[items]) - np.searchsorted(
        excluded_keys, rows * width
    )
    ranks = position[items] - before
    if not top:
        return ranks, None, None
    n_rows, length = sub.shape[0] - start, max(top, max(ks, default=0) + 1)
    owner = excluded_keys // width
    shifted = excluded_keys - (np.arange(len(owner)) - np.searchsorted(owner, owner))  # e_i - i, per user
    query_rows, query_j = np.repeat(np.arange(n_rows), length), np.tile(np.arange(length), n_rows)
    skipped = np.searchsorted(shifted, query_rows * width + query_j, side="right") - np.searchsorted(
        shifted, query_rows * width
    )
    q = query_j + skipped
    chosen = np.where(q < n_items, ranked[np.minimum(q, n_items - 1)], -1).reshape(n_rows, length)
    valid = chosen >= 0
    picked = np.where(valid, row[np.maximum(chosen, 0)], np.nan)
    ties = np.zeros((n_rows, len(ks)), dtype=bool)
    for j, k in enumerate(ks):
        if k < length:
            ties[:, j] = valid[:, k] & (picked[:, k - 1] == picked[:, k])
    return ranks, chosen[:, :top], ties


# ----------------------------------------------------------------------------- metrics


def _check_inputs(
    test: sp.spmatrix, exclude: sp.spmatrix | None, history: np.ndarray | None, user_ids: Sequence | None
) -> tuple[sp.csr_matrix, sp.csr_matrix | None]:
    """Test and exclusion as CSR; every per-user input must have one entry per test row (both counts named)."""
    test = sp.csr_matrix(test)
    test.sort_indices()
    n_users, n_items = test.shape
    for name, values in (("history", history), ("user_ids", user_ids)):
        if values is not None and len(values) != n_users:
            raise KdqError(f"test has {n_users} users, {name} has {len(values)} entries")
    if exclude is not None:
        exclude = sp.csr_matrix(exclude)
        check_count("users", n_users, exclude.shape[0], "exclude has {} rows")
        check_count("items", n_items, exclude.shape[1], "exclude has {} columns")
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
    """Per-user metrics from ranks: every registered ``per_user`` metric (:mod:`kdq_lab.evaluation.metrics`).

    ``n_test``, ``n_train`` (history length) and ``n_excluded`` (items excluded from the
    ranking; default ``n_train``) are per evaluated user, in ascending user order as in
    ``ranks``. Columns: ``user``, ``n_test``, ``n_train``, then each k's metrics, then those without k.
    """
    n_excluded = n_train if n_excluded is None else n_excluded
    users = np.unique(ranks["user"].to_numpy())
    pos = np.searchsorted(users, ranks["user"].to_numpy())
    g = _groups(pos, ranks["rank"].to_numpy(dtype=np.float64), len(users))
    key = g.user * float(n_items + 2) + g.rank
    at_or_above = np.searchsorted(key, key, side="right") - g.start[g.user]
    facts = RankFacts(g.user, g.rank, g.start, g.within, at_or_above, n_test, n_train, n_excluded, n_items)
    specs = metric_specs("per_user")
    out: dict[str, np.ndarray] = {"user": users, "n_test": n_test, "n_train": n_train}
    for k in ks:
        out |= {f"{spec.name}@{k}": np.asarray(spec.compute(facts, k)) for spec in specs if spec.takes_k}
    out |= {spec.name: np.asarray(spec.compute(facts, None)) for spec in specs if not spec.takes_k}
    return pd.DataFrame(out)


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


@dataclass(frozen=True)
class EvalOptions:
    """What :func:`evaluate_all` reports beyond ``lightfm.evaluation``'s metrics, and how it batches users.

    Attributes
    ----------
    history
        Known positives per user (all users), reported as ``n_train`` and used for
        segments; default: the row counts of ``exclude``.
    user_ids
        Ids of the matrix rows, added as a ``user_id`` column (kdq_lab models know their own).
    top
        Length of the top lists to return (0: none, and no ``ties@k`` columns).
    batch_size
        Users scored at once (default: about 8 MB of scores, at least 16 users).
    """

    history: np.ndarray | None = None
    user_ids: Sequence | None = None
    top: int = 0
    batch_size: int | None = None


def evaluate_all(
    model: Any,
    test: sp.spmatrix,
    *,
    exclude: sp.spmatrix | None = None,
    k: int | Sequence[int] = 10,
    user_features: sp.spmatrix | None = None,
    item_features: sp.spmatrix | None = None,
    num_threads: int | None = None,
    options: EvalOptions | None = None,
) -> Evaluation:
    """Ranks, per-user metrics and (``options.top > 0``) top lists with the ``ties@k`` diagnostic, in one pass.

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
    user_features, item_features
        For a raw ``lightfm.LightFM`` only, as in ``lightfm.evaluation``.
    num_threads
        Threads over user batches (default: all cores).
    options
        History, user ids, top lists and batch size (:class:`EvalOptions`).
    """
    options = options or EvalOptions()
    history, user_ids, top = options.history, options.user_ids, options.top
    ks = [k] if isinstance(k, (int, np.integer)) else list(k)
    if not ks or any(not isinstance(v, (int, np.integer)) or v < 1 for v in ks):
        raise KdqError(f"k must be a positive integer or a list of them, not {k!r}")
    ks = sorted({int(v) for v in ks})
    test, exclude = _check_inputs(test, exclude, history, user_ids)
    n_test_all = test.getnnz(axis=1)
    users = np.flatnonzero(n_test_all > 0)
    users = users[np.argsort(-n_test_all[users], kind="stable")]  # many positives first: counting slots are prefixes
    source = score_source(model, test.shape[0], test.shape[1], user_features, item_features, users)
    order = source.order if source.order is not None else np.arange(test.shape[1])
    shared = _shared_row(model, test.shape) if source.order is not None else None
    n_dense = len(users)
    if shared is not None:  # users on the shared row go last, ranked at once from one item order
        on_row = shared[0][users]
        users, n_dense = np.concatenate([users[~on_row], users[on_row]]), int((~on_row).sum())

    sub = test[users]
    excluded = exclude[users] if exclude is not None else None

    def batch(span: slice, ws: Workspace) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        chunk = users[span]
        pos = _Positives.of(sub, span)
        scores = source.scores(chunk, ws.scores)
        positive = scores[pos.rows, pos.items]
        _mask_excluded(scores, excluded, span)
        keys = None
        if source.order is not None:
            ranks, keys = _ranks_tie_order(ws, scores, source.order, pos)
        else:
            ranks = _ranks_pessimistic(ws, source, chunk, scores, pos, positive)
        if not top:
            return ranks, None, None
        return (ranks, *_top_and_ties(ws, scores, order, keys, top, ks))

    parts = map_batches(batch, n_dense, test.shape[1], num_threads, options.batch_size)
    if shared is not None and n_dense < len(users):
        parts.append(_rank_shared(shared[1], order, sub, excluded, n_dense, top, ks))
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
    user_features: sp.spmatrix | None = None,
    item_features: sp.spmatrix | None = None,
    num_threads: int | None = None,
    options: EvalOptions | None = None,
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
        user_features=user_features,
        item_features=item_features,
        num_threads=num_threads,
        options=options,
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
        options=EvalOptions(batch_size=batch_size),
    ).ranks


def top_k(model: Any, users: np.ndarray, k: int, *, exclude: sp.spmatrix, num_threads: int | None = None) -> np.ndarray:
    """The ``k`` best items of each user (rows of item positions; -1 where fewer are eligible).

    ``exclude`` (users × items) marks items never recommended; it also gives the shape.
    Ties follow the model's tie order (item position for LightFM).
    """
    exclude = sp.csr_matrix(exclude)
    users = np.asarray(users, dtype=np.int64)
    outside = users[(users < 0) | (users >= exclude.shape[0])]
    if len(outside):
        raise KdqError(f"top_k: user {outside[0]} is not a row of exclude, which has {exclude.shape[0]} users")
    source = score_source(model, exclude.shape[0], exclude.shape[1], users=users)
    order = source.order if source.order is not None else np.arange(exclude.shape[1])

    excluded = exclude[users]

    def best(span: slice, ws: Workspace) -> np.ndarray:
        scores = source.scores(users[span], ws.scores)
        _mask_excluded(scores, excluded, span)
        return top_positions(scores, order, k, ws)

    parts = map_batches(best, len(users), exclude.shape[1], num_threads)
    return np.vstack(parts) if parts else np.zeros((0, k), dtype=np.int64)
