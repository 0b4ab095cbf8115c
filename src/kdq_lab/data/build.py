"""Vectorised interaction and feature matrices, identical to ``lightfm.data.Dataset``'s.

* Interactions: one entry per (user, item) pair. Duplicate events of a pair are
  aggregated by **summing their weights**; the interaction matrix is binary (1 per
  pair). This equals ``Dataset.build_interactions`` followed by ``.tocsr()`` for the
  weights, and ``> 0`` of it for the interactions.
* Features: categorical columns are one-hot, multi-valued columns multi-hot, numeric
  columns one-hot over bins. Feature names read ``column:value``.
* :func:`compose_features` adds the optional identity block (first, as LightFM does)
  and the row normalisation (``none`` or ``l1``, with a configurable identity weight).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from kdq_lab.data.rawfiles import arrow_text
from kdq_lab.data.schema import EntitySpec
from kdq_lab.errors import KdqError
from kdq_lab.limits import MAX_VOCABULARY, check_at_most, too_many

Normalization = Literal["none", "l1"]


@dataclass(frozen=True)
class UnknownValue:
    """A feature value absent from the training vocabulary (ignored when encoding)."""

    row: int
    column: str
    value: str


@dataclass(frozen=True)
class FeatureVocabulary:
    """Feature names of one side (users or items) and how to encode rows into them."""

    separator: str
    categorical: tuple[str, ...]
    multi_valued: tuple[str, ...]
    numeric_edges: dict[str, tuple[float, ...]]
    names: tuple[str, ...]
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def columns(self) -> tuple[str, ...]:
        return self.categorical + self.multi_valued + tuple(self.numeric_edges)

    def __len__(self) -> int:
        return len(self.names)

    @classmethod
    def fit(cls, frame: pd.DataFrame, entity: EntitySpec, separator: str) -> FeatureVocabulary:
        """Learn the vocabulary from a table; values sorted within each column."""
        edges = {}
        for feature in entity.numeric:
            if feature.edges is not None:
                edges[feature.column] = feature.edges
            else:
                numbers = pd.to_numeric(frame[feature.column], errors="coerce").dropna()
                if numbers.empty:
                    raise KdqError(
                        f"numeric feature '{feature.column}' has no values to compute {feature.bins} "
                        "quantile bins from; give explicit edges or drop the feature"
                    )
                bins = feature.bins or 2
                qs = np.unique(np.quantile(numbers, np.linspace(0, 1, bins + 1)))
                qs = qs if len(qs) > 1 else np.repeat(qs, 2)  # a constant column: one bin
                edges[feature.column] = tuple(float(q) for q in qs)
        vocab = cls(separator, entity.categorical, entity.multi_valued, edges, (), dict(entity.labels))
        distinct = [(column, pc.unique(values)) for column, _, values in vocab._occurrences(frame)]
        size = sum(len(values) for _, values in distinct) + sum(len(e) - 1 for e in edges.values())
        if problem := too_many(size, MAX_VOCABULARY, "distinct feature values"):
            raise KdqError(f"{entity.file}: {problem} per side (features are one-hot: each value is a column)")
        names = [f"{column}:{value}" for column, values in distinct for value in sorted(values.to_pylist())]
        names += [label for column in edges for label in _bin_labels(column, edges[column])]
        return cls(separator, entity.categorical, entity.multi_valued, edges, tuple(names), dict(entity.labels))

    def _occurrences(self, frame: pd.DataFrame) -> Iterator[tuple[str, np.ndarray, pa.Array]]:
        """(column, rows, text values) of every categorical and multi-valued value in ``frame``.

        Values stay Arrow text: no Python object per value, however many rows.
        """
        for column in self.categorical + self.multi_valued:
            text = arrow_text(frame[column])
            present = pc.fill_null(pc.not_equal(text, ""), False)
            rows = np.flatnonzero(present.to_numpy(zero_copy_only=False))
            values = text.filter(present)
            if column in self.multi_valued:
                lists = pc.split_pattern(values, self.separator)
                rows = rows[pc.list_parent_indices(lists).to_numpy()]
                values = pc.list_flatten(lists)
            yield column, rows, values

    def transform(self, frame: pd.DataFrame) -> tuple[sp.csr_matrix, list[UnknownValue]]:
        """Multi-hot matrix of ``frame`` (rows in frame order) and the values not in the vocabulary."""
        frame = frame.reset_index(drop=True)
        position = {name: i for i, name in enumerate(self.names)}
        rows, columns, unknown = [], [], []
        for column, found, values in self._occurrences(frame):
            encoded = pc.dictionary_encode(values)
            distinct = encoded.dictionary.to_pylist()
            index = np.array([position.get(f"{column}:{v}", -1) for v in distinct], dtype=np.int64)
            feature = index[encoded.indices.to_numpy(zero_copy_only=False)] if len(found) else index[:0]
            known = feature >= 0
            unknown += [
                UnknownValue(int(r), column, distinct[c])
                for r, c in zip(found[~known], encoded.indices.to_numpy(zero_copy_only=False)[~known])
            ]
            rows.append(found[known])
            columns.append(feature[known])
        for column, edges in self.numeric_edges.items():
            numbers = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
            labels = np.array([position[label] for label in _bin_labels(column, edges)], dtype=np.int64)
            bins = np.searchsorted(np.asarray(edges), numbers, side="right") - 1
            bins = np.where(numbers == edges[-1], len(edges) - 2, bins)
            inside = np.isfinite(numbers) & (bins >= 0) & (bins < len(edges) - 1)
            rows.append(np.flatnonzero(inside))
            columns.append(labels[bins[inside]])
        row = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        col = np.concatenate(columns) if columns else np.zeros(0, dtype=np.int64)
        matrix = sp.csr_matrix(
            (np.ones(len(row), dtype=np.float32), (row, col)),
            shape=(len(frame), len(self.names)),
        )
        matrix.sum_duplicates()
        return matrix, unknown

    def column_of(self) -> np.ndarray:
        """Column name of every feature."""
        return np.array([n.split(":", 1)[0] for n in self.names], dtype=object)

    def to_dict(self) -> dict[str, Any]:
        return {
            "separator": self.separator,
            "categorical": list(self.categorical),
            "multi_valued": list(self.multi_valued),
            "numeric_edges": {k: list(v) for k, v in self.numeric_edges.items()},
            "names": list(self.names),
            "labels": dict(self.labels),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureVocabulary:
        """The inverse of :meth:`to_dict`; more names than :data:`~kdq_lab.limits.MAX_VOCABULARY` are refused."""
        check_at_most("feature vocabulary", len(data["names"]), MAX_VOCABULARY, "feature names")
        return cls(
            data["separator"],
            tuple(data["categorical"]),
            tuple(data["multi_valued"]),
            {k: tuple(v) for k, v in data["numeric_edges"].items()},
            tuple(data["names"]),
            dict(data.get("labels", {})),
        )


def _bin_labels(column: str, edges: tuple[float, ...]) -> list[str]:
    """Feature names of a numeric column's bins, e.g. ``duration_min:10–30`` ([10, 30))."""
    return [f"{column}:{lo:g}–{hi:g}" for lo, hi in itertools.pairwise(edges)]


