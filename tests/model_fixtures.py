"""Test-only model kinds, registered for one test at a time (:func:`registered`).

* ``sweeps``: an iterative model whose iteration parameter is ``iterations`` (not LightFM's ``epochs``),
  with its own early stopping: it proves the iteration protocol is generic (tuning, pinning, refit).
* ``mean_of_parts``: a composite scoring the mean of two other runs' fitted models (``first``, ``second``):
  it proves the place composites have in the lab (parts fitted once, loaded, never retrained).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from kdq_lab.evaluation.metrics import parse_metric
from kdq_lab.evaluation.ranking import evaluate
from kdq_lab.models.base import ModelConfig, OnEpoch, Scorer, TrainData, item_popularity, ranked_order
from kdq_lab.models.registry import REGISTRY, ModelSpec, register


@contextmanager
def registered(*specs: ModelSpec) -> Iterator[None]:
    """Register test-only kinds for the duration of the block, then remove them."""
    for spec in specs:
        register(spec)
    try:
        yield
    finally:
        for spec in specs:
            REGISTRY.pop(spec.kind, None)


@dataclass(frozen=True)
class SweepsConfig(ModelConfig):
    iterations: int = 20
    patience: int | None = 2
    noise: float = 0.0
    seed: int = 0
    validation_metric: str = "ndcg@10"


class Sweeps:
    """Popularity counted over a growing seeded share of the train users: iteration t counts 1 - 2^-t of them.

    ``noise`` adds seeded noise to every score (a bad setting, for pruning to find).
    """

    name = "sweeps"
    iteration_parameter: ClassVar[str] = "iterations"
    fits = 0  # how many times any Sweeps was fitted

    def __init__(self, config: SweepsConfig | None = None):
        self.config = config or SweepsConfig()

    def fit(self, data: TrainData, on_epoch: OnEpoch | None = None) -> Sweeps:
        type(self).fits += 1
        cfg = self.config
        order = np.random.default_rng(cfg.seed).permutation(data.n_users)
        noise = cfg.noise * np.random.default_rng(cfg.seed + 1).random(data.n_items)
        self.tie_order_ = ranked_order(data.item_ids, item_popularity(data.interactions))
        k = parse_metric(cfg.validation_metric).k or 10
        history, best, best_scores, waited = [], -math.inf, None, 0
        for iteration in range(1, cfg.iterations + 1):
            tick = time.perf_counter()
            users = order[: math.ceil((1 - 0.5**iteration) * data.n_users)]
            self.scores_ = (item_popularity(data.interactions[users]) + noise).astype(np.float32)
            row: dict[str, float] = {"iteration": iteration, "seconds": time.perf_counter() - tick}
            if data.validation is not None:
                table = evaluate(self, data.validation.positives, exclude=data.validation.exclude, k=k)
                row["validation"] = float(table[cfg.validation_metric].mean())
                if on_epoch is not None:
                    on_epoch(iteration, row["validation"])
                if row["validation"] > best:
                    best, best_scores, waited, self.best_iteration_ = row["validation"], self.scores_, 0, iteration
                else:
                    waited += 1
            history.append(row)
            if data.validation is not None and cfg.patience is not None and waited >= cfg.patience:
                break
        if data.validation is not None and cfg.patience is not None and best_scores is not None:
            self.scores_ = best_scores
        else:
            self.best_iteration_ = len(history)
        self.history_ = pd.DataFrame(history)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.scores_, (len(users), len(self.scores_)))

    def tie_order(self) -> np.ndarray:
        return self.tie_order_

    def learning_curve(self) -> pd.DataFrame:
        return self.history_

    def best_iteration(self) -> int:
        return int(self.best_iteration_)

    def with_iterations(self, n: int) -> Sweeps:
        return Sweeps(SweepsConfig.from_dict(self.pin_iterations(self.config.to_dict(), n), self.name))

    @classmethod
    def pin_iterations(cls, params: dict[str, Any], n: int) -> dict[str, Any]:
        return {**params, "iterations": int(n), "patience": None}


SWEEPS = ModelSpec(
    kind="sweeps",
    build=Sweeps,
    config=SweepsConfig,
    summary="test only: popularity over a growing share of users, one share per iteration",
    seed_parameter="seed",
    metric_parameter="validation_metric",
    search_space={"noise": {"float": [0.0, 50.0]}},
)


@dataclass(frozen=True)
class MeanConfig(ModelConfig):
    first: str = ""
    second: str = ""


class MeanOfParts:
    """The mean of two parts' scores; ties by the first part's tie order (item id when it has none)."""

    name = "mean_of_parts"

    def __init__(self, config: MeanConfig | None = None):
        self.config = config or MeanConfig()

    def fit(self, data: TrainData) -> MeanOfParts:
        raise AssertionError("a composite is fitted from its parts, never on its own")

    def fit_parts(self, data: TrainData, parts: Mapping[str, Scorer]) -> MeanOfParts:
        self.parts_ = dict(parts)
        first = self.parts_["first"].tie_order()
        self.tie_order_ = ranked_order(data.item_ids) if first is None else first
        return self

    def refit_parts(self, data: TrainData, parts: Mapping[str, Scorer]) -> MeanOfParts:
        return MeanOfParts(self.config).fit_parts(data, parts)

    def score(self, users: np.ndarray) -> np.ndarray:
        a, b = (np.asarray(self.parts_[name].score(users), dtype=np.float32) for name in ("first", "second"))
        return ((a + b) / np.float32(2)).astype(np.float32)

    def tie_order(self) -> np.ndarray:
        return self.tie_order_


MEAN_OF_PARTS = ModelSpec(
    kind="mean_of_parts",
    build=MeanOfParts,
    config=MeanConfig,
    summary="test only: the mean of two other runs' scores",
    parts=("first", "second"),
)
