"""The questionnaire curve: which profile field to ask first, then second, ... (greedy forward selection).

Selection happens on validation only: on the first seed's split, each candidate set (the fields
chosen so far plus one more) is fitted on train (early stopping on validation where the model has
epochs) and its mean ``metric`` on the validation users decides the next field. Then every prefix
of the chosen order, from no profile (``user_columns: []``, popularity-equivalent for a new user)
to the full profile, is fitted as the experiment fits a run (refit on train + validation) and
evaluated on test for every seed: the per-user tables :func:`kdq_lab.report.onboarding.curve`
summarises.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from kdq_lab.data.store import SplitData
from kdq_lab.data.targets import target
from kdq_lab.errors import KdqError
from kdq_lab.evaluation.metrics import parse_metric
from kdq_lab.evaluation.ranking import evaluate_all
from kdq_lab.models import model_spec
from kdq_lab.runs.run import fit_model


@dataclass(frozen=True)
class CurveConfig:
    """A base run's model and parameters, the fields to order, the headline metric and the exclusion rule."""

    model: str
    params: dict[str, Any]
    fields: tuple[str, ...]
    metric: str = "ndcg@10"
    exclude: str = "seen"
    refit: bool = True
    ks: tuple[int, ...] = (10,)
    progress: Callable[[str], None] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.fields or len(set(self.fields)) != len(self.fields):
            raise KdqError(f"questionnaire fields {list(self.fields)}: expected at least one field, each once")
        if "user_columns" not in model_spec(self.model).parameter_names():
            raise KdqError(f"model {self.model!r} has no user_columns parameter: its profile fields cannot be chosen")
        parse_metric(self.metric, self.ks)


def _params(config: CurveConfig, columns: Sequence[str], seed: int) -> dict[str, Any]:
    params = {**config.params, "user_columns": list(columns)}
    return model_spec(config.model).resolve(params, seed=seed, metric=config.metric)


def _score(config: CurveConfig, split: SplitData, columns: Sequence[str], seed: int, part: str) -> pd.DataFrame:
    """Per-user metrics of the model reading ``columns``: fitted on train and ranked on validation (``part``
    ``validation``), or fitted as a run is (refit) and ranked on test."""
    validation = part == "validation"
    model, _, _ = fit_model(
        config.model, _params(config, columns, seed), split, config.refit and not validation, config.exclude
    )
    goal = target(split, "validation" if validation else "test", config.exclude)
    return evaluate_all(model, goal.positives, exclude=goal.exclude, k=list(config.ks)).per_user


def greedy_order(config: CurveConfig, split: SplitData, seed: int) -> pd.DataFrame:
    """The order to ask the fields in, chosen on validation: one row per candidate tried (``step``, ``field``,
    ``validation`` mean metric, ``chosen``)."""
    chosen: list[str] = []
    rows = []
    for step in range(1, len(config.fields) + 1):
        candidates = [f for f in config.fields if f not in chosen]
        scores = {}
        for candidate in candidates:
            if config.progress:
                config.progress(f"step {step}: {' + '.join([*chosen, candidate])}")
            scores[candidate] = float(
                _score(config, split, [*chosen, candidate], seed, "validation")[config.metric].mean()
            )
        if not all(np.isfinite(list(scores.values()))):
            raise KdqError("the questionnaire curve chooses on validation, and this split has no validation positives")
        best = max(candidates, key=lambda f: (scores[f], -candidates.index(f)))
        rows += [{"step": step, "field": f, "validation": scores[f], "chosen": f == best} for f in candidates]
        chosen.append(best)
    return pd.DataFrame(rows, columns=["step", "field", "validation", "chosen"])


def curve_tables(config: CurveConfig, splits: dict[int, SplitData]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the greedy order on the first seed's validation, per-user test metrics of every prefix on every seed).

    The second table has ``step`` (0: no profile ... len(fields): all), ``fields`` (the prefix, joined by
    ``+``), ``seed``, ``user`` and the metric.
    """
    first = min(splits)
    order = greedy_order(config, splits[first], first)
    chosen = order.loc[order["chosen"], "field"].tolist()
    frames = []
    for step in range(len(chosen) + 1):
        prefix = chosen[:step]
        for seed, split in sorted(splits.items()):
            if config.progress:
                config.progress(f"test, seed {seed}: {' + '.join(prefix) or 'no profile'}")
            table = _score(config, split, prefix, seed, "test")[["user", config.metric]]
            frames.append(table.assign(step=step, fields="+".join(prefix), seed=seed))
    return order, pd.concat(frames, ignore_index=True)[["step", "fields", "seed", "user", config.metric]]
