"""Segments and statistics: bins, buckets, seeded bootstrap intervals, paired tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kdq_lab.evaluation import bootstrap_ci, by_segment, hits_by_popularity, holm, paired_comparison
from kdq_lab.evaluation.segments import history_segment, popularity_bucket


def test_history_bins_and_new_vs_returning():
    labels = history_segment(np.array([0, 1, 4, 5, 19, 20, 300]))
    assert list(labels) == ["0", "1-4", "1-4", "5-19", "5-19", "20+", "20+"]
    table = pd.DataFrame({"n_train": [0, 0, 3, 25], "ndcg@10": [0.0, 0.2, 0.5, 1.0]})
    out = by_segment(table, "returning", ["ndcg@10"])
    assert out.loc["new", "ndcg@10"] == pytest.approx(0.1) and out.loc["returning", "n_users"] == 2
    history = by_segment(table, "history", ["ndcg@10"])
    assert history.loc["5-19", "n_users"] == 0  # empty segments are kept


def test_popularity_buckets_and_hits():
    popularity = np.arange(20, 0, -1, dtype=float)  # item 0 most popular
    buckets = popularity_bucket(popularity)
    assert (
        list(buckets[:2]) == ["head (top 10%)"] * 2
        and buckets[2] == "mid (next 40%)"
        and buckets[-1].startswith("tail")
    )
    ranks = pd.DataFrame({"user": [0, 0, 1], "item": [0, 15, 19], "rank": [0.0, 3.0, 12.0]})
    table = hits_by_popularity(ranks, popularity, k=5)
    assert table.loc["head (top 10%)", "hits@5"] == 1 and table.loc["tail (last 50%)", "test_items"] == 2
    assert table.loc["tail (last 50%)", "recall@5"] == pytest.approx(0.5)


def test_bootstrap_interval_is_seeded_and_covers_the_mean():
    values = pd.DataFrame({"m": np.random.default_rng(0).random(400)})
    a, b = bootstrap_ci(values, ["m"], seed=1), bootstrap_ci(values, ["m"], seed=1)
    assert a.equals(b)
    row = a.loc["m"]
    assert row["lo"] < row["mean"] < row["hi"] and row["n_users"] == 400
    assert row["hi"] - row["lo"] == pytest.approx(2 * 1.96 * values["m"].std() / 20, rel=0.15)
    wide = bootstrap_ci(values.iloc[:40], ["m"], seed=1).loc["m"]
    assert wide["hi"] - wide["lo"] > row["hi"] - row["lo"]


def test_paired_comparison():
    rng = np.random.default_rng(0)
    base = pd.Series(rng.random(300))
    same = paired_comparison(base, base)
    assert same["diff"] == 0 and same["p_wilcoxon"] == 1.0
    better = paired_comparison(base + rng.normal(0.05, 0.05, 300), base, seed=2)
    assert better["lo"] > 0 and better["p_wilcoxon"] < 1e-6 and better["p_bootstrap"] < 0.01
    noisy = paired_comparison(base + rng.normal(0, 0.3, 300), base, seed=2)
    assert noisy["lo"] < 0 < noisy["hi"]


def test_holm_by_hand():
    # m = 4: sorted 0.01, 0.02, 0.03, 0.5 -> 0.04, 0.06, 0.06 (monotone), 0.5
    adjusted = holm([0.03, 0.01, 0.5, 0.02])
    assert adjusted == pytest.approx([0.06, 0.04, 0.5, 0.06])
    assert holm([0.4, 0.5]) == pytest.approx([0.8, 0.8]), "capped and monotone"
    assert holm([0.9, 0.8, 0.7]).max() == 1.0


def test_holm_skips_nan_and_empty():
    adjusted = holm([0.01, np.nan, 0.04])
    assert adjusted[0] == pytest.approx(0.02) and np.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.04)
    assert holm([]).shape == (0,)
