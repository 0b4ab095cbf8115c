"""The known answer: a catalog in which one occupation behaves at random is flagged for that group, and only then.

ItemKNN on a random split of the default-scale catalog (5,000 users: every occupation has 75+ test users), with
and without ``Plant(random_occupation="대학생")``; the oracle gives each group's ceiling.
"""

from __future__ import annotations

import pandas as pd
import pytest

from kdq_lab.data.catalog import generate_catalog
from kdq_lab.data.plants import Plant
from kdq_lab.data.splits import SplitConfig
from kdq_lab.data.store import load_split, prepare
from kdq_lab.report.comparison import load_runs
from kdq_lab.report.fairness import fairness_table, group_quality, group_values
from kdq_lab.runs.run import RunConfig, run

PLANTED = "대학생"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("plant", "flagged"), [(Plant(random_occupation=PLANTED), [f"occupations:{PLANTED}"]), (Plant(), [])]
)
def test_the_planted_group_and_only_it_is_flagged(tmp_path, plant, flagged):
    catalog = generate_catalog(tmp_path / "kdq-default", scale="default", seed=7, progress=False, plant=plant)
    splits = {42: load_split(prepare(catalog, SplitConfig(kind="random", seed=42), tmp_path / "processed"))}
    results = {
        model: run(RunConfig(run=model, model=model, split="random", bootstrap_samples=100), splits)
        for model in ("itemknn", "oracle")
    }
    stacked = group_values(
        results["itemknn"].per_user(), splits, "ndcg@10", ["occupations"], results["oracle"].per_user()
    )
    found = group_quality("occupations", stacked.values, stacked.groups, stacked.ceiling, n_boot=300, n_perm=2000)
    assert len(found) >= 20 and all(g.n_users >= 30 for g in found), "the default scale: every occupation a group"
    assert [g.group for g in found if g.flagged()] == flagged, [(g.group, g.n_users, g.gap, g.p_holm) for g in found]


@pytest.mark.slow
def test_the_report_table_covers_every_run_but_the_ceiling_and_shares_its_users(smoke_report):
    info, records = load_runs(smoke_report)
    table = fairness_table(smoke_report, info, records, ["coding_experience", "age_band"], n_perm=200)
    assert set(table["run"]) == {"popularity", "lightfm_hybrid"}, "the oracle is the ceiling, not a contender"
    assert set(table["column"]) == {"coding_experience", "age_band"}
    assert (table.loc[~table["group"].str.endswith(":other"), "n_users"] >= 30).all(), "small groups are pooled"
    assert table["share"].notna().all(), "the oracle ran on the same users"
    assert ((table["lo"] <= table["mean"]) & (table["mean"] <= table["hi"])).all()
    per_user = pd.read_parquet(smoke_report / "runs" / "popularity__global" / "metrics.parquet")
    rows = table[(table["run"] == "popularity") & (table["split"] == "global")]
    assert len(rows) > 0
    for column, groups in rows.groupby("column"):  # single-valued columns: the groups (other included) partition
        assert groups["n_users"].sum() == len(per_user), column
