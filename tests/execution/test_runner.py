"""The papermill runner: a real tiny experiment, a failing run, and interrupted runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml
from links_fixture import outside_file, plant_links, regular_tree

from kdq_lab.errors import KdqError
from kdq_lab.execution.runner import ExecOptions
from kdq_lab.experiment.plan import PlanOptions
from kdq_lab.files import MARKER, atomic_dir, made_by_lab
from kdq_lab.runs.records import RunSummary
from kdq_lab.runs.results import read_results

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "notebooks" / "experiments" / "smoke.yaml"


@pytest.fixture(scope="module")
def report(smoke_report):
    return smoke_report


@pytest.mark.slow  # a whole experiment (the smoke report)
def test_comparison_has_every_run_split_seed_and_segment(report):
    table = pd.read_csv(report / "comparison.csv", dtype={"seed": str})
    for column in (
        "run",
        "label",
        "split",
        "seed",
        "segment",
        "status",
        "n_users",
        "ndcg@10",
        "ndcg@10_lo",
        "ndcg@10_hi",
        "precision@5",
        "recall@10",
        "map@10",
        "mrr",
        "auc",
        "auc_lo",
        "coverage@10",
        "novelty@10",
        "diversity@10",
        "ties@10",
        "flags",
        "dropped_seen",
        "fit_seconds",
        "eval_seconds",
    ):
        assert column in table.columns, column
    assert set(table["run"]) == {"popularity", "lightfm_hybrid", "oracle"}
    assert set(table["seed"]) == {"42", "43", "mean", "std"}, "two seeds, their mean and their spread"
    builtin = {"all", "returning", "new", "history:0", "history:1-4", "history:5-19", "history:20+"}
    assert set(table["segment"]) <= builtin and {"all", "new", "returning"} <= set(table["segment"])
    assert (table.groupby(["run", "split", "seed"])["segment"].apply(lambda s: "all" in set(s))).all()
    ok = table[table["seed"] != "std"]
    for metric in [c[: -len("_lo")] for c in table.columns if c.endswith("_lo")]:
        assert ((ok[f"{metric}_lo"] <= ok[metric] + 1e-9) & (ok[metric] <= ok[f"{metric}_hi"] + 1e-9)).all(), metric
    # the mean row is the mean of the seeds' rows, the std row their spread
    per_seed = table[(table["segment"] == "all") & table["seed"].isin(["42", "43"])].groupby("run")["ndcg@10"]
    pooled = table[table["segment"] == "all"].set_index(["run", "seed"])["ndcg@10"]
    for run, values in per_seed:
        assert pooled[(run, "mean")] == pytest.approx(values.mean())
        assert pooled[(run, "std")] == pytest.approx(values.std(ddof=1))
    assert (table["status"] == "ok").all()
    popularity = table[(table["run"] == "popularity") & (table["segment"] == "all") & (table["seed"] == "42")]
    assert popularity["ties@10"].iloc[0] > 0 and "ties@10" in popularity["flags"].iloc[0], (
        "integer popularity counts tie at the cut-off, and the comparison says so"
    )


@pytest.mark.slow  # a whole experiment (the smoke report)
def test_paired_comparison_uses_every_seed(report):
    paired = pd.read_csv(report / "paired.csv", dtype={"seed": str})
    rows = paired[(paired["run"] == "lightfm_hybrid") & (paired["metric"] == "ndcg@10")].set_index("seed")
    assert set(rows.index) == {"42", "43", "all"}
    assert rows.loc["all", "n_users"] >= rows.loc["42", "n_users"], "users of every seed count"
    # Holm over the runs compared with the reference, within split x metric x seed
    assert (paired["p_holm"] >= paired["p_wilcoxon"] - 1e-12).all() and (paired["p_holm"] <= 1).all()
    family = paired[(paired["metric"] == "ndcg@10") & (paired["seed"] == "all")]
    assert len(family) == 2 and family["p_holm"].max() == pytest.approx(
        min(1.0, max(2 * family["p_wilcoxon"].min(), family["p_wilcoxon"].max()))
    )


@pytest.mark.slow  # a whole experiment (the smoke report)
def test_report_folder_layout_and_manifest(report):
    page = (report / "index.html").read_text(encoding="utf-8")
    assert "Smoke test: LightFM hybrid vs popularity on the tiny catalog" in page
    assert all(run in page for run in ("popularity", "lightfm_hybrid", "oracle")), "every run is in the report"
    assert page.count("<img") >= 4 and "data:image/png;base64" in page, "the figures are embedded"
    executed = json.loads((report / "04_compare_models.ipynb").read_text(encoding="utf-8"))
    outputs = [o for cell in executed["cells"] for o in cell.get("outputs", [])]
    assert outputs and not [o for o in outputs if o["output_type"] == "error"]
    assert (report / "comparison.md").read_text(encoding="utf-8").startswith("# ")
    assert "Excluded from each user's ranking: every item" in (report / "comparison.md").read_text(encoding="utf-8")
    assert list((report / "figures").glob("*.png"))
    run = report / "runs" / "lightfm_hybrid__global"
    for name in (
        "03_train_evaluate.ipynb",
        "03_train_evaluate.html",
        "metrics.parquet",
        "summary.json",
        "model/model.json",
    ):
        assert (run / name).exists(), name
    assert json.loads((run / "model" / "model.json").read_text(encoding="utf-8"))["extra"]["seed"] == 42, "first seed"
    assert not (run / "model" / "s43").exists(), "other seeds are reproduced from their seeds, not stored"
    assert (report / "splits" / "global" / "02_prepare_data.html").is_file()
    manifest = json.loads((report / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["status"] == "ok" and manifest["seeds"] == [42, 43] and manifest["exclude"] == "seen"
    assert {"git_commit", "dataset", "versions", "steps", "papermill", "resolved", "splits"} <= set(manifest)
    assert set(manifest["dataset"]["hashes"]) >= {"users.csv", "items.csv", "interactions.csv"}
    assert all(step["seconds"] > 0 for step in manifest["steps"])
    for step in manifest["steps"]:
        assert not Path(step["notebook"]).is_absolute() and (report / step["notebook"]).is_file(), step
    summary = RunSummary.read(run / "summary.json")
    assert summary.seeds == [42, 43] and summary.exclude == "seen" and summary.metric == "ndcg@10"
    for facts in summary.per_seed:
        assert facts.params["random_state"] == facts.seed, "each seed seeds the model"
        assert facts.params["validation_metric"] == "ndcg@10", "early stopping uses the headline metric"
        assert facts.split_id in facts.split_folder
    assert set(read_results(run)["seed"]) == {"42", "43", "mean", "std"}
    from kdq_lab.files import current_umask

    modes = {p.stat().st_mode & 0o777 for p in report.rglob("*") if p.is_file()}
    assert modes == {0o666 & ~current_umask()}, f"report files get the umask's permissions, not 0600: {modes}"


def write_experiment(tmp_path: Path, change: dict) -> Path:
    data = yaml.safe_load(SMOKE.read_text(encoding="utf-8")) | change
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.slow  # a whole experiment
def test_a_failing_run_is_marked_and_the_others_finish(tmp_path):
    path = write_experiment(
        tmp_path,
        {"runs": {"popularity": {"model": "popularity"}, "broken": {"model": "ease", "params": {"max_items": 10}}}},
    )
    out = tmp_path / "report"
    proc = subprocess.run(
        [sys.executable, "-m", "kdq_lab.cli", "run", str(path), "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 1, proc.stderr
    assert "failed: run broken__global" in proc.stderr
    table = pd.read_csv(out / "comparison.csv")
    broken = table[table["run"] == "broken"].iloc[0]
    assert broken["status"] == "failed" and "max_items" in broken["error"]
    assert broken["notebook"] == "runs/broken__global/03_train_evaluate.ipynb", "relative to the report"
    assert (out / "runs" / "broken__global" / "03_train_evaluate.ipynb").is_file()
    assert (table[table["run"] == "popularity"]["status"] == "ok").all()


def start(tmp_path: Path, out: Path) -> subprocess.Popen:
    path = write_experiment(tmp_path, {})
    return subprocess.Popen(
        [sys.executable, "-m", "kdq_lab.cli", "run", str(path), "--out", str(out)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def wait_for_runs(out: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if list(out.parent.glob(f".{out.name}.kdq-tmp-*/runs")):
            return
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.2)
    raise AssertionError("the run never started")


def previous_report(out: Path) -> dict[str, bytes]:
    with atomic_dir(out) as tmp:  # a report the lab made
        (tmp / "index.html").write_text("<p>previous report</p>", encoding="utf-8")
        (tmp / "comparison.csv").write_text("run,split\nold,old\n", encoding="utf-8")
    return {p.name: p.read_bytes() for p in out.iterdir()}


@pytest.mark.slow  # a whole experiment
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGINT])
def test_an_interrupted_run_leaves_the_previous_report_intact(tmp_path, signum):
    out = tmp_path / "report"
    before = previous_report(out)
    proc = start(tmp_path, out)
    wait_for_runs(out, proc)
    os.killpg(proc.pid, signum)
    proc.wait(timeout=60)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    if signum == signal.SIGINT:
        assert proc.returncode == 130
        assert not list(out.parent.glob(f".{out.name}.kdq-*")), "a clean interrupt removes its temporary folder"


def test_the_previous_report_s_studies_are_copied_without_following_links(tmp_path):
    from kdq_lab.execution.runner import _carry_over
    from kdq_lab.files import SkippedEntryWarning

    previous = tmp_path / "report"
    outside = outside_file(tmp_path)
    with atomic_dir(previous) as tmp:
        (tmp / "tuning").mkdir()
        (tmp / "tuning" / "optuna.db").write_bytes(b"studies")
        (tmp / "tuning" / "summary.json").write_text("{}", encoding="utf-8")
        (tmp / "manifest.json").write_text('{"tuned": false}', encoding="utf-8")
        (tmp / "paired.csv").write_text("run\n", encoding="utf-8")
        (tmp / "comparison.csv").symlink_to(outside)
        planted = plant_links(tmp / "tuning", outside)
    with pytest.warns(SkippedEntryWarning) as caught, atomic_dir(tmp_path / "next") as tmp:
        _carry_over(SimpleNamespace(report=previous, tuning={"storage": "sqlite:///x"}), tmp)
    skipped = {str(w.message).split(": ")[0] for w in caught}
    assert skipped == {str(previous / "tuning" / name) for name in planted} | {str(previous / "comparison.csv")}
    copied = ["tuning", "tuning/optuna.db", "tuning/summary.json", "tuning/untuned_paired.csv"]
    assert regular_tree(tmp_path / "next") == [".kdq-lab", *copied]
    assert made_by_lab(tmp_path / "next")
    assert outside.read_text(encoding="utf-8").startswith("root:")


@pytest.mark.parametrize("kind", ["link to a folder", "fifo"])
def test_a_previous_tuning_folder_that_is_not_a_folder_is_not_copied(kind, tmp_path):
    from kdq_lab.execution.runner import _carry_over
    from kdq_lab.files import SkippedEntryWarning

    previous = tmp_path / "report"
    previous.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "optuna.db").write_bytes(b"someone else's")
    if kind == "fifo":
        os.mkfifo(previous / "tuning")
    else:
        (previous / "tuning").symlink_to(elsewhere, target_is_directory=True)
    with pytest.warns(SkippedEntryWarning, match="tuning"), atomic_dir(tmp_path / "next") as tmp:
        _carry_over(SimpleNamespace(report=previous, tuning=None), tmp)
    assert not (tmp_path / "next" / "tuning").exists()


@pytest.fixture
def failing_compare(tmp_path, monkeypatch):
    """Plan the smoke experiment in a workspace of its own; every notebook 'runs' and fails, compare included."""
    import kdq_lab.execution.runner as runner
    from kdq_lab.config import Paths
    from kdq_lab.experiment.plan import plan_experiment

    def pool(jobs, workers, progress, label, on_done=None):
        results = []
        for job in jobs:
            job.output.parent.mkdir(parents=True, exist_ok=True)
            job.output.write_text(json.dumps({"cells": [], "executed": job.key}), encoding="utf-8")
            results.append({"kind": job.kind, "key": job.key, "status": "failed", "error": "boom", "seconds": 0.0})
        return results

    monkeypatch.setattr(runner, "run_pool", pool)
    paths = Paths(ROOT, tmp_path / "workspace")

    def run(out: Path, force: bool = False) -> str:
        plan = plan_experiment(SMOKE, PlanOptions(only=["popularity"], out=out), paths=paths)
        with pytest.raises(KdqError) as caught:
            runner.execute_plan(plan, ExecOptions(progress=False, force=force, fresh=True))
        return str(caught.value)

    return run


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_failed_compare_without_a_previous_report_leaves_a_lab_folder_holding_just_it(failing_compare, tmp_path):
    out = tmp_path / "out" / "report"
    message = failing_compare(out)
    kept = out / "failed-compare" / "04_compare_models.ipynb"
    assert str(kept) in message and "04_compare_models failed (boom)" in message
    assert json.loads(kept.read_text(encoding="utf-8"))["executed"] == "04_compare_models"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["report"], "nothing beside --out"
    assert sorted(tree(out)) == [MARKER, "failed-compare/04_compare_models.ipynb"]
    assert made_by_lab(out), "the next run replaces it"


def test_a_failed_compare_adds_one_subfolder_to_the_previous_report_and_nothing_beside_it(failing_compare, tmp_path):
    out = tmp_path / "out" / "report"
    previous_report(out)
    sibling = tmp_path / "out" / "smoke.failed-compare.ipynb"  # where older labs wrote it: someone's file now
    sibling.write_text("my notebook", encoding="utf-8")
    before = {k: v for k, v in tree(out).items() if k != MARKER}
    for _ in range(2):  # a second failure replaces the lab's own failed-compare/
        message = failing_compare(out)
        assert str(out / "failed-compare" / "04_compare_models.ipynb") in message
        after = tree(out)
        assert {k: v for k, v in after.items() if not k.startswith("failed-compare/") and k != MARKER} == before
        assert sorted(k for k in after if k.startswith("failed-compare/")) == [
            "failed-compare/.kdq-lab",
            "failed-compare/04_compare_models.ipynb",
        ]
        assert made_by_lab(out), "what was added is in the report's marker"
    assert sibling.read_text(encoding="utf-8") == "my notebook"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["report", "smoke.failed-compare.ipynb"]


def test_a_failed_compare_never_replaces_a_failed_compare_folder_the_lab_did_not_write(failing_compare, tmp_path):
    out = tmp_path / "report"
    previous_report(out)
    (out / "failed-compare").mkdir()
    (out / "failed-compare" / "04_compare_models.ipynb").write_text("my analysis", encoding="utf-8")
    message = failing_compare(out, force=True)  # --force was about replacing the report once it succeeds
    assert "not kept" in message and str(out / "failed-compare") in message
    assert (out / "failed-compare" / "04_compare_models.ipynb").read_text(encoding="utf-8") == "my analysis"
