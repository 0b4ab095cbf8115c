"""The segment registry: a segment kind turns the evaluated users into named groups.

A kind is a function ``groups(context, columns)`` → ``[(label, rows), ...]``: each group's label
and the rows of ``context.per_user`` in it. A user is in at most one group of a single-valued
kind; a multi-valued feature puts a user in every group they list (so groups of one kind may
overlap, and a pooled mean is taken over ``all``, never over groups). Built-in kinds run for
every run; a *declared* kind runs only when the experiment names it under ``segments:``, with
its list of columns (``segments: {by_feature: [occupations, age_band]}``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from kdq_lab.data.build import FeatureVocabulary

#: The group of every evaluated user; no kind may use it.
ALL = "all"


@dataclass(frozen=True)
class SegmentContext:
    """What a segment kind reads: the per-user table (``user`` = matrix row, ``n_train``, ...) and the user features.

    ``user_features`` (users × vocabulary, multi-hot) and ``vocabulary`` are the split's; ``None`` when absent.
    """

    per_user: pd.DataFrame
    user_features: sp.csr_matrix | None = None
    vocabulary: FeatureVocabulary | None = None


Groups = list[tuple[str, np.ndarray]]


@dataclass(frozen=True)
class SegmentKind:
    """A registered kind of segment.

    Attributes
    ----------
    name
        Its name (for a declared kind, the key under ``segments:`` in an experiment).
    groups
        ``groups(context, columns) -> [(label, rows)]`` in report order.
    declared
        Whether it runs only when an experiment declares it, with a list of columns.
    check
        For a declared kind: ``check(columns, user_feature_columns) -> problems`` (empty: fine),
        run when the experiment is loaded.
    """

    name: str
    groups: Callable[[SegmentContext, tuple[str, ...]], Groups]
    declared: bool = False
    check: Callable[[tuple[str, ...], tuple[str, ...]], list[str]] = field(default=lambda columns, known: [])


_REGISTRY: dict[str, SegmentKind] = {}


def register(kind: SegmentKind) -> SegmentKind:
    """Add a segment kind (a module's last line); a second kind of the same name is refused."""
    if kind.name in _REGISTRY or kind.name == ALL:
        raise ValueError(f"segment kind {kind.name!r} is registered twice (or is {ALL!r})")
    _REGISTRY[kind.name] = kind
    return kind


def segment_kinds(declared: bool | None = None) -> tuple[SegmentKind, ...]:
    """Registered kinds in registration order (only declared or only built-in ones when given)."""
    return tuple(k for k in _REGISTRY.values() if declared is None or k.declared == declared)


def segment_groups(context: SegmentContext, declared: dict[str, tuple[str, ...]] | None = None) -> Groups:
    """``all``, then every built-in kind's groups, then each declared kind's (``declared``: kind → columns)."""
    declared = declared or {}
    unknown = sorted(set(declared) - {k.name for k in segment_kinds(declared=True)})
    if unknown:
        raise ValueError(f"no declared segment kind {unknown[0]!r}")
    out: Groups = [(ALL, np.arange(len(context.per_user)))]
    for kind in segment_kinds(declared=False):
        out += kind.groups(context, ())
    for kind in segment_kinds(declared=True):
        if declared.get(kind.name):
            out += kind.groups(context, tuple(declared[kind.name]))
    return out
