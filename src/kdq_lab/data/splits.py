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

from kdq_lab.checks import check_number, is_finite
from kdq_lab.data.validate import ITEM, POSITIVE, TIME, USER, WEIGHT, RawDataset
from kdq_lab.errors import KdqError
from kdq_lab.limits import MAX_SEED

SplitKind = Literal["random", "user_temporal", "global_temporal", "cold_users", "cold_items", "predefined"]
SPLIT_KINDS: tuple[str, ...] = ("random", "user_temporal", "global_temporal", "cold_users", "cold_items", "predefined")
PARTS = ("train", "validation", "test")
#: Part codes of events (positions in :data:`PARTS`); dropped events are -1.
TRAIN, VALIDATION, TEST, DROPPED = 0, 1, 2, -1


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
        check_number("split", "seed", self.seed, 0, high=MAX_SEED, integer=True)
        if self.positive_min_weight is not None and not is_finite(self.positive_min_weight):
            raise KdqError(f"positive_min_weight must be a finite number or null, not {self.positive_min_weight!r}")
        if self.cutoff is not None:
            try:
                pd.Timestamp(self.cutoff)
            except (ValueError, TypeError):
                raise KdqError(
                    f"cutoff {self.cutoff!r} is not a date-time; expected ISO 8601, e.g. 2026-06-01T00:00:00+09:00"
                ) from None
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


