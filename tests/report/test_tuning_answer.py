"""Does tuning change the ranking of models? Answered from hand-made comparison tables (06_tuning shows it)."""

from __future__ import annotations

import pandas as pd
import pytest

from kdq_lab.report.tuning import CHANGED, UNCHANGED, SplitRanking, TuningAnswer, contenders, tuning_answer
from kdq_lab.runs.records import ExperimentInfo

METRIC = "ndcg@10"


def info(runs: dict[str, str], splits: tuple[str, ...] = ("cold", "temporal")) -> ExperimentInfo:
    """An experiment of these runs (name: model) on every split."""
    return ExperimentInfo(
        name="t", title="t", dataset="d", k=[10], metric=METRIC, reference=None, seeds=[1, 2],
        refit=True, exclude="seen", bootstrap={"samples": 200, "seed": 0}, splits={s: {} for s in splits},
        runs=[{"run": r, "label": r, "model": m, "params": {}, "split": s, "seeds": [1, 2], "folder": f"{r}__{s}"}
              for r, m in runs.items() for s in splits],
    )  # fmt: skip


def table(values: dict[tuple[str, str], float], failed: tuple[tuple[str, str], ...] = ()) -> pd.DataFrame:
    """A comparison table: per run and split, a row per seed and the mean row (the one rankings read)."""
    rows = []
    for (run, split), value in values.items():
        status = "failed" if (run, split) in failed else "ok"
        for seed, shift in (("1", -0.01), ("2", 0.01), ("mean", 0.0), ("std", 0.0)):
            rows.append({"run": run, "split": split, "seed": seed, "segment": "all", "status": status,
                         METRIC: value + shift if seed != "std" else 0.01})  # fmt: skip
        rows.append({"run": run, "split": split, "seed": "mean", "segment": "new", "status": status, METRIC: 0.9})
    return pd.DataFrame(rows)


RUNS = {"pop": "popularity", "knn": "itemknn", "hybrid": "lightfm", "oracle": "oracle"}
UNTUNED = {("pop", "cold"): 0.10, ("knn", "cold"): 0.20, ("hybrid", "cold"): 0.30, ("oracle", "cold"): 0.90,
           ("pop", "temporal"): 0.10, ("knn", "temporal"): 0.25, ("hybrid", "temporal"): 0.20,
           ("oracle", "temporal"): 0.90}  # fmt: skip


def test_contenders_are_ranked_by_the_headline_mean_without_the_ceiling_or_failed_runs():
    experiment = info(RUNS)
    assert contenders(table(UNTUNED), "cold", experiment) == ["hybrid", "knn", "pop"]
    failed = table(UNTUNED, failed=(("hybrid", "temporal"),))
    assert contenders(failed, "temporal", experiment) == ["knn", "pop"]


def test_an_unchanged_ranking_is_said_so():
    tuned = {key: value + 0.01 for key, value in UNTUNED.items()}  # every run a little better, in the same order
    answer = tuning_answer(info(RUNS), table(tuned), table(UNTUNED))
    assert not answer.changed and answer.answer == UNCHANGED
    assert answer.sentences() == [
        "cold: 순위가 바뀌지 않았다 (the ranking did not change); hybrid stays first.",
        "temporal: 순위가 바뀌지 않았다 (the ranking did not change); knn stays first.",
    ]
    assert [r.tau for r in answer.splits] == [pytest.approx(1.0), pytest.approx(1.0)]


def test_a_swap_changes_the_ranking_with_kendall_s_tau():
    tuned = UNTUNED | {("hybrid", "temporal"): 0.30}  # the hybrid overtakes knn on temporal only
    answer = tuning_answer(info(RUNS), table(tuned), table(UNTUNED))
    assert answer.changed and answer.answer == CHANGED
    cold, temporal = answer.splits
    assert not cold.changed and temporal.changed
    assert (temporal.before, temporal.after) == (("knn", "hybrid", "pop"), ("hybrid", "knn", "pop"))
    assert temporal.tau == pytest.approx(1 / 3)
    assert temporal.sentence() == (
        "temporal: 순위가 바뀌었다 (the ranking changed): hybrid is first (was knn); 2 of 3 places differ, "
        "Kendall's τ between the two rankings = 0.33."
    )


def test_a_swap_below_the_first_place_keeps_the_first():
    tuned = UNTUNED | {("pop", "cold"): 0.25}
    (cold, _) = tuning_answer(info(RUNS), table(tuned), table(UNTUNED)).splits
    assert cold.sentence().startswith("cold: 순위가 바뀌었다 (the ranking changed): hybrid stays first; 2 of 3 places")


def test_a_run_new_in_the_tuned_report_is_left_out_of_both_rankings():
    runs = RUNS | {"ease": "ease"}
    tuned = UNTUNED | {("ease", "cold"): 0.95, ("ease", "temporal"): 0.95}  # first wherever it runs
    answer = tuning_answer(info(runs), table(tuned), table(UNTUNED))
    assert not answer.changed, "a run without an untuned result moves nothing"
    assert all("ease" not in r.after and "ease" not in (r.before or ()) for r in answer.splits)


def test_without_an_untuned_table_the_best_tuned_contender_is_named():
    answer = tuning_answer(info(RUNS), table(UNTUNED), None)
    assert not answer.changed and answer.answer == UNCHANGED
    assert answer.sentences()[0] == "cold: no untuned report to compare with; the best tuned contender is hybrid."
    assert all(r.before is None and r.tau is None for r in answer.splits)


def test_a_split_where_nothing_finished_says_so():
    failed = tuple((run, "cold") for run in RUNS)
    answer = tuning_answer(info(RUNS), table(UNTUNED, failed=failed), table(UNTUNED))
    assert answer.splits[0].after == () and answer.sentences()[0].startswith("cold: no contender finished")
    assert not answer.splits[0].changed and answer.splits[0].tau is None


def test_the_answer_comes_from_the_rankings_not_the_sentences():
    split = SplitRanking("changed", ("a", "b"), ("a", "b"))  # a split *named* 'changed' that did not change
    assert "changed" in split.sentence() and not TuningAnswer((split,)).changed
