"""Segments by user feature, declared per experiment: ``segments: {by_feature: [occupations, age_band]}``.

Each value of a column is a group, labelled ``<column>:<value>`` (the feature's name in the
vocabulary). A multi-valued column puts a user in the group of every value they list, and adds
groups by how many values a user gave: ``<column>:count=0``, ``=1``, ``=2``, ``=3+``.
"""

from __future__ import annotations

import numpy as np

from kdq_lab.evaluation.segments.registry import ALL, Groups, SegmentContext, SegmentKind, register, segment_kinds

COUNTS = (0, 1, 2)  # then ``3+``


def feature_groups(context: SegmentContext, columns: tuple[str, ...]) -> Groups:
    """One group per value of each column, in vocabulary order; for a multi-valued column also by count of values."""
    vocabulary, features = context.vocabulary, context.user_features
    if vocabulary is None or features is None:
        raise ValueError("segments by feature need the split's user features")
    owner = vocabulary.column_of()
    matrix = features[context.per_user["user"].to_numpy()].tocsc()
    out: Groups = []
    for column in columns:
        positions = np.flatnonzero(owner == column)
        if not len(positions):
            raise ValueError(f"segments by feature: {column!r} is not a user feature column")
        chosen = matrix[:, positions]
        chosen.eliminate_zeros()
        out += [
            (vocabulary.names[p], chosen.indices[chosen.indptr[j] : chosen.indptr[j + 1]])
            for j, p in enumerate(positions)
        ]
        if column in vocabulary.multi_valued:
            counts = np.diff(chosen.tocsr().indptr)
            out += [(f"{column}:count={n}", np.flatnonzero(counts == n)) for n in COUNTS]
            out.append((f"{column}:count={COUNTS[-1] + 1}+", np.flatnonzero(counts > COUNTS[-1])))
    return out


def check_columns(columns: tuple[str, ...], user_columns: tuple[str, ...]) -> list[str]:
    """Problems with declared columns: not a user feature column, listed twice, or a name a built-in segment uses."""
    taken = {ALL, *(k.name for k in segment_kinds(declared=False))}
    problems = []
    for column in dict.fromkeys(columns):
        if columns.count(column) > 1:
            problems.append(f"{column!r} is listed twice")
        elif column in taken:
            problems.append(f"{column!r} would label groups like the built-in segment {column!r}; rename the column")
        elif column not in user_columns:
            problems.append(f"{column!r} is not a user feature column of the dataset ({', '.join(user_columns)})")
    return problems


register(SegmentKind("by_feature", feature_groups, declared=True, check=check_columns))
