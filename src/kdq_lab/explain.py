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
have no explanation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from kdq_lab.models.baselines import ContentScorer, PopularityScorer
from kdq_lab.models.lightfm import LightFMHybrid

OWN_HISTORY = "나의 이용 기록 (your own history)"
OWN_AUDIENCE = "이 아이템의 고유 관객 (this item's own audience)"
ITEM_POPULARITY = "아이템 인기도 (item popularity, bias)"
USER_BIAS = "사용자 기본 성향 (user bias: same for every item)"


@dataclass(frozen=True)
class Term:
    """One additive part of a score."""

    kind: str                  # pair | user_bias | item_bias | history | popularity
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
        return {"kind": self.kind, "user_feature": self.user_feature, "item_feature": self.item_feature,
                "label": self.label, "value": self.value}


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
        return {"item": self.item, "score": self.score, "available": self.available, "note": self.note,
                "terms": [t.to_dict() for t in self.terms]}


def feature_label(name: str, labels: dict[str, str]) -> str:
    """``interests:AI 영상`` → ``관심사 "AI 영상"`` (column label from dataset.yaml)."""
    column, _, value = name.partition(":")
    return f'{labels.get(column, column)} "{value}"'


def _side_names(model: LightFMHybrid, users: bool) -> np.ndarray:
    """Readable name of every column of the model's composed feature matrix on one side."""
    vocab = model.user_vocab_ if users else model.item_vocab_
    ids = model.user_ids_ if users else model.item_ids_
    uses, composition = model.config.side(users)
    names = []
    if composition.identity:
        names += [OWN_HISTORY if users else OWN_AUDIENCE] * len(ids)
    if uses:
        selected = np.flatnonzero(model._columns(users))
        names += [feature_label(vocab.names[j], vocab.labels) for j in selected]
    return np.asarray(names, dtype=object)


def _lightfm(model: LightFMHybrid, user_row: sp.csr_matrix, items: np.ndarray) -> list[Explanation]:
    lfm = model.model_
    user_row = sp.csr_matrix(user_row)
    f, w = user_row.indices, user_row.data.astype(np.float64)
    rows = model.item_features_[items]
    owner = np.repeat(np.arange(len(items)), np.diff(rows.indptr))
    g, v = rows.indices, rows.data.astype(np.float64)
    user_names, item_names = _side_names(model, True), _side_names(model, False)
    identity_items = model.config.side(False)[1].identity
    n_item_ids = len(model.item_ids_)
    dots = lfm.user_embeddings[f].astype(np.float64) @ lfm.item_embeddings[g].astype(np.float64).T
    pair_values = w[:, None] * v[None, :] * dots                         # user features × item feature entries
    user_bias = w * lfm.user_biases[f].astype(np.float64)
    item_bias = v * lfm.item_biases[g].astype(np.float64)
    scores = model.score_rows(user_row)[0, items] if len(items) else np.zeros(0)
    out = []
    for position, item in enumerate(items):  # one object per shown item (≤ k): explanation assembly, not scoring
        mine = np.flatnonzero(owner == position)
        terms = [Term("pair", user_names[f[a]], item_names[g[b]], float(pair_values[a, b]))
                 for a in range(len(f)) for b in mine]
        terms += [Term("user_bias", USER_BIAS, None, float(user_bias.sum()))] if len(f) else []
        for b in mine:
            is_identity = identity_items and g[b] < n_item_ids
            terms.append(Term("item_bias", None, ITEM_POPULARITY if is_identity else f"{item_names[g[b]]} (bias)",
                              float(item_bias[b])))
        out.append(Explanation(int(item), float(scores[position]), terms))
    return out


def _content(model: ContentScorer, user: int, items: np.ndarray, user_names: np.ndarray,
             item_names: np.ndarray) -> list[Explanation]:
    profile = model.user_rows_[user]
    f, u = profile.indices, profile.data
    centroid = model.centroids_[user]
    c_idx, c_val = centroid.indices, centroid.data
    scores = model.score(np.array([user]))[0]
    out = []
    for item in items:
        row = model.item_rows_[item]
        g, i = row.indices, row.data
        pairs = u[:, None] * model.affinity_[np.ix_(f, g)] * i[None, :]
        terms = [Term("pair", user_names[f[a]], item_names[g[b]], float(pairs[a, b]))
                 for a in range(len(f)) for b in range(len(g)) if pairs[a, b] != 0]
        shared, at_c, at_i = np.intersect1d(c_idx, g, return_indices=True)
        terms += [Term("history", None, item_names[s], float(model.history_weight * c_val[a] * i[b]))
                  for s, a, b in zip(shared, at_c, at_i)]
        terms.append(Term("popularity", ITEM_POPULARITY, None, float(model.backoff_[item])))
        out.append(Explanation(int(item), float(scores[item]), terms))
    return out


def explain(model: Any, items: np.ndarray, *, user: int | None = None, user_row: sp.csr_matrix | None = None,
            user_labels: dict[str, str] | None = None, item_labels: dict[str, str] | None = None,
            user_names: list[str] | None = None, item_names: list[str] | None = None) -> list[Explanation]:
    """Explanations of ``items`` for a known user (row ``user``) or a new one (``user_row`` from ``encode``).

    For the content-based model pass the feature vocabularies' ``names`` and ``labels``
    (``user_names``/``item_names``, ``user_labels``/``item_labels``) so terms read well.
    """
    items = np.asarray(items, dtype=np.int64)
    if isinstance(model, LightFMHybrid):
        row = user_row if user_row is not None else model.user_features_[user]
        return _lightfm(model, row, items)
    if isinstance(model, ContentScorer) and user is not None:
        users = np.asarray([feature_label(n, user_labels or {}) for n in (user_names or [])], dtype=object)
        names = np.asarray([feature_label(n, item_labels or {}) for n in (item_names or [])], dtype=object)
        return _content(model, user, items, users, names)
    if isinstance(model, PopularityScorer):
        return [Explanation(int(i), float(model.scores_[i]),
                            [Term("popularity", f"인기 아이템: {model.scores_[i]:.0f}명이 이용 (popular: "
                                                f"{model.scores_[i]:.0f} users)", None, float(model.scores_[i]))])
                for i in items]
    name = getattr(model, "name", type(model).__name__)
    return [Explanation(int(i), float("nan"), [], available=False,
                        note=f"설명 없음: {name} has no feature-level explanation") for i in items]
