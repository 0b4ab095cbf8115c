"""Recommend to a new user from a profile: check, encode, score, optionally diversify, explain."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from kdq_lab.checks import check_number
from kdq_lab.curate.profile import Profile, check_profile, profile_frame
from kdq_lab.curate.rerank import mmr
from kdq_lab.data.build import UnknownValue
from kdq_lab.errors import KdqError
from kdq_lab.evaluation.beyond import intra_list_diversity
from kdq_lab.evaluation.ranking import best_positions
from kdq_lab.explain import Explanation, explain
from kdq_lab.limits import MAX_K
from kdq_lab.models.base import FeatureAware

SHOWN_COLUMNS = ("title", "title_en", "content_type", "topics", "difficulty", "genres")


#: Said (as a warning and in :attr:`Curation.notes`) when no profile value reaches the model.
EMPTY_PROFILE_NOTE = (
    "the profile gives no feature value this model uses, so the list is ranked by item "
    "popularity alone (the model's item terms), not personalised; add occupations, interests "
    "or goals to personalise it"
)


@dataclass
class Curation:
    """A curated list for one profile, with explanations and notes on how to read it."""

    items: pd.DataFrame
    explanations: list[Explanation]
    diversity_before: float
    diversity_after: float
    unknown: list[UnknownValue] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def item_content(model: FeatureAware, items: pd.DataFrame) -> sp.csr_matrix:
    """Multi-hot item features (no identity) for similarity and diversity."""
    return model.item_vocab_.transform(items)[0]


def recommend(
    model: FeatureAware,
    profile: Profile,
    *,
    k: int = 10,
    exclude: tuple[str, ...] = (),
    diversify: float = 0.0,
    lenient: bool = False,
    items: pd.DataFrame | None = None,
    candidates: int = 100,
) -> Curation:
    """Curate ``k`` items for a new user described by ``profile``.

    Parameters
    ----------
    model
        A fitted or loaded model that scores new profiles from features
        (:class:`~kdq_lab.models.base.FeatureAware`, e.g. the LightFM hybrid).
    profile
        The new user's feature values (and items already seen).
    k, candidates
        Items curated, and the best items MMR re-ranks (each at most :data:`~kdq_lab.limits.MAX_K`).
    exclude
        Item ids never to recommend (added to ``profile.seen``).
    diversify
        MMR λ in [0, 1]; 0 keeps the model's ranking.
    items
        The item table (row i = item i); defaults to the one saved with the model.
    """
    if not 0 <= diversify <= 1:
        raise KdqError(f"diversify must be between 0 and 1, not {diversify}")
    check_number("recommend", "k", k, 1, high=MAX_K, integer=True)
    check_number("recommend", "candidates", candidates, 1, high=MAX_K, integer=True)
    if not isinstance(model, FeatureAware):
        raise KdqError(f"{getattr(model, 'name', type(model).__name__)} cannot score a new profile from its features")
    used = model.profile_columns()
    if not used:
        raise KdqError(
            "this model does not use user features, so a profile cannot change its ranking; "
            "train one with user features"
        )
    ignored = sorted((set(profile.values) & set(model.user_vocab_.columns)) - set(used))
    if ignored:
        warnings.warn(
            f"the model does not use the profile's {', '.join(ignored)} (it reads {', '.join(used)})", stacklevel=2
        )
    items = items if items is not None else getattr(model, "items_", None)
    if items is None:
        raise KdqError("the model has no item table; save it with items or pass items=")
    profile, unknown = check_profile(profile, model.user_vocab_, lenient)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        row, _ = model.encode(profile_frame(profile, model.user_vocab_))
    notes = [] if row.nnz else [EMPTY_PROFILE_NOTE]
    for note in notes:
        warnings.warn(note, stacklevel=2)
    scores = model.score_rows(row)[0].astype(np.float64)
    blocked = [*profile.seen, *exclude]
    position = model.item_ids_.get_indexer(blocked)
    if (position < 0).any():
        missing = [b for b, p in zip(blocked, position) if p < 0]
        raise KdqError(f"unknown item id(s) to exclude: {', '.join(missing[:10])}")
    scores[position] = -np.inf
    pool = best_positions(scores[None, :], max(candidates, k))
    pool = pool[:, pool[0] >= 0]
    content = item_content(model, items)
    plain = pool[:, :k]
    chosen = mmr(scores[pool], pool, content, diversify, k) if diversify > 0 else plain
    explanations = explain(model, chosen[0], user_row=row)
    table = items.iloc[chosen[0]][[c for c in SHOWN_COLUMNS if c in items.columns]].copy()
    table.insert(0, "item_id", model.item_ids_[chosen[0]])
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    table["score"] = scores[chosen[0]]
    table["reasons"] = [e.reasons(3) for e in explanations]
    return Curation(
        table.reset_index(drop=True),
        explanations,
        float(intra_list_diversity(plain, content)[0]),
        float(intra_list_diversity(chosen, content)[0]),
        unknown,
        notes,
    )
