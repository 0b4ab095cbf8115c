"""Quality per group of people on hand-made tables: pooling, multi-valued counting, gaps, Holm, ceiling share."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kdq_lab.report.fairness import (
    TABLE_COLUMNS,
    exposure_sentences,
    fairness_html,
    fairness_sentences,
    group_quality,
    permutation_p,
    pool_small,
)


def groups_of(labels: list[list[str]], column: str = "occupations") -> list[tuple[str, np.ndarray]]:
    values = sorted({v for row in labels for v in row})
    return [(f"{column}:{v}", np.array([i for i, row in enumerate(labels) if v in row])) for v in values]


def test_small_groups_are_pooled_into_other_with_each_user_once():
    labels = [["a"]] * 40 + [["b", "c"]] * 5 + [["c"]] * 3 + [["a", "b"]] * 2
    groups = [*groups_of(labels), ("occupations:count=2", np.arange(40, 45))]
    pooled = {label: (rows, small) for label, rows, small in pool_small(groups, "occupations", min_users=30)}
    assert set(pooled) == {"occupations:a", "occupations:other"}, "count groups are not groups of people"
    rows, small = pooled["occupations:other"]
    assert small == ("occupations:b", "occupations:c")
    assert sorted(rows) == list(range(40, 50)), "users listing both b and c are in other once"
    assert len(pooled["occupations:a"][0]) == 42


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_group_below_the_rest_is_flagged_and_equal_groups_are_not(seed):
    rng = np.random.default_rng(seed)
    labels = [[v] for v in rng.choice(["a", "b", "c", "d"], size=400)]
    values = rng.random(400)
    plain = group_quality("occupations", values, groups_of(labels), n_boot=300, n_perm=300, seed=seed)
    assert len(plain) == 4 and not any(g.flagged() for g in plain), [(g.group, g.p_holm) for g in plain]
    lowered = values.copy()
    b = np.array([row == ["b"] for row in labels])
    lowered[b] *= 0.4
    found = {g.group: g for g in group_quality("occupations", lowered, groups_of(labels), n_boot=300, n_perm=300)}
    assert [label for label, g in found.items() if g.flagged()] == ["occupations:b"]
    assert found["occupations:b"].gap_hi < 0 and found["occupations:a"].gap > 0, "the others gain from b's loss"
    assert found["occupations:b"].p_holm >= found["occupations:b"].p_perm


def test_multi_valued_users_count_in_each_group_and_once_in_its_rest():
    labels = [["a", "b"], ["a"], ["b"], ["c"]] * 10
    values = np.array([1.0, 0.0, 0.5, 0.25] * 10)
    found = {g.group: g for g in group_quality("occupations", values, groups_of(labels), min_users=5, n_boot=200)}
    assert found["occupations:a"].n_users == 20 and found["occupations:b"].n_users == 20
    assert found["occupations:a"].mean == pytest.approx(0.5) and found["occupations:a"].rest == pytest.approx(0.375)
    assert found["occupations:b"].mean == pytest.approx(0.75) and found["occupations:b"].rest == pytest.approx(0.125)
    assert found["occupations:c"].rest == pytest.approx(0.5), "the rest of c: users listing a or b, each once"


@pytest.mark.parametrize("share", [0.25, 0.5, 0.9])
def test_share_of_the_ceiling_is_the_ratio_of_means_on_the_same_users(share):
    rng = np.random.default_rng(3)
    labels = [["hard"]] * 50 + [["easy"]] * 50
    ceiling = np.r_[rng.random(50) * 0.3, rng.random(50) * 0.9 + 0.1]
    values = np.r_[ceiling[:50] * share, ceiling[50:] * 0.6]
    found = {g.group: g for g in group_quality("occupations", values, groups_of(labels), ceiling, n_boot=300)}
    assert found["occupations:hard"].share == pytest.approx(share)
    assert found["occupations:hard"].share_lo <= share <= found["occupations:hard"].share_hi
    assert found["occupations:easy"].share == pytest.approx(0.6)
    assert np.isnan(group_quality("occupations", values, groups_of(labels))[0].share), "no ceiling, no share"


def test_permutation_p_is_small_for_separated_groups_and_large_for_identical_ones():
    inside = np.r_[np.ones(20, bool), np.zeros(20, bool)]
    assert permutation_p(np.r_[np.ones(20), np.zeros(20)], inside, 500, 0) == pytest.approx(1 / 501)
    assert permutation_p(np.ones(40), inside, 500, 0) == 1.0
    assert np.isnan(permutation_p(np.ones(5), np.ones(5, bool), 10, 0))


def hand_table(flag_b: bool) -> pd.DataFrame:
    rows = []
    for run, label, shift in (("knn", "ItemKNN", 0.0), ("ease", "EASE", 0.05)):
        for group, mean, gap, p in (("occupations:a", 0.30, 0.04, 0.2), ("occupations:b", 0.1234, -0.1567, 0.001)):
            rows.append({
                "run": run, "label": label, "split": "cold", "column": "occupations", "group": group, "n_users": 77,
                "mean": mean + shift, "lo": mean - 0.05, "hi": mean + 0.05, "rest": mean - gap, "gap": gap,
                "gap_lo": gap - 0.03, "gap_hi": gap + 0.03, "p_perm": p, "p_holm": 2 * p, "share": 0.5,
                "share_lo": 0.4, "share_hi": 0.6, "flagged": flag_b and group.endswith("b") and run == "knn",
                "pooled": "",
            })  # fmt: skip
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def test_findings_name_the_flagged_group_with_the_table_s_numbers_and_the_run_serving_it_best():
    table = hand_table(flag_b=True)
    sentences = fairness_sentences(table, "ndcg@10")
    assert len(sentences) == 1
    row = table[table["flagged"]].iloc[0]
    text = sentences[0]
    for value in (-row["gap"], row["gap"], row["gap_lo"], row["gap_hi"], row["p_holm"]):
        assert f"{value:.4f}" in text, value
    assert "occupations:b" in text and "77명" in text and text.index("분할") < text.index("(Split")
    best = table[table["group"] == "occupations:b"].sort_values("mean").iloc[-1]
    assert f"{best['label']} ({best['mean']:.4f}, 95% 구간 [{best['lo']:.4f}, {best['hi']:.4f}])" in text


def test_no_flagged_group_is_said_without_calling_it_no_difference():
    (sentence,) = fairness_sentences(hand_table(flag_b=False), "ndcg@10")
    assert "유의하게 낮지 않다" in sentence and "no occupations group is significantly below" in sentence
    assert "no difference" not in sentence


def test_the_section_escapes_every_name_and_marks_flagged_groups():
    table = hand_table(flag_b=True)
    table["group"] = table["group"].str.replace("occupations:b", "occupations:<script>x</script>")
    table["label"] = table["label"].str.replace("ItemKNN", "Item<b>KNN</b>")
    page = fairness_html(table, "ndcg@10")
    assert "<script>" not in page and "&lt;script&gt;" in page and "Item&lt;b&gt;KNN" in page
    assert page.count("▼") == 1
    assert "declares no segments" in fairness_html(table.iloc[0:0], "ndcg@10")


def test_exposure_sentences_give_each_run_s_gini_from_the_table():
    table = pd.DataFrame(
        {
            "run": ["popularity", "knn", "ease", "popularity"],
            "label": ["Popularity", "ItemKNN", "EASE", "Popularity"],
            "split": ["cold", "cold", "cold", "cold"],
            "seed": ["42", "42", "42", "42"],
            "segment": ["all", "all", "all", "new"],
            "status": ["ok"] * 4,
            "exposure_gini@10": [0.81234, 0.90111, 0.5, 0.99],
        }
    )
    (sentence,) = exposure_sentences(table, 10)
    assert "0.8123" in sentence and "0.9011" in sentence and "0.5000" in sentence and "0.9900" not in sentence
    assert "more than popularity: ItemKNN;" in sentence, sentence
    assert exposure_sentences(table.drop(columns="exposure_gini@10"), 10) == []
