"""A split applied: positive events in parts, and the periods that place events of any type.

Only positive events (the dataset's rule, or the split's override) become interactions. The split's
kind holds out the test part; validation is carved from train by the kind's ``validation_kind`` with
``validation_fraction`` and seed + 1 (unless the kind's source gives one). Every (user, item) pair
ends in one part: events of a pair in a later part than its earliest are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from kdq_lab.data.splits.common import DROPPED, PARTS, TEST, TRAIN, VALIDATION, pair_table, positions, seconds
from kdq_lab.data.splits.registry import Holdout, HoldoutRequest, SplitConfig, split_kind
from kdq_lab.data.validate import POSITIVE, TIME, WEIGHT, RawDataset
from kdq_lab.errors import KdqError


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
    user, item = positions(frame)
    return pd.DataFrame(
        {"user": user, "item": item, "time": seconds(frame[TIME]), "weight": frame[WEIGHT].to_numpy(dtype=np.float64)}
    ).reset_index(drop=True)


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
    events: pd.DataFrame, config: SplitConfig, raw: RawDataset
) -> tuple[np.ndarray, Holdout, Holdout | None]:
    """Part code of every positive event (``TRAIN``, ``VALIDATION``, ``TEST`` or ``DROPPED``), and the cuts."""
    kind = split_kind(config.kind)
    carve = config.validation_fraction > 0
    test = kind.hold_out(HoldoutRequest(events, config.test_fraction, config.seed, config.options, raw, carve))
    part = np.select([test.held == 1, test.held == 0], [TEST, TRAIN], DROPPED).astype(np.int8)
    validation = test.validation
    if validation is not None:
        part[validation.held == 1] = VALIDATION
    elif carve:
        in_train = np.flatnonzero(part == TRAIN)
        if len(in_train):
            carver = kind.carver()
            sub = events.iloc[in_train].reset_index(drop=True)
            request = HoldoutRequest(sub, config.validation_fraction, config.seed + 1, carver.options(), raw)
            validation = carver.hold_out(request)
            part[in_train[validation.held == 1]] = VALIDATION
            part[in_train[validation.held == -1]] = DROPPED
    return _drop_overlaps(events, part, len(raw.items)), test, validation


def _drop_overlaps(events: pd.DataFrame, part: np.ndarray, n_items: int) -> np.ndarray:
    """Drop events of a pair that sit in a later part than the pair's earliest one."""
    _, pair_of = pair_table(events, n_items)
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
    part, test, validation = assign_parts(events, config, raw)
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
    user, item = positions(frame)
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

    Each cut's kind says what it withholds (held-out cold items; items published after a global
    cutoff: at training time they did not exist yet). Such items are never training columns (never
    sampled as negatives); models score them from their features, as new items.
    """
    n_items = len(raw.items)
    events = split.events

    def items_of(cut: Holdout | None, known_parts: tuple[str, ...]) -> np.ndarray:
        mask = np.zeros(n_items, dtype=bool)
        if cut is not None:
            withholds = split_kind(cut.kind).withholds
            found = withholds(cut, raw) if withholds is not None else None
            if found is not None:
                mask = np.array(found, dtype=bool)
        # an item with a known positive existed at training time, whatever its stamp says
        mask[events.loc[events["part"].isin(known_parts), "item"].to_numpy()] = False
        return mask

    return items_of(split.test, ("train", "validation")), items_of(split.validation, ("train",))
