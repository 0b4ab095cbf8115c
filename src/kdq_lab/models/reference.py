"""Reference points of every comparison: the random floor and, on generated catalogs, the oracle ceiling.

Ties: the item id.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from kdq_lab.checks import check_number
from kdq_lab.errors import KdqError
from kdq_lab.limits import MAX_SEED
from kdq_lab.models.base import ModelConfig, TrainData, ranked_order
from kdq_lab.models.registry import CEILING, ModelSpec, register


@dataclass(frozen=True)
class RandomConfig(ModelConfig):
    """``seed`` of the scores."""

    seed: int = 0

    def __post_init__(self) -> None:
        check_number("random", "seed", self.seed, 0, high=MAX_SEED, integer=True)


class RandomScorer:
    """Uniform scores from a counter-based hash of (seed, user, item): the same for any batch."""

    name = "random"

    def __init__(self, config: RandomConfig | None = None):
        self.config = config or RandomConfig()

    def fit(self, data: TrainData) -> RandomScorer:
        self.n_items_ = data.n_items
        self.tie_order_ = ranked_order(data.item_ids)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        counter = (
            np.asarray(users, dtype=np.uint64)[:, None] * np.uint64(self.n_items_)
            + np.arange(self.n_items_, dtype=np.uint64)[None, :]
        )
        salt = np.uint64(self.config.seed * 0x9E3779B97F4A7C15 % (1 << 64))
        return (_splitmix64(counter ^ salt) >> np.uint64(40)).astype(np.float32) / np.float32(1 << 24)

    def tie_order(self) -> np.ndarray:
        return self.tie_order_


def _splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


@dataclass(frozen=True)
class OracleConfig(ModelConfig):
    """The oracle has no parameters."""


class OracleScorer:
    """The ceiling on a generated catalog: the generator's true probability of a positive event."""

    name = "oracle"

    def __init__(self, config: OracleConfig | None = None):
        self.config = config or OracleConfig()

    def fit(self, data: TrainData) -> OracleScorer:
        from kdq_lab.data.catalog import GroundTruth

        if data.ground_truth is None:
            raise KdqError("the oracle needs the dataset's ground truth; only generated KDQ catalogs have one")
        truth = GroundTruth.load(data.ground_truth)
        self.truth_ = truth
        self.user_rows_ = truth.user_ids.get_indexer(pd.Index(data.user_ids))
        self.item_rows_ = truth.item_ids.get_indexer(pd.Index(data.item_ids))
        if (self.user_rows_ < 0).any() or (self.item_rows_ < 0).any():
            raise KdqError("the ground truth does not cover every user and item of this split")
        self.tie_order_ = ranked_order(data.item_ids)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.truth_.scores(self.user_rows_[np.asarray(users)], self.item_rows_).astype(np.float32)

    def tie_order(self) -> np.ndarray:
        return self.tie_order_


register(
    ModelSpec(
        kind="random",
        build=RandomScorer,
        config=RandomConfig,
        summary="uniform scores from a seeded counter-based hash (the floor)",
        seed_parameter="seed",
    )
)
register(
    ModelSpec(
        kind="oracle",
        role=CEILING,
        build=OracleScorer,
        config=OracleConfig,
        summary="the generator's true probability of a positive event (KDQ catalogs only: the ceiling)",
    )
)
