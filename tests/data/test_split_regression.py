"""Splits put exactly the same events in the same parts as the split code of int18 did (so no metric moves).

``fixtures/split_parts.npz`` holds, per case, what that code made (written once, with that code, by
``fixtures/make_split_parts.py``, which stays in the git history of that path): the part of every positive
event (-1: dropped), for every interaction row whether its pair is seen before validation and before test,
and the items withheld until test and until validation. Split ids (hashes) may change; these may not.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from split_fixture import with_predefined

from kdq_lab.data.movielens import import_movielens
from kdq_lab.data.splits import SplitConfig, positive_events, seen_pairs, split_events, withheld_items
from kdq_lab.data.splits.common import positions
from kdq_lab.data.validate import load_dataset

FIXTURE = Path(__file__).parent / "fixtures" / "split_parts.npz"
CUTOFF = "2026-06-01T00:00:00+09:00"

CASES: dict[str, tuple[str, dict]] = {
    **{
        f"{kind}-{variant}": ("tiny", {"kind": kind, **settings})
        for kind in ("random", "user_temporal", "global_temporal", "cold_users", "cold_items")
        for variant, settings in {
            "default": {},
            "no-validation": {"seed": 7, "test_fraction": 0.3, "validation_fraction": 0.0},
            "large-validation": {"seed": 3, "test_fraction": 0.25, "validation_fraction": 0.3},
        }.items()
    },
    "global_temporal-cutoff": ("tiny", {"kind": "global_temporal", "cutoff": CUTOFF, "validation_fraction": 0.15}),
    "global_temporal-naive-cutoff": ("tiny", {"kind": "global_temporal", "cutoff": "2026-05-01T00:00:00"}),
    "user_temporal-likes-saves": ("tiny", {"kind": "user_temporal", "positive_events": ["like", "save"]}),
    "random-min-weight": ("tiny", {"kind": "random", "seed": 11, "positive_min_weight": 3.0}),
    "predefined-carved": ("tiny", {"kind": "predefined", "predefined": "fixed", "validation_fraction": 0.1}),
    "predefined-no-validation": ("tiny", {"kind": "predefined", "predefined": "fixed", "validation_fraction": 0.0}),
    "predefined-file-validation": (
        "tiny",
        {"kind": "predefined", "predefined": "with_validation", "validation_fraction": 0.0},
    ),
    "ml100k-ua": (
        "ml100k",
        {"kind": "predefined", "predefined": "ua", "positive_min_weight": 4.0, "validation_fraction": 0.0},
    ),
    "ml100k-ua-carved": ("ml100k", {"kind": "predefined", "predefined": "ua", "validation_fraction": 0.3}),
    "ml100k-cold-users": ("ml100k", {"kind": "cold_users", "positive_min_weight": 4.0}),
    "ml100k-temporal": ("ml100k", {"kind": "user_temporal", "positive_min_weight": 4.0}),
}


def digest(events: pd.DataFrame) -> np.ndarray:
    """SHA-256 of the positive events (user and item positions, time): the input a case was split from."""
    data = np.ascontiguousarray(events[["user", "item", "time"]].to_numpy(np.int64))
    return np.frombuffer(hashlib.sha256(data.tobytes()).digest(), dtype=np.uint8)


@pytest.fixture(scope="module")
def datasets(tiny_catalog, ml100k_source, tmp_path_factory):
    root = tmp_path_factory.mktemp("regression")
    return {
        "tiny": load_dataset(with_predefined(tiny_catalog, root / "tiny")),
        "ml100k": load_dataset(import_movielens(ml100k_source, root / "ml")),
    }


@pytest.fixture(scope="module")
def expected():
    with np.load(FIXTURE) as data:
        return {name: data[name] for name in data.files}


def seen_rows(raw, cut, periods: tuple[str, ...]) -> np.ndarray:
    """For every interaction row, whether its pair is seen in ``periods``."""
    user, item = positions(raw.interactions)
    n_items = len(raw.items)
    seen_user, seen_item = seen_pairs(raw, cut, periods)
    return np.isin(user.astype(np.int64) * n_items + item, seen_user.astype(np.int64) * n_items + seen_item)


def test_every_case_is_in_the_fixture(expected):
    assert {name.split("/")[0] for name in expected} == set(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_parts_as_before(case, datasets, expected):
    dataset, settings = CASES[case]
    raw = datasets[dataset]
    config = SplitConfig.from_dict(settings)
    events = positive_events(raw, config)
    np.testing.assert_array_equal(digest(events), expected[f"{case}/events"], "the input changed, not the split")
    cut = split_events(raw, config)
    part = expected[f"{case}/part"]
    kept = events[part >= 0].reset_index(drop=True)
    np.testing.assert_array_equal(cut.events[["user", "item", "time"]].to_numpy(), kept[["user", "item", "time"]])
    np.testing.assert_array_equal(cut.events["part"].cat.codes.to_numpy(), part[part >= 0])
    n_rows = len(raw.interactions)
    for periods, name in ((("train",), "seen_train"), (("train", "validation"), "seen_known")):
        np.testing.assert_array_equal(seen_rows(raw, cut, periods), np.unpackbits(expected[f"{case}/{name}"])[:n_rows])
    until_test, until_validation = withheld_items(raw, cut)
    np.testing.assert_array_equal(until_test, expected[f"{case}/withheld_until_test"])
    np.testing.assert_array_equal(until_validation, expected[f"{case}/withheld_until_validation"])
