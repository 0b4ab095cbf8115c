"""Implicit ALS (Hu, Koren and Volinsky 2008) from the ``implicit`` package (its CPU solver), with early stopping.

Confidence ``c = 1 + alpha · r`` where ``r`` is the lab's summed event weight of a train pair. Each iteration
solves the user factors, then the item factors; after each one the validation metric is measured (the factors
are only read), so the model stopped at iteration n holds exactly what ``iterations: n`` trains. Scores are
``user_factors @ item_factors.T``; a user without train history scores every item 0, and the tie order
(popularity, then item id) makes that the popularity ranking, as for ItemKNN and EASE.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from kdq_lab import limits
from kdq_lab.checks import check_number
from kdq_lab.errors import KdqError
from kdq_lab.evaluation.metrics import parse_metric
from kdq_lab.evaluation.ranking import evaluate
from kdq_lab.models.arrays import load_arrays, save_arrays
from kdq_lab.models.base import ModelConfig, OnEpoch, TrainData, item_popularity, ranked_order
from kdq_lab.models.registry import IDS, ModelSpec, register


@dataclass(frozen=True)
class IALSConfig(ModelConfig):
    """``factors``, ``regularization``, ``alpha`` (confidence 1 + alpha·weight), ``iterations`` (at most),
    ``random_state``, ``num_threads`` (1: deterministic); early stopping after ``patience`` iterations without a
    better ``validation_metric`` (``None``: train every iteration)."""

    factors: int = 64
    regularization: float = 0.01
    alpha: float = 1.0
    iterations: int = 15
    random_state: int = 42
    num_threads: int = 1
    patience: int | None = 3
    validation_metric: str = "ndcg@10"

    def __post_init__(self) -> None:
        for name, high in (
            ("factors", limits.MAX_COMPONENTS),
            ("iterations", limits.MAX_EPOCHS),
            ("num_threads", limits.MAX_WORKERS),
        ):
            check_number("ials", name, getattr(self, name), 1, high=high, integer=True)
        check_number("ials", "patience", self.patience, 1, high=limits.MAX_EPOCHS, integer=True, optional=True)
        check_number("ials", "random_state", self.random_state, 0, high=limits.MAX_SEED, integer=True)
        check_number("ials", "regularization", self.regularization, 0, high=limits.MAX_ALPHA)
        check_number("ials", "alpha", self.alpha, 0, high=limits.MAX_ALPHA, strict=True)
        parse_metric(self.validation_metric)

    @property
    def deterministic(self) -> bool:
        return self.num_threads == 1


class _Stop(Exception):
    """Raised in implicit's callback once patience is exhausted."""


