"""Leak-free splits of a dataset's positive events into train, validation and test, one module per kind.

Every split assigns whole (user, item) pairs to one part, so no pair is in two parts, and each
cut is also a rule that places events of any type (a view, a low rating) in a period. The kinds
are registered in :mod:`kdq_lab.data.splits.registry` (config, hold-out, periods, withheld items,
leakage checks, notebook claims); :data:`REGISTRY` lists them.
"""

# registration, in the order the CLI and error messages list the kinds: one line per kind
from kdq_lab.data.splits import (  # noqa: F401, I001
    random_pairs,
    user_temporal,
    global_temporal,
    cold_users,
    cold_items,
    predefined,
    leave_last_out,
    warm_up,
)
from kdq_lab.data.splits.common import PARTS
from kdq_lab.data.splits.parts import SplitEvents, positive_events, seen_pairs, split_events, withheld_items
from kdq_lab.data.splits.registry import (
    REGISTRY,
    SplitConfig,
    SplitKind,
    SplitOptions,
    evaluated_claims,
    expand_split,
    prepared_claims,
    split_keys,
    split_kind,
)

__all__ = [
    "PARTS",
    "REGISTRY",
    "SplitConfig",
    "SplitEvents",
    "SplitKind",
    "SplitOptions",
    "evaluated_claims",
    "expand_split",
    "positive_events",
    "prepared_claims",
    "seen_pairs",
    "split_events",
    "split_keys",
    "split_kind",
    "withheld_items",
]
