"""A run's results: one tidy table (seed, segment, metric, k, value, interval), its pivot, and typed seed facts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kdq_lab.data.splits import SplitConfig
from kdq_lab.data.store import load_split, prepare
from kdq_lab.errors import KdqError
from kdq_lab.evaluation.metrics import aggregate_columns, per_user_columns
from kdq_lab.runs.records import RunSummary
from kdq_lab.runs.results import COLUMNS, headline_rows, metric_value, read_results, wide
from kdq_lab.runs.run import RunConfig, run, save_run

KS = (5, 10)


@pytest.fixture(scope="module")
def two_seeds(tiny_catalog, tmp_path_factory):
    processed = tmp_path_factory.mktemp("processed")
    splits = {
        seed: load_split(prepare(tiny_catalog, SplitConfig(kind="cold_users", seed=seed), processed)) for seed in (1, 2)
    }
    config = RunConfig(
        run="pop", model="popularity", split="cold", ks=KS, bootstrap_samples=200,
        segments={"by_feature": ["occupations", "age_band"]}, exposure="creator",
    )  # fmt: skip
    return run(config, splits)


def test_the_table_is_tidy_and_typed(two_seeds):
    table = two_seeds.results
    assert tuple(table.columns) == COLUMNS
    assert str(table["k"].dtype) == "Int64" and table.loc[table["metric"] == "auc", "k"].isna().all()
    assert set(table["seed"]) == {"1", "2", "mean", "std"}
    assert not table.duplicated(["seed", "segment", "metric", "k"]).any(), "one row per seed × segment × metric × k"
    columns = set(wide(table).columns)
    assert set(per_user_columns(KS)) | set(aggregate_columns(KS)) <= columns, "exposure metrics too: creator named"
    gini = table[(table["metric"] == "exposure_gini") & (table["seed"] == "1")]["value"]
    assert len(gini) == len(KS) and gini.between(0, 1).all()


def test_all_rows_are_the_per_user_means_and_pooled_rows_their_mean_and_spread(two_seeds):
    table = wide(two_seeds.results).set_index(["seed", "segment"])
    metrics = per_user_columns(KS)
    for seed in two_seeds.seeds:
        frame = seed.per_user
        np.testing.assert_allclose(table.loc[(str(seed.seed), "all"), metrics], frame[metrics].mean(), rtol=1e-12)
        new = frame[frame["n_train"] == 0]
        assert table.loc[(str(seed.seed), "new"), "n_users"] == len(new)
        np.testing.assert_allclose(table.loc[(str(seed.seed), "new"), metrics], new[metrics].mean(), rtol=1e-12)
    both = table.xs("all", level="segment").loc[["1", "2"], metrics]
    np.testing.assert_allclose(table.loc[("mean", "all"), metrics], both.mean(), rtol=1e-12)
    np.testing.assert_allclose(table.loc[("std", "all"), metrics], both.std(ddof=1), rtol=1e-12)
    assert table.loc[("std", "all"), [f"{m}_lo" for m in metrics]].isna().all(), "a spread has no interval"


def test_feature_segments_count_multi_valued_users_in_each_group(two_seeds):
    seed = two_seeds.seeds[0]
    results = two_seeds.results
    rows = results[(results["seed"] == str(seed.seed)) & (results["metric"] == "ndcg") & (results["k"] == 10)]
    n_users = rows.set_index("segment")["n_users"]
    users = seed.split.users.iloc[seed.per_user["user"].to_numpy()]
    listed = users["occupations"].fillna("").map(lambda text: [v for v in text.split("|") if v])
    for value, count in listed.explode().dropna().value_counts().items():
        assert n_users[f"occupations:{value}"] == count, value
    by_count = listed.map(len).clip(upper=3)
    for n, count in by_count.value_counts().items():
        assert n_users[f"occupations:count={n}{'+' if n == 3 else ''}"] == count
    ages = [s for s in n_users.index if s.startswith("age_band:")]
    assert n_users[ages].sum() == n_users["all"] == len(seed.per_user)


def test_saved_results_and_facts_read_back(two_seeds, tmp_path):
    save_run(two_seeds, tmp_path / "run", save_model=False)
    back = read_results(tmp_path / "run")
    pd.testing.assert_frame_equal(back, two_seeds.results)
    summary = RunSummary.read(tmp_path / "run" / "summary.json")
    assert summary == two_seeds.summary and summary.seed(2).split_id == two_seeds.seeds[1].split.split_id
    assert summary.segments == {"by_feature": ["occupations", "age_band"]}
    value, lo, hi = metric_value(back, "ndcg@10")
    assert lo <= value <= hi and len(headline_rows(back)) and (headline_rows(back)["seed"] == "mean").all()


@pytest.mark.parametrize("drop", ["metric", "k", "lo"])
def test_a_results_table_without_a_column_is_refused_by_name(two_seeds, tmp_path, drop):
    folder = tmp_path / drop
    folder.mkdir()
    two_seeds.results.drop(columns=drop).to_parquet(folder / "results.parquet")
    with pytest.raises(KdqError, match=f"results.parquet.*lacks column.*{drop}"):
        read_results(folder)


def test_a_summary_with_untyped_seeds_is_refused(two_seeds, tmp_path):
    path = two_seeds.summary.write(tmp_path / "summary.json")
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('"fit_seconds"', '"fit_secs"'), encoding="utf-8")
    with pytest.raises(KdqError, match="lacks fit_seconds"):
        RunSummary.read(path)
