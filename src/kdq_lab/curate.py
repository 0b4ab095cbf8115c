"""Curation for a new user: recommend from a profile, explain every item, optionally diversify.

A profile is a YAML or JSON mapping of the dataset's user feature columns (multi-valued
columns as lists), optionally with ``seen``: item ids already seen (never recommended)::

    occupations: [예술인, 아트딜러, 배우]
    interests: [AI 영상, AI 음악]
    goals: [AI로 영화 만들기]
    coding_experience: 없음

Diversification re-ranks the best ``candidates`` items with MMR (maximal marginal
relevance) over item-feature cosine similarity: each next item maximises
``(1 - λ) · relevance - λ · max similarity to the items already chosen``. λ = 0 keeps the
ranking; a re-ranking that would lower the list's intra-list diversity is not used.
"""

from __future__ import annotations

import difflib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from kdq_lab.data.build import FeatureVocabulary, UnknownValue
from kdq_lab.errors import DataError, KdqError, Problem
from kdq_lab.evaluation.beyond import intra_list_diversity, ndcg_of_lists
from kdq_lab.linalg import unit_rows
from kdq_lab.explain import Explanation, explain
from kdq_lab.models.lightfm import LightFMHybrid
from kdq_lab.yamlfile import YamlDocument, scalar_texts

SEEN = "seen"
SHOWN_COLUMNS = ("title", "title_en", "content_type", "topics", "difficulty", "genres")


@dataclass(frozen=True)
class Profile:
    """Who a new user is: feature values per column, and items already seen."""

    values: dict[str, list[str]]
    seen: tuple[str, ...] = ()
    source: str = "profile"
    lines: dict[str, int] = field(default_factory=dict)


def read_profile(path: Path) -> Profile:
    """Read a profile file (YAML or JSON); errors name the file, line and key.

    Values and ids are read as written: ``seen: [007, 0x1F]`` gives the ids ``'007'`` and
    ``'0x1F'``, not the numbers YAML would make of them. An empty file is an empty profile.
    """
    document = YamlDocument.from_path(Path(path), "profile file")
    return profile_from_dict({} if document.data is None else document.data, document)


def _texts(value: Any, key: str, document: YamlDocument | None) -> list[str] | None:
    """The values under ``key`` as text: the source spelling from a document, else plain values' ``str``."""
    node = document.node((key,)) if document is not None else None
    if node is not None:
        return scalar_texts(node)
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in items):
        return None
    return [str(v) for v in items]


def profile_from_dict(data: Any, document: YamlDocument | None = None) -> Profile:
    """A profile from a mapping (as in a profile file, whose ``document`` gives lines and spellings)."""
    where = document or YamlDocument("{}", "profile")

    def fail(key: tuple[str, ...], value: Any, message: str) -> DataError:
        return DataError([where.problem(key, value, message)], heading=f"invalid profile {where.filename}")

    if not isinstance(data, dict):
        raise fail((), data, "expected a mapping: column: value or column: [values]")
    values: dict[str, list[str]] = {}
    for column, value in data.items():
        if column == SEEN:
            continue
        texts = _texts(value, str(column), document)
        if texts is None:
            raise fail((str(column),), value, "expected a value or a list of values")
        values[str(column)] = [t for t in texts if t != ""]
    seen = data.get(SEEN) or []
    if not isinstance(seen, list) or (ids := _texts(seen, SEEN, document)) is None:
        raise fail((SEEN,), seen, "expected a list of item ids")
    lines = {column: line for column in values if (line := where.line((column,))) is not None}
    return Profile(values, tuple(ids), where.filename, lines)


def _allowed(vocab: FeatureVocabulary) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {c: [] for c in vocab.columns}
    for name in vocab.names:
        column, _, value = name.partition(":")
        out[column].append(value)
    return out


