"""``warm_up``: held-out users as in ``cold_users``, each with their first ``shots`` positives revealed to train.

The users are chosen once per seed, as ``cold_users`` chooses them (a ``test_fraction`` of the users with
positives), whatever ``shots`` is; of those, the users with at least ``max_shots + 1`` positive pairs are held
out, so every split of one warm-up curve (``shots`` from 0 to ``max_shots``) evaluates the same users. A held-out
user's cutoff is the first event time of their pair number ``shots + 1`` (by first event time, then item):
their earlier events of any type are train (seen), their pairs first seen at or after it are the target. Pairs
first seen at the same moment as the cutoff pair go with it, so a tie can reveal fewer than ``shots`` pairs.
The other chosen users (too few positives) stay ordinary train users: they are never evaluated.

An experiment may list ``shots`` (``shots: [0, 1, 2, 5]``): the split expands into one split per value,
``<name>-shots=<n>``, each with ``max_shots`` the largest value (:func:`expand`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from kdq_lab.checks import check_number, is_int
from kdq_lab.data.splits.common import after_cutoff, covers_after_cutoff, future_train_events, pair_table
from kdq_lab.data.splits.registry import (
    Claims,
    Holdout,
    HoldoutRequest,
    PreparedSplit,
    SplitKind,
    SplitOptions,
    register,
)
from kdq_lab.errors import KdqError
from kdq_lab.limits import MAX_SHOTS, MAX_SPLITS

NAME = "warm_up"


def _integer(value: Any) -> Any:
    """A flag's digits as an integer (the CLI passes text); anything else as given, to be checked."""
    return int(value) if isinstance(value, str) and value.isdigit() and len(value) <= 6 else value


@dataclass(frozen=True)
class WarmUpOptions(SplitOptions):
    """``shots``: positives revealed per held-out user; ``max_shots``: the curve's largest ``shots`` (default: it)."""

    shots: int = field(default=0, metadata={"help": "first n positives of each held-out user go to train"})
    max_shots: int | None = field(
        default=None, metadata={"help": "held-out users need max_shots + 1 positives (default: shots)"}
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "shots", _integer(self.shots))
        object.__setattr__(self, "max_shots", _integer(self.max_shots))
        check_number("warm_up split", "shots", self.shots, 0, high=MAX_SHOTS, integer=True)
        check_number(
            "warm_up split", "max_shots", self.max_shots, self.shots, high=MAX_SHOTS, integer=True, optional=True
        )

    @property
    def eligible(self) -> int:
        """Positive pairs a held-out user needs."""
        return (self.shots if self.max_shots is None else self.max_shots) + 1


def expand(flat: dict[str, Any]) -> dict[str, dict[str, Any]] | None:
    """A split listing ``shots`` as one split per value (name suffix → flat split), or ``None`` for one value."""
    values = flat.get("shots")
    if not isinstance(values, list):
        return None
    if not values or len(values) > MAX_SPLITS or not all(is_int(v) and 0 <= v <= MAX_SHOTS for v in values):
        raise KdqError(
            f"shots must be an integer or a list of 1 to {MAX_SPLITS} integers in [0, {MAX_SHOTS}], not {values!r}"
        )
    if len(set(values)) != len(values):
        raise KdqError(f"shots lists a value twice: {values!r}")
    top = flat.get("max_shots", max(values))
    return {f"shots={int(v)}": {**flat, "shots": int(v), "max_shots": top} for v in sorted(values)}


def hold_out(request: HoldoutRequest) -> Holdout:
    """Chosen users with enough positives keep their first ``shots`` pairs in train; the rest is the target."""
    options = request.options
    assert isinstance(options, WarmUpOptions)
    n_users, n_items = request.shape
    pairs, pair_of = pair_table(request.events, n_items)
    user = pairs["user"].to_numpy()
    rng = np.random.default_rng(request.seed)  # the same draw as cold_users: independent of shots
    candidates = np.unique(user)
    chosen = np.sort(rng.choice(candidates, size=round(request.fraction * len(candidates)), replace=False))
    held = chosen[np.bincount(user, minlength=n_users)[chosen] >= options.eligible]
    order = np.lexsort((pairs["item"].to_numpy(), pairs["first"].to_numpy(), user))
    ranked = pairs.iloc[order]
    position = ranked.groupby("user", sort=False).cumcount().to_numpy()
    cut = (position == options.shots) & np.isin(ranked["user"].to_numpy(), held)
    user_cutoff = np.full(n_users, np.iinfo(np.int64).max)
    user_cutoff[ranked["user"].to_numpy()[cut]] = ranked["first"].to_numpy()[cut]
    return replace(after_cutoff(NAME, request.events, pairs, pair_of, user_cutoff), entities=held)


def leakage(split: PreparedSplit) -> dict[str, float]:
    """Train events after a test user's cutoff, and test users who know more positive pairs than ``shots``."""
    options = split.config.options
    assert isinstance(options, WarmUpOptions)
    events = split.events
    users = np.unique(events.loc[events["part"] == "test", "user"])
    known = split.known.interactions[users].getnnz(axis=1)
    return future_train_events(split) | {"leak_warm_up_known_beyond_shots": int((known > options.shots).sum())}


def prepared_claims(split: PreparedSplit, checks: Mapping[str, float]) -> Claims:
    options = split.config.options
    assert isinstance(options, WarmUpOptions)
    claims = {"every test user of a 0-shot warm-up split is cold": checks["cold_user_share_of_test_users"] == 1.0}
    return claims if options.shots == 0 else {}


def evaluated_claims(split: PreparedSplit, per_user: pd.DataFrame) -> Claims:
    options = split.config.options
    assert isinstance(options, WarmUpOptions)
    return {
        "no test user of a warm-up split knows more than shots positives": bool(
            (per_user["n_train"] <= options.shots).all()
        )
    }


register(
    SplitKind(
        name=NAME,
        summary="cold_users' held-out users with their first shots positives revealed to train (a list: a curve)",
        hold_out=hold_out,
        covers=covers_after_cutoff,
        options=WarmUpOptions,
        validation_kind="cold_users",
        seeded=True,
        leakage=leakage,
        prepared_claims=prepared_claims,
        evaluated_claims=evaluated_claims,
        expand=expand,
    )
)