@dataclass(frozen=True)
class FeatureConfig:
    """How a side's feature matrix is composed for a model.

    Attributes
    ----------
    identity
        Prepend one identity column per row (LightFM's ``*_identity_features``).
    normalize
        ``"l1"`` divides each row by its sum, identity included (LightFM's
        ``normalize=True``); ``"none"`` keeps raw weights.
    identity_weight
        Weight of the identity entry before normalisation.
    """

    identity: bool = True
    normalize: Normalization = "l1"
    identity_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.normalize not in ("none", "l1"):
            raise ValueError(f"normalize must be 'none' or 'l1', not {self.normalize!r}")
        if not self.identity_weight > 0:
            raise ValueError(f"identity_weight must be > 0, not {self.identity_weight!r}")


def compose_features(
    base: sp.csr_matrix, config: FeatureConfig, with_identity: np.ndarray | None = None, n_identity: int | None = None
) -> sp.csr_matrix:
    """``[identity | base]`` with the configured normalisation, as float32 CSR.

    Parameters
    ----------
    base
        Multi-hot feature rows (n × f).
    config
        Identity block and normalisation.
    with_identity
        Boolean mask of rows whose identity entry is present. A row without it
        (a user or item unseen in training) keeps the same normalisation, as if its
        identity weight were there: its features weigh what a known row's would.
        Default: every row.
    n_identity
        Width of the identity block (default ``base.shape[0]``); row ``r`` owns column ``r``.
    """
    base = sp.csr_matrix(base, dtype=np.float32)
    n = base.shape[0]
    if config.identity:
        width = n if n_identity is None else n_identity
        keep = np.ones(n, dtype=bool) if with_identity is None else np.asarray(with_identity, dtype=bool)
        rows = np.flatnonzero(keep)
        identity = sp.csr_matrix(
            (np.full(len(rows), config.identity_weight, dtype=np.float32), (rows, rows)), shape=(n, width)
        )
        matrix = sp.hstack([identity, base], format="csr", dtype=np.float32)
    else:
        matrix = base.copy()
    matrix.sort_indices()
    if config.normalize == "l1":
        sums = np.asarray(abs(base).astype(np.float64).sum(axis=1)).ravel()
        if config.identity:
            sums += config.identity_weight
        row_of = np.repeat(np.arange(n), np.diff(matrix.indptr))
        with np.errstate(divide="ignore", invalid="ignore"):
            scaled = matrix.data.astype(np.float64) / sums[row_of]
        matrix.data = np.where(sums[row_of] > 0, scaled, 0.0).astype(np.float32)
    return matrix


def pair_matrices(
    rows: np.ndarray, cols: np.ndarray, weights: np.ndarray | None, shape: tuple[int, int]
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Binary interactions (int32) and summed weights (float32) from row/column positions."""
    values = np.ones(len(rows), dtype=np.float32) if weights is None else np.asarray(weights, dtype=np.float32)
    weight = sp.coo_matrix((values, (rows, cols)), shape=shape).tocsr()
    weight.sum_duplicates()
    binary = sp.csr_matrix(
        (np.ones(weight.nnz, dtype=np.int32), weight.indices.copy(), weight.indptr.copy()), shape=shape
    )
    return binary, weight


def interaction_matrices(
    users: pd.Index, items: pd.Index, user_ids: Any, item_ids: Any, weights: Any = None
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Binary interactions (int32) and summed weights (float32) as users × items CSR.

    Raises
    ------
    KeyError
        If an id is not in ``users`` / ``items``.
    """
    rows = users.get_indexer(user_ids)
    cols = items.get_indexer(item_ids)
    for name, index, ids in (("user", rows, user_ids), ("item", cols, item_ids)):
        if (index < 0).any():
            missing = np.asarray(ids, dtype=object)[index < 0][:5]
            raise KeyError(f"{name} ids not in the id map: {list(missing)}")
    return pair_matrices(rows, cols, weights, (len(users), len(items)))
