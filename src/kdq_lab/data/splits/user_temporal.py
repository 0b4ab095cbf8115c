"""``user_temporal``: per user, the last ``test_fraction`` of their pairs by first event time.

A user with ``n`` pairs holds out ``floor(fraction * n + 0.5)`` of them (pairs first seen at the
same moment as the first held-out one go with it); train events at or after the user's cutoff are
dropped, so train never sees the user's future.
"""

from __future__ import annotations

import numpy as np

from kdq_lab.data.splits.common import after_cutoff, covers_after_cutoff, future_train_events, pair_table
from kdq_lab.data.splits.registry import Holdout, HoldoutRequest, SplitKind, register

NAME = "user_temporal"


def hold_out(request: HoldoutRequest) -> Holdout:
    """Each user's cutoff is the first event time of their first held-out pair."""
    n_users, n_items = request.shape
    pairs, pair_of = pair_table(request.events, n_items)
    order = np.lexsort((pairs["item"].to_numpy(), pairs["first"].to_numpy(), pairs["user"].to_numpy()))
    ranked = pairs.iloc[order]
    size = ranked.groupby("user", sort=False)["item"].transform("size").to_numpy()
    position = ranked.groupby("user", sort=False).cumcount().to_numpy()
    n_test = np.floor(request.fraction * size + 0.5).astype(int)
    is_first_test = (n_test > 0) & (position == size - n_test)
    user_cutoff = np.full(n_users, np.iinfo(np.int64).max)
    user_cutoff[ranked["user"].to_numpy()[is_first_test]] = ranked["first"].to_numpy()[is_first_test]
    return after_cutoff(NAME, request.events, pairs, pair_of, user_cutoff)


register(
    SplitKind(
        name=NAME,
        summary="per user, the last test_fraction of their pairs by first event time",
        hold_out=hold_out,
        covers=covers_after_cutoff,
        leakage=future_train_events,
    )
)
