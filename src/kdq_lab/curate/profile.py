"""Profiles of new users: read a profile file, check it against a model's vocabulary, encode it.

A profile is a YAML or JSON mapping of the dataset's user feature columns (multi-valued
columns as lists), optionally with ``seen``: item ids already seen (never recommended)::

    occupations: [예술인, 아트딜러, 배우]
    interests: [AI 영상, AI 음악]
    goals: [AI로 영화 만들기]
    coding_experience: 없음
"""

from __future__ import annotations

import difflib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from kdq_lab.data.build import FeatureVocabulary, UnknownValue
from kdq_lab.errors import DataError, Problem
from kdq_lab.yamlfile import YamlDocument, scalar_texts

SEEN = "seen"


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


def check_profile(
    profile: Profile, vocab: FeatureVocabulary, lenient: bool = False
) -> tuple[Profile, list[UnknownValue]]:
    """Validate a profile against the model's vocabulary.

    Unknown columns are always an error. An unknown value is an error listing the allowed
    values (close matches first), or, with ``lenient``, a warning and the value is dropped.
    """
    allowed = _allowed(vocab)
    categorical = set(vocab.categorical)
    problems, unknown, clean = [], [], {}
    for column, values in profile.values.items():
        if column not in allowed:
            problems.append(
                Problem(
                    profile.source,
                    profile.lines.get(column),
                    column,
                    column,
                    f"not a user feature column; allowed: {', '.join(allowed)}, {SEEN}",
                    "key",
                )
            )
            continue
        if column in vocab.multi_valued:
            values = [part for v in values for part in v.split(vocab.separator) if part]
        repeated = pd.Index(values)[pd.Index(values).duplicated()].unique()
        if len(repeated):
            problems.append(
                Problem(
                    profile.source,
                    profile.lines.get(column),
                    column,
                    ", ".join(repeated),
                    "the same value is listed twice; a dataset cell may hold each value once "
                    "(a repeat would count it double)",
                    "key",
                )
            )
            continue
        if column in categorical and len(values) > 1:
            problems.append(
                Problem(
                    profile.source,
                    profile.lines.get(column),
                    column,
                    ", ".join(values),
                    "a categorical column takes one value",
                    "key",
                )
            )
            continue
        if column in vocab.numeric_edges:
            edges = vocab.numeric_edges[column]
            numbers = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")
            bad = [v for v, x in zip(values, numbers) if not edges[0] <= x <= edges[-1]]
            for value in bad:
                problems.append(
                    Problem(
                        profile.source,
                        profile.lines.get(column),
                        column,
                        value,
                        f"expected a number between {edges[0]:g} and {edges[-1]:g}",
                        "key",
                    )
                )
            clean[column] = [v for v in values if v not in bad]
            continue
        kept = []
        for value in values:
            if value in allowed[column]:
                kept.append(value)
                continue
            unknown.append(UnknownValue(0, column, value))
            if lenient:  # dropped, with a warning below
                continue
            close = difflib.get_close_matches(value, allowed[column], n=3, cutoff=0.3)
            listing = ", ".join(allowed[column][:40]) + (" ..." if len(allowed[column]) > 40 else "")
            hint = f"did you mean {' or '.join(close)}? " if close else ""
            problems.append(
                Problem(
                    profile.source,
                    profile.lines.get(column),
                    column,
                    value,
                    f"unknown {vocab.labels.get(column, column)} value; {hint}allowed: {listing}",
                    "key",
                )
            )
        clean[column] = kept
    if problems:
        raise DataError(problems, heading="profile does not fit the model")
    if unknown:
        warnings.warn(
            "ignored unknown profile values: " + ", ".join(f"{u.column}={u.value!r}" for u in unknown), stacklevel=2
        )
    return Profile(clean, profile.seen, profile.source, profile.lines), unknown


def profile_frame(profile: Profile, vocab: FeatureVocabulary) -> pd.DataFrame:
    """The profile as a one-row table in the dataset's column format."""
    return pd.DataFrame({c: [vocab.separator.join(profile.values.get(c, []))] for c in vocab.columns})


def edited(profile: Profile, action: str, column: str, value: str) -> Profile:
    """The profile with one value added to (``action="add"``) or dropped from (``"drop"``) a column."""
    values = {c: list(v) for c, v in profile.values.items()}
    values.setdefault(column, [])
    if action == "add" and value not in values[column]:
        values[column].append(value)
    elif action == "drop":
        values[column] = [v for v in values[column] if v != value]
    elif action != "add":
        raise ValueError(f"action must be add or drop, not {action!r}")
    return Profile(values, profile.seen, profile.source, profile.lines)