def check_profile(profile: Profile, vocab: FeatureVocabulary, lenient: bool = False) -> tuple[Profile, list[UnknownValue]]:
    """Validate a profile against the model's vocabulary.

    Unknown columns are always an error. An unknown value is an error listing the allowed
    values (close matches first), or, with ``lenient``, a warning and the value is dropped.
    """
    allowed = _allowed(vocab)
    categorical = set(vocab.categorical)
    problems, unknown, clean = [], [], {}
    for column, values in profile.values.items():
        if column not in allowed:
            problems.append(Problem(profile.source, profile.lines.get(column), column, column,
                                    f"not a user feature column; allowed: {', '.join(allowed)}, {SEEN}", "key"))
            continue
        if column in vocab.multi_valued:
            values = [part for v in values for part in v.split(vocab.separator) if part]
        repeated = pd.Index(values)[pd.Index(values).duplicated()].unique()
        if len(repeated):
            problems.append(Problem(profile.source, profile.lines.get(column), column, ", ".join(repeated),
                                    "the same value is listed twice; a dataset cell may hold each value once "
                                    "(a repeat would count it double)", "key"))
            continue
        if column in categorical and len(values) > 1:
            problems.append(Problem(profile.source, profile.lines.get(column), column, ", ".join(values),
                                    "a categorical column takes one value", "key"))
            continue
        if column in vocab.numeric_edges:
            edges = vocab.numeric_edges[column]
            numbers = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")
            bad = [v for v, x in zip(values, numbers) if not edges[0] <= x <= edges[-1]]
            for value in bad:
                problems.append(Problem(profile.source, profile.lines.get(column), column, value,
                                        f"expected a number between {edges[0]:g} and {edges[-1]:g}", "key"))
            clean[column] = [v for v in values if v not in bad]
            continue
        kept = []
        for value in values:
            if value in allowed[column]:
                kept.append(value)
                continue
            unknown.append(UnknownValue(0, column, value))
            close = difflib.get_close_matches(value, allowed[column], n=3, cutoff=0.3)
            listing = ", ".join(allowed[column][:40]) + (" ..." if len(allowed[column]) > 40 else "")
            hint = f"did you mean {' or '.join(close)}? " if close else ""
            problems.append(Problem(profile.source, profile.lines.get(column), column, value,
                                    f"unknown {vocab.labels.get(column, column)} value; {hint}allowed: {listing}",
                                    "key"))
        clean[column] = kept
    fatal = [p for p in problems if not (lenient and p.message.startswith("unknown"))]
    if fatal:
        raise DataError(fatal, heading="profile does not fit the model")
    if unknown:
        warnings.warn("ignored unknown profile values: " + ", ".join(f"{u.column}={u.value!r}" for u in unknown),
                      stacklevel=2)
    return Profile(clean, profile.seen, profile.source, profile.lines), unknown


def profile_frame(profile: Profile, vocab: FeatureVocabulary) -> pd.DataFrame:
    """The profile as a one-row table in the dataset's column format."""
    return pd.DataFrame({c: [vocab.separator.join(profile.values.get(c, []))] for c in vocab.columns})


# ----------------------------------------------------------------------------- diversification


def mmr(relevance: np.ndarray, candidates: np.ndarray, item_features: sp.spmatrix, lam: float, k: int) -> np.ndarray:
    """MMR re-ranking of each row's candidates (item positions sorted by relevance, best first).

    Returns the chosen items (rows × k). At ``lam = 0`` it is the candidates' order. A row
    whose re-ranking would have lower intra-list diversity than its first ``k`` candidates
    keeps those instead.
    """
    relevance = np.atleast_2d(np.asarray(relevance, dtype=np.float64))
    candidates = np.atleast_2d(candidates)
    users, n = candidates.shape
    k = min(k, n)
    low, high = relevance.min(axis=1, keepdims=True), relevance.max(axis=1, keepdims=True)
    rel = (relevance - low) / np.where(high > low, high - low, 1.0)
    unit = unit_rows(item_features)
    dense = unit[np.maximum(candidates, 0).ravel()].toarray().reshape(users, n, -1)
    similarity = np.einsum("unf,umf->unm", dense, dense)
    chosen = np.zeros((users, n), dtype=bool)
    closest = np.zeros((users, n))
    picks = np.zeros((users, k), dtype=np.int64)
    rows = np.arange(users)
    for step in range(k):  # k positions, each vectorised over users and candidates
        gain = np.where(chosen, -np.inf, (1 - lam) * rel - lam * closest)
        pick = np.argmax(gain, axis=1)
        picks[:, step] = pick
        chosen[rows, pick] = True
        closest = np.maximum(closest, similarity[rows, pick, :])
    reranked = np.take_along_axis(candidates, picks, axis=1)
    plain = candidates[:, :k]
    worse = intra_list_diversity(reranked, item_features) < intra_list_diversity(plain, item_features) - 1e-12
    reranked[worse] = plain[worse]
    return reranked


def _ranked(scores: np.ndarray, n: int) -> np.ndarray:
    """Positions of the ``n`` best scores per row, best first (ties by position)."""
    n = min(n, scores.shape[1])
    part = np.argpartition(-scores, n - 1, axis=1)[:, :n]
    order = np.lexsort((part, -np.take_along_axis(scores, part, axis=1)), axis=1)
    return np.take_along_axis(part, order, axis=1)


# ----------------------------------------------------------------------------- recommending


#: Said (as a warning and in :attr:`Curation.notes`) when no profile value reaches the model.
EMPTY_PROFILE_NOTE = ("the profile gives no feature value this model uses, so the list is ranked by item "
                      "popularity alone (the model's item biases), not personalised; add occupations, interests "
                      "or goals to personalise it")


@dataclass
class Curation:
    """A curated list for one profile, with explanations and notes on how to read it."""

    items: pd.DataFrame
    explanations: list[Explanation]
    diversity_before: float
    diversity_after: float
    unknown: list[UnknownValue] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def item_content(model: LightFMHybrid, items: pd.DataFrame) -> sp.csr_matrix:
    """Multi-hot item features (no identity) for similarity and diversity."""
    return model.item_vocab_.transform(items)[0]


