"""Segments: a registry of segment kinds (:mod:`.registry`) and one module per kind, each registering its own.

Adding a kind: one module here ending in ``register(SegmentKind(...))`` and its import below. The item
popularity of hits (:mod:`.popularity`) is a per-run diagnostic, not a segment of users.
"""

from kdq_lab.evaluation.segments import (
    by_feature,  # noqa: F401  (declared: by_feature)
    history,  # noqa: F401  (returning, history)
)
from kdq_lab.evaluation.segments.breakdown import BUILT_IN_SEGMENTS, add_segments, by_segment, segment_rows
from kdq_lab.evaluation.segments.history import HISTORY_BINS, history_segment
from kdq_lab.evaluation.segments.popularity import POPULARITY_BUCKETS, hits_by_popularity, popularity_bucket
from kdq_lab.evaluation.segments.registry import (
    ALL,
    SegmentContext,
    SegmentKind,
    register,
    segment_groups,
    segment_kinds,
)

__all__ = [
    "ALL",
    "BUILT_IN_SEGMENTS",
    "HISTORY_BINS",
    "POPULARITY_BUCKETS",
    "SegmentContext",
    "SegmentKind",
    "add_segments",
    "by_segment",
    "history_segment",
    "hits_by_popularity",
    "popularity_bucket",
    "register",
    "segment_groups",
    "segment_kinds",
    "segment_rows",
]
