"""Evaluation: exact LightFM-compatible ranking metrics, segments, statistics, beyond-accuracy metrics."""

from kdq_lab.evaluation.beyond import beyond_accuracy, intra_list_diversity
from kdq_lab.evaluation.ranking import EvalOptions, evaluate, rank_positives, top_k
from kdq_lab.evaluation.segments import add_segments, by_segment, hits_by_popularity
from kdq_lab.evaluation.stats import bootstrap_ci, holm, paired_comparison

__all__ = [
    "EvalOptions",
    "add_segments",
    "beyond_accuracy",
    "bootstrap_ci",
    "by_segment",
    "evaluate",
    "hits_by_popularity",
    "holm",
    "intra_list_diversity",
    "paired_comparison",
    "rank_positives",
    "top_k",
]