class IALS:
    """Implicit ALS; fitted attributes: ``user_factors_``, ``item_factors_``, ``history_``, ``best_iteration_``."""

    name = "ials"
    iteration_parameter: ClassVar[str] = "iterations"

    def __init__(self, config: IALSConfig | None = None):
        self.config = config or IALSConfig()

    def _als(self) -> Any:
        from implicit.cpu.als import AlternatingLeastSquares  # the CPU class: never a GPU, whatever is installed

        cfg = self.config
        return AlternatingLeastSquares(
            factors=cfg.factors,
            regularization=cfg.regularization,
            alpha=cfg.alpha,
            iterations=cfg.iterations,
            random_state=cfg.random_state,
            num_threads=cfg.num_threads,
        )

    def fit(self, data: TrainData, on_epoch: OnEpoch | None = None) -> IALS:
        """Train; with ``data.validation`` and ``patience``, stop early and restore the best iteration."""
        cfg = self.config
        weights = data.weights.multiply(data.interactions > 0).tocsr().astype(np.float32)
        self.has_history_ = (data.interactions.getnnz(axis=1) > 0).astype(np.float32)
        self.tie_order_ = ranked_order(data.item_ids, item_popularity(data.interactions))
        k = parse_metric(cfg.validation_metric).k or 10
        history: list[dict[str, float]] = []
        best, waited, snapshot = -np.inf, 0, None
        tick = time.perf_counter()

        def callback(iteration: int, seconds: float, loss: Any) -> None:
            nonlocal best, waited, snapshot, tick
            row: dict[str, float] = {"iteration": iteration + 1, "seconds": time.perf_counter() - tick}
            if data.validation is not None:
                started = time.perf_counter()
                self.user_factors_, self.item_factors_ = als.user_factors, als.item_factors
                table = evaluate(self, data.validation.positives, exclude=data.validation.exclude, k=k)
                row["validation"] = float(table[cfg.validation_metric].mean())
                row["validation_seconds"] = time.perf_counter() - started
                history.append(row)
                if on_epoch is not None:
                    on_epoch(iteration + 1, row["validation"])
                if row["validation"] > best:
                    best, waited = row["validation"], 0
                    snapshot = (iteration + 1, als.user_factors.copy(), als.item_factors.copy())
                else:
                    waited += 1
                if cfg.patience is not None and waited >= cfg.patience:
                    raise _Stop
            else:
                history.append(row)
            tick = time.perf_counter()

        # implicit threads over users itself (BLAS stays single-threaded, as it asks); _Stop: patience exhausted,
        # the snapshot holds the best iteration
        with threadpool_limits(1, "blas"):
            als = self._als()
            with contextlib.suppress(_Stop):
                als.fit(weights, show_progress=False, callback=callback)
        if not (np.isfinite(als.user_factors).all() and np.isfinite(als.item_factors).all()):
            raise KdqError(
                f"ials diverged: its factors are no longer finite (try regularization > {cfg.regularization:g})"
            )
        if data.validation is not None and cfg.patience is not None and snapshot is not None:
            self.best_iteration_, self.user_factors_, self.item_factors_ = snapshot
        else:
            self.best_iteration_ = len(history)
            self.user_factors_, self.item_factors_ = als.user_factors, als.item_factors
        self.history_ = pd.DataFrame(history)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        """``user_factors @ item_factors.T``; 0 for a user without train history.

        Computed as a sparse-times-dense product, which sums each user's row in one fixed order: a score never
        depends on the batch it was computed in (a BLAS product's blocking would move its last bits).
        """
        users = np.asarray(users)
        rows = sp.csr_matrix(self.user_factors_[users] * self.has_history_[users, None])
        return np.asarray(rows @ self.item_factors_.T, dtype=np.float32)

    def tie_order(self) -> np.ndarray:
        return self.tie_order_

    def shared_row(self) -> tuple[np.ndarray, np.ndarray]:
        """Users without train history score every item 0."""
        return self.has_history_ == 0, np.zeros(len(self.item_factors_), dtype=np.float32)

    def learning_curve(self) -> pd.DataFrame:
        return self.history_

    def best_iteration(self) -> int:
        return int(self.best_iteration_)

    def with_iterations(self, n: int) -> IALS:
        return IALS(IALSConfig.from_dict(self.pin_iterations(self.config.to_dict(), n), self.name))

    @classmethod
    def pin_iterations(cls, params: dict[str, Any], n: int) -> dict[str, Any]:
        """``params`` with ``iterations=n`` and no early stopping."""
        return {**params, "iterations": int(n), "patience": None}

    def save(self, folder: Path, extra: dict[str, Any] | None = None, items: pd.DataFrame | None = None) -> Path:
        """``model.npz`` (factors, who has history, tie order) and ``model.json``; ``items`` is not kept."""
        sizes = {
            "users": self.user_factors_.shape[0],
            "items": self.item_factors_.shape[0],
            "factors": self.config.factors,
            "one": 1,
        }
        arrays = {
            "user_factors": self.user_factors_,
            "item_factors": self.item_factors_,
            "has_history": self.has_history_,
            "tie_order": self.tie_order_,
            "best_iteration": np.asarray([self.best_iteration_]),
        }
        return save_arrays(folder, self.name, self.config, sizes, arrays, extra)

    @classmethod
    def load(cls, folder: Path) -> IALS:
        layout = {
            "user_factors": ("users", "factors"),
            "item_factors": ("items", "factors"),
            "has_history": ("users",),
            "tie_order": ("items",),
            "best_iteration": ("one",),
        }
        config, arrays, _ = load_arrays(folder, cls.name, IALSConfig, layout)
        model = cls(config)
        model.user_factors_ = arrays["user_factors"].astype(np.float32)
        model.item_factors_ = arrays["item_factors"].astype(np.float32)
        model.has_history_ = arrays["has_history"].astype(np.float32)
        model.tie_order_ = arrays["tie_order"].astype(np.int64)
        model.best_iteration_ = int(arrays["best_iteration"][0])
        model.history_ = pd.DataFrame({"iteration": np.arange(1, model.best_iteration_ + 1)})
        return model


register(
    ModelSpec(
        kind="ials",
        role=IDS,
        build=IALS,
        config=IALSConfig,
        summary="implicit ALS (implicit's CPU solver): confidence 1 + alpha·weight, early stopping in iterations",
        seed_parameter="random_state",
        metric_parameter="validation_metric",
        search_space={
            "factors": {"int": [8, 256], "log": True},
            "regularization": {"float": [1.0e-4, 10.0], "log": True},
            "alpha": {"float": [0.1, 100.0], "log": True},
        },
    )
)