def _positions(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(user, item) row positions of interaction rows (their categorical codes)."""
    return frame[USER].cat.codes.to_numpy(), frame[ITEM].cat.codes.to_numpy()


def _lookup(raw: RawDataset, users: pd.Series, items: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(user, item) row positions of ids given as text (-1 when unknown)."""
    return (
        pd.Index(raw.users[raw.spec.users.id]).get_indexer(users),
        pd.Index(raw.items[raw.spec.items.id]).get_indexer(items),
    )


def positive_mask(raw: RawDataset, config: SplitConfig) -> np.ndarray:
    """Which interaction rows are positive: the dataset's rule, or the split's override."""
    frame = raw.interactions
    if config.positive_events is None and config.positive_min_weight is None:
        return frame[POSITIVE].to_numpy()
    events = config.positive_events or raw.spec.interactions.positive_events
    unknown = set(events) - set(raw.spec.interactions.event_weights)
    if unknown:
        raise KdqError(
            f"positive_events {sorted(unknown)} are not event types of {raw.name} "
            f"({', '.join(raw.spec.interactions.event_weights)})"
        )
    positive = frame["event"].isin(list(events)).to_numpy()
    if config.positive_min_weight is not None:
        positive = positive & (frame[WEIGHT].to_numpy() >= config.positive_min_weight)
    return positive


def positive_events(raw: RawDataset, config: SplitConfig) -> pd.DataFrame:
    """The positive events as (user, item) row positions, time in seconds and weight."""
    frame = raw.interactions[positive_mask(raw, config)]
    user, item = _positions(frame)
    return pd.DataFrame(
        {"user": user, "item": item, "time": seconds(frame[TIME]), "weight": frame[WEIGHT].to_numpy(dtype=np.float64)}
    ).reset_index(drop=True)


def _pair_keys(user: np.ndarray, item: np.ndarray, n_items: int) -> np.ndarray:
    return np.asarray(user, dtype=np.int64) * n_items + np.asarray(item, dtype=np.int64)


def _pair_table(events: pd.DataFrame, n_items: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Distinct pairs with their first event time, and each event's pair number."""
    codes, keys = pd.factorize(_pair_keys(events["user"].to_numpy(), events["item"].to_numpy(), n_items))
    first = np.full(len(keys), np.iinfo(np.int64).max)
    np.minimum.at(first, codes, events["time"].to_numpy())
    user, item = np.divmod(np.asarray(keys, dtype=np.int64), n_items)
    return pd.DataFrame({"user": user, "item": item, "first": first}), codes


@dataclass(frozen=True)
class Holdout:
    """What one cut of a split holds out, as a rule that also places events of any type.

    Positive events decide the cut; :meth:`covers` then tells, for any event (a view,
    a low rating), whether it falls in the held-out period: after its user's cutoff
    (temporal kinds), on a held-out user or item (cold kinds), or on a held-out pair
    (random and predefined).
    """

    kind: str
    held: np.ndarray  # per positive event: 1 held out, 0 kept, -1 dropped
    cutoff: np.ndarray | None = None  # per user, seconds (temporal kinds)
    entities: np.ndarray | None = None  # held-out users or items (cold kinds), sorted
    pairs: np.ndarray | None = None  # held-out pair keys (random, predefined), sorted
    listed: np.ndarray | None = None  # predefined: every pair the split file lists, sorted

    def covers(self, user: np.ndarray, item: np.ndarray, time: np.ndarray, n_items: int) -> np.ndarray:
        """Whether each event lies in the held-out period (predefined: also pairs the file does not list)."""
        if self.cutoff is not None:
            return time >= self.cutoff[user]
        if self.entities is not None:
            return np.isin(user if self.kind == "cold_users" else item, self.entities)
        assert self.pairs is not None
        keys = _pair_keys(user, item, n_items)
        held = np.isin(keys, self.pairs)
        return held if self.listed is None else held | ~np.isin(keys, self.listed)


def _holdout(
    events: pd.DataFrame, kind: str, fraction: float, seed: int, cutoff: str | None, shape: tuple[int, int]
) -> Holdout:
    """Hold out a ``fraction`` of ``events`` the ``kind`` way (a cutoff time for ``global_temporal``)."""
    rng = np.random.default_rng(seed)
    n_users, n_items = shape
    pairs, pair_of = _pair_table(events, n_items)
    time = events["time"].to_numpy()
    if kind == "random":
        held = rng.random(len(pairs)) < fraction
        keys = _pair_keys(pairs["user"].to_numpy()[held], pairs["item"].to_numpy()[held], n_items)
        return Holdout(kind, held[pair_of].astype(np.int8), pairs=np.sort(keys))
    if kind in ("cold_users", "cold_items"):
        column = "user" if kind == "cold_users" else "item"
        entities = np.unique(events[column].to_numpy())
        chosen = np.sort(rng.choice(entities, size=round(fraction * len(entities)), replace=False))
        return Holdout(kind, np.isin(events[column].to_numpy(), chosen).astype(np.int8), entities=chosen)
    if kind == "global_temporal":
        if cutoff is not None:
            stamp = pd.Timestamp(cutoff)
            limit = int((stamp if stamp.tzinfo else stamp.tz_localize("UTC")).timestamp())
        else:
            limit = int(np.quantile(time, 1 - fraction, method="higher"))
        user_cutoff = np.full(n_users, limit, dtype=np.int64)
    else:  # user_temporal
        order = np.lexsort((pairs["item"].to_numpy(), pairs["first"].to_numpy(), pairs["user"].to_numpy()))
        ranked = pairs.iloc[order]
        size = ranked.groupby("user", sort=False)["item"].transform("size").to_numpy()
        position = ranked.groupby("user", sort=False).cumcount().to_numpy()
        n_test = np.floor(fraction * size + 0.5).astype(int)
        is_first_test = (n_test > 0) & (position == size - n_test)
        user_cutoff = np.full(n_users, np.iinfo(np.int64).max)
        user_cutoff[ranked["user"].to_numpy()[is_first_test]] = ranked["first"].to_numpy()[is_first_test]
    cut = user_cutoff[events["user"].to_numpy()]
    pair_held = pairs["first"].to_numpy() >= user_cutoff[pairs["user"].to_numpy()]
    held = pair_held[pair_of]
    # events of kept pairs at or after the cutoff would leak the future: mark them dropped (-1)
    return Holdout(kind, np.where(held, 1, np.where(time >= cut, -1, 0)).astype(np.int8), cutoff=user_cutoff)


@dataclass(frozen=True)
class Predefined:
    """A split shipped with the dataset: the file's part of every positive event, and its cuts."""

    part: np.ndarray  # part code of every positive event (DROPPED: pair not listed)
    test: Holdout
    validation: Holdout | None  # when the file lists validation pairs


def predefined_split(raw: RawDataset, config: SplitConfig, events: pd.DataFrame) -> Predefined:
    """Read the dataset's split file for ``events`` (positive events as row positions)."""
    spec = raw.spec
    if config.predefined not in spec.predefined_splits:
        known = ", ".join(spec.predefined_splits) or "none"
        raise KdqError(f"dataset {raw.name} has no predefined split {config.predefined!r} (it has: {known})")
    table = pd.read_csv(raw.folder / spec.predefined_splits[config.predefined], dtype=str, keep_default_na=False)
    user, item = _lookup(raw, table[spec.interactions.user], table[spec.interactions.item])
    n_items = len(raw.items)
    listed = pd.Series(pd.Index(PARTS).get_indexer(table["part"]), index=_pair_keys(user, item, n_items))
    listed = listed[~listed.index.duplicated()]
    part = listed.reindex(_pair_keys(events["user"].to_numpy(), events["item"].to_numpy(), n_items))
    part = part.fillna(DROPPED).to_numpy(dtype=np.int8)
    keys, parts = listed.index.to_numpy(), listed.to_numpy()
    everything = np.sort(keys)

    def cut(code: int) -> Holdout:
        return Holdout(
            "predefined", (part == code).astype(np.int8), pairs=np.sort(keys[parts == code]), listed=everything
        )

    has_validation = bool((parts == VALIDATION).any())
    if has_validation and config.validation_fraction > 0:
        raise KdqError(
            f"split file {spec.predefined_splits[config.predefined]} already has a validation part; "
            "set validation_fraction: 0 to use it, or remove it from the file"
        )
    return Predefined(part, cut(TEST), cut(VALIDATION) if has_validation else None)


@dataclass(frozen=True)
class SplitEvents:
    """A split: positive events with their part, and the held-out periods that place any other event.

    ``events`` has ``user``, ``item``, ``time``, ``weight`` and ``part`` (train, validation,
    test; dropped events removed). ``test`` and ``validation`` are the two cuts (the
    latter ``None`` without a validation part).
    """

    events: pd.DataFrame
    test: Holdout
    validation: Holdout | None


def assign_parts(
    events: pd.DataFrame, config: SplitConfig, shape: tuple[int, int], predefined: Predefined | None = None
) -> tuple[np.ndarray, Holdout, Holdout | None]:
    """Part code of every positive event (``TRAIN``, ``VALIDATION``, ``TEST`` or ``DROPPED``), and the cuts.

    For ``predefined`` splits the file's parts are used; validation is then carved per
    user temporally (unless the file has its own).
    """
    if config.kind == "predefined":
        assert predefined is not None
        part, test, validation, train_kind = (
            predefined.part.copy(),
            predefined.test,
            predefined.validation,
            "user_temporal",
        )
    else:
        test = _holdout(events, config.kind, config.test_fraction, config.seed, config.cutoff, shape)
        part = np.select([test.held == 1, test.held == 0], [TEST, TRAIN], DROPPED).astype(np.int8)
        validation, train_kind = None, config.kind
    if config.validation_fraction > 0:
        in_train = np.flatnonzero(part == TRAIN)
        if len(in_train):
            sub = events.iloc[in_train].reset_index(drop=True)
            validation = _holdout(sub, train_kind, config.validation_fraction, config.seed + 1, None, shape)
            part[in_train[validation.held == 1]] = VALIDATION
            part[in_train[validation.held == -1]] = DROPPED
    return _drop_overlaps(events, part, shape[1]), test, validation


def _drop_overlaps(events: pd.DataFrame, part: np.ndarray, n_items: int) -> np.ndarray:
    """Drop events of a pair that sit in a later part than the pair's earliest one."""
    _, pair_of = _pair_table(events, n_items)
    code = np.where(part == DROPPED, 3, part).astype(np.int8)  # train < validation < test < dropped
    earliest = np.full(pair_of.max() + 1, 3, dtype=np.int8)
    np.minimum.at(earliest, pair_of, code)
    out = part.copy()
    out[(code < 3) & (code > earliest[pair_of])] = DROPPED
    return out


def split_events(raw: RawDataset, config: SplitConfig) -> SplitEvents:
    """Positive events with their ``part`` (dropped events removed), and the cuts that made them."""
    events = positive_events(raw, config)
    if events.empty:
        raise KdqError(f"dataset {raw.name} has no positive events under this rule; nothing to split")
    shape = (len(raw.users), len(raw.items))
    predefined = predefined_split(raw, config, events) if config.kind == "predefined" else None
    part, test, validation = assign_parts(events, config, shape, predefined)
    kept = part != DROPPED
    events = events[kept].reset_index(drop=True)
    events["part"] = pd.Categorical.from_codes(part[kept], categories=PARTS)
    return SplitEvents(events, test, validation)


def seen_pairs(raw: RawDataset, split: SplitEvents, known_parts: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(user, item) pairs with an event of ANY type (a view, a low rating) in the periods ``known_parts``.

    The train period is what neither cut holds out; the validation period is what only the
    validation cut holds out. What the user saw there is excluded from their ranking under
    the ``seen`` rule (see :mod:`kdq_lab.data.targets`).
    """
    frame = raw.interactions
    user, item = _positions(frame)
    time = seconds(frame[TIME])
    n_items = len(raw.items)
    in_test = split.test.covers(user, item, time, n_items)
    in_validation = ~in_test & (
        split.validation.covers(user, item, time, n_items) if split.validation is not None else False
    )
    keep = np.zeros(len(frame), dtype=bool)
    if "train" in known_parts:
        keep |= ~in_test & ~in_validation
    if "validation" in known_parts:
        keep |= in_validation
    return user[keep], item[keep]


def withheld_items(raw: RawDataset, split: SplitEvents) -> tuple[np.ndarray, np.ndarray]:
    """Items a model may not train on: (withheld until test, withheld until validation), as masks.

    ``cold_items`` withholds its held-out items. ``global_temporal`` withholds items published
    at or after a cutoff (when items have a timestamp): at training time they did not exist yet.
    Such items are never training columns (never sampled as negatives); models score them from
    their features, as new items.
    """
    n_items = len(raw.items)
    events = split.events

    def items_of(cut: Holdout | None, known_parts: tuple[str, ...]) -> np.ndarray:
        mask = np.zeros(n_items, dtype=bool)
        if cut is None:
            return mask
        if cut.kind == "cold_items" and cut.entities is not None:
            mask[cut.entities] = True
        elif cut.kind == "global_temporal" and cut.cutoff is not None and raw.spec.items.timestamp:
            mask = seconds(raw.items[raw.spec.items.timestamp]) >= cut.cutoff[0]
        # an item with a known positive existed at training time, whatever its stamp says
        mask[events.loc[events["part"].isin(known_parts), "item"].to_numpy()] = False
        return mask

    return items_of(split.test, ("train", "validation")), items_of(split.validation, ("train",))
