"""``global_temporal``: one cutoff time for everyone; pairs first seen at or after it are held out.

The cutoff is the ``cutoff`` option, or the ``1 - test_fraction`` quantile of event times (always
the quantile when validation is carved). Later events of train pairs are dropped. Items published
at or after the cutoff (when items have a timestamp) did not exist at training time: they are
withheld from training and scored from their features, as new items.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from kdq_lab.data.splits.common import after_cutoff, covers_after_cutoff, pair_table, seconds
from kdq_lab.data.splits.registry import Holdout, HoldoutRequest, PreparedSplit, SplitKind, SplitOptions, register
from kdq_lab.data.validate import RawDataset
from kdq_lab.errors import KdqError

NAME = "global_temporal"


@dataclass(frozen=True)
class GlobalTemporalOptions(SplitOptions):
    """``cutoff``: an ISO 8601 time (without a zone: UTC), or ``None`` for the quantile.

    YAML reads an unquoted time as a date-time: it is kept as its ISO 8601 text.
    """

    cutoff: str | None = field(default=None, metadata={"help": "ISO 8601 cutoff time (default: a quantile)"})

    def __post_init__(self) -> None:
        if isinstance(self.cutoff, datetime.date):
            object.__setattr__(self, "cutoff", self.cutoff.isoformat())
        if self.cutoff is None:
            return
        try:
            datetime.datetime.fromisoformat(self.cutoff)  # ISO 8601 only: pandas would also read "now"
            pd.Timestamp(self.cutoff)
        except (ValueError, TypeError, OverflowError):
            raise KdqError(
                f"cutoff {self.cutoff!r} is not a date-time; expected ISO 8601, e.g. 2026-06-01T00:00:00+09:00"
            ) from None

    def seconds(self) -> int | None:
        """The cutoff in Unix seconds (a time without a zone is UTC), or ``None``."""
        if self.cutoff is None:
            return None
        stamp = pd.Timestamp(self.cutoff)
        return int((stamp if stamp.tzinfo else stamp.tz_localize("UTC")).timestamp())


def hold_out(request: HoldoutRequest) -> Holdout:
    """Everyone's cutoff is the same time."""
    assert isinstance(request.options, GlobalTemporalOptions)
    n_users, n_items = request.shape
    limit = request.options.seconds()
    if limit is None:
        limit = int(np.quantile(request.events["time"].to_numpy(), 1 - request.fraction, method="higher"))
    pairs, pair_of = pair_table(request.events, n_items)
    return after_cutoff(NAME, request.events, pairs, pair_of, np.full(n_users, limit, dtype=np.int64))


def withholds(cut: Holdout, raw: RawDataset) -> np.ndarray | None:
    """Items published at or after the cutoff (none when items have no timestamp)."""
    if cut.cutoff is None or not raw.spec.items.timestamp:
        return None
    return seconds(raw.items[raw.spec.items.timestamp]) >= cut.cutoff[0]


def leakage(split: PreparedSplit) -> dict[str, float]:
    """Train and validation events at or after the first test event."""
    events = split.events
    tested = events[events["part"] == "test"]
    earlier = events[events["part"] != "test"]
    return {"leak_future_train_events": int((earlier["time"] >= tested["time"].min()).sum()) if len(tested) else 0}


register(
    SplitKind(
        name=NAME,
        summary="one cutoff time (cutoff, or the 1 - test_fraction quantile of event times)",
        hold_out=hold_out,
        covers=covers_after_cutoff,
        options=GlobalTemporalOptions,
        withholds=withholds,
        leakage=leakage,
    )
)
