"""Popularity: items by the number of train users who liked them (optionally in a recent window).

Ties: the count over all train time, then the item id.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from kdq_lab.checks import check_number
from kdq_lab.explain import Explanation, Term
from kdq_lab.limits import MAX_WINDOW_DAYS
from kdq_lab.models.arrays import load_arrays, save_arrays
from kdq_lab.models.base import ModelConfig, TrainData, item_popularity, ranked_order
from kdq_lab.models.registry import ModelSpec, register


@dataclass(frozen=True)
class PopularityConfig(ModelConfig):
    """``window_days``: count only the last days before the latest train event (``None``: all time)."""

    window_days: float | None = None

    def __post_init__(self) -> None:
        check_number("popularity", "window_days", self.window_days, 0, high=MAX_WINDOW_DAYS, strict=True, optional=True)


class PopularityScorer:
    """Items by the number of train users who interacted with them (in the window, if any)."""

    name = "popularity"

    def __init__(self, config: PopularityConfig | None = None):
        self.config = config or PopularityConfig()

    def fit(self, data: TrainData) -> PopularityScorer:
        overall = item_popularity(data.interactions)
        if self.config.window_days is None:
            scores = overall
        else:
            events = data.events
            recent = events[events["time"] >= events["time"].max() - self.config.window_days * 86_400]
            pairs = recent.drop_duplicates(["user", "item"])
            scores = np.bincount(pairs["item"].to_numpy(), minlength=data.n_items).astype(np.float64)
        self.scores_ = scores.astype(np.float32)
        self.n_users_ = data.interactions.shape[0]
        self.tie_order_ = ranked_order(data.item_ids, overall)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.scores_, (len(users), len(self.scores_)))

    def tie_order(self) -> np.ndarray:
        return self.tie_order_

    def shared_row(self) -> tuple[np.ndarray, np.ndarray]:
        """Every user is scored with the same row."""
        return np.ones(self.n_users_, dtype=bool), self.scores_

    def save(self, folder: Path, extra: dict[str, Any] | None = None, items: pd.DataFrame | None = None) -> Path:
        """``model.npz`` (scores, tie order) and ``model.json``; ``items`` is not kept (nothing shows titles)."""
        arrays = {"scores": self.scores_, "tie_order": self.tie_order_}
        sizes = {"users": self.n_users_, "items": len(self.scores_)}
        return save_arrays(folder, self.name, self.config, sizes, arrays, extra)

    @classmethod
    def load(cls, folder: Path) -> PopularityScorer:
        layout = {"scores": ("items",), "tie_order": ("items",)}
        config, arrays, sizes = load_arrays(folder, cls.name, PopularityConfig, layout, sides=frozenset({"users"}))
        model = cls(config)
        model.scores_, model.tie_order_ = arrays["scores"].astype(np.float32), arrays["tie_order"].astype(np.int64)
        model.n_users_ = sizes["users"]
        return model

    def explain(
        self, items: np.ndarray, user: int | None = None, user_row: sp.csr_matrix | None = None
    ) -> list[Explanation]:
        """Popularity is its own reason: how many people used the item."""
        return [
            Explanation(
                int(i),
                float(self.scores_[i]),
                [
                    Term(
                        "popularity",
                        f"인기 아이템: {self.scores_[i]:.0f}명이 이용 (popular: {self.scores_[i]:.0f} users)",
                        None,
                        float(self.scores_[i]),
                    )
                ],
            )
            for i in items
        ]


register(
    ModelSpec(
        kind="popularity",
        build=PopularityScorer,
        config=PopularityConfig,
        summary="items by number of train users; window_days counts only the recent window",
        search_space={"window_days": {"choice": [None, 7, 30, 90, 365]}},
    )
)
