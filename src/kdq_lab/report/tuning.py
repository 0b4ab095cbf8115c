"""Does tuning change the ranking of models? The answer ``06_tuning`` opens with.

Per split, the contenders (every run that finished, a ceiling such as the oracle excepted) are ranked by
the headline metric in the tuned report and in the untuned one it replaced; runs present in only one of
the two are left out of both rankings. The ranking changed when the order differs; Kendall's τ measures
how much. Without an untuned report there is nothing to compare: the best tuned contender is named.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from scipy.stats import kendalltau

from kdq_lab.models.registry import CEILING, run_role
from kdq_lab.report.comparison import summary_rows
from kdq_lab.runs.records import ExperimentInfo

CHANGED = "튜닝이 모델 순위를 바꾸었다 (Tuning changes the ranking of models)."
UNCHANGED = "튜닝은 모델 순위를 바꾸지 않았다 (Tuning does not change the ranking of models)."


@dataclass(frozen=True)
class SplitRanking:
    """The contenders of one split, best first, after tuning and (when there is an untuned report) before.

    ``before`` and ``after`` hold the same runs when both are known; ``before`` is ``None`` without an untuned
    report, and then ``after`` lists every tuned contender.
    """

    split: str
    before: tuple[str, ...] | None
    after: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return self.before is not None and self.before != self.after

    @property
    def tau(self) -> float | None:
        """Kendall's τ between the two rankings (``None`` with fewer than two runs to compare)."""
        if self.before is None or len(self.after) < 2:
            return None
        return float(kendalltau([self.before.index(run) for run in self.after], range(len(self.after))).statistic)

    def sentence(self) -> str:
        """What the ranking did, in Korean with an English gloss."""
        if not self.after:
            return f"{self.split}: no contender finished on this split; nothing to rank."
        if self.before is None:
            return f"{self.split}: no untuned report to compare with; the best tuned contender is {self.after[0]}."
        if not self.changed:
            return f"{self.split}: 순위가 바뀌지 않았다 (the ranking did not change); {self.after[0]} stays first."
        moved = sum(a != b for a, b in zip(self.after, self.before))
        first = (
            f"{self.after[0]} stays first"
            if self.after[0] == self.before[0]
            else f"{self.after[0]} is first (was {self.before[0]})"
        )
        return (
            f"{self.split}: 순위가 바뀌었다 (the ranking changed): {first}; {moved} of {len(self.after)} "
            f"places differ, Kendall's τ between the two rankings = {self.tau:.2f}."
        )


@dataclass(frozen=True)
class TuningAnswer:
    """Per split, how tuning moved the ranking; and the answer for the whole experiment."""

    splits: tuple[SplitRanking, ...]

    @property
    def changed(self) -> bool:
        return any(ranking.changed for ranking in self.splits)

    @property
    def answer(self) -> str:
        return CHANGED if self.changed else UNCHANGED

    def sentences(self) -> list[str]:
        return [ranking.sentence() for ranking in self.splits]


def contenders(table: pd.DataFrame, split: str, info: ExperimentInfo) -> list[str]:
    """The runs of ``split`` that finished, best first by the headline metric (ceilings are not contenders)."""
    ceilings = {spec["run"] for spec in info.runs if run_role(spec["model"], spec["params"]) == CEILING}
    rows = summary_rows(table)
    rows = rows[(rows["split"] == split) & (rows["status"] == "ok") & ~rows["run"].isin(ceilings)]
    return rows.sort_values(info.metric, ascending=False, kind="stable")["run"].tolist()


def tuning_answer(info: ExperimentInfo, tuned: pd.DataFrame, untuned: pd.DataFrame | None) -> TuningAnswer:
    """How tuning moved each split's ranking, from the tuned report's comparison table and the untuned one's
    (``None`` when there was no untuned report)."""
    rankings = []
    for split in info.splits:
        after = contenders(tuned, split, info)
        if untuned is None:
            rankings.append(SplitRanking(split, None, tuple(after)))
            continue
        before = [run for run in contenders(untuned, split, info) if run in after]
        rankings.append(SplitRanking(split, tuple(before), tuple(run for run in after if run in before)))
    return TuningAnswer(tuple(rankings))
