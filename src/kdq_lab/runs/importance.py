"""Permutation importance of user profile fields (Breiman 2001; Fisher et al. 2019), without retraining.

For a fitted :class:`~kdq_lab.models.base.FeatureAware` model, one field's values are shuffled
across the evaluated users (a multi-valued field's values move together: whole blocks of a
user's feature row are exchanged), everything else is kept, and the evaluated users are
ranked again. Every user is scored as a new profile (:meth:`compose_new`, no identity entry),
both unshuffled and shuffled, so the pair differs in that field only. The importance of a
field for a user is their unshuffled metric minus the mean of their shuffled metrics over
``repeats`` seeded permutations.

Correlated fields share importance: shuffling one leaves its information in the others only
if they carry it. Drop-one retraining (``ablation:`` in an experiment) says how much a model
can route around a missing field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from kdq_lab import limits
from kdq_lab.checks import check_number
from kdq_lab.data.build import FeatureVocabulary
from kdq_lab.data.targets import Target
from kdq_lab.errors import KdqError
from kdq_lab.evaluation.ranking import evaluate_all
from kdq_lab.models.base import FeatureAware


@dataclass(frozen=True)
class ImportanceOptions:
    """Which user fields to shuffle, how often, with which seed, on which metric."""

    fields: tuple[str, ...]
    repeats: int = 20
    seed: int = 0
    metric: str = "ndcg@10"

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", tuple(self.fields))
        if not self.fields or len(set(self.fields)) != len(self.fields):
            raise KdqError(f"importance fields {list(self.fields)}: expected at least one field, each once")
        check_number("importance", "repeats", self.repeats, 1, high=limits.MAX_PERMUTATIONS, integer=True)
        check_number("importance", "seed", self.seed, 0, high=limits.MAX_SEED, integer=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImportanceOptions:
        return cls(tuple(data["fields"]), int(data.get("repeats", 20)), int(data.get("seed", 0)), data["metric"])

    def to_dict(self) -> dict[str, Any]:
        return {"fields": list(self.fields), "repeats": self.repeats, "seed": self.seed, "metric": self.metric}


class _Rows:
    """A scorer over fixed model rows (users × model features): what the evaluator ranks."""

    def __init__(self, model: FeatureAware, rows: sp.csr_matrix):
        self.model, self.rows = model, rows

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.model.score_rows(self.rows[np.asarray(users)])

    def tie_order(self) -> np.ndarray | None:
        return getattr(self.model, "tie_order", lambda: None)()


def field_mask(vocab: FeatureVocabulary, field: str) -> np.ndarray:
    """Which vocabulary columns belong to ``field`` (a :class:`KdqError` if the vocabulary has no such field)."""
    if field not in vocab.columns:
        raise KdqError(f"{field!r} is not a user feature column; the model's columns: {', '.join(vocab.columns)}")
    return np.asarray(vocab.column_of() == field)


def permute_field(base: sp.csr_matrix, mask: np.ndarray, users: np.ndarray, rng: np.random.Generator) -> sp.csr_matrix:
    """``base`` with the columns in ``mask`` of the rows ``users`` permuted among those rows (one permutation).

    Other rows and columns are unchanged; a user's whole block of the field moves to another user.
    """
    source = np.arange(base.shape[0])
    source[users] = users[rng.permutation(len(users))]
    keep = sp.diags((~mask).astype(base.dtype))
    moved = sp.diags(mask.astype(base.dtype))
    return sp.csr_matrix(base @ keep + base[source] @ moved)


def permutation_importance(
    model: object, base: sp.csr_matrix, goal: Target, ks: list[int], options: ImportanceOptions
) -> pd.DataFrame:
    """Per-user importance of each field: ``user``, ``field``, ``base``, ``permuted`` (mean over repeats), ``drop``.

    ``base`` is the split's multi-hot user rows (the model's vocabulary); ``goal`` the evaluated
    target. Fields the model does not read are an error (their importance is 0 by construction).
    """
    if not isinstance(model, FeatureAware):
        raise KdqError(
            f"{type(model).__name__} cannot score new profiles: permutation importance needs a feature-aware model"
        )
    reads = set(model.profile_columns())
    unread = [f for f in options.fields if f not in reads]
    if unread:
        raise KdqError(f"fields {unread} are not read by the model; it reads: {', '.join(sorted(reads)) or 'none'}")
    users = np.flatnonzero(goal.positives.getnnz(axis=1) > 0)

    def metric(rows: sp.csr_matrix) -> pd.Series:
        table = evaluate_all(_Rows(model, model.compose_new(rows)), goal.positives, exclude=goal.exclude, k=ks).per_user
        return table.set_index("user")[options.metric]

    reference = metric(base)
    rng = np.random.default_rng(options.seed)
    frames = []
    for field in options.fields:
        mask = field_mask(model.user_vocab_, field)
        shuffled = sum(metric(permute_field(base, mask, users, rng)) for _ in range(options.repeats))
        permuted = shuffled / options.repeats
        frames.append(
            pd.DataFrame(
                {
                    "user": reference.index,
                    "field": field,
                    "base": reference.to_numpy(),
                    "permuted": permuted.reindex(reference.index).to_numpy(),
                }
            )
        )
    out = pd.concat(frames, ignore_index=True)
    out["drop"] = out["base"] - out["permuted"]
    return out
