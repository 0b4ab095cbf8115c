"""The comparison report's tables and links as HTML, for ``04_compare_models``: readable, sortable, escaped.

Run cells show the run's label; its name, model and every parameter are in the cell's
hover title, and the label links to the run's own page. Tables come sorted by the
headline metric within each split (ceiling included, failed runs last).
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kdq_lab.evaluation.metrics import headline_k
from kdq_lab.report.comparison import summary_rows
from kdq_lab.report.tables import Cell, number, table_html
from kdq_lab.runs.records import ExperimentInfo

RUN_PAGE = "03_train_evaluate.html"
#: Readable names of the notebooks a report may link to (others are shown by file name).
NOTEBOOK_TITLES = {
    "01_explore_catalog": "카탈로그 탐색 (catalog exploration)",
    "05_curate_new_user": "신규 사용자 큐레이션 (curation for new users)",
    "06_tuning": "튜닝 (tuning)",
}


def _specs(info: ExperimentInfo) -> dict[tuple[str, str], dict[str, Any]]:
    return {(spec["run"], spec["split"]): spec for spec in info.runs}


def run_cell(info: ExperimentInfo, run: str, split: str, label: str) -> Cell:
    """The run's label, its full parameters on hover, linked to its page."""
    spec = _specs(info).get((run, split))
    if spec is None:
        return Cell(label, label)
    params = json.dumps(spec["params"], ensure_ascii=False, sort_keys=True)
    return Cell(label, label, f"{run} · model {spec['model']} · {params}", f"runs/{spec['folder']}/{RUN_PAGE}")


def _pooled_seed(info: ExperimentInfo) -> str:
    return "all" if len(info.seeds) > 1 else str(info.seeds[0])


def _sorted(rows: pd.DataFrame, metric: str) -> pd.DataFrame:
    failed = rows["status"] != "ok"
    return pd.concat([rows[~failed].sort_values(metric, ascending=False, kind="stable"), rows[failed]])


def _interval(row: Any, metric: str) -> Cell:
    lo, hi = row[f"{metric}_lo"], row[f"{metric}_hi"]
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return Cell("", "")
    return Cell(f"[{lo:.4f}, {hi:.4f}]", float(lo))


def split_tables(comparison: pd.DataFrame, paired: pd.DataFrame, info: ExperimentInfo) -> str:
    """One table per split (all test users), sorted by the headline metric, with the paired test against the
    reference."""
    metric, k = info.metric, headline_k(info.k)
    rows = summary_rows(comparison, "all")
    std = comparison[(comparison["segment"] == "all") & (comparison["seed"] == "std")].set_index(["run", "split"])
    tests = (
        paired[(paired["metric"] == metric) & (paired["seed"] == _pooled_seed(info))].set_index(["run", "split"])
        if len(paired)
        else pd.DataFrame()
    )
    extra = [m for m in (f"recall@{k}", "auc", f"coverage@{k}", f"novelty@{k}", f"diversity@{k}") if m in rows]
    reference = escape(str(info.reference))
    columns = [
        "실행 (run)",
        metric,
        "95% 구간 (CI)",
        "± 시드 (seed std)",
        *extra,
        f"Δ {info.reference}",
        "p (Holm)",
        "학습 초 (fit s)",
        "주의 (flags)",
    ]
    numeric = columns[1:-1]  # every column but the run's name and its flags sorts as a number
    parts = []
    for i, split in enumerate(info.splits):
        body = []
        for _, row in _sorted(rows[rows["split"] == split], metric).iterrows():
            key = (row["run"], split)
            cells = [run_cell(info, row["run"], split, row["label"])]
            if row["status"] != "ok":
                error = str(row.get("error", "")) if pd.notna(row.get("error")) else ""
                cells += [Cell("", "")] * (len(columns) - 2) + [Cell("실패 (failed)", title=error)]
                body.append(cells)
                continue
            test = tests.loc[key] if key in tests.index else None
            cells += [
                number(row[metric]),
                _interval(row, metric),
                number(std.loc[key, metric] if key in std.index else None),
                *(number(row[m]) for m in extra),
                number(test["diff"] if test is not None else None),
                number(test["p_holm"] if test is not None else None, 3),
                number(row["fit_seconds"], 1),
                Cell(str(row["flags"]) if isinstance(row.get("flags"), str) else ""),
            ]
            body.append(cells)
        caption = f"{split}: 모든 테스트 사용자 (all test users), {metric} 순 (sorted by {metric})"
        parts.append(table_html(f"split-table-{i}", columns, body, caption, numeric))
    note = (
        f"<p>Δ {reference}: 기준 모델 대비 사용자 단위 평균 차이 (paired mean difference against the reference, "
        "over all seeds); p (Holm): Wilcoxon 검정, 분할 안의 모든 실행에 Holm 보정 (Wilcoxon signed-rank, Holm "
        "over the runs of the split). 실행 이름 위에 마우스를 올리면 전체 매개변수, 누르면 실행 페이지 "
        "(hover a run for its parameters, click for its page).</p>"
    )
    return note + "\n".join(parts)


