"""kdq-lab diff on hand-made report folders: identical reports, a planted change in one run, unpaired splits,
added and removed runs, settings that differ, and bad input (exit 2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kdq_lab.app.diff import diff_reports
from kdq_lab.cli import main
from kdq_lab.evaluation import add_segments
from kdq_lab.evaluation.metrics import per_user_columns
from kdq_lab.files import atomic_dir, made_by_lab, write_json
from kdq_lab.report.checks import static_problems
from kdq_lab.runs.records import ExperimentInfo, RunSummary, SeedFacts
from kdq_lab.runs.results import frame, pooled_rows, seed_rows, write_results

KS = [10]
METRICS = per_user_columns(KS)
SEEDS = [1, 2]
N_USERS = 200


def per_user(run: str, seed: int, shift: dict[str, float]) -> pd.DataFrame:
    """Per-user metrics of a run on one seed: half the users new, half returning; ``shift`` moves metrics."""
    rng = np.random.default_rng(seed * 100 + len(run))
    table = pd.DataFrame({m: np.clip(rng.random(N_USERS), 0, 1) for m in METRICS})
    for metric, by in shift.items():
        table[metric] = table[metric] + by
    n_train = np.where(np.arange(N_USERS) % 2 == 0, 0, 7)
    return table.assign(user=np.arange(N_USERS), n_train=n_train, seed=seed)


def write_report(folder: Path, name: str = "t", runs=("pop", "better"), shift=None, split_ids=None, versions=None):
    """A lab-made report folder (marker included) with the files diff reads."""
    shift, split_ids = shift or {}, split_ids or {}
    specs = [
        {
            "run": r,
            "label": r,
            "model": "popularity",
            "params": {},
            "split": "cold",
            "seeds": SEEDS,
            "folder": f"{r}__cold",
        }
        for r in runs
    ]
    info = ExperimentInfo(
        name=name,
        title=name,
        dataset="d",
        k=KS,
        metric="ndcg@10",
        reference="pop",
        seeds=SEEDS,
        refit=True,
        exclude="seen",
        bootstrap={"samples": 100, "seed": 0},
        splits={"cold": {}},
        runs=specs,
    )
    with atomic_dir(folder, force=True) as tmp:
        info.write(tmp / "experiment.json")
        write_json(tmp / "manifest.json", {"resolved": {"runs": list(runs)}, "versions": versions or {"numpy": "2"}})
        for run in runs:
            tables = [per_user(run, seed, shift.get(run, {})) for seed in SEEDS]
            per_seed = tuple(
                SeedFacts(
                    seed=seed,
                    split_id=split_ids.get((run, seed), f"split{seed}"),
                    split_folder=f"/x/{seed}",
                    params={},
                    n_users=N_USERS,
                    n_test_users=N_USERS,
                    n_test_positives=N_USERS,
                    dropped_seen=0,
                    fit_seconds=0.0,
                    eval_seconds=0.0,
                    best_epoch=None,
                    validation_share=None,
                    ties={},
                    hits_by_popularity={},
                )
                for seed in SEEDS
            )
            groups = [segment_groups(t) for t in tables]
            head = {"run": run, "split": "cold"}
            rows = [
                r
                for seed, t, g in zip(SEEDS, tables, groups)
                for r in seed_rows(head | {"seed": str(seed)}, t, g, METRICS, (100, 0))
            ]
            rows += pooled_rows(head, tables, groups, METRICS, (100, 0))
            write_results(frame(rows), tmp / "runs" / f"{run}__cold")
            RunSummary(
                run=run,
                label=run,
                model="popularity",
                params={},
                split="cold",
                split_config={},
                seeds=SEEDS,
                dataset="d",
                raw_hashes={},
                k=KS,
                metric="ndcg@10",
                exclude="seen",
                refit=True,
                per_seed=per_seed,
                deterministic=True,
                versions={},
            ).write(tmp / "runs" / f"{run}__cold" / "summary.json")
            pd.concat(tables).to_parquet(tmp / "runs" / f"{run}__cold" / "metrics.parquet")
    return folder


def segment_groups(table: pd.DataFrame) -> list[tuple[str, np.ndarray]]:
    """The built-in segments' members (all, new vs returning, history bins) of a per-user table."""
    labelled = add_segments(table)
    groups = [("all", np.arange(len(table)))]
    groups += [(v, np.flatnonzero(labelled["returning"].to_numpy() == v)) for v in ("returning", "new")]
    groups += [
        (f"history:{v}", np.flatnonzero(labelled["history"].astype(str).to_numpy() == v))
        for v in ("0", "1-4", "5-19", "20+")
    ]
    return groups


@pytest.fixture
def old(tmp_path):
    return write_report(tmp_path / "old")


