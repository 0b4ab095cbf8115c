"""Comparison tables from hand-made run records: per-seed rows, mean and spread over seeds, pooled paired tests."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from kdq_lab.evaluation.metrics import per_user_columns
from kdq_lab.evaluation.resolution import minimum_detectable_effect
from kdq_lab.report.comparison import (
    comparison_table,
    headline,
    load_runs,
    markdown,
    paired_table,
    summary_rows,
    write_comparison,
)
from kdq_lab.report.html import paired_tables
from kdq_lab.runs.records import ExperimentInfo, RunStatus, RunSummary, SeedFacts
from kdq_lab.runs.results import frame, write_results

KS = [10]
METRICS = per_user_columns(KS)


def facts(seed: int, ties: int) -> SeedFacts:
    return SeedFacts(
        seed=seed, split_id=f"s{seed}", split_folder=f"/x/s{seed}", params={}, n_users=4, n_test_users=4,
        n_test_positives=4, dropped_seen=1, fit_seconds=1.0, eval_seconds=0.5, best_epoch=None,
        validation_share=None, ties={"ties@10": ties}, hits_by_popularity={},
    )  # fmt: skip


def results(run: str, values: dict[int, float]) -> pd.DataFrame:
    """A hand-made results table: per seed segments all (4 users) and new (2), coverage; mean and std rows."""
    rows = []
    mean = float(np.mean(list(values.values())))
    std = float(np.std(list(values.values()), ddof=1)) if len(values) > 1 else float("nan")
    pooled = {"mean": (mean, mean - 0.1, mean + 0.1), "std": (std, np.nan, np.nan)} if len(values) > 1 else {}
    seeds = {str(seed): (value, value - 0.1, value + 0.1) for seed, value in values.items()} | pooled
    for seed, (value, lo, hi) in seeds.items():
        for segment, n in (("all", 4), ("new", 2)):
            for column in METRICS:
                name, _, k = column.partition("@")
                rows.append({"run": run, "split": "cold", "seed": seed, "segment": segment, "metric": name,
                             "k": int(k) if k else None, "value": value, "lo": lo, "hi": hi, "n_users": n})  # fmt: skip
        rows.append({"run": run, "split": "cold", "seed": seed, "segment": "all", "metric": "coverage", "k": 10,
                     "value": value, "lo": np.nan, "hi": np.nan, "n_users": 4})  # fmt: skip
    return frame(rows)


def summary(run: str, values: dict[int, float], ties: int = 0) -> RunSummary:
    return RunSummary(
        run=run, label=run, model="popularity", params={}, split="cold", split_config={}, seeds=list(values),
        dataset="d", raw_hashes={}, k=KS, metric="ndcg@10", exclude="seen", refit=True,
        per_seed=tuple(facts(seed, ties) for seed in values), deterministic=True, versions={},
    )  # fmt: skip


def info(seeds: list[int], runs: list[str], reference: str | None = "pop") -> ExperimentInfo:
    return ExperimentInfo(
        name="t", title="<b>t</b>", dataset="d", k=KS, metric="ndcg@10", reference=reference, seeds=seeds,
        refit=True, exclude="seen", bootstrap={"samples": 200, "seed": 0}, splits={"cold": {}},
        runs=[{"run": r, "label": r, "model": "popularity", "params": {}, "split": "cold", "seeds": seeds,
               "folder": f"{r}__cold"} for r in runs],
    )  # fmt: skip


@pytest.fixture
def report(tmp_path):
    """Three seeds: 'pop' and 'better'; 'broken' failed."""
    folder = tmp_path / "report"
    experiment = info([1, 2, 3], ["pop", "better", "broken"])
    experiment.write(folder / "experiment.json")
    rng = np.random.default_rng(0)
    for run, base, ties in (("pop", 0.2, 3), ("better", 0.3, 0)):
        values = {1: base, 2: base + 0.02, 3: base + 0.04}
        summary(run, values, ties).write(folder / "runs" / f"{run}__cold" / "summary.json")
        write_results(results(run, values), folder / "runs" / f"{run}__cold")
        tables = []
        for seed in (1, 2, 3):
            users = np.arange(50) + 25 * seed  # seeds test overlapping users
            table = pd.DataFrame({"user": users, **{m: rng.random(50) * 0.1 + base for m in METRICS}})
            tables.append(table.assign(seed=seed))
        pd.concat(tables).to_parquet(folder / "runs" / f"{run}__cold" / "metrics.parquet")
    RunStatus("failed", "boom", "runs/broken__cold/03_train_evaluate.ipynb").write(
        folder / "runs" / "broken__cold" / "status.json"
    )
    return folder


def test_per_seed_rows_then_mean_and_std(report):
    experiment, records = load_runs(report)
    table = comparison_table(experiment, records)
    pop = table[(table["run"] == "pop") & (table["segment"] == "all")].set_index("seed")
    assert list(pop.index) == ["1", "2", "3", "mean", "std"]
    assert pop.loc["mean", "ndcg@10"] == pytest.approx(0.22)
    assert pop.loc["std", "ndcg@10"] == pytest.approx(0.02)
    assert np.isnan(pop.loc["std", "ndcg@10_lo"]), "a spread has no interval"
    assert pop.loc["mean", "ties@10"] == 9 and pop.loc["mean", "flags"] == "ties@10: 9 users"
    assert pop.loc["1", "flags"] == "ties@10: 3 users"
    assert pop.loc["2", "coverage@10"] == pytest.approx(0.22) and pop.loc["mean", "fit_seconds"] == 1.0
    assert pop.loc["std", "fit_seconds"] == 0.0 and np.isnan(pop.loc["std", "ties@10"]), "ties are summed, not spread"
    new = table[(table["run"] == "pop") & (table["segment"] == "new")].set_index("seed")
    assert list(new.index) == ["1", "2", "3", "mean", "std"] and (new["n_users"] == 2).all()
    assert new["coverage@10"].isna().all() and new["flags"].isna().all(), "list metrics and flags: segment all only"
    assert new.loc["3", "dropped_seen"] == 1, "a seed's facts on every segment"
    broken = table[table["run"] == "broken"].iloc[0]
    assert broken["status"] == "failed" and broken["error"] == "boom" and broken["seed"] == "all"


def test_summary_rows_prefer_the_mean_and_keep_single_seeds(report):
    experiment, records = load_runs(report)
    rows = summary_rows(comparison_table(experiment, records))
    assert sorted(zip(rows["run"], rows["seed"])) == [("better", "mean"), ("broken", "all"), ("pop", "mean")]
    one = comparison_table(info([1], ["pop"]), [r for r in records if r.run == "pop"])
    assert list(summary_rows(one[one["seed"].isin(["1"])])["seed"]) == ["1"]


def test_paired_comparison_per_seed_and_over_all_seeds(report):
    experiment, records = load_runs(report)
    paired = paired_table(experiment, records, ["ndcg@10"])
    rows = paired[paired["run"] == "better"].set_index("seed")
    assert set(rows.index) == {"1", "2", "3", "all"} and "pop" not in set(paired["run"])
    assert rows.loc["1", "n_users"] == 50 and rows.loc["all", "n_users"] == 100, "users of every seed, once each"
    assert rows.loc["all", "diff"] == pytest.approx(0.1, abs=0.02) and rows.loc["all", "lo"] > 0


def test_headline_shows_interval_and_spread(report):
    experiment, records = load_runs(report)
    shown = headline(comparison_table(experiment, records), "ndcg@10").set_index("run")["ndcg@10"]
    assert shown["pop"] == "0.2200 [0.1200, 0.3200] ±0.0200" and shown["broken"] == "failed"


def test_markdown_escapes_pipes_and_rounds():
    text = markdown(pd.DataFrame({"a": ["x|y"], "b": [0.123456], "c": [np.nan]}))
    assert text.splitlines()[2] == "| x\\|y | 0.1235 |  |"


def test_write_comparison_states_the_exclusion_rule(report):
    write_comparison(report)
    text = (report / "comparison.md").read_text(encoding="utf-8")
    assert "every item the user had any event with before the test period" in text
    assert "(mean over seeds, ± between-seed std)" in text
    assert (report / "comparison.csv").is_file() and (report / "paired.csv").is_file()


def test_no_reference_no_paired_table(report):
    experiment, records = load_runs(report)
    assert paired_table(info([1, 2, 3], ["pop", "better"], reference=None), records, ["ndcg@10"]).empty
    assert len(experiment.runs) == 3


@pytest.mark.parametrize("sesoi", [{}, {"ndcg@10": 0.5}, {"ndcg@10": 0.001, "auc": 0.5}])
def test_paired_csv_carries_each_comparisons_resolution(report, sesoi):
    experiment, records = load_runs(report)
    experiment = replace(experiment, sesoi=sesoi)
    paired = paired_table(experiment, records, ["ndcg@10", "auc"])
    for _, row in paired.iterrows():
        # one comparison per split x metric x seed: the family is that one run against the reference
        assert row["mde"] == pytest.approx(float(minimum_detectable_effect(row["sd"], row["n_users"], 0.05)))
        band = sesoi.get(row["metric"])
        assert (np.isnan(row["sesoi"]) and np.isnan(row["p_equivalence"])) if band is None else row["sesoi"] == band
    # 'better' is 0.1 above 'pop' on every seed: different, whatever the band
    assert set(paired["verdict"]) == {"different"}
    write_comparison(report)
    written = pd.read_csv(report / "paired.csv")
    assert {"sd", "mde", "sesoi", "p_equivalence", "p_equivalence_holm", "verdict"} <= set(written.columns)
    assert "| mde | verdict |" in (report / "comparison.md").read_text(encoding="utf-8")
    shown = paired_tables(paired, experiment)
    mde = paired.set_index(["seed", "metric"]).loc[("all", "ndcg@10"), "mde"]
    assert "최소 검출 효과 (MDE)" in shown and f">{mde:.4f}<" in shown and ">different<" in shown
