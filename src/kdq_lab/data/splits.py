"""Leak-free splits of a dataset's positive events into train, validation and test.

Only positive events (the dataset's rule, or the split's override) become
interactions. Every split assigns whole (user, item) pairs to one part, so no pair
is in two parts. The kinds:

``random``
    a random ``test_fraction`` of the pairs.
``user_temporal``
    per user, the last ``test_fraction`` of their pairs by first event time
    (``floor(fraction * n + 0.5)`` pairs); train events at or after the user's
    cutoff are dropped, so train never sees the user's future.
``global_temporal``
    one cutoff time (``cutoff``, or the ``1 - test_fraction`` quantile of event
    times): pairs first seen at or after it are test; later events of train pairs
    are dropped.
``cold_users`` / ``cold_items``
    a ``test_fraction`` of the users (items) with positives is held out whole: no
    train events, features kept.
``predefined``
    a split shipped with the dataset (e.g. MovieLens ``ua``).

Validation is carved from train the same way (``predefined`` carves it per-user
temporally), with ``validation_fraction`` of the train part and seed ``seed + 1``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pandas as pd

from kdq_lab.data.validate import ITEM, POSITIVE, TIME, USER, WEIGHT, RawDataset
from kdq_lab.errors import KdqError

SplitKind = Literal["random", "user_temporal", "global_temporal", "cold_users", "cold_items", "predefined"]
SPLIT_KINDS: tuple[str, ...] = ("random", "user_temporal", "global_temporal", "cold_users", "cold_items", "predefined")
PARTS = ("train", "validation", "test")


@dataclass(frozen=True)
class SplitConfig:
    """How to split a dataset.

    Attributes
    ----------
    kind
        One of :data:`SPLIT_KINDS`.
    test_fraction
        Share of pairs (or users, items) held out for test.
    validation_fraction
        Share of the remaining train part carved out for validation (0 disables).
    seed
        Seed of every random choice.
    cutoff
        ``global_temporal`` only: ISO 8601 cutoff time (default: a quantile).
    predefined
        ``predefined`` only: the split's name in ``dataset.yaml``.
    positive_events, positive_min_weight
        Override the dataset's positive rule (e.g. MovieLens ``min_rating``).
    """

    kind: SplitKind = "user_temporal"
    test_fraction: float = 0.2
    validation_fraction: float = 0.1
    seed: int = 42
    cutoff: str | None = None
    predefined: str | None = None
    positive_events: tuple[str, ...] | None = None
    positive_min_weight: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in SPLIT_KINDS:
            raise KdqError(f"split kind {self.kind!r} is unknown; choose one of {', '.join(SPLIT_KINDS)}")
        if not 0 < self.test_fraction < 1:
            raise KdqError(f"test_fraction must be between 0 and 1, not {self.test_fraction}")
        if not 0 <= self.validation_fraction < 1:
            raise KdqError(f"validation_fraction must be in [0, 1), not {self.validation_fraction}")
        if self.kind == "predefined" and not self.predefined:
            raise KdqError("a predefined split needs 'predefined: <name>' (a split listed in dataset.yaml)")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise KdqError(f"split seed must be an integer >= 0, not {self.seed!r}")
        if self.cutoff is not None:
            try:
                pd.Timestamp(self.cutoff)
            except (ValueError, TypeError):
                raise KdqError(f"cutoff {self.cutoff!r} is not a date-time; expected ISO 8601, "
                               "e.g. 2026-06-01T00:00:00+09:00") from None
        if self.positive_events is not None:
            object.__setattr__(self, "positive_events", tuple(self.positive_events))

    def to_dict(self) -> dict:
        data = asdict(self)
        if self.positive_events is not None:
            data["positive_events"] = list(self.positive_events)
        return data


def seconds(stamps: pd.Series) -> np.ndarray:
    """UTC timestamps as int64 seconds since the Unix epoch (any datetime unit)."""
    return stamps.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[s]").astype(np.int64)


def positive_events(raw: RawDataset, config: SplitConfig) -> pd.DataFrame:
    """The positive events as (user, item) row positions, time in seconds and weight."""
    frame = raw.interactions
    positive = frame[POSITIVE].to_numpy()
    if config.positive_events is not None or config.positive_min_weight is not None:
        events = config.positive_events or raw.spec.interactions.positive_events
        unknown = set(events) - set(raw.spec.interactions.event_weights)
        if unknown:
            raise KdqError(f"positive_events {sorted(unknown)} are not event types of {raw.name} "
                           f"({', '.join(raw.spec.interactions.event_weights)})")
        positive = frame["event"].isin(list(events)).to_numpy()
        if config.positive_min_weight is not None:
            positive = positive & (frame[WEIGHT].to_numpy() >= config.positive_min_weight)
    frame = frame[positive]
    users = pd.Index(raw.users[raw.spec.users.id])
    items = pd.Index(raw.items[raw.spec.items.id])
    return pd.DataFrame({
        "user": users.get_indexer(frame[USER]),
        "item": items.get_indexer(frame[ITEM]),
        "time": seconds(frame[TIME]),
        "weight": frame[WEIGHT].to_numpy(dtype=np.float64),
    }).reset_index(drop=True)


def _pair_table(events: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Distinct pairs with their first event time, and each event's pair number."""
    codes, uniques = pd.factorize(pd.MultiIndex.from_arrays([events["user"], events["item"]]))
    first = np.full(len(uniques), np.iinfo(np.int64).max)
    np.minimum.at(first, codes, events["time"].to_numpy())
    pairs = pd.DataFrame({"user": uniques.get_level_values(0), "item": uniques.get_level_values(1), "first": first})
    return pairs, codes


