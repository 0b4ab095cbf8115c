"""Metrics: a registry (:mod:`.registry`) and one module per group of built-ins, each registering its own.

Adding a metric: one module here ending in ``register(MetricSpec(...))`` and its import below.
"""

from kdq_lab.evaluation.metrics import (
    exposure,  # noqa: F401  (exposure_gini, exposure_top1, exposure_top10 of item owners)
    lists,  # noqa: F401  (coverage, novelty, diversity, popularity)
    ranking,  # noqa: F401  (registers precision ... auc)
    reciprocal_rank_at_k,  # noqa: F401  (rr@k)
)
from kdq_lab.evaluation.metrics.names import (
    Metric,
    aggregate_columns,
    headline_k,
    parse_metric,
    per_user_columns,
    ties_columns,
)
from kdq_lab.evaluation.metrics.registry import (
    ListFacts,
    MetricSpec,
    RankFacts,
    metric_spec,
    metric_specs,
    register,
)

__all__ = [
    "ListFacts",
    "Metric",
    "MetricSpec",
    "RankFacts",
    "aggregate_columns",
    "headline_k",
    "metric_spec",
    "metric_specs",
    "parse_metric",
    "per_user_columns",
    "register",
    "ties_columns",
]
