"""``switch``: users with little history are scored by a cold part, the others by a warm part.

The parts are two other models (by default the LightFM hybrid with identity and l1 rows, and LightFM ids). A
user whose train history (known positive pairs, the count the evaluation's history segments use) is below
``min_history`` is scored by ``cold``, every other user by ``warm``; each user's whole score row comes from one
part, so the user's ranking, and its ties, are that part's. With ``min_history: null`` the threshold is tuned
on the validation part: every distinct history count of the validation users is a candidate, and the one with
the best mean validation metric wins (the smallest on a tie: the warm part keeps what it does as well). The
switch is refittable: the refit keeps the tuned threshold and refits the parts (iterative parts for their
chosen epoch count).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from kdq_lab.checks import check_number
from kdq_lab.errors import KdqError
from kdq_lab.evaluation.metrics import parse_metric
from kdq_lab.evaluation.ranking import evaluate
from kdq_lab.limits import MAX_INTERACTION_ROWS, MAX_SEED
from kdq_lab.models.base import Iterative, ModelConfig, Refittable, Scorer, TrainData
from kdq_lab.models.registry import OTHER, ModelSpec, model_spec, register

KIND = "switch"


def _part(value: Any, name: str) -> dict[str, Any]:
    """A part as ``{model: <kind>, params: {...}}``, checked (no switch inside a switch)."""
    if not isinstance(value, dict) or set(value) - {"model", "params"} or "model" not in value:
        raise KdqError(f"switch {name} must be a mapping with model and params, not {value!r}")
    params = value.get("params") or {}
    if value["model"] == KIND or not isinstance(params, dict):
        raise KdqError(f"switch {name}: expected another model kind and a mapping of its params, not {value!r}")
    model_spec(value["model"]).config.from_dict(dict(params), value["model"])  # unknown names and values refused
    return {"model": value["model"], "params": dict(params)}


@dataclass(frozen=True)
class SwitchConfig(ModelConfig):
    """``cold`` and ``warm`` parts; ``min_history`` (``None``: tuned on validation); the validation ``metric``."""

    cold: dict[str, Any] = field(
        default_factory=lambda: {
            "model": "lightfm",
            "params": {"features": "both", "identity": True, "normalize": "l1"},
        }
    )
    warm: dict[str, Any] = field(default_factory=lambda: {"model": "lightfm", "params": {"features": "ids"}})
    min_history: int | None = None
    metric: str = "ndcg@10"
    seed: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "cold", _part(self.cold, "cold"))
        object.__setattr__(self, "warm", _part(self.warm, "warm"))
        check_number(
            "switch", "min_history", self.min_history, 0, high=MAX_INTERACTION_ROWS, integer=True, optional=True
        )
        check_number("switch", "seed", self.seed, 0, high=MAX_SEED, integer=True, optional=True)
        parse_metric(self.metric)

    @property
    def deterministic(self) -> bool:
        """Whether a seed reproduces the switch: both parts are deterministic."""
        return all(getattr(getattr(self.part(n), "config", None), "deterministic", True) for n in ("cold", "warm"))

    def part(self, name: str) -> Scorer:
        """An unfitted part, with the switch's seed and metric filled in unless the part sets them."""
        part = getattr(self, name)
        spec = model_spec(part["model"])
        return spec.make(spec.resolve(part["params"], seed=self.seed, metric=self.metric))


def best_threshold(history: np.ndarray, cold: np.ndarray, warm: np.ndarray) -> int:
    """The ``min_history`` with the best mean of ``cold`` below it and ``warm`` from it (the smallest on a tie).

    Candidates are 0 (all warm) and every distinct ``history`` value + 1; one pass over sorted counts.
    """
    values, inverse = np.unique(np.asarray(history, dtype=np.int64), return_inverse=True)
    gain = np.bincount(inverse, weights=np.asarray(cold, dtype=np.float64) - warm, minlength=len(values))
    total = np.concatenate([[0.0], np.cumsum(gain)])
    candidates = np.concatenate([[0], values + 1])
    return int(candidates[int(np.argmax(total))])


def _same_order(first: np.ndarray | None, second: np.ndarray | None) -> bool:
    if first is None or second is None:
        return first is None and second is None
    return bool(np.array_equal(first, second))


class Switch:
    """Routes each user to the cold or the warm part by their train history (module docstring)."""

    name = KIND

    def __init__(self, config: SwitchConfig | None = None, parts: tuple[Scorer, Scorer] | None = None) -> None:
        self.config = config or SwitchConfig()
        self.parts = parts or (self.config.part("cold"), self.config.part("warm"))

    def fit(self, data: TrainData) -> Switch:
        cold, warm = (part.fit(data) for part in self.parts)
        if not _same_order(cold.tie_order(), warm.tie_order()):
            raise KdqError("switch: the parts order ties differently; the evaluator takes one tie order per model")
        self.parts = (cold, warm)
        self.history_ = data.interactions.getnnz(axis=1)
        self.min_history_ = self.config.min_history
        if self.min_history_ is None:
            self.min_history_ = self._tuned(data) if data.validation is not None else 1
        return self

    def _tuned(self, data: TrainData) -> int:
        assert data.validation is not None
        k = parse_metric(self.config.metric).k or 10
        tables = [
            evaluate(part, data.validation.positives, exclude=data.validation.exclude, k=k).set_index("user")
            for part in self.parts
        ]
        users = tables[0].index.to_numpy()
        self.validation_ = tables
        return best_threshold(
            self.history_[users], tables[0][self.config.metric].to_numpy(), tables[1][self.config.metric].to_numpy()
        )

    def cold_users(self, users: np.ndarray) -> np.ndarray:
        """Which of ``users`` (rows) the cold part scores."""
        return self.history_[users] < self.min_history_

    def score(self, users: np.ndarray) -> np.ndarray:
        users = np.asarray(users)
        out = self.parts[1].score(users)
        cold = self.cold_users(users)
        if cold.any():
            out[cold] = self.parts[0].score(users[cold])
        return out

    def routes(self, users: np.ndarray) -> list[tuple[Scorer, np.ndarray]]:
        """Which part scores which of ``users``: (cold part, its users), (warm part, its users)."""
        users = np.asarray(users)
        cold = self.cold_users(users)
        return [(self.parts[0], users[cold]), (self.parts[1], users[~cold])]

    def tie_order(self) -> np.ndarray | None:
        return self.parts[0].tie_order()  # the parts' (checked equal when fitted)

    def for_refit(self) -> Switch:
        """The tuned threshold, with each part's own refit (a fresh part when it has none)."""
        parts = tuple(_refit_of(p, self.config.part(n)) for p, n in zip(self.parts, ("cold", "warm")))
        return Switch(replace(self.config, min_history=self.min_history_), (parts[0], parts[1]))


def _refit_of(part: Scorer, fresh: Scorer) -> Scorer:
    """A fitted part's refit, as the runner would make it: the best iteration count of an iterative part, the
    validation choice of a refittable one, else a fresh part."""
    if isinstance(part, Iterative):
        return part.with_iterations(part.best_iteration())
    if isinstance(part, Refittable):
        return part.for_refit()
    return fresh


register(
    ModelSpec(
        kind=KIND,
        build=Switch,
        config=SwitchConfig,
        summary="new and light users scored by a cold part, the others by a warm part (min_history tuned)",
        seed_parameter="seed",
        metric_parameter="metric",
        search_space={},
        role=OTHER,
    )
)