def test_identical_reports_diff_clean(old, tmp_path, capsys):
    new = write_report(tmp_path / "new")
    diff, page = diff_reports(old, new)
    assert diff.exit_code == 0 and diff.moved.empty and not diff.rows["changed"].any()
    assert diff.rows["paired"].all() and not diff.added and not diff.removed and not diff.parameters
    assert len(diff.rows) == 2 * 5 * len(
        METRICS
    )  # runs x segments with users (all, new, returning, 2 history) x metrics
    assert page == new / "diff.html" and made_by_lab(new), "the page is recorded in the new report's marker"
    assert main(["diff", str(old), str(new)]) == 0
    assert "0 of" in capsys.readouterr().out


@pytest.mark.parametrize(
    "shift",
    [
        {"better": {"ndcg@10": 0.05}},
        {"better": {"ndcg@10": -0.03, "auc": 0.04}},
        {"pop": {"recall@10": 0.02}},
    ],
)
def test_a_planted_change_in_one_run_moves_exactly_its_rows(old, tmp_path, shift, capsys):
    new = write_report(tmp_path / "new", shift=shift)
    diff, _ = diff_reports(old, new)
    ((run, metrics),) = shift.items()
    expected = {(run, seg, m) for m in metrics for seg in ("all", "new", "returning", "history:0", "history:5-19")}
    assert set(zip(diff.moved["run"], diff.moved["segment"], diff.moved["metric"])) == expected
    assert diff.exit_code == 1 and main(["diff", str(old), str(new)]) == 1
    out = capsys.readouterr().out
    assert out.count("  moved: ") == len(expected) and f"moved: {run} · cold · all · {next(iter(metrics))}" in out
    tested = diff.rows["p"].notna()
    assert tested.sum() == len(expected) and not diff.rows.loc[~tested, "changed"].any(), "equal users need no test"
    moved = diff.moved.set_index(["segment", "metric"])
    for metric, by in metrics.items():
        assert moved.loc[("all", metric), "delta"] == pytest.approx(by)


def test_other_splits_make_the_comparison_unpaired(old, tmp_path):
    new = write_report(tmp_path / "new", shift={"better": {"ndcg@10": 0.3}}, split_ids={("better", 2): "other"})
    diff, _ = diff_reports(old, new)
    better = diff.rows[diff.rows["run"] == "better"]
    assert not better["paired"].any() and diff.rows.loc[diff.rows["run"] == "pop", "paired"].all()
    assert set(zip(diff.moved["run"], diff.moved["metric"])) == {("better", "ndcg@10")}, "intervals apart"
    assert better["mde"].isna().all() and better["p_holm"].isna().all()


def test_added_removed_runs_parameters_and_versions(old, tmp_path, capsys):
    new = write_report(tmp_path / "new", runs=("pop", "knn"), versions={"numpy": "3"})
    diff, page = diff_reports(old, new)
    assert diff.added == ("knn · cold",) and diff.removed == ("better · cold",)
    assert diff.versions == (("numpy", "'2'", "'3'"),)
    assert [key for key, _, _ in diff.parameters] == ["runs"]
    assert diff.exit_code == 1
    assert main(["diff", str(old), str(new)]) == 1
    out = capsys.readouterr().out
    assert "added: knn · cold" in out and "removed: better · cold" in out and "version: numpy: '2' → '3'" in out
    text = page.read_text(encoding="utf-8")
    assert "knn · cold" in text and "http" not in text.replace("https://", "").replace("http://", "")


def test_diff_html_escapes_names_and_is_offline(tmp_path):
    old = write_report(tmp_path / "old", runs=("pop", "<b>x</b>"))
    new = write_report(tmp_path / "new", runs=("pop", "<b>x</b>"), shift={"<b>x</b>": {"mrr": 0.1}})
    _, page = diff_reports(old, new)
    text = page.read_text(encoding="utf-8")
    assert "<b>x</b>" not in text and "&lt;b&gt;x&lt;/b&gt;" in text
    assert "<script src" not in text and "<link" not in text


@pytest.mark.parametrize("case", ["not_a_report", "other_experiment", "missing"])
def test_bad_input_exits_2_with_one_line(old, tmp_path, case, capsys):
    if case == "not_a_report":
        other = tmp_path / "plain"
        other.mkdir()
        (other / "notes.txt").write_text("x")
    elif case == "other_experiment":
        other = write_report(tmp_path / "new", name="another")
    else:
        other = tmp_path / "nowhere"
    assert main(["diff", str(old), str(other)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    if case == "other_experiment":
        assert "'another'" in err and "same experiment" in err


def test_check_report_reads_diff_html_when_present(old, tmp_path):
    new = write_report(tmp_path / "new", shift={"pop": {"mrr": 0.1}})
    diff_reports(old, new)
    (new / "index.html").write_text("<html><body>report</body></html>", encoding="utf-8")
    assert not [p for p in static_problems(new) if p.startswith("diff.html")]
    (new / "diff.html").write_text('<html><body><script src="https://cdn.example/x.js"></script></body></html>')
    assert [p for p in static_problems(new) if p.startswith("diff.html")], "a diff page that loads from the network"
