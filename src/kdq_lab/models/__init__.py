"""Models behind one scorer protocol, and how experiments name them."""

from __future__ import annotations

import inspect
from typing import Any

from kdq_lab.errors import KdqError
from kdq_lab.models.baselines import (
    ContentScorer,
    EASEScorer,
    ItemKNNScorer,
    OracleScorer,
    PopularityScorer,
    RandomScorer,
)
from kdq_lab.models.base import Scorer, TrainData
from kdq_lab.models.lightfm import LightFMConfig, LightFMHybrid

#: Model kinds an experiment may name, with their classes.
MODELS: dict[str, type] = {
    "random": RandomScorer,
    "popularity": PopularityScorer,
    "itemknn": ItemKNNScorer,
    "ease": EASEScorer,
    "content": ContentScorer,
    "lightfm": LightFMHybrid,
    "oracle": OracleScorer,
}


def model_parameters(kind: str) -> dict[str, Any]:
    """The parameters a model kind accepts, with their defaults."""
    if kind == "lightfm":
        return {k: v for k, v in LightFMConfig().__dict__.items()}
    signature = inspect.signature(MODELS[kind])
    return {name: p.default for name, p in signature.parameters.items()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def make_model(kind: str, params: dict[str, Any] | None = None) -> Scorer:
    """Build a model by kind name; unknown kinds or parameters raise a clear error."""
    params = dict(params or {})
    if kind not in MODELS:
        raise KdqError(f"unknown model {kind!r}; choose one of {', '.join(MODELS)}")
    if kind == "lightfm":
        return LightFMHybrid(LightFMConfig.from_dict(params))
    allowed = model_parameters(kind)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        shown = ", ".join(allowed) or "none"
        raise KdqError(f"unknown parameter(s) {', '.join(unknown)} for model {kind!r}; allowed: {shown}")
    return MODELS[kind](**params)


__all__ = ["MODELS", "Scorer", "TrainData", "make_model", "model_parameters", "LightFMConfig", "LightFMHybrid"]
