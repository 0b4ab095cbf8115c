"""Known answer for the switch's threshold: higher when the profile carries the signal than when history does."""

from __future__ import annotations

import pytest

from kdq_lab.data.catalog import generate_catalog
from kdq_lab.data.plants import PROFILE_COLUMNS, Plant
from kdq_lab.data.splits import SplitConfig
from kdq_lab.data.store import load_split, prepare
from kdq_lab.models import TrainData, make_model

LIGHTFM = {"epochs": 30, "patience": 3, "random_state": 1}
PARTS = {
    "cold": {"model": "lightfm", "params": LIGHTFM | {"features": "both", "identity": True, "normalize": "l1"}},
    "warm": {"model": "lightfm", "params": LIGHTFM | {"features": "ids"}},
}


@pytest.mark.slow
def test_the_tuned_threshold_is_higher_when_the_profile_carries_the_signal(tmp_path):
    tuned = {}
    for name, plant in {"profile": Plant(hidden_taste=0.0), "history": Plant(inert_fields=PROFILE_COLUMNS)}.items():
        catalog = generate_catalog(tmp_path / name, scale="small", seed=7, progress=False, plant=plant)
        config = {"kind": "user_temporal", "test_fraction": 0.2, "validation_fraction": 0.2, "seed": 1}
        split = load_split(prepare(catalog, SplitConfig.from_dict(config), tmp_path / "processed"))
        tuned[name] = make_model("switch", PARTS).fit(TrainData.from_split(split)).min_history_
    assert tuned["profile"] > tuned["history"]
    assert tuned["profile"] >= 2  # light users, not only new ones, go to the profile part
