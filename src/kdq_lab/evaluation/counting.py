"""The evaluator's kernels: count the entries of a row that reach a threshold, and pick a row's top k.

Everything works on one batch of rows at a time, in buffers that each thread allocates
once and reuses (:class:`Workspace`): fresh multi-megabyte arrays cost page faults that
are as expensive as the arithmetic itself.

Counting. A comparison writes a boolean matrix into the workspace, whose rows are padded
with ``False`` to whole 8-byte words. Viewed as ``uint64``, up to 255 words can be summed
without a byte lane overflowing, so a row's count is a short sum of those partial sums'
bytes: the count costs a small fraction of the comparison.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

_WORDS_PER_BLOCK = 255  # uint64 words summed before a byte lane (<= 255 ones) could overflow
_SAMPLE_STRIDE = 32  # top-k: one column in this many decides the candidate threshold
_LOW32 = np.uint64(0xFFFFFFFF)
#: Rows with at least this many thresholds are sorted once instead of compared once (or twice) per threshold.
SORT_FROM = 64

Compare = Callable[..., np.ndarray]


class Workspace:
    """One thread's reusable buffers for batches of up to ``rows`` rows of ``n`` columns."""

    def __init__(self, rows: int, n: int):
        self.n = n
        self.scores = np.empty((rows, n), dtype=np.float32)
        self._hit = [np.zeros((rows, -(-n // 8) * 8), dtype=bool)]  # padding columns stay False
        self._starts = np.arange(0, self._hit[0].shape[1] // 8, _WORDS_PER_BLOCK)
        self._keys: np.ndarray | None = None
        self._bits: np.ndarray | None = None

    def keys(self, rows: int) -> np.ndarray:
        """A ``uint64`` buffer of ``rows`` × ``n`` (allocated on first use)."""
        if self._keys is None:
            self._keys = np.empty((len(self._hit[0]), self.n), dtype=np.uint64)
        return self._keys[:rows]

    def bits(self, rows: int) -> np.ndarray:
        """A ``uint32`` buffer of ``rows`` × ``n`` (allocated on first use)."""
        if self._bits is None:
            self._bits = np.empty((len(self._hit[0]), self.n), dtype=np.uint32)
        return self._bits[:rows]

    def hits(self, matrix: np.ndarray, thresholds: np.ndarray, compare: Compare, buffer: int = 0) -> np.ndarray:
        """``compare(matrix[r], thresholds[r])`` as a boolean view into the workspace (two buffers: 0 and 1)."""
        while len(self._hit) <= buffer:
            self._hit.append(np.zeros_like(self._hit[0]))
        hit = self._hit[buffer][: len(thresholds), : self.n]
        compare(matrix[: len(thresholds)], thresholds[:, None], out=hit)
        return hit

    def set_entries(self, rows: int) -> tuple[np.ndarray, np.ndarray]:
        """(row, column) of the set entries of buffer 0's first ``rows`` rows (few: whole zero words are skipped)."""
        return _set_bits(self._hit[0][:rows])

    def band_members(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(position in ``rows``, column) of the entries set in buffer 0 but not in buffer 1, for those rows.

        Set entries are rare: whole zero words are skipped, only the others are looked into.
        """
        return _set_bits(self._hit[0][rows] ^ self._hit[1][rows])

    def count(self, matrix: np.ndarray, thresholds: np.ndarray, compare: Compare, buffer: int = 0) -> np.ndarray:
        """Per row r: how many entries of ``matrix[r]`` satisfy ``compare(entry, thresholds[r])``."""
        self.hits(matrix, thresholds, compare, buffer)
        words = self._hit[buffer][: len(thresholds)].view(np.uint64)
        partial = np.add.reduceat(words, self._starts, axis=1)
        return partial.view(np.uint8).sum(axis=1, dtype=np.int64)


def _set_bits(hit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of the True entries of a C-contiguous boolean matrix whose width is whole words."""
    width = hit.shape[1]
    words = np.flatnonzero(hit.view(np.uint64).ravel() != 0)  # flat searches: much faster than 2-d
    flat = words[:, None] * 8 + np.arange(8)
    flat = flat[hit.reshape(-1, 8)[words]]
    return flat // width, flat % width


def slot_counts(
    ws: Workspace, matrix: np.ndarray, table: np.ndarray, lengths: np.ndarray, compare: Compare
) -> np.ndarray:
    """``counts[r, t]`` = entries of ``matrix[r]`` satisfying ``compare`` with ``table[r, t]``, for t < lengths[r].

    Rows are sorted by ``lengths`` descending, so each slot is a prefix of the rows: one
    comparison pass per slot, no copy of the matrix.
    """
    counts = np.zeros(table.shape, dtype=np.int64)
    for slot in range(table.shape[1]):
        rows = int(np.count_nonzero(lengths > slot))
        counts[:rows, slot] = ws.count(matrix, table[:rows, slot], compare)
    return counts


def sorted_counts(ordered: np.ndarray, rows: np.ndarray, values: np.ndarray, strict: bool) -> np.ndarray:
    """For each query (row, value): entries of the ascending ``ordered[row]`` >= value (> when ``strict``)."""
    n = ordered.shape[1]
    lo = np.zeros(len(rows), dtype=np.int64)
    hi = np.full(len(rows), n, dtype=np.int64)
    while True:  # a vectorised binary search, all queries at once
        active = lo < hi
        if not active.any():
            return n - lo
        mid = (lo + hi) // 2
        entry = ordered[rows, np.minimum(mid, n - 1)]
        below = entry <= values if strict else entry < values
        lo = np.where(active & below, mid + 1, lo)
        hi = np.where(active & ~below, mid, hi)


def query_counts(
    ws: Workspace,
    matrix: np.ndarray,
    rows: np.ndarray,
    slots: np.ndarray,
    lengths: np.ndarray,
    values: Sequence[np.ndarray],
    strict: bool,
) -> list[np.ndarray]:
    """For every array of ``values`` and query q: entries of ``matrix[rows[q]]`` >= (``strict``: >) ``values[q]``.

    ``slots[q]`` is the query's position among its row's queries; rows are sorted by
    ``lengths`` (queries per row) descending. Rows with :data:`SORT_FROM` or more queries are
    sorted once for all their queries; the others are compared once per query.
    """
    compare = np.greater if strict else np.greater_equal
    heavy = int(np.count_nonzero(lengths >= SORT_FROM))
    light = rows >= heavy
    out = [np.zeros(len(rows), dtype=np.int64) for _ in values]
    ordered = np.sort(matrix[:heavy], axis=1) if heavy else None
    width = min(int(lengths[heavy:].max(initial=0)), SORT_FROM)
    for result, value in zip(out, values):
        if ordered is not None:
            result[~light] = sorted_counts(ordered, rows[~light], value[~light], strict)
        if light.any():
            table = np.zeros((len(lengths) - heavy, width), dtype=value.dtype)
            table[rows[light] - heavy, slots[light]] = value[light]
            counts = slot_counts(ws, matrix[heavy:], table, lengths[heavy:], compare)
            result[light] = counts[rows[light] - heavy, slots[light]]
    return out


def band_counts(
    ws: Workspace,
    matrix: np.ndarray,
    rows: np.ndarray,
    slots: np.ndarray,
    lengths: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per query q: entries of ``matrix[rows[q]]`` >= ``hi[q]``, and the entries in ``[lo[q], hi[q])``.

    Returns the counts and the (query, column) pairs inside the bands, only for queries with
    more than one entry there (a query's own entry is inside its band, and usually alone).
    Query layout as in :func:`query_counts`; bands are read off the two comparisons' bits.
    """
    heavy = int(np.count_nonzero(lengths >= SORT_FROM))
    certain = np.zeros(len(rows), dtype=np.int64)
    queries, columns = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
    if heavy:  # one argsort per row: counts by binary search, band members read off the sorted order
        order = np.argsort(matrix[:heavy], axis=1)
        ordered = np.take_along_axis(matrix[:heavy], order, axis=1)
        n = matrix.shape[1]
        picked = np.flatnonzero(rows < heavy)
        certain[picked] = sorted_counts(ordered, rows[picked], hi[picked], strict=False)
        start = n - sorted_counts(ordered, rows[picked], lo[picked], strict=False)
        width = np.where(n - certain[picked] - start > 1, n - certain[picked] - start, 0)  # crowded bands only
        owner = np.repeat(np.arange(len(picked)), width)
        offset = np.arange(len(owner)) - np.repeat(np.cumsum(width) - width, width)
        queries.append(picked[owner])
        columns.append(order[rows[picked][owner], start[owner] + offset])
    for slot in range(min(int(lengths[heavy:].max(initial=0)), SORT_FROM)):
        n_rows = heavy + int(np.count_nonzero(lengths[heavy:] > slot))
        picked = np.flatnonzero((slots == slot) & (rows >= heavy))  # one per row, rows heavy .. n_rows - 1
        block = matrix[heavy:n_rows]
        at_lo = ws.count(block, lo[picked], np.greater_equal, 0)
        certain[picked] = ws.count(block, hi[picked], np.greater_equal, 1)
        crowded = np.flatnonzero(at_lo - certain[picked] > 1)
        if len(crowded):
            owner, column = ws.band_members(crowded)
            queries.append(picked[crowded[owner]])
            columns.append(column)
    return certain, np.concatenate(queries), np.concatenate(columns)


# ----------------------------------------------------------------------------- keys and top k


def ordered_bits(scores: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """float32 scores as uint32 with the same order (``-0.0`` equals ``0.0``), into ``out`` (uint32) if given."""
    scores = np.asarray(scores, dtype=np.float32)
    bits = np.add(scores, np.float32(0.0), out=None if out is None else out.view(np.float32)).view(np.uint32)
    flip = (bits.view(np.int32) >> 31).view(np.uint32)  # all ones for negative scores
    flip |= np.uint32(0x80000000)
    bits ^= flip  # negative: every bit flipped; positive: the sign bit set
    return bits


def tie_keys(scores: np.ndarray, order: np.ndarray, ws: Workspace | None = None) -> np.ndarray:
    """Distinct uint64 keys: the score in the high half, the tie order (earlier = higher) in the low half.

    With a workspace, the keys are written into its buffers (valid until its next use).
    """
    bits = ordered_bits(scores, None if ws is None else ws.bits(len(scores)))
    keys = np.empty(np.shape(scores), dtype=np.uint64) if ws is None else ws.keys(len(scores))
    halves = keys.view(np.uint32).reshape(*keys.shape, 2)  # the two 32-bit words of each key
    high = 1 if np.little_endian else 0
    halves[..., high] = bits
    halves[..., 1 - high] = (_LOW32 - order.astype(np.uint64)).astype(np.uint32)
    return keys


def _first_k(rows: np.ndarray, cols: np.ndarray, keys: np.ndarray, n_rows: int, k: int) -> np.ndarray:
    """Per row, the columns of the ``k`` largest ``keys`` among the candidates (rows, cols), best first."""
    out = np.full((n_rows, k), -1, dtype=np.int64)
    ranked = np.lexsort((~keys, rows))
    rows, cols = rows[ranked], cols[ranked]
    within = np.arange(len(rows)) - np.searchsorted(rows, rows)
    keep = within < k
    out[rows[keep], within[keep]] = cols[keep]
    return out


def _threshold(values: np.ndarray, k: int) -> np.ndarray:
    """Per row, a value with at least ``k`` entries at or above it: the k-th largest of a strided sample."""
    stride = max(1, min(_SAMPLE_STRIDE, values.shape[1] // (4 * k)))
    sample = values[:, ::stride]
    return np.partition(sample, sample.shape[1] - k, axis=1)[:, sample.shape[1] - k]


def _above(values: np.ndarray, threshold: np.ndarray, ws: Workspace | None) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of the entries at or above their row's threshold."""
    if ws is None:
        rows, cols = np.nonzero(values >= threshold[:, None])
        return rows, cols
    ws.hits(values, threshold, np.greater_equal)
    return ws.set_entries(len(values))


def top_positions(scores: np.ndarray, order: np.ndarray, k: int, ws: Workspace | None = None) -> np.ndarray:
    """The ``k`` best scores of each row, best first, as column positions (-1 where fewer).

    Scores of ``-inf`` are never returned; equal scores follow ``order`` (0 = first). A
    threshold from a strided sample of the columns keeps about ``k × stride`` candidates per
    row (more when many scores tie); only those get tie keys and are sorted.
    """
    n_rows, n = scores.shape
    if min(k, n) == 0 or n_rows == 0:
        return np.full((n_rows, k), -1, dtype=np.int64)
    threshold = _threshold(scores, min(k, n))
    rows, cols = _above(scores, threshold, ws)
    values = scores[rows, cols]
    eligible = values > -np.inf
    rows, cols = rows[eligible], cols[eligible]
    return _first_k(rows, cols, tie_keys(values[eligible], order[cols]), n_rows, k)


#: The largest key of a ``-inf`` score: keys above it belong to eligible items.
_EXCLUDED_KEY = np.uint64((int(ordered_bits(np.array([-np.inf], np.float32))[0]) << 32) | 0xFFFFFFFF)


def top_by_keys(keys: np.ndarray, k: int, ws: Workspace | None = None) -> np.ndarray:
    """:func:`top_positions` from the rows' tie keys (distinct: the candidates stay few even among many ties)."""
    n_rows, n = keys.shape
    if min(k, n) == 0 or n_rows == 0:
        return np.full((n_rows, k), -1, dtype=np.int64)
    threshold = np.maximum(_threshold(keys, min(k, n)), _EXCLUDED_KEY + np.uint64(1))
    rows, cols = _above(keys, threshold, ws)
    return _first_k(rows, cols, keys[rows, cols], n_rows, k)
