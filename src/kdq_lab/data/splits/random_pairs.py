"""``random``: a random ``test_fraction`` of the (user, item) pairs is held out."""

from __future__ import annotations

import numpy as np

from kdq_lab.data.splits.common import covers_pairs, pair_keys, pair_table
from kdq_lab.data.splits.registry import Holdout, HoldoutRequest, SplitKind, register

NAME = "random"


def hold_out(request: HoldoutRequest) -> Holdout:
    """Each pair is held out with probability ``fraction``."""
    n_items = request.shape[1]
    pairs, pair_of = pair_table(request.events, n_items)
    held = np.random.default_rng(request.seed).random(len(pairs)) < request.fraction
    keys = pair_keys(pairs["user"].to_numpy()[held], pairs["item"].to_numpy()[held], n_items)
    return Holdout(NAME, held[pair_of].astype(np.int8), pairs=np.sort(keys))


register(
    SplitKind(
        name=NAME,
        summary="a random test_fraction of the user-item pairs",
        hold_out=hold_out,
        covers=covers_pairs,
        seeded=True,
    )
)
