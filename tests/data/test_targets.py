"""Which items a ranking excludes: ``seen`` (anything the user had an event with before) or ``train_positives``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kdq_lab.data.splits import SplitConfig
from kdq_lab.data.store import SplitData, load_split, prepare
from kdq_lab.data.targets import target
from kdq_lab.errors import KdqError

SPEC = """format_version: 1
name: tiny-views
timestamp_format: unix
users: {file: users.csv, id: user_id, features: {categorical: [job]}}
items: {file: items.csv, id: item_id, features: {categorical: [topic]}}
interactions:
  file: interactions.csv
  user: user_id
  item: item_id
  timestamp: t
  event: event
  event_weights: {view: 1.0, like: 2.0}
  positive_events: [like]
"""
# u1 viewed i1 long ago and liked it last: under `seen`, i1 is no target (KDQ would not offer it again).
# u1 also viewed i5 and never liked it: `seen` excludes it, `train_positives` ranks it.
EVENTS = [
    ("u1", "i1", 100, "view"), ("u1", "i2", 200, "like"), ("u1", "i5", 250, "view"), ("u1", "i3", 300, "like"),
    ("u1", "i4", 600, "like"), ("u1", "i1", 700, "like"),
    ("u2", "i2", 110, "like"), ("u2", "i3", 210, "like"), ("u2", "i6", 220, "view"), ("u2", "i5", 800, "like"),
    ("u3", "i4", 120, "like"), ("u3", "i2", 130, "view"), ("u3", "i6", 400, "like"), ("u3", "i3", 900, "like"),
    ("u4", "i1", 140, "like"), ("u4", "i6", 150, "like"), ("u4", "i3", 160, "view"), ("u4", "i2", 990, "like"),
]  # fmt: skip


def write_dataset(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "dataset.yaml").write_text(SPEC, encoding="utf-8")
    (folder / "users.csv").write_text("user_id,job\nu1,a\nu2,b\nu3,a\nu4,b\n", encoding="utf-8")
    (folder / "items.csv").write_text("item_id,topic\n" + "".join(f"i{i},t{i % 2}\n" for i in range(1, 7)))
    lines = "".join(f"{u},{i},{t},{e}\n" for u, i, t, e in EVENTS)
    (folder / "interactions.csv").write_text("user_id,item_id,t,event\n" + lines, encoding="utf-8")
    return folder


@pytest.fixture
def dataset(tmp_path) -> Path:
    return write_dataset(tmp_path / "tiny-views")


def split_of(dataset: Path, tmp_path: Path, **config) -> SplitData:
    return load_split(prepare(dataset, SplitConfig(validation_fraction=0.0, **config), tmp_path / "processed"))


def pairs(split: SplitData, matrix) -> set[tuple[str, str]]:
    coo = matrix.tocoo()
    return {(split.user_ids[u], split.item_ids[i]) for u, i in zip(coo.row, coo.col)}


def test_seen_drops_reconsumed_targets_and_excludes_views(dataset, tmp_path):
    split = split_of(dataset, tmp_path, kind="user_temporal", test_fraction=0.25)
    assert ("u1", "i1") in pairs(split, split.test.interactions), "u1's last pair, liked after the cutoff"
    seen = target(split, "test", "seen")
    plain = target(split, "test", "train_positives")
    assert ("u1", "i1") in pairs(split, plain.positives) and ("u1", "i1") not in pairs(split, seen.positives)
    assert seen.dropped == 1 and plain.dropped == 0
    assert {("u1", "i5"), ("u1", "i1")} <= pairs(split, seen.exclude), "views before the cutoff are excluded"
    assert ("u1", "i5") not in pairs(split, plain.exclude), "train_positives ranks a merely viewed item"
    assert pairs(split, plain.exclude) <= pairs(split, seen.exclude)
    for goal in (seen, plain):
        assert goal.positives.multiply(goal.exclude).nnz == 0, "nothing is both a target and excluded"
    # a view after the user's cutoff belongs to the test period: never excluded
    assert ("u3", "i2") in pairs(split, seen.exclude)  # viewed at 130, before u3's cutoff (900)
    np.testing.assert_array_equal(seen.history, split.known.interactions.getnnz(axis=1))


def test_new_users_have_seen_nothing(dataset, tmp_path):
    split = split_of(dataset, tmp_path, kind="cold_users", test_fraction=0.5, seed=1)
    test_users = np.flatnonzero(split.test.interactions.getnnz(axis=1))
    assert len(test_users) and split.seen_known[test_users].nnz == 0
    seen, plain = target(split, "test", "seen"), target(split, "test", "train_positives")
    assert seen.dropped == 0 and (seen.positives != plain.positives).nnz == 0


def test_random_split_sees_view_only_pairs_not_held_out_pairs(dataset, tmp_path):
    split = split_of(dataset, tmp_path, kind="random", test_fraction=0.5, seed=3)
    seen = pairs(split, split.seen_known)
    views_only = {("u1", "i5"), ("u2", "i6"), ("u3", "i2"), ("u4", "i3")}
    assert views_only <= seen, "a pair with only views is history in a random split"
    held = pairs(split, split.test.interactions)
    assert not held & seen, "the events of a held-out pair are not history"


def test_validation_target_uses_the_train_period(dataset, tmp_path):
    split = load_split(
        prepare(
            dataset,
            SplitConfig(kind="user_temporal", test_fraction=0.25, validation_fraction=0.5),
            tmp_path / "processed",
        )
    )
    goal = target(split, "validation", "seen")
    assert goal.positives.multiply(goal.exclude).nnz == 0
    assert pairs(split, split.train.interactions) <= pairs(split, goal.exclude)
    assert pairs(split, split.seen_train) <= pairs(split, split.seen_known)


def test_predefined_split_sees_every_rating_of_the_base_part(ml100k_source, tmp_path):
    from kdq_lab.data.movielens import import_movielens

    folder = import_movielens(ml100k_source, tmp_path / "ml")
    config = SplitConfig.from_dict(
        {"kind": "predefined", "predefined": "ua", "positive_min_weight": 4.0, "validation_fraction": 0.0}
    )
    split = load_split(prepare(folder, config, tmp_path / "processed"))
    raw = split.events  # positive events only; low ratings are not positives but are seen
    base_low = pairs(split, split.seen_known) - pairs(split, split.known.interactions)
    assert base_low, "ratings below 4 in ua.base are history: MovieLens protocols exclude every rated item"
    assert not pairs(split, split.seen_known) & pairs(split, split.test.interactions)
    assert len(raw) and target(split, "test", "seen").dropped == 0


def test_unknown_rule_is_refused(dataset, tmp_path):
    split = split_of(dataset, tmp_path, kind="user_temporal")
    with pytest.raises(KdqError, match="seen, train_positives"):
        target(split, "test", "everything")
