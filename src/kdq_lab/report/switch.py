"""A routing run per segment, beside the best single run there: does it keep each segment's best?

For every run of a routing kind (``switch``) and every split, on each segment (new, returning, and the history
buckets of :data:`kdq_lab.evaluation.segments.BUILT_IN_SEGMENTS`), the run is tested against the best other run
on that segment (the highest mean; the ceiling and other routing runs aside) with the findings' paired Wilcoxon
test over the segment's users. The segments of one run and split are one family, adjusted by Holm's method; the
verdict is *significantly better*, *not significantly different* (the interval of the difference is given: it is
not "no difference") or *significantly worse*.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from html import escape
from pathlib import Path

import pandas as pd

from kdq_lab.evaluation import holm, paired_comparison
from kdq_lab.evaluation.segments import BUILT_IN_SEGMENTS
from kdq_lab.models.registry import CEILING
from kdq_lab.report.findings import _scores
from kdq_lab.report.findings_html import _num, _p, _sentence, _signed
from kdq_lab.report.resolution import ALPHA
from kdq_lab.runs.records import ExperimentInfo

#: Model kinds that route users between parts (the report treats their runs as this section's subject).
ROUTING = ("switch",)


@dataclass(frozen=True)
class SegmentTest:
    """The routing run minus the best other run on one segment of one split."""

    run: str
    label: str
    split: str
    segment: str
    value: float
    other: str
    other_label: str
    other_value: float
    diff: float
    lo: float
    hi: float
    p: float
    n_users: int
    p_holm: float = float("nan")

    @property
    def verdict(self) -> str:
        """``better``, ``worse`` (Holm-adjusted p below :data:`ALPHA`) or ``not significant``."""
        if self.p_holm < ALPHA:
            return "better" if self.diff > 0 else "worse"
        return "not significant"


def load_segment_users(report_dir: Path, info: ExperimentInfo, metric: str) -> dict[tuple[str, str], pd.DataFrame]:
    """Per-user ``metric`` of every finished run × split with the segment columns (returning, history)."""
    tables = {}
    for spec in info.runs:
        path = Path(report_dir) / "runs" / spec["folder"] / "metrics.parquet"
        if path.is_file():
            columns = ["user", "seed", "returning", "history", metric]
            tables[(spec["run"], spec["split"])] = pd.read_parquet(path, columns=columns)
    return tables


def _rows(table: pd.DataFrame, segment: str) -> pd.DataFrame:
    if segment == "all":
        return table
    if segment in ("new", "returning"):
        return table[table["returning"].astype(str) == segment]
    return table[table["history"].astype(str) == segment.split(":", 1)[1]]


def segment_tests(
    info: ExperimentInfo,
    comparison: pd.DataFrame,
    kinds: Mapping[str, str],
    roles: Mapping[str, str],
    per_user: Mapping[tuple[str, str], pd.DataFrame],
) -> list[SegmentTest]:
    """Every routing run against the best other run on each segment of each split (module docstring)."""
    metric, boot = info.metric, info.bootstrap
    found = []
    for split in info.splits:
        for run in [r for r, kind in kinds.items() if kind in ROUTING]:
            family = []
            for segment in BUILT_IN_SEGMENTS:
                rows = _scores(comparison, metric, segment)
                rows = rows[rows["split"] == split]
                mine = rows[rows["run"] == run]
                others = rows[~rows["run"].map(kinds).isin(ROUTING) & (rows["run"].map(roles) != CEILING)]
                if mine.empty or others.empty or (run, split) not in per_user:
                    continue
                best = others.sort_values(metric, ascending=False, kind="stable").iloc[0]
                if (best["run"], split) not in per_user:
                    continue
                a, b = _rows(per_user[(run, split)], segment), _rows(per_user[(best["run"], split)], segment)
                seeds = sorted(set(a["seed"]) & set(b["seed"]))
                result = paired_comparison(
                    [a[a["seed"] == s].set_index("user")[metric] for s in seeds],
                    [b[b["seed"] == s].set_index("user")[metric] for s in seeds],
                    n_boot=boot["samples"],
                    seed=boot["seed"],
                )
                family.append(
                    SegmentTest(
                        run,
                        str(mine.iloc[0]["label"]),
                        split,
                        segment,
                        float(mine.iloc[0][metric]),
                        str(best["run"]),
                        str(best["label"]),
                        float(best[metric]),
                        result["diff"],
                        result["lo"],
                        result["hi"],
                        result["p_wilcoxon"],
                        int(result["n_users"]),
                    )
                )
            adjusted = holm([t.p for t in family])
            found += [replace(t, p_holm=float(p)) for t, p in zip(family, adjusted)]
    return found


def segment_table(tests: list[SegmentTest]) -> pd.DataFrame:
    """The tests as a table (the CSV the report writes; the words quote it)."""
    return pd.DataFrame([t.__dict__ | {"verdict": t.verdict} for t in tests])


VERDICTS = {
    "better": ("유의하게 더 좋음", "significantly better"),
    "worse": ("유의하게 더 나쁨", "significantly worse"),
    "not significant": ("유의한 차이 없음 (구간이 0을 포함할 수 있음)", "not significantly different"),
}


def segment_html(tests: list[SegmentTest], metric: str) -> str:
    """One sentence per segment, Korean first with its English gloss; every label escaped."""
    items = []
    for t in tests:
        ko, en = VERDICTS[t.verdict]
        diff = f"{_signed(t.diff)} [{_signed(t.lo)}, {_signed(t.hi)}]"
        where = f"{escape(t.split)} · {escape(t.segment)}"
        items.append(
            "<li>"
            + _sentence(
                f"{where}: <b>{escape(t.label)}</b> {escape(metric)} {_num(t.value)}, 이 구간의 최고 단일 모델 "
                f"<b>{escape(t.other_label)}</b> ({_num(t.other_value)}) 대비 {diff}: {ko} (Holm 보정 {_p(t.p_holm)}).",
                f"{where}: {escape(t.label)} {_num(t.value)} against the best single run there, "
                f"{escape(t.other_label)} ({_num(t.other_value)}): {diff}, {en} (Holm-adjusted {_p(t.p_holm)})",
            )
            + "</li>"
        )
    return f'<ul class="kdq-switch">{"".join(items)}</ul>' if items else ""
