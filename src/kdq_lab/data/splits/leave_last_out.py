"""``leave_last_out``: per user, the last positive pair by time is test (the leave-one-out protocol).

Users whose positive pairs start at two or more moments hold out the pair(s) first seen at their
last moment (pairs first seen at the same second go together); other users stay in train. Validation
is the pair before, carved the same way. Later events of kept pairs are dropped, as in
``user_temporal``. ``test_fraction`` is not used, and ``validation_fraction`` only switches
validation on (> 0) or off (0).

Where a positive follows a view of the same item (KDQ), the held-out pair was already seen: under
``exclude: seen`` it leaves the target (a re-engagement), so evaluate with ``exclude: train_positives``
there. On ratings (MovieLens: one event per pair) both rules keep it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from kdq_lab.data.splits.common import after_cutoff, covers_after_cutoff, future_train_events, pair_table
from kdq_lab.data.splits.registry import Claims, Holdout, HoldoutRequest, PreparedSplit, SplitKind, register

NAME = "leave_last_out"


def hold_out(request: HoldoutRequest) -> Holdout:
    """Each returning user's cutoff is the first event time of their last pair."""
    n_users, n_items = request.shape
    pairs, pair_of = pair_table(request.events, n_items)
    span = pairs.groupby("user")["first"].agg(["min", "max"])
    returning = span[span["min"] < span["max"]]
    user_cutoff = np.full(n_users, np.iinfo(np.int64).max)
    user_cutoff[returning.index.to_numpy()] = returning["max"].to_numpy()
    return after_cutoff(NAME, request.events, pairs, pair_of, user_cutoff)


def prepared_claims(split: PreparedSplit, checks: Mapping[str, float]) -> Claims:
    tested = split.events[split.events["part"] == "test"]
    starts = tested.groupby(["user", "item"])["time"].min().groupby("user").nunique()
    return {
        "every test user has history before the test period": checks["cold_user_share_of_test_users"] == 0.0,
        "each test user's test pairs start at one moment": bool((starts == 1).all()),
    }


def evaluated_claims(split: PreparedSplit, per_user: pd.DataFrame) -> Claims:
    return {"every evaluated user of a leave-last-out split has history": bool((per_user["n_train"] > 0).all())}


register(
    SplitKind(
        name=NAME,
        summary="per user, the last positive pair by time, validation the one before (leave-one-out)",
        hold_out=hold_out,
        covers=covers_after_cutoff,
        leakage=future_train_events,
        prepared_claims=prepared_claims,
        evaluated_claims=evaluated_claims,
    )
)
