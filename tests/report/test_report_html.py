"""Report tables: escaped cells, run labels with their parameters on hover and a link, rows sorted within splits."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from kdq_lab.report.html import RUN_PAGE, run_cell, split_tables
from kdq_lab.report.tables import Cell, number, table_html
from kdq_lab.runs.records import ExperimentInfo

RUNS = {
    "pop": ("popularity", "Pop"),
    "hyb": ("lightfm", "Hybrid <x>"),
    "bad": ("ease", "Broken"),
    "knn": ("itemknn", "K"),
}


def info() -> ExperimentInfo:
    return ExperimentInfo(
        name="t",
        title="t",
        dataset="d",
        k=[10],
        metric="ndcg@10",
        reference="pop",
        seeds=[1],
        refit=True,
        exclude="seen",
        bootstrap={"samples": 10, "seed": 0},
        splits={"b": {}, "a": {}},
        runs=[
            {
                "run": r,
                "label": lab,
                "model": m,
                "params": {"x": "<y>"},
                "split": s,
                "seeds": [1],
                "folder": f"{r}__{s}",
            }
            for r, (m, lab) in RUNS.items()
            for s in ("b", "a")
        ],
    )


def comparison() -> pd.DataFrame:
    values = {"pop": 0.1, "hyb": 0.3, "knn": 0.2}
    rows = []
    for split in ("a", "b"):
        for run, (model, label) in RUNS.items():
            base = {"run": run, "label": label, "model": model, "split": split, "segment": "all", "seed": "1"}
            if run == "bad":
                rows.append(base | {"seed": "all", "status": "failed", "n_users": 0, "error": "boom <b>"})
                continue
            value = values[run] + (0.05 if split == "b" and run == "pop" else 0)
            rows.append(
                base
                | {
                    "status": "ok",
                    "n_users": 5,
                    "ndcg@10": value,
                    "ndcg@10_lo": value - 0.01,
                    "ndcg@10_hi": value + 0.01,
                }
                | {"recall@10": value, "auc": 0.5, "fit_seconds": 1.0, "flags": ""}
            )
    return pd.DataFrame(rows)


def test_cells_are_escaped_and_numbers_sort_by_value():
    html = table_html(
        "t-1", ["a<b>", "n"], [[Cell("<i>", title='"q"', href="x.html?a=1&b=2"), number(0.5)]], "c", ["n"]
    )
    assert "<i>" not in html and "&lt;i&gt;" in html and "a&lt;b&gt;" in html and 'title="&quot;q&quot;"' in html
    assert 'href="x.html?a=1&amp;b=2"' in html and 'data-sort="0.5"' in html and 'data-type="number"' in html
    assert number(np.nan).text == "" and number(None).sort == ""
    with pytest.raises(ValueError, match="table id"):
        table_html('x"></div><script>', ["a"], [])


def test_run_cells_show_the_label_hover_the_parameters_and_link_the_page():
    cell = run_cell(info(), "hyb", "a", "Hybrid <x>")
    assert cell.text == "Hybrid <x>" and cell.href == f"runs/hyb__a/{RUN_PAGE}"
    assert cell.title is not None and "hyb" in cell.title and "lightfm" in cell.title and '"x": "<y>"' in cell.title


def test_split_tables_follow_the_experiment_and_sort_by_the_metric_failed_last():
    html = split_tables(comparison(), pd.DataFrame(), info())
    tables = re.findall(r"<table>.*?</table>", html, re.S)
    assert len(tables) == 2 and "b: " in tables[0] and "a: " in tables[1], "splits in the experiment's order"
    for table in tables:
        labels = re.findall(r'<a href="runs/(\w+)__', table)
        assert labels == ["hyb", "knn", "pop", "bad"]
    assert "Hybrid &lt;x&gt;" in html and "Hybrid <x>" not in html and "boom &lt;b&gt;" in html
    heads = re.findall(r"<th[^>]*>([^<]*)</th>", tables[0])
    assert heads[:2] == ["실행 (run)", "ndcg@10"], "no index column: the run comes first"
