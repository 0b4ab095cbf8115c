"""kdq-lab run keeps the last report as previous/ (lab-made, never nested) and links its diff; a planted change in
one run moves exactly that run's rows; identical inputs diff clean."""

from __future__ import annotations

from pathlib import Path

import pytest

from kdq_lab.app.run import run_experiment
from kdq_lab.execution.runner import ExecOptions
from kdq_lab.experiment.plan import PlanOptions
from kdq_lab.files import made_by_lab
from kdq_lab.report.checks import static_problems
from kdq_lab.report.diff import compute_diff

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "notebooks" / "experiments" / "smoke.yaml"
RUNS = ["popularity", "lightfm_ids"]


def _run(out: Path, fresh: bool, overrides: tuple[str, ...] = ()) -> None:
    options = PlanOptions(out=out, jobs=2, only=RUNS, overrides=list(overrides))
    outcome = run_experiment(SMOKE, options, ExecOptions(progress=False, fresh=fresh))
    assert outcome.ok, outcome.failed


@pytest.mark.slow
def test_previous_report_diff_and_a_planted_change(tmp_path):
    report = tmp_path / "smoke"
    _run(report, fresh=True)
    assert not (report / "previous").exists() and not (report / "diff.html").exists()
    assert "diff.html" not in (report / "index.html").read_text(encoding="utf-8")

    _run(report, fresh=True)  # identical inputs, every run executed again
    previous = report / "previous"
    assert made_by_lab(previous) and made_by_lab(report) and not (previous / "previous").exists()
    assert 'href="diff.html"' in (report / "index.html").read_text(encoding="utf-8")
    assert static_problems(report) == [], "check-report reads diff.html too"
    same = compute_diff(previous, report)
    assert same.exit_code == 0 and not same.rows["changed"].any() and same.rows["paired"].all()

    # a planted change in one run: LightFM ids barely learns, so it falls far below what it scored
    _run(report, fresh=False, overrides=("runs.lightfm_ids.params.learning_rate=0.000001",))
    assert not (report / "previous" / "previous").exists(), "only the last report is kept, never nested"
    moved = compute_diff(report / "previous", report)
    changed = moved.rows[moved.rows["changed"]]
    assert set(changed["run"]) == {"lightfm_ids"}, "popularity is bit-identical, every row of it unchanged"
    assert moved.exit_code == 1 and set(moved.moved["run"]) == {"lightfm_ids"}
    assert (moved.moved["delta"] < 0).all()
    assert [key for key, _, _ in moved.parameters] == ["runs.lightfm_ids.params.learning_rate"]
