"""The onboarding study's effects and words on hand-made tables with a known answer."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from kdq_lab.evaluation import holm
from kdq_lab.report.onboarding import (
    HELPS,
    HURTS,
    NOT_SIGNIFICANT,
    by_values_given,
    curve_points,
    curve_sentences,
    disagreements,
    field_effects,
    importance_pairs,
    sentences,
    sentences_html,
    values_given,
    verdict,
)


def seeds(values: np.ndarray, n_seeds: int = 2) -> list[pd.Series]:
    """The same users on ``n_seeds`` seeds, each seed with its own small jitter."""
    rng = np.random.default_rng(len(values))
    return [pd.Series(values + rng.normal(0, 1e-3, len(values)), index=np.arange(len(values))) for _ in range(n_seeds)]


def family(shifts: dict[str, float], n: int = 300, noise: float = 0.05, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.2, 0.6, n)
    out = {}
    for field, shift in shifts.items():
        other = base - shift + rng.normal(0, noise, n)
        out[field] = (seeds(base), seeds(other))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("shift", [0.03, 0.08])
def test_a_planted_effect_helps_hurts_or_is_not_significant(seed, shift):
    table = field_effects(family({"goals": shift, "region": 0.0, "noise": -shift}, seed=seed), n_boot=500)
    verdicts = dict(zip(table["field"], table["verdict"]))
    assert verdicts == {"goals": HELPS, "region": NOT_SIGNIFICANT, "noise": HURTS}
    region = table.set_index("field").loc["region"]
    assert region["lo"] <= 0 <= region["hi"], "not significant: the interval includes 0"
    np.testing.assert_allclose(table["p_holm"], holm(table["p_wilcoxon"]))
    assert (table["p_holm"] >= table["p_wilcoxon"]).all()


def test_holm_can_turn_a_lone_significance_into_not_significant():
    # a small effect is significant alone, and not once four null fields join its family
    shifts = {"goals": 0.006}
    alone = field_effects(family(shifts, n=400, noise=0.04, seed=5), n_boot=500)
    assert alone["verdict"].tolist() == [HELPS]
    many = field_effects(family(shifts | {f"null{i}": 0.0 for i in range(30)}, n=400, noise=0.04, seed=5), n_boot=500)
    goals = many.set_index("field").loc["goals"]
    assert goals["p_wilcoxon"] == alone["p_wilcoxon"].iloc[0] < 0.05 <= goals["p_holm"]
    assert goals["verdict"] == NOT_SIGNIFICANT


@pytest.mark.parametrize(
    "diff, lo, hi, p, expected",
    [
        (0.1, 0.05, 0.15, 0.001, HELPS),
        (-0.1, -0.15, -0.05, 0.001, HURTS),
        (0.1, -0.01, 0.2, 0.001, NOT_SIGNIFICANT),  # the test and the interval disagree: not significant
        (0.1, 0.05, 0.15, 0.05, NOT_SIGNIFICANT),
        (0.1, 0.05, 0.15, float("nan"), NOT_SIGNIFICANT),
    ],
)
def test_verdicts(diff, lo, hi, p, expected):
    assert verdict(diff, lo, hi, p) == expected


def test_importance_pairs_follow_the_seeds_and_users():
    table = pd.DataFrame(
        {
            "seed": [1, 1, 2, 2],
            "user": [0, 1, 0, 1],
            "field": "goals",
            "base": [0.5, 0.4, 0.6, 0.3],
            "permuted": [0.1, 0.2, 0.3, 0.1],
        }
    )
    measured, paired = importance_pairs(table)["goals"]
    assert [s.tolist() for s in measured] == [[0.5, 0.4], [0.6, 0.3]]
    assert [s.tolist() for s in paired] == [[0.1, 0.2], [0.3, 0.1]]


def effects() -> pd.DataFrame:
    frames = []
    for measure, shifts in (
        ("permutation", {"goals": 0.05, "region": 0.0, "age_band": 0.03}),
        ("drop_one", {"goals": 0.04, "region": 0.0, "age_band": 0.0}),
        ("only_one", {"goals": 0.06, "region": 0.0, "age_band": 0.02}),
    ):
        table = field_effects(family(shifts, seed=len(measure)), n_boot=500)
        frames.append(table.assign(run="hybrid", split="cold", measure=measure))
    return pd.concat(frames, ignore_index=True)


def test_disagreements_name_fields_a_retrained_model_routes_around():
    table = effects()
    found = disagreements(table)
    assert found[["field", "permutation", "drop_one"]].values.tolist() == [["age_band", HELPS, NOT_SIGNIFICANT]]


def test_every_number_in_the_words_is_a_value_of_the_table():
    table = effects()
    words = sentences(table, "ndcg@10")
    allowed = {f"{v:+.4f}" for c in ("diff", "lo", "hi") for v in table[c]}
    allowed |= {f"{v:.3f}" for v in table["p_holm"]} | {"0.001"}
    text = " ".join(ko + " " + en for ko, en in words)
    numbers = re.findall(r"[+-]\d\.\d{4}|\d\.\d{3}\b", text.replace("ndcg@10", ""))
    assert numbers and set(numbers) <= allowed
    assert "region" in text and "(구간이 0을 포함)" in text and "(the interval includes 0)" in text
    order = next(en for _, en in words if en.startswith("order to ask"))
    assert "goals → age_band" in order and "region" not in order, "a field that is not significant is not ranked"
    assert any("routes around" in en and en.startswith("age_band") for _, en in words)


def test_words_are_escaped_in_html():
    html = sentences_html([("<b>직업</b>", "occupations & <script>")])
    assert "<b>" not in html and "<script>" not in html and "&lt;b&gt;" in html and "&amp;" in html


@pytest.mark.parametrize("separator", ["|", ";"])
def test_values_given_counts_the_parts_of_a_cell(separator):
    column = pd.Series([f"a{separator}b", "a", "", None, f"a{separator}b{separator}c"])
    assert onboarding_values(column, separator) == [2, 1, 0, 0, 3]


def test_the_values_given_curve_buckets_and_pools_seeds():
    per_user = pd.DataFrame(
        {"seed": [1] * 6 + [2] * 6, "user": list(range(6)) * 2, "ndcg@10": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6] * 2}
    )
    counts = {s: pd.Series([1, 1, 2, 2, 3, 5], index=range(6)) for s in (1, 2)}
    curve = by_values_given({"hybrid": per_user}, counts, "ndcg@10", n_boot=200).set_index("given")
    assert list(curve.index) == ["1", "2", "3+"]
    np.testing.assert_allclose(curve["mean"], [0.15, 0.35, 0.55])
    assert curve["n_users"].tolist() == [4, 4, 4], "two users per bucket, on two seeds"
    assert (curve["lo"] <= curve["mean"]).all() and (curve["mean"] <= curve["hi"]).all()


def onboarding_values(column: pd.Series, separator: str) -> list[int]:
    return values_given(column, separator).tolist()


def curve_tests(means: list[float], n: int = 400, seeds: tuple[int, ...] = (1, 2), noise: float = 0.02) -> pd.DataFrame:
    """Per-user test metrics of prefixes whose true means are ``means`` (step 0: no profile)."""
    rng = np.random.default_rng(len(means))
    frames = []
    for seed in seeds:
        user = rng.uniform(-0.05, 0.05, n)
        for step, mean in enumerate(means):
            values = mean + user + rng.normal(0, noise, n)
            frames.append(
                pd.DataFrame(
                    {
                        "step": step,
                        "fields": "+".join("abcdef"[:step]),
                        "seed": seed,
                        "user": np.arange(n),
                        "ndcg@10": values,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize(
    "means, expected",
    [
        ([0.10, 0.196, 0.198, 0.2], 1),  # the first question brings 96% of the gain
        ([0.10, 0.15, 0.17, 0.2], 3),  # 50%, 70%, then all of it
        ([0.10, 0.12, 0.20, 0.20, 0.20], 2),
    ],
)
def test_questions_reaching_ninety_percent_of_the_gain(means, expected):
    points, reach = curve_points(curve_tests(means), "ndcg@10", n_boot=300)
    assert reach["reach"] == expected
    assert reach["lo"] <= expected <= reach["hi"]
    np.testing.assert_allclose(points["share"].iloc[[0, -1]], [0.0, 1.0])
    assert (points["lo"] <= points["mean"]).all() and (points["mean"] <= points["hi"]).all()
    words = " ".join(en for _, en in curve_sentences(points, reach, "ndcg@10", "hybrid"))
    assert f"90% of the full profile's gain: {expected} (95% interval" in words
    assert set(re.findall(r"\d\.\d{4}", words)) <= {f"{v:.4f}" for c in ("mean", "lo", "hi") for v in points[c]}


def test_a_close_call_gets_a_wide_interval_and_no_gain_no_count():
    _, close = curve_points(curve_tests([0.10, 0.188, 0.19, 0.2], n=60, noise=0.2), "ndcg@10", n_boot=300)
    assert close["lo"] < close["hi"], "90% lies within the noise of step 1: the count is uncertain"
    points, none = curve_points(curve_tests([0.2, 0.18, 0.19]), "ndcg@10", n_boot=300)
    assert np.isnan(none["reach"]) and points["share"].isna().all()
    assert "does not beat no profile" in curve_sentences(points, none, "ndcg@10", "hybrid")[-1][1]


def test_a_field_whose_interval_excludes_zero_but_whose_adjusted_test_fails_is_not_said_to_include_zero():
    table = pd.DataFrame(
        [
            {
                "split": "s",
                "run": "r",
                "measure": "drop_one",
                "field": "region",
                "diff": -0.0015,
                "lo": -0.0029,
                "hi": -0.0001,
                "p_wilcoxon": 0.05,
                "p_holm": 0.148,
                "n_users": 100,
                "verdict": NOT_SIGNIFICANT,
            },
            {
                "split": "s",
                "run": "r",
                "measure": "drop_one",
                "field": "goals",
                "diff": 0.001,
                "lo": -0.002,
                "hi": 0.004,
                "p_wilcoxon": 0.5,
                "p_holm": 0.5,
                "n_users": 100,
                "verdict": NOT_SIGNIFICANT,
            },
        ]
    )
    words = " ".join(en for _, en in sentences(table, "ndcg@10"))
    assert "region -0.0015 [-0.0029, -0.0001], Holm p = 0.148 (the Holm-adjusted test is not significant)" in words
    assert "goals +0.0010 [-0.0020, +0.0040], Holm p = 0.500 (the interval includes 0)" in words
