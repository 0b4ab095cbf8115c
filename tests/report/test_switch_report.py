"""The routing run per segment against the best single run there, from hand-made tables with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kdq_lab.evaluation import holm
from kdq_lab.evaluation.segments import BUILT_IN_SEGMENTS, segment_rows
from kdq_lab.report.switch import segment_html, segment_table, segment_tests
from kdq_lab.runs.records import ExperimentInfo

METRIC = "ndcg@10"
KINDS = {"hyb": "lightfm", "ids": "lightfm", "sw": "switch", "oracle": "oracle"}
ROLES = {"hyb": "profile", "ids": "ids", "sw": "other", "oracle": "ceiling"}
LABELS = {"hyb": "Hybrid", "ids": "Ids", "sw": "Switch <b>", "oracle": "oracle"}


def make_case(switch_returning: str, n: int = 300):
    """New users (history 0): hybrid 0.3, ids 0.05; returning (history 5-19): ids 0.25, hybrid 0.1.

    The switch copies the hybrid on new users and ``switch_returning``'s values on returning ones.
    """
    rng = np.random.default_rng(1)
    returning = np.array(["new"] * n + ["returning"] * n)
    history = np.array(["0"] * n + ["5-19"] * n)
    base = rng.random(2 * n) * 0.1
    values = {
        "hyb": np.r_[np.full(n, 0.3), np.full(n, 0.1)] + base + rng.normal(0, 0.05, 2 * n),
        "ids": np.r_[np.full(n, 0.05), np.full(n, 0.25)] + base + rng.normal(0, 0.05, 2 * n),
        "oracle": np.full(2 * n, 0.9),
    }
    values["sw"] = np.r_[values["hyb"][:n], values[switch_returning][n:]]
    per_user, rows = {}, []
    for run, v in values.items():
        table = pd.DataFrame(
            {"user": np.arange(2 * n), "seed": 1, "returning": returning, "history": history, METRIC: v}
        )
        per_user[(run, "s")] = table
        for segment in BUILT_IN_SEGMENTS:
            part = segment_rows(table, segment)
            if part.empty:
                continue
            mean, half = part[METRIC].mean(), 2 * part[METRIC].std() / np.sqrt(len(part))
            rows.append(
                {
                    "run": run,
                    "label": LABELS[run],
                    "model": KINDS[run],
                    "split": "s",
                    "seed": "1",
                    "segment": segment,
                    "status": "ok",
                    "n_users": len(part),
                    METRIC: mean,
                    f"{METRIC}_lo": mean - half,
                    f"{METRIC}_hi": mean + half,
                }
            )
    info = ExperimentInfo(
        "t",
        "t",
        "d",
        [10],
        METRIC,
        None,
        [1],
        True,
        "seen",
        {"samples": 200, "seed": 0},
        {"s": {"kind": "cold_users"}},
        [],
    )
    return info, pd.DataFrame(rows), per_user


def verdicts(switch_returning: str) -> dict[str, str]:
    info, comparison, per_user = make_case(switch_returning)
    return {t.segment: t.verdict for t in segment_tests(info, comparison, KINDS, ROLES, per_user)}


def test_a_switch_that_routes_well_keeps_each_segments_best_and_beats_both_overall():
    found = verdicts("ids")
    assert found["new"] == "not significant" and found["history:0"] == "not significant"
    assert found["returning"] == "not significant" and found["history:5-19"] == "not significant"
    assert found["all"] == "better"


@pytest.mark.parametrize("wrong", ["hyb"])
def test_a_switch_that_sends_returning_users_to_the_profile_part_is_worse_there(wrong):
    found = verdicts(wrong)
    assert found["returning"] == "worse" and found["history:5-19"] == "worse"
    assert found["new"] == "not significant"


def test_the_segments_of_a_run_are_one_holm_family_and_the_words_quote_the_table():
    info, comparison, per_user = make_case("hyb")
    tests = segment_tests(info, comparison, KINDS, ROLES, per_user)
    np.testing.assert_allclose([t.p_holm for t in tests], holm([t.p for t in tests]))
    assert {t.other for t in tests if t.segment == "new"} == {"hyb"}  # never the oracle, never the switch
    table = segment_table(tests)
    html = segment_html(tests, METRIC)
    for _, row in table.iterrows():
        assert f"{row['diff']:+.4f} [{row['lo']:+.4f}, {row['hi']:+.4f}]" in html
    assert "<b>Switch <b></b>" not in html and "Switch &lt;b&gt;" in html
    assert "유의하게 더 나쁨" in html and "significantly worse" in html
