"""Why was this recommended? Exact decompositions of a score into readable terms.

A LightFM score is bilinear. For a user with feature weights w_f and embeddings e_f,
and an item with weights v_g and embeddings e_g::

    score = Σ_f Σ_g w_f v_g ⟨e_f, e_g⟩ + Σ_f w_f b_f + Σ_g v_g b_g

:func:`explain` returns every term: one per (user feature, item feature) pair, one
per user-feature bias and one per item-feature bias. The terms sum to the model's
own score. Identity features read as "your own history" and "this item's own
audience"; the identity bias of an item is its popularity.

The content-based baseline decomposes into feature overlaps (profile feature × item
feature, and the user's history × item feature); popularity says so; other models
have no explanation. Each model writes its own terms (the
:class:`~kdq_lab.models.base.Explainable` capability); this module holds what they share.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

OWN_HISTORY = "나의 이용 기록 (your own history)"
OWN_AUDIENCE = "이 아이템의 고유 관객 (this item's own audience)"
ITEM_POPULARITY = "아이템 인기도 (item popularity, bias)"
USER_BIAS = "사용자 기본 성향 (user bias: same for every item)"


@dataclass(frozen=True)
class Term:
    """One additive part of a score."""

    kind: str  # pair | user_bias | item_bias | history | popularity
    user_feature: str | None
    item_feature: str | None
    value: float

    @property
    def label(self) -> str:
        if self.kind == "pair":
            return f"{self.user_feature} × {self.item_feature}"
        if self.kind == "history":
            return f"{OWN_HISTORY} × {self.item_feature}"
        return self.user_feature or self.item_feature or self.kind

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "user_feature": self.user_feature,
            "item_feature": self.item_feature,
            "label": self.label,
            "value": self.value,
        }


@dataclass
class Explanation:
    """All terms of one item's score for one user."""

    item: int
    score: float
    terms: list[Term] = field(default_factory=list)
    available: bool = True
    note: str = ""

    @property
    def total(self) -> float:
        return float(sum(t.value for t in self.terms))

    def top(self, n: int = 3, positive: bool = True) -> list[Term]:
        """The ``n`` largest positive (or most negative) terms, ignoring the user bias (same for every item)."""
        terms = [t for t in self.terms if t.kind != "user_bias" and (t.value > 0 if positive else t.value < 0)]
        return sorted(terms, key=lambda t: -abs(t.value))[:n]

    def reasons(self, n: int = 3) -> str:
        """The top ``n`` reasons as text, e.g. ``관심사 "AI 영상" × 태그 "AI 영화제" +0.42``."""
        if not self.available:
            return self.note
        return "; ".join(f"{t.label} {t.value:+.2f}" for t in self.top(n)) or "no positive reason"

    def to_dict(self) -> dict[str, Any]:
        return {
            "item": self.item,
            "score": self.score,
            "available": self.available,
            "note": self.note,
            "terms": [t.to_dict() for t in self.terms],
        }


def feature_label(name: str, labels: dict[str, str]) -> str:
    """``interests:AI 영상`` → ``관심사 "AI 영상"`` (column label from dataset.yaml)."""
    column, _, value = name.partition(":")
    return f'{labels.get(column, column)} "{value}"'


def explain(
    model: Any, items: np.ndarray, *, user: int | None = None, user_row: sp.csr_matrix | None = None
) -> list[Explanation]:
    """Explanations of ``items`` for a known user (row ``user``) or a new one (``user_row`` from ``encode``).

    Models that can explain themselves (:class:`~kdq_lab.models.base.Explainable`) do;
    for the others every explanation says that none is available.
    """
    items = np.asarray(items, dtype=np.int64)
    if hasattr(model, "explain"):
        return model.explain(items, user=user, user_row=user_row)
    name = getattr(model, "name", type(model).__name__)
    return [unavailable(int(i), name) for i in items]


def unavailable(item: int, model: str) -> Explanation:
    """The explanation of a model that has none."""
    return Explanation(
        item, float("nan"), [], available=False, note=f"설명 없음: {model} has no feature-level explanation"
    )