def paired_tables(paired: pd.DataFrame, info: ExperimentInfo) -> str:
    """Every run minus the reference over all seeds, per split and metric (headline metric first)."""
    if not len(paired):
        return "<p>기준 실행이 없습니다 (no reference run in this experiment, or it did not finish).</p>"
    shown = paired[paired["seed"] == _pooled_seed(info)].copy()
    metrics = list(dict.fromkeys([info.metric, *shown["metric"]]))
    shown["metric_order"] = shown["metric"].map(metrics.index)
    shown["split_order"] = shown["split"].map(list(info.splits).index)
    shown = shown.sort_values(["split_order", "metric_order", "diff"], ascending=[True, True, False], kind="stable")
    labels = {(spec["run"], spec["split"]): spec["label"] for spec in info.runs}
    columns = [
        "실행 (run)",
        "분할 (split)",
        "지표 (metric)",
        "차이 (diff)",
        "95% 구간 (CI)",
        "p (Wilcoxon)",
        "p (Holm)",
        "최소 검출 효과 (MDE)",
        "판정 (verdict)",
    ]
    columns.append("사용자 (users)")
    body = [
        [
            run_cell(info, row["run"], row["split"], labels.get((row["run"], row["split"]), row["run"])),
            Cell(row["split"]),
            Cell(row["metric"]),
            number(row["diff"]),
            Cell(f"[{row['lo']:+.4f}, {row['hi']:+.4f}]", float(row["lo"])),
            number(row["p_wilcoxon"], 3),
            number(row["p_holm"], 3),
            number(row["mde"]),
            Cell(row["verdict"]),
            number(row["n_users"], 0),
        ]
        for _, row in shown.iterrows()
    ]
    numeric = ["차이 (diff)", "95% 구간 (CI)", "p (Wilcoxon)", "p (Holm)", "최소 검출 효과 (MDE)", "사용자 (users)"]
    caption = f"기준 {info.reference} 대비 차이 (difference against the reference)"
    return table_html("paired-table", columns, body, caption, numeric)


def segment_table(comparison: pd.DataFrame, info: ExperimentInfo) -> str:
    """The headline metric on new and on returning users, per split, sorted within each split and segment."""
    metric = info.metric
    parts = []
    for segment in ("new", "returning"):
        rows = summary_rows(comparison, segment)
        rows = rows[rows["status"] == "ok"]
        for split in info.splits:
            part = rows[rows["split"] == split]
            if len(part):
                parts.append(_sorted(part, metric).assign(segment=segment))
    if not parts:
        return "<p>신규·기존 구분이 없습니다 (no new or returning users in these splits).</p>"
    columns = ["실행 (run)", "분할 (split)", "사용자 (users)", metric, "95% 구간 (CI)", "인원 (n)"]
    names = {"new": "신규 (new)", "returning": "기존 (returning)"}
    body = [
        [
            run_cell(info, row["run"], row["split"], row["label"]),
            Cell(row["split"]),
            Cell(names[row["segment"]]),
            number(row[metric]),
            _interval(row, metric),
            number(row["n_users"], 0),
        ]
        for _, row in pd.concat(parts).iterrows()
    ]
    return table_html("segment-table", columns, body, "", [metric, "95% 구간 (CI)", "인원 (n)"])


def ceiling_table(comparison: pd.DataFrame, info: ExperimentInfo, ceilings: set[str]) -> str:
    """Each run's share of the ceiling's headline metric, per split."""
    metric = info.metric
    rows = summary_rows(comparison, "all")
    rows = rows[rows["status"] == "ok"]
    top = rows[rows["run"].isin(ceilings)].groupby("split")[metric].max()
    if top.empty:
        return (
            "<p>이 데이터에는 정답 모델이 없어 상한이 없습니다 (this dataset has no ground truth, so no ceiling).</p>"
        )
    body = [
        [
            run_cell(info, row["run"], row["split"], row["label"]),
            Cell(row["split"]),
            number(row[metric]),
            number(row[metric] / top[row["split"]], 3),
        ]
        for split in info.splits
        if split in top.index
        for _, row in _sorted(rows[rows["split"] == split], metric).iterrows()
    ]
    columns = ["실행 (run)", "분할 (split)", metric, "상한 대비 (share of ceiling)"]
    return table_html("ceiling-table", columns, body, "", [metric, "상한 대비 (share of ceiling)"])


def _link(href: str, text: str) -> str:
    return f'<a href="{escape(href)}">{escape(text)}</a>'


def pages_html(report: Path, info: ExperimentInfo) -> str:
    """Links to every run's page, every split's preparation, the extra notebooks (tuning too, when present)."""
    report = Path(report)
    notebooks = sorted(
        {p for p in report.glob("*.html") if p.name != "index.html"} | set(report.glob("**/06_tuning*.html"))
    )
    items = [
        f"<li>{_link(str(p.relative_to(report)), NOTEBOOK_TITLES.get(p.stem, p.stem))}</li>"
        for p in notebooks
        if p.is_file()
    ]
    splits = [
        f"<li>{_link(f'splits/{name}/02_prepare_data.html', f'분할 준비 (split preparation): {name}')}</li>"
        for name in info.splits
        if (report / "splits" / name / "02_prepare_data.html").is_file()
    ]
    runs = [
        [run_cell(info, spec["run"], spec["split"], spec["label"]), Cell(spec["split"])]
        for spec in info.runs
        if (report / "runs" / spec["folder"] / RUN_PAGE).is_file()
    ]
    files = [
        f"<li>{_link(name, name)}</li>"
        for name in ("comparison.csv", "comparison.md", "paired.csv", "findings.csv", "manifest.json")
    ]
    if (report / "previous").is_dir():  # kdq-lab run writes diff.html beside it once this page is made
        files.append(f"<li>{_link('diff.html', '이전 보고서와의 차이 (what changed since the previous report)')}</li>")
    return "\n".join(
        [
            "<h3>노트북 (notebooks)</h3>",
            f"<ul>{''.join(items + splits) or '<li>없음 (none)</li>'}</ul>",
            "<h3>실행 페이지 (run pages)</h3>",
            table_html("pages-table", ["실행 (run)", "분할 (split)"], runs),
            "<h3>데이터 (data files)</h3>",
            f"<ul>{''.join(files)}</ul>",
        ]
    )
