"""Benchmark (``make bench-ranking``): popularity on ``kdq-large``'s test users, ranked once against scored densely.

Prepares (or reuses) the ``kdq-large`` split of ``kdq-catalog-large`` (generated on first use: about 90 s and
300 MB), fits popularity on train + validation as a run does, then evaluates every test user twice in the same
process: through the shared-row path (one item order, exclusions subtracted per user) and through the dense path
(a full score row per user). Both give the same ranks, per-user metrics and top lists (asserted); the times and
their ratio are printed.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from kdq_lab.config import Paths
from kdq_lab.data.registry import resolve_dataset
from kdq_lab.data.store import load_split, prepare
from kdq_lab.data.targets import target
from kdq_lab.evaluation.ranking import EvalOptions, Evaluation, evaluate_all
from kdq_lab.experiment.schema import load_experiment
from kdq_lab.models import TrainData, make_model

EXPERIMENT = "kdq-large"


class DenseView:
    """A model seen without its shared row: the evaluator scores each user's full row."""

    def __init__(self, model: Any):
        self.model = model

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.score(users))

    def tie_order(self) -> np.ndarray:
        return np.asarray(self.model.tie_order())


def _timed(model: Any, positives: Any, exclude: Any, options: EvalOptions) -> tuple[Evaluation, float]:
    started = time.perf_counter()
    result = evaluate_all(model, positives, exclude=exclude, k=[10, 20], options=options)
    return result, time.perf_counter() - started


def run(repeats: int = 1) -> dict[str, float]:
    """Both evaluations of popularity on the large catalog's test users; prints and returns the seconds."""
    del repeats  # one run each: the dense path takes minutes
    paths = Paths.default()
    experiment = load_experiment(paths.experiments / f"{EXPERIMENT}.yaml", paths=paths)
    name, seed, config = experiment.split_jobs()[0]
    split = load_split(prepare(resolve_dataset(experiment.dataset, paths), config, paths.processed))
    model = make_model("popularity").fit(TrainData.from_split(split, refit=True, exclude=experiment.exclude))
    goal = target(split, "test", experiment.exclude)
    options = EvalOptions(history=goal.history, user_ids=split.user_ids, top=20)
    once, once_seconds = _timed(model, goal.positives, goal.exclude, options)
    dense, dense_seconds = _timed(DenseView(model), goal.positives, goal.exclude, options)
    pd.testing.assert_frame_equal(once.ranks, dense.ranks, check_exact=True)
    pd.testing.assert_frame_equal(once.per_user, dense.per_user, check_exact=True)
    assert once.top is not None and dense.top is not None and np.array_equal(once.top, dense.top)
    users = len(once.per_user)
    print(
        f"popularity on {experiment.dataset}, split {name} (seed {seed}): {users:,} test users, "
        f"{int(goal.positives.nnz):,} positives; identical ranks, metrics and top-20 lists"
    )
    print(
        f"  ranked once: {once_seconds:8.2f} s\n  dense:       {dense_seconds:8.2f} s\n"
        f"  speed-up:    {dense_seconds / once_seconds:8.1f}x"
    )
    return {"users": float(users), "once_seconds": once_seconds, "dense_seconds": dense_seconds}
