"""A report whose run labels and item titles matplotlib would read as math is still written, text as written.

``pop $\\notacommand$`` as a run label stopped 04_compare_models, and as an item title stopped
05_curate_new_user, so no report was written. Both notebooks run here on the tiny catalog with
such labels and titles (a dollar sign is a dollar sign: see ``kdq_lab.plots``).
"""

from __future__ import annotations

import html
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from kdq_lab.app.run import run_experiment
from kdq_lab.execution.runner import ExecOptions
from kdq_lab.experiment.plan import PlanOptions

pytestmark = pytest.mark.slow  # a whole experiment and its notebooks

LABELS = {"popularity": "pop $\\notacommand$", "hybrid": "_$x^$ 하이브리드 100%"}
TITLE = "$\\notacommand$ $x^$ "  # put before every item title


@pytest.fixture(scope="module")
def report(tiny_catalog, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("literal")
    dataset = Path(shutil.copytree(tiny_catalog, folder / "kdq-tiny"))
    items = pd.read_csv(dataset / "items.csv", dtype=str, keep_default_na=False)
    items["title"] = TITLE + items["title"]
    items.to_csv(dataset / "items.csv", index=False)
    experiment = {
        "name": "literal",
        "title": "달러 $\\notacommand$ 제목",
        "dataset": str(dataset),
        "seeds": [42],
        "k": [5, 10],
        "metric": "ndcg@10",
        "reference": "popularity",
        "bootstrap": {"samples": 100, "seed": 0},
        "splits": {"cold": {"kind": "cold_users", "test_fraction": 0.2, "validation_fraction": 0.1}},
        "runs": {
            "popularity": {"model": "popularity", "label": LABELS["popularity"]},
            "hybrid": {
                "model": "lightfm",
                "label": LABELS["hybrid"],
                "params": {"features": "both", "no_components": 8, "epochs": 10, "curve_users": 100},
            },
        },
        "notebooks": [{"notebook": "05_curate_new_user", "parameters": {"MODEL_RUN": "hybrid__cold"}}],
    }
    path = folder / "literal.yaml"
    path.write_text(yaml.safe_dump(experiment, allow_unicode=True), encoding="utf-8")
    outcome = run_experiment(path, PlanOptions(out=folder / "report", jobs=2), ExecOptions(progress=False, fresh=True))
    assert outcome.ok, outcome.failed
    return folder / "report"


def test_the_comparison_is_written_with_the_labels_as_written(report):
    page = (report / "index.html").read_text(encoding="utf-8")
    for label in LABELS.values():
        assert html.escape(label, quote=False) in page
    figures = {p.name for p in (report / "figures").glob("*.png")}
    assert {"metric_by_run.png", "new_vs_returning.png", "recall_over_k_cold.png", "tradeoff_cold.png"} <= figures


def test_the_curation_notebook_runs_on_such_titles(report):
    page = (report / "05_curate_new_user.html").read_text(encoding="utf-8")
    assert "all checks passed" in page and html.escape(TITLE.strip(), quote=False) in page
