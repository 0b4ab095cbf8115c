"""The Findings' "for whom" lines on hand-made tables: groups below the rest and creator exposure, numbers as in the
CSV files the report writes, the no-group case, and escaped names."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import pytest

from kdq_lab.report.fairness import TABLE_COLUMNS
from kdq_lab.report.findings import compute_findings
from kdq_lab.report.findings_html import findings_html
from kdq_lab.runs.records import ExperimentInfo

METRIC = "ndcg@10"
GINI = "exposure_gini@10"
RUNS = {"popularity": ("popularity", "Popularity"), "knn": ("itemknn", "ItemKNN"), "ease": ("ease", "EASE")}


def make_info(seeds: list[int]) -> ExperimentInfo:
    return ExperimentInfo(
        name="t",
        title="q",
        dataset="d",
        k=[10],
        metric=METRIC,
        reference="popularity",
        seeds=seeds,
        refit=True,
        exclude="seen",
        bootstrap={"samples": 100, "seed": 0},
        splits={"cold": {}},
        runs=[
            {"run": r, "label": lab, "model": m, "params": {}, "split": "cold", "seeds": seeds, "folder": f"{r}"}
            for r, (m, lab) in RUNS.items()
        ],
    )


def make_tables(ginis: dict[str, list[float]]) -> tuple[dict, pd.DataFrame]:
    """Per-user tables and comparison rows (one per seed, plus the mean row over several seeds) with ``GINI``."""
    rng = np.random.default_rng(0)
    seeds = list(range(1, len(next(iter(ginis.values()))) + 1))
    per_user, rows = {}, []
    for i, (run, values) in enumerate(ginis.items()):
        table = pd.DataFrame(
            {
                "user": np.tile(np.arange(50), len(seeds)),
                "seed": np.repeat(seeds, 50),
                "returning": "returning",
                METRIC: rng.random(50 * len(seeds)) * 0.1 + 0.1 * i,
            }
        )
        per_user[(run, "cold")] = table
        value = float(table[METRIC].mean())
        named = [(str(s), g) for s, g in zip(seeds, values)]
        named += [("mean", float(np.mean(values)))] if len(seeds) > 1 else []
        for seed, gini in named:
            rows.append({
                "run": run, "label": RUNS[run][1], "model": RUNS[run][0], "split": "cold", "seed": seed,
                "segment": "all", "status": "ok", "n_users": 50, METRIC: value, f"{METRIC}_lo": value - 0.01,
                f"{METRIC}_hi": value + 0.01, GINI: gini,
            })  # fmt: skip
    return per_user, pd.DataFrame(rows)


def group_table(flagged: dict[str, tuple[float, float]], groups: tuple[str, ...]) -> pd.DataFrame:
    """A fairness table for runs knn and ease: ``flagged`` maps a group to (gap, p_holm) for knn."""
    rows = []
    for run, shift in (("knn", 0.0), ("ease", 0.0371)):
        for j, group in enumerate(groups):
            gap, p = flagged.get(group, (0.0123 + 0.001 * j, 0.61))
            mean = 0.2 + 0.01 * j + shift
            rows.append({
                "run": run, "label": RUNS[run][1], "split": "cold", "column": "occupations", "group": group,
                "n_users": 40 + j, "mean": mean, "lo": mean - 0.02, "hi": mean + 0.02, "rest": mean - gap, "gap": gap,
                "gap_lo": gap - 0.0211, "gap_hi": gap + 0.0187, "p_perm": p / 3, "p_holm": p, "share": 0.5,
                "share_lo": 0.4, "share_hi": 0.6, "flagged": run == "knn" and group in flagged, "pooled": "",
            })  # fmt: skip
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def written(table: pd.DataFrame, tmp_path, name: str) -> pd.DataFrame:
    """The table as the report writes and a reader reads it back."""
    table.to_csv(tmp_path / name, index=False)
    return pd.read_csv(tmp_path / name)


def for_whom(fairness: pd.DataFrame | None, ginis: dict[str, list[float]]) -> tuple[list[str], str]:
    per_user, comparison = make_tables(ginis)
    found = compute_findings(make_info(sorted({1, len(next(iter(ginis.values())))})), comparison, per_user, fairness)
    page = findings_html(found)
    return list(found.for_whom), page


PLAIN = {"popularity": [0.9, 0.91], "knn": [0.5, 0.52], "ease": [0.6, 0.61]}


@pytest.mark.parametrize(
    "flagged",
    [
        {"occupations:대학생": (-0.1493, 0.0281)},
        {"occupations:교사": (-0.0412, 0.0049)},
        {"occupations:대학생": (-0.0731, 0.0102), "occupations:other": (-0.0555, 0.0333)},
    ],
)
def test_flagged_groups_are_named_with_the_fairness_csv_numbers_and_their_best_run(flagged, tmp_path):
    groups = ("occupations:대학생", "occupations:교사", "occupations:other")
    table = written(group_table(flagged, groups), tmp_path, "fairness.csv")
    sentences, page = for_whom(table, PLAIN)
    assert len([s for s in sentences if "낮다" in s]) == len(flagged)
    for group in flagged:
        row = table[(table["group"] == group) & table["flagged"]].iloc[0]
        (said,) = [s for s in sentences if f" {group} 사용자" in s]
        for value in (-row["gap"], row["gap"], row["gap_lo"], row["gap_hi"], row["p_holm"]):
            assert f"{value:.4f}" in said, (value, said)
        best = table[table["group"] == group].sort_values("mean").iloc[-1]
        assert best["label"] == "EASE", "the run serving the group best"
        assert f"EASE ({best['mean']:.4f}, 95% 구간 [{best['lo']:.4f}, {best['hi']:.4f}])" in said
        assert html.escape(said) in page
    assert page.index("for whom") < page.index("best run per split")


@pytest.mark.parametrize("groups", [("occupations:a", "occupations:b"), ("occupations:대학생",)])
def test_no_group_significantly_below_is_stated(groups, tmp_path):
    table = written(group_table({}, groups), tmp_path, "fairness.csv")
    sentences, page = for_whom(table, PLAIN)
    assert sentences[0].startswith("분할 cold: 어떤 occupations 집단도") and "유의하게 낮지 않다" in sentences[0]
    assert "no occupations group is significantly below" in page
    assert not any("낮다 (차이" in s for s in sentences), "no group is named"


@pytest.mark.parametrize("label", ["<script>alert(1)</script>", '"&quot;<b>', "a'<img src=x onerror=y>"])
def test_group_labels_are_escaped_in_the_findings(label, tmp_path):
    group = f"occupations:{label}"
    table = written(group_table({group: (-0.1, 0.01)}, (group, "occupations:b")), tmp_path, "fairness.csv")
    _, page = for_whom(table, PLAIN)
    assert label not in page and html.escape(group) in page


def test_without_a_fairness_table_only_the_exposure_lines_are_said():
    sentences, page = for_whom(None, PLAIN)
    assert len(sentences) == 1 and "Gini@10" in sentences[0] and "for whom" in page
    per_user, comparison = make_tables(PLAIN)
    assert "for whom" not in findings_html(
        compute_findings(make_info([1, 2]), comparison.drop(columns=GINI), per_user)
    ), "nothing to say: no section"


@pytest.mark.parametrize(
    ("ginis", "above", "beyond"),
    [
        ({"popularity": [0.80, 0.82], "knn": [0.90, 0.91], "ease": [0.5, 0.6]}, "ItemKNN", "ItemKNN"),
        ({"popularity": [0.80, 0.86], "knn": [0.84, 0.90], "ease": [0.5, 0.6]}, "ItemKNN", "none"),
        ({"popularity": [0.80, 0.82], "knn": [0.90, 0.91], "ease": [0.81, 0.95]}, "ItemKNN, EASE", "ItemKNN"),
        ({"popularity": [0.80], "knn": [0.90], "ease": [0.95]}, "ItemKNN, EASE", "none"),
        ({"popularity": [0.95, 0.96], "knn": [0.90, 0.91], "ease": [0.5, 0.6]}, "none", "none"),
    ],
)
def test_exposure_above_popularity_is_beyond_the_seed_spread_only_when_every_seed_is(ginis, above, beyond, tmp_path):
    per_user, comparison = make_tables(ginis)
    comparison = written(comparison, tmp_path, "comparison.csv").astype({"seed": str})
    found = compute_findings(make_info(list(range(1, len(ginis["knn"]) + 1))), comparison, per_user)
    (said,) = found.for_whom
    assert f"more than popularity: {above};" in said
    assert f"every seed above every seed of popularity: {beyond};" in said
    assert "point comparison" in said and "no interval over users" in said
    shown = comparison[comparison["seed"] == ("mean" if len(ginis["knn"]) > 1 else "1")]
    for _, row in shown.iterrows():
        assert f"{row['label']} {row[GINI]:.4f}" in said, "each run's Gini as comparison.csv has it"
