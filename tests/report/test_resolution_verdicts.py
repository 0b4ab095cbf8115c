"""Resolution of a family of comparisons from hand-made tables: the MDE's level, equivalence, the three verdicts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kdq_lab.evaluation.resolution import minimum_detectable_effect
from kdq_lab.report.resolution import RESOLUTION_COLUMNS, resolve_family, resolve_table, verdicts


def family(rows: list[tuple[float, float, int, float]], metric: str = "ndcg@10") -> pd.DataFrame:
    """(diff, sd, n_users, p_holm) per comparison."""
    return pd.DataFrame(rows, columns=["diff", "sd", "n_users", "p_holm"]).assign(metric=metric)


def test_verdicts_put_a_significant_difference_first():
    p_holm = np.array([0.01, 0.01, 0.2, 0.2, np.nan, 1.0])
    p_eq = np.array([0.01, np.nan, 0.01, 0.3, np.nan, 0.0])
    identical = np.array([False] * 5 + [True])
    assert verdicts(p_holm, p_eq, identical).tolist() == [
        "different",
        "different",
        "equivalent",
        "inconclusive",
        "inconclusive",
        "identical",
    ]


@pytest.mark.parametrize("sesoi", [None, 0.005])
def test_identical_users_are_called_identical_not_equivalent_or_inconclusive(sesoi):
    rows = [(0.0, 0.0, 500, 1.0), (0.01, 0.0, 500, 1e-9), (0.0, 0.0, 0, np.nan), (0.0, 0.2, 500, 1.0)]
    out = resolve_family(family(rows), sesoi)
    # every user equal; every user shifted alike (different); no users; a mean of 0 with spread (not identical)
    assert out["verdict"].tolist() == ["identical", "different", "inconclusive", "inconclusive"]


@pytest.mark.parametrize("m", [1, 3, 8])
def test_mde_is_at_the_familys_bonferroni_level(m):
    rows = [(0.01, 0.1, 400, 0.5)] * m + [(0.0, np.nan, 0, np.nan)]  # a test without a p-value does not count
    out = resolve_family(family(rows), None)
    assert out["mde"].iloc[:m].tolist() == pytest.approx([float(minimum_detectable_effect(0.1, 400, 0.05 / m))] * m)
    assert np.isnan(out["mde"].iloc[m])
    if m > 1:  # a larger family needs a larger difference
        assert out["mde"].iloc[0] > float(minimum_detectable_effect(0.1, 400, 0.05))


def test_without_sesoi_nothing_is_equivalent():
    out = resolve_family(family([(0.0, 0.001, 10_000, 0.9), (0.2, 0.1, 400, 1e-9)]), None)
    assert out["verdict"].tolist() == ["inconclusive", "different"]
    assert out["sesoi"].isna().all() and out["p_equivalence"].isna().all()


def test_with_sesoi_tight_differences_are_equivalent_and_wide_ones_inconclusive():
    rows = [
        (0.0, 0.01, 10_000, 0.9),  # standard error 0.0001: well inside ±0.005
        (0.0, 0.5, 100, 0.9),  # standard error 0.05: the band cannot be shown
        (0.004, 0.01, 10_000, 0.01),  # significant: different, even if small
    ]
    out = resolve_family(family(rows), 0.005)
    assert out["verdict"].tolist() == ["equivalent", "inconclusive", "different"]
    assert (out["sesoi"] == 0.005).all()
    assert (out["p_equivalence_holm"] >= out["p_equivalence"]).all()


def test_equivalence_is_holm_adjusted_over_the_family():
    # each alone would pass at 0.05 (p = 0.03); three together do not (Holm: 0.09)
    se = 0.01 / np.sqrt(400)
    diff = 0.005 - se * 1.880794  # one-sided p = 0.03 at the nearer edge
    alone = resolve_family(family([(diff, 0.01, 400, 0.9)]), 0.005)
    assert alone["p_equivalence"].iloc[0] == pytest.approx(0.03, abs=1e-6) and alone["verdict"].iloc[0] == "equivalent"
    three = resolve_family(family([(diff, 0.01, 400, 0.9)] * 3), 0.005)
    assert three["p_equivalence_holm"].tolist() == pytest.approx([0.09] * 3, abs=1e-5)
    assert (three["verdict"] == "inconclusive").all()


def test_resolve_table_takes_each_metrics_sesoi_and_keeps_row_order():
    table = pd.concat(
        [family([(0.0, 0.01, 10_000, 0.9)], "ndcg@10"), family([(0.0, 0.01, 10_000, 0.9)], "auc")], ignore_index=True
    ).assign(split=["a", "a"])
    out = resolve_table(table.iloc[::-1], ["split", "metric"], {"ndcg@10": 0.005})
    assert out["metric"].tolist() == ["auc", "ndcg@10"]
    assert out["verdict"].tolist() == ["inconclusive", "equivalent"]
    assert set(RESOLUTION_COLUMNS) <= set(out.columns)
    assert resolve_table(table.iloc[:0], ["split", "metric"], {}).empty
