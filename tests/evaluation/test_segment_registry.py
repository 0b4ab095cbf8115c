"""Segment kinds: built-ins keep today's labels; by_feature counts a multi-valued user in every group they list."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from kdq_lab.data.build import FeatureVocabulary
from kdq_lab.evaluation.segments import SegmentContext, SegmentKind, register, segment_groups, segment_kinds
from kdq_lab.evaluation.segments.by_feature import check_columns


def vocabulary() -> FeatureVocabulary:
    names = ("age_band:20s", "age_band:30s", "occupations:artist", "occupations:clerk", "occupations:student")
    return FeatureVocabulary("|", ("age_band",), ("occupations",), {}, names)


#: users (matrix rows) 0..5: age band and occupations
PEOPLE = [
    ("20s", ["student"]),
    ("30s", ["artist", "clerk"]),
    ("30s", ["artist", "clerk", "student"]),
    ("20s", []),
    ("20s", ["clerk"]),
    ("30s", ["artist"]),
]


def context(rows: list[int]) -> SegmentContext:
    names = vocabulary().names
    matrix = np.zeros((len(PEOPLE), len(names)))
    for user, (age, jobs) in enumerate(PEOPLE):
        for name in [f"age_band:{age}", *(f"occupations:{j}" for j in jobs)]:
            matrix[user, names.index(name)] = 1
    per_user = pd.DataFrame({"user": rows, "n_train": [0, 3, 25, 7, 1, 0][: len(rows)]})
    return SegmentContext(per_user, sp.csr_matrix(matrix), vocabulary())


def members(groups) -> dict[str, list[int]]:
    return {label: list(map(int, rows)) for label, rows in groups}


def test_builtin_labels_and_order_are_today_s():
    groups = members(segment_groups(context(list(range(6)))))
    assert list(groups) == ["all", "returning", "new", "history:0", "history:1-4", "history:5-19", "history:20+"]
    assert groups["new"] == [0, 5] and groups["history:20+"] == [2] and groups["history:5-19"] == [3]
    assert sorted(groups["new"] + groups["returning"]) == groups["all"]


@pytest.mark.parametrize("rows", [[0, 1, 2, 3, 4, 5], [5, 2, 0], [1, 3]])
def test_multi_valued_users_count_in_every_group_they_list(rows):
    """Rows index the per-user table; ``user`` is the matrix row: a subset in any order maps back correctly."""
    groups = members(segment_groups(context(rows), {"by_feature": ("occupations", "age_band")}))
    table_rows = {user: i for i, user in enumerate(rows)}
    for job in ("artist", "clerk", "student"):
        expected = sorted(table_rows[u] for u in rows if job in PEOPLE[u][1])
        assert groups[f"occupations:{job}"] == expected, job
    for n, label in ((0, "count=0"), (1, "count=1"), (2, "count=2")):
        assert groups[f"occupations:{label}"] == sorted(table_rows[u] for u in rows if len(PEOPLE[u][1]) == n)
    assert groups["occupations:count=3+"] == sorted(table_rows[u] for u in rows if len(PEOPLE[u][1]) >= 3)
    counts = [groups[f"occupations:count={c}"] for c in ("0", "1", "2", "3+")]
    assert sorted(u for c in counts for u in c) == groups["all"], "counts partition the users: nobody twice"
    ages = groups["age_band:20s"] + groups["age_band:30s"]
    assert sorted(ages) == groups["all"], "a single-valued column partitions the users"
    listed = sum(len(groups[f"occupations:{j}"]) for j in ("artist", "clerk", "student"))
    assert listed == sum(len(PEOPLE[u][1]) for u in rows), "value groups overlap: one membership per listed value"


def test_declared_kinds_run_only_when_declared_and_unknown_ones_are_refused():
    assert not any(label.startswith("occupations:") for label, _ in segment_groups(context([0, 1])))
    with pytest.raises(ValueError, match="by_fetaure"):
        segment_groups(context([0, 1]), {"by_fetaure": ("occupations",)})
    with pytest.raises(ValueError, match="not a user feature column"):
        segment_groups(context([0, 1]), {"by_feature": ("region",)})


@pytest.mark.parametrize(
    ("columns", "problem"),
    [
        (("region",), "not a user feature column"),
        (("age_band", "age_band"), "listed twice"),
        (("history",), "built-in segment"),
        (("all",), "built-in segment"),
    ],
)
def test_declared_columns_are_checked(columns, problem):
    found = check_columns(columns, ("age_band", "occupations", "history", "all"))
    assert len(found) == 1 and problem in found[0]
    assert check_columns(("age_band", "occupations"), ("age_band", "occupations")) == []


def test_a_kind_is_registered_once():
    with pytest.raises(ValueError, match="twice"):
        register(SegmentKind("history", lambda c, cols: []))
    assert [k.name for k in segment_kinds(declared=False)] == ["returning", "history"]
