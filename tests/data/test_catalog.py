"""The built-in KDQ catalog: deterministic, realistic, cold start common, ground truth attached."""

from __future__ import annotations

import filecmp
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from kdq_lab.data import catalog
from kdq_lab.data.catalog import GroundTruth, generate_catalog
from kdq_lab.data.validate import load_dataset

FILES = [
    "users.csv",
    "items.csv",
    "interactions.csv",
    "dataset.yaml",
    "ground_truth/users.parquet",
    "ground_truth/items.parquet",
    "ground_truth/params.json",
]


def test_same_seed_gives_byte_identical_files(tiny_catalog, tmp_path):
    again = generate_catalog(tmp_path / "kdq-tiny", scale="tiny", seed=7, progress=False)
    for name in FILES:
        assert filecmp.cmp(tiny_catalog / name, again / name, shallow=False), name


def test_other_seed_gives_other_data(tiny_catalog, tmp_path):
    other = generate_catalog(tmp_path / "other", scale="tiny", seed=8, progress=False)
    assert not filecmp.cmp(tiny_catalog / "interactions.csv", other / "interactions.csv", shallow=False)


@pytest.fixture(scope="module")
def raw(tiny_catalog):
    return load_dataset(tiny_catalog)


def test_items_look_like_kdq(raw):
    items = raw.items
    assert set(items["content_type"]) == {"강의", "아티클", "인터뷰", "영상", "행사", "커뮤니티 글"}
    topics = set(items["topics"].str.split("|").explode())
    assert {"AI 영상", "AI 음악", "생성형 AI 기초", "웹 서비스 만들기", "교육·접근성"} <= topics
    tags = set(items["tags"].str.split("|").explode())
    assert tags & {"해커톤", "AI 영화제", "워크숍"}
    assert set(items["price"]) == {"무료", "유료"}
    assert items["title"].str.contains("[가-힣]").all() and items["title_en"].str.match("[A-Za-z\\[]").all()


def test_users_have_njob_profiles_and_goals(raw):
    users = raw.users
    jobs = users["occupations"].str.split("|").str.len()
    assert 0.1 < (jobs > 1).mean() < 0.5
    assert users["goals"].str.contains("AI로 영화 만들기|AI 음악 발매|나만의 웹 서비스 만들기|이직|부업").any()
    assert set(users["coding_experience"]) <= {"없음", "입문", "중급", "현업"}


def test_events_follow_signup_and_publication(raw):
    events = raw.interactions
    signup = raw.users.set_index("user_id")["signed_up_at"].reindex(events["user_id"]).to_numpy()
    published = raw.items.set_index("item_id")["published_at"].reindex(events["item_id"]).to_numpy()
    assert (events["timestamp"].to_numpy() >= signup).all()
    assert (events["timestamp"].to_numpy() >= published).all()
    assert set(events["event"]) == {"view", "like", "save", "enroll", "complete"}


def test_cold_start_is_common_and_popularity_long_tailed(raw):
    users, events = raw.users, raw.interactions
    recent = users["signed_up_at"] > users["signed_up_at"].max() - pd.Timedelta(days=catalog.RECENT_DAYS)
    per_user = events.groupby("user_id").size().reindex(users["user_id"]).fillna(0).to_numpy()
    assert recent.mean() > 0.1
    assert per_user[recent.to_numpy()].max() <= catalog.RECENT_MAX_EVENTS
    assert (per_user == 0).mean() > 0.05
    popularity = np.sort(events[events["positive"]].groupby("item_id").size().to_numpy())[::-1]
    top_fifth = popularity[: max(1, len(raw.items) // 5)].sum() / popularity.sum()
    assert top_fifth > 0.45


def test_ground_truth_explains_positives(raw, tiny_catalog):
    truth = GroundTruth.load(tiny_catalog / "ground_truth")
    assert list(truth.user_ids) == list(raw.users["user_id"])
    scores = truth.scores(np.arange(len(truth.user_ids)))
    positives = raw.interactions[raw.interactions["positive"]]
    rows = truth.user_ids.get_indexer(positives["user_id"])
    cols = truth.item_ids.get_indexer(positives["item_id"])
    ranks = (scores[rows] > scores[rows, cols][:, None]).sum(axis=1)
    # positives sit far above a random item's expected rank (half the catalog)
    assert np.median(ranks) < 0.25 * len(truth.item_ids)


def test_chunked_generation_is_valid_and_bounded(tmp_path, monkeypatch):
    small = replace(catalog.SCALES["tiny"], users=900, chunk_users=300)
    monkeypatch.setitem(catalog.SCALES, "tiny", small)
    folder = generate_catalog(tmp_path / "chunked", scale="tiny", seed=3, progress=False)
    raw = load_dataset(folder)
    assert len(raw.users) == 900 and raw.users["user_id"].is_unique
    assert len(GroundTruth.load(folder / "ground_truth").user_ids) == 900


@pytest.mark.slow  # generates the large scale's 100,000 items
def test_large_scale_meets_the_contract(tmp_path, monkeypatch):
    """The large scale, generated as large is (items and exposure rate as in large, users in chunks), but with
    fewer users: the rate of events per user must extrapolate to the contract's ~22M events for 1.2M users, and
    no chunk may hold more users than the chunk size."""
    large = catalog.SCALES["large"]
    assert large.users >= 1_000_000 and large.items >= 100_000 and large.chunk_users <= 100_000
    sample = replace(large, users=3_000, chunk_users=1_000)
    monkeypatch.setitem(catalog.SCALES, "large", sample)
    chunks: list[int] = []
    make_users = catalog._make_users
    monkeypatch.setattr(
        catalog, "_make_users", lambda first, n, rng, plant: chunks.append(n) or make_users(first, n, rng, plant)
    )
    folder = generate_catalog(tmp_path / "large-sample", scale="large", seed=7, progress=False)
    assert chunks == [1_000, 1_000, 1_000], "users are generated chunk by chunk"
    raw = load_dataset(folder)
    assert len(raw.items) == large.items and len(raw.users) == 3_000
    per_user = len(raw.interactions) / len(raw.users)
    assert per_user * large.users >= 20_000_000, f"{per_user:.1f} events per user cannot reach ~22M events"
