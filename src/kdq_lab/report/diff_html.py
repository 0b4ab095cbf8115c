"""``diff.html``: what moved between two reports, as an offline page with the report's table style."""

from __future__ import annotations

from html import escape

import numpy as np

from kdq_lab.report.diff import Diff
from kdq_lab.report.tables import Cell, number, table_html


def _interval(mean: float, lo: float, hi: float) -> Cell:
    if not np.isfinite(mean):
        return Cell("", "")
    return Cell(f"{mean:.4f} [{lo:.4f}, {hi:.4f}]", float(mean))


def _list(title: str, items: list[str]) -> str:
    shown = "".join(f"<li>{escape(item)}</li>" for item in items) or "<li>없음 (none)</li>"
    return f"<h2>{escape(title)}</h2><ul>{shown}</ul>"


def diff_html(diff: Diff, old: str, new: str) -> str:
    """The whole page: moved rows first (every row below them), added and removed runs, differing settings."""
    rows = diff.rows.sort_values(["moved", "changed"], ascending=False, kind="stable")
    columns = [
        "실행 (run)",
        "분할 (split)",
        "구간 (segment)",
        "지표 (metric)",
        "이전 (old)",
        "새 (new)",
        "차이 (delta)",
    ]
    columns += ["비교 (comparison)", "p (Holm)", "MDE", "이동 (moved)"]
    body = [
        [
            Cell(r.run),
            Cell(r.split),
            Cell(r.segment),
            Cell(r.metric),
            _interval(r.old, r.old_lo, r.old_hi),
            _interval(r.new, r.new_lo, r.new_hi),
            number(r.delta),
            Cell("paired" if r.paired else "unpaired"),
            number(r.p_holm, 3),
            number(r.mde),
            Cell("moved" if r.moved else ("changed" if r.changed else "")),
        ]
        for r in rows.itertuples()
    ]
    numeric = ["이전 (old)", "새 (new)", "차이 (delta)", "p (Holm)", "MDE"]
    settings = [f"{key}: {a} → {b}" for key, a, b in diff.parameters]
    versions = [f"{key}: {a} → {b}" for key, a, b in diff.versions]
    summary = (
        f"{len(diff.moved)}개 행이 해상도를 넘어 이동 ({len(diff.moved)} rows moved beyond their resolution) · "
        f"{len(diff.added)} added · {len(diff.removed)} removed"
    )
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="ko"><head><meta charset="utf-8">',
            f"<title>{escape(diff.experiment)}: diff</title></head><body>",
            f"<h1>{escape(diff.experiment)}: 이전 보고서와의 차이 (what changed since the previous report)</h1>",
            f"<p>{escape(old)} → {escape(new)}</p>",
            f"<p><b>{escape(summary)}</b></p>",
            "<p>paired: 같은 분할 해시와 시드, 사용자별 Wilcoxon 검정 (Holm); unpaired: 95% 구간이 겹치지 않으면 이동 "
            "(paired: same split hashes and seeds, Wilcoxon over users, Holm over every paired row; "
            "unpaired: moved when the 95% intervals do not overlap).</p>",
            table_html("diff-table", columns, body, "run × split × segment × metric", numeric),
            _list("추가된 실행 (runs added)", list(diff.added)),
            _list("제거된 실행 (runs removed)", list(diff.removed)),
            _list("바뀐 설정 (parameters that differ)", settings),
            _list("바뀐 패키지 버전 (package versions that differ)", versions),
            "</body></html>",
        ]
    )