def _holdout(events: pd.DataFrame, kind: str, fraction: float, seed: int, cutoff: str | None) -> np.ndarray:
    """Per event: 1 held out, 0 kept, -1 dropped (a kept pair's event at or after its user's cutoff)."""
    rng = np.random.default_rng(seed)
    pairs, pair_of = _pair_table(events)
    time = events["time"].to_numpy()
    if kind == "random":
        held = rng.random(len(pairs)) < fraction
        return held[pair_of].astype(np.int8)
    if kind in ("cold_users", "cold_items"):
        column = "user" if kind == "cold_users" else "item"
        entities = np.unique(events[column].to_numpy())
        chosen = rng.choice(entities, size=int(round(fraction * len(entities))), replace=False)
        return np.isin(events[column].to_numpy(), chosen).astype(np.int8)
    if kind == "global_temporal":
        if cutoff is not None:
            stamp = pd.Timestamp(cutoff)
            limit = int((stamp if stamp.tzinfo else stamp.tz_localize("UTC")).timestamp())
        else:
            limit = int(np.quantile(time, 1 - fraction, method="higher"))
        user_cutoff = np.full(int(events["user"].max()) + 1, limit)
    else:  # user_temporal
        order = np.lexsort((pairs["item"].to_numpy(), pairs["first"].to_numpy(), pairs["user"].to_numpy()))
        ranked = pairs.iloc[order]
        size = ranked.groupby("user", sort=False)["item"].transform("size").to_numpy()
        position = ranked.groupby("user", sort=False).cumcount().to_numpy()
        n_test = np.floor(fraction * size + 0.5).astype(int)
        is_first_test = (n_test > 0) & (position == size - n_test)
        user_cutoff = np.full(int(events["user"].max()) + 1, np.iinfo(np.int64).max)
        user_cutoff[ranked["user"].to_numpy()[is_first_test]] = ranked["first"].to_numpy()[is_first_test]
    cut = user_cutoff[events["user"].to_numpy()]
    pair_held = pairs["first"].to_numpy() >= user_cutoff[pairs["user"].to_numpy()]
    held = pair_held[pair_of]
    # events of train pairs at or after the cutoff would leak the future: mark them dropped (-1)
    return np.where(held, 1, np.where(time >= cut, -1, 0)).astype(np.int8)


def assign_parts(events: pd.DataFrame, config: SplitConfig, predefined: pd.Series | None = None) -> np.ndarray:
    """Part of every event: ``"train"``, ``"validation"``, ``"test"`` or ``""`` (dropped).

    Parameters
    ----------
    events
        Output of :func:`positive_events`.
    config
        The split.
    predefined
        For ``predefined`` splits: the part of every event, from the dataset's split file.
    """
    part = np.full(len(events), "", dtype=object)
    if config.kind == "predefined":
        assert predefined is not None
        part[:] = predefined.to_numpy()
        train_kind = "user_temporal"
    else:
        held = _holdout(events, config.kind, config.test_fraction, config.seed, config.cutoff)
        part[held == 1] = "test"
        part[held == 0] = "train"
        train_kind = config.kind
    if config.validation_fraction > 0:
        in_train = np.flatnonzero(part == "train")
        if len(in_train):
            sub = events.iloc[in_train].reset_index(drop=True)
            held = _holdout(sub, train_kind, config.validation_fraction, config.seed + 1, None)
            part[in_train[held == 1]] = "validation"
            part[in_train[held == -1]] = ""
    return _drop_overlaps(events, part)


def _drop_overlaps(events: pd.DataFrame, part: np.ndarray) -> np.ndarray:
    """Drop events of a pair that sit in a later part than the pair's earliest one."""
    _, pair_of = _pair_table(events)
    code = np.select([part == "train", part == "validation", part == "test"], [0, 1, 2], 3)
    earliest = np.full(pair_of.max() + 1, 3)
    np.minimum.at(earliest, pair_of, code)
    out = part.copy()
    out[(code < 3) & (code > earliest[pair_of])] = ""
    return out


def predefined_parts(raw: RawDataset, config: SplitConfig, events: pd.DataFrame) -> pd.Series:
    """The dataset's predefined part of every event (``""`` when the pair is not listed)."""
    spec = raw.spec
    if config.predefined not in spec.predefined_splits:
        known = ", ".join(spec.predefined_splits) or "none"
        raise KdqError(f"dataset {raw.name} has no predefined split {config.predefined!r} (it has: {known})")
    table = pd.read_csv(raw.folder / spec.predefined_splits[config.predefined], dtype=str, keep_default_na=False)
    users = pd.Index(raw.users[spec.users.id])
    items = pd.Index(raw.items[spec.items.id])
    key = pd.MultiIndex.from_arrays([users.get_indexer(table[spec.interactions.user]),
                                     items.get_indexer(table[spec.interactions.item])])
    lookup = pd.Series(table["part"].to_numpy(), index=key)
    lookup = lookup[~lookup.index.duplicated()]
    wanted = pd.MultiIndex.from_arrays([events["user"], events["item"]])
    return lookup.reindex(wanted).fillna("").reset_index(drop=True)


def split_events(raw: RawDataset, config: SplitConfig) -> pd.DataFrame:
    """Positive events with their ``part`` (dropped events removed)."""
    events = positive_events(raw, config)
    if events.empty:
        raise KdqError(f"dataset {raw.name} has no positive events under this rule; nothing to split")
    predefined = predefined_parts(raw, config, events) if config.kind == "predefined" else None
    events["part"] = assign_parts(events, config, predefined)
    return events[events["part"] != ""].reset_index(drop=True)
