"""``cold_users``: a ``test_fraction`` of the users with positives is held out whole (no train events).

Held-out users keep their profile features: they are the new users a hybrid model must serve.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from kdq_lab.data.splits.common import held_entities
from kdq_lab.data.splits.registry import Claims, Holdout, HoldoutRequest, PreparedSplit, SplitKind, register

NAME = "cold_users"


def hold_out(request: HoldoutRequest) -> Holdout:
    return held_entities(NAME, request, "user")


def covers(cut: Holdout, user: np.ndarray, item: np.ndarray, time: np.ndarray, n_items: int) -> np.ndarray:
    """Every event of a held-out user."""
    assert cut.entities is not None
    return np.isin(user, cut.entities)


def leakage(split: PreparedSplit) -> dict[str, float]:
    """Known (train or validation) events of test users."""
    events = split.events
    users = np.unique(events.loc[events["part"] == "test", "user"])
    return {"leak_cold_user_train_events": int(split.known.interactions[users].nnz)}


def prepared_claims(split: PreparedSplit, checks: Mapping[str, float]) -> Claims:
    return {
        "every test user of a cold-user split is cold": checks["cold_user_share_of_test_users"] == 1.0,
        "a new user has seen nothing": checks["seen_share_of_test_positives"] == 0.0,
    }


def evaluated_claims(split: PreparedSplit, per_user: pd.DataFrame) -> Claims:
    return {"every test user of a cold-user split is new": bool((per_user["n_train"] == 0).all())}


register(
    SplitKind(
        name=NAME,
        summary="a test_fraction of the users held out whole (features kept, no train events)",
        hold_out=hold_out,
        covers=covers,
        seeded=True,
        leakage=leakage,
        prepared_claims=prepared_claims,
        evaluated_claims=evaluated_claims,
    )
)
