"""``cold_items``: a ``test_fraction`` of the items with positives is held out whole (no train events).

Held-out items keep their features and are withheld from training (never training columns, never
sampled as negatives): models score them from their features, as new items.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from kdq_lab.data.splits.common import held_entities
from kdq_lab.data.splits.registry import Claims, Holdout, HoldoutRequest, PreparedSplit, SplitKind, register
from kdq_lab.data.validate import RawDataset

NAME = "cold_items"


def hold_out(request: HoldoutRequest) -> Holdout:
    return held_entities(NAME, request, "item")


def covers(cut: Holdout, user: np.ndarray, item: np.ndarray, time: np.ndarray, n_items: int) -> np.ndarray:
    """Every event on a held-out item."""
    assert cut.entities is not None
    return np.isin(item, cut.entities)


def withholds(cut: Holdout, raw: RawDataset) -> np.ndarray:
    """The held-out items."""
    assert cut.entities is not None
    mask = np.zeros(len(raw.items), dtype=bool)
    mask[cut.entities] = True
    return mask


def leakage(split: PreparedSplit) -> dict[str, float]:
    """Known (train or validation) events on test items."""
    events = split.events
    items = np.unique(events.loc[events["part"] == "test", "item"])
    return {"leak_cold_item_train_events": int(split.known.interactions[:, items].nnz)}


def prepared_claims(split: PreparedSplit, checks: Mapping[str, float]) -> Claims:
    return {
        "every test item of a cold-item split is cold": checks["cold_item_share_of_test_items"] == 1.0,
        "held-out items are withheld from training": bool(split.withheld_until_test.sum() > 0),
    }


register(
    SplitKind(
        name=NAME,
        summary="a test_fraction of the items held out whole (features kept, withheld from training)",
        hold_out=hold_out,
        covers=covers,
        withholds=withholds,
        seeded=True,
        leakage=leakage,
        prepared_claims=prepared_claims,
    )
)