def recommend(model: LightFMHybrid, profile: Profile, *, k: int = 10, exclude: tuple[str, ...] = (),
              diversify: float = 0.0, lenient: bool = False, items: pd.DataFrame | None = None,
              candidates: int = 100) -> Curation:
    """Curate ``k`` items for a new user described by ``profile``.

    Parameters
    ----------
    model
        A fitted or loaded :class:`~kdq_lab.models.lightfm.LightFMHybrid`.
    profile
        The new user's feature values (and items already seen).
    exclude
        Item ids never to recommend (added to ``profile.seen``).
    diversify
        MMR λ in [0, 1]; 0 keeps the model's ranking.
    items
        The item table (row i = item i); defaults to the one saved with the model.
    """
    if not 0 <= diversify <= 1:
        raise KdqError(f"--diversify must be between 0 and 1, not {diversify}")
    if k < 1:
        raise KdqError(f"k must be >= 1, not {k}")
    if not model.config.side(True)[0]:
        raise KdqError(f"this model does not use user features (features={model.config.features}), so a profile "
                       "cannot change its ranking; train one with features: users or both")
    used = model.config.user_columns
    ignored = sorted(set(profile.values) - set(used)) if used is not None else []
    if ignored:
        warnings.warn(f"the model does not use the profile's {', '.join(ignored)} (user_columns={list(used)})",
                      stacklevel=2)
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
    pool = _ranked(scores[None, :], max(candidates, k))
    pool = pool[:, np.isfinite(scores[pool[0]])]
    content = item_content(model, items)
    plain = pool[:, :k]
    chosen = mmr(scores[pool], pool, content, diversify, k) if diversify > 0 else plain
    explanations = explain(model, chosen[0], user_row=row)
    table = items.iloc[chosen[0]][[c for c in SHOWN_COLUMNS if c in items.columns]].copy()
    table.insert(0, "item_id", model.item_ids_[chosen[0]])
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    table["score"] = scores[chosen[0]]
    table["reasons"] = [e.reasons(3) for e in explanations]
    return Curation(table.reset_index(drop=True), explanations,
                    float(intra_list_diversity(plain, content)[0]), float(intra_list_diversity(chosen, content)[0]),
                    unknown, notes)


# ----------------------------------------------------------------------------- studies on a split


def neighbour_overlap(model: LightFMHybrid, base_rows: sp.csr_matrix, k: int = 10, seed: int = 0) -> pd.DataFrame:
    """How much a ranking changes between neighbouring profiles.

    For every row (a profile as multi-hot vocabulary features) one present value is
    dropped at random; returns the dropped column and the overlap of the two top-k
    lists (1 = unchanged).
    """
    base = sp.csr_matrix(base_rows, dtype=np.float32)
    counts = np.diff(base.indptr)
    rows = np.flatnonzero(counts > 0)
    rng = np.random.default_rng(seed)
    drop = base.indptr[rows] + np.floor(rng.random(len(rows)) * counts[rows]).astype(np.int64)
    neighbour = base.copy()
    neighbour.data[drop] = 0
    neighbour.eliminate_zeros()
    original = _ranked(model.score_rows(model.compose_new(base[rows])), k)
    changed = _ranked(model.score_rows(model.compose_new(neighbour[rows])), k)
    overlap = (original[:, :, None] == changed[:, None, :]).any(axis=2).sum(axis=1) / k
    names = pd.Series(np.asarray(model.user_vocab_.names, dtype=object)[base.indices[drop]], dtype=object)
    return pd.DataFrame({"row": rows, "column": names.str.partition(":")[0].to_numpy(), "dropped": names.to_numpy(),
                         "overlap": overlap})


def diversification_cost(model: LightFMHybrid, user_rows: sp.csr_matrix, relevant: sp.csr_matrix,
                         item_features: sp.spmatrix, lambdas: list[float], k: int = 10,
                         candidates: int = 50) -> pd.DataFrame:
    """ndcg@k and intra-list diversity of MMR re-rankings at each λ (rows: users' composed features)."""
    scores = model.score_rows(user_rows).astype(np.float64)
    pool = _ranked(scores, candidates)
    relevance = np.take_along_axis(scores, pool, axis=1)
    out = []
    for lam in lambdas:
        lists = mmr(relevance, pool, item_features, lam, k) if lam > 0 else pool[:, :k]
        out.append({"lambda": lam, f"ndcg@{k}": float(np.nanmean(ndcg_of_lists(lists, relevant, k))),
                    f"diversity@{k}": float(np.nanmean(intra_list_diversity(lists, item_features))),
                    "changed_share": float((lists != pool[:, :k]).any(axis=1).mean())})
    return pd.DataFrame(out)
