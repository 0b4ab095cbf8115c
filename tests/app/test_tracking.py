"""MLflow tracking (``kdq-lab run --track``): the optional extra is refused clearly when missing, the URI and the
``tracking:`` block are checked before any work, and a tracked smoke run reads back equal to ``comparison.csv``."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from kdq_lab.app.tracking import check_uri, require_mlflow
from kdq_lab.cli import main
from kdq_lab.errors import DataError, KdqError
from kdq_lab.experiment.schema import MAX_URI, load_experiment

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "notebooks" / "experiments" / "smoke.yaml"
BASE = {
    "name": "t",
    "dataset": "kdq-catalog-tiny",
    "splits": {"cold": {"kind": "cold_users"}},
    "runs": {"pop": {"model": "popularity"}},
}


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def no_mlflow(monkeypatch):
    """MLflow as absent as on a clean clone without the extra (``import mlflow`` raises ImportError)."""
    monkeypatch.setitem(sys.modules, "mlflow", None)


def test_tracking_without_the_extra_names_it(no_mlflow):
    with pytest.raises(KdqError, match=r'optional extra \'tracking\': pip install -e "\.\[tracking\]"'):
        require_mlflow()


@pytest.mark.parametrize("flags", [["--track"], ["--track-uri", "sqlite:////tmp/x.db"]])
def test_run_with_track_but_no_mlflow_exits_2_before_running(no_mlflow, tmp_path, capsys, flags):
    out = tmp_path / "report"
    code = main(["run", str(_write(tmp_path, BASE)), "--out", str(out), *flags])
    err = capsys.readouterr().err
    assert code == 2 and ".[tracking]" in err and "Traceback" not in err
    assert not out.exists(), "refused before any work"


def test_tracking_block_in_the_yaml_also_needs_the_extra(no_mlflow, tmp_path, capsys):
    code = main(["run", str(_write(tmp_path, BASE | {"tracking": {}})), "--out", str(tmp_path / "report")])
    assert code == 2 and ".[tracking]" in capsys.readouterr().err


@pytest.mark.parametrize(
    "tracking, key, fragment",
    [
        ({"uri": 5}, "tracking.uri", "expected an MLflow tracking URI"),
        ({"uri": ""}, "tracking.uri", "expected an MLflow tracking URI"),
        ({"uri": "sqlite:///a\nb.db"}, "tracking.uri", "printable"),
        ({"uri": "x" * (MAX_URI + 1)}, "tracking.uri", f"1 to {MAX_URI} characters"),
        ({"url": "sqlite:///a.db"}, "tracking.url", "unknown key; allowed: uri"),
        ("sqlite:///a.db", "tracking", "expected a mapping"),
        ([{"uri": "x"}], "tracking", "expected a mapping"),
    ],
)
def test_a_bad_tracking_block_is_refused_with_key_and_line(tmp_path, tracking, key, fragment):
    with pytest.raises(DataError) as caught:
        load_experiment(_write(tmp_path, BASE | {"tracking": tracking}))
    matches = [p for p in caught.value.problems if p.column == key and fragment in p.message]
    assert matches and matches[0].line is not None, "\n".join(map(str, caught.value.problems))


@pytest.mark.parametrize(
    "tracking, on, uri",
    [
        (None, False, None),
        ({}, True, None),
        ({"uri": "sqlite:///t.db"}, True, "sqlite:///t.db"),
        ({"uri": None}, True, None),
    ],
)
def test_the_tracking_block_is_read(tmp_path, tracking, on, uri):
    data = BASE if tracking is None else BASE | {"tracking": tracking}
    experiment = load_experiment(_write(tmp_path, data))
    assert (experiment.tracking, experiment.tracking_uri) == (on, uri)


@pytest.mark.parametrize("uri", ["", "   ", "x" * (MAX_URI + 1), "sqlite:///a\x00.db", "file:///a\tb"])
def test_a_bad_track_uri_is_refused(uri):
    with pytest.raises(KdqError, match="--track-uri"):
        check_uri(uri)


def _expected(comparison: pd.DataFrame) -> dict[tuple[str, str], dict[str, float]]:
    """comparison.csv's metric values per run × split, as the tracked keys: its mean rows (the smoke has two seeds).

    ``ties@k`` are counts of the run's facts, not metrics with intervals, and are not tracked."""
    rows = comparison[comparison["seed"].astype(str) == "mean"]
    metrics = [c for c in comparison.columns if ("@" in c or c in ("mrr", "auc")) and not c.startswith("ties@")]
    metrics = [c.removesuffix("_lo").removesuffix("_hi") for c in metrics]
    out: dict[tuple[str, str], dict[str, float]] = {}
    for row in rows.to_dict("records"):
        values = out.setdefault((row["run"], row["split"]), {})
        for metric in dict.fromkeys(metrics):
            base = f"{row['segment']}/{metric.replace('@', '_at_')}"
            for suffix, column in (("", metric), ("/lo", f"{metric}_lo"), ("/hi", f"{metric}_hi")):
                if column in row and pd.notna(row[column]):
                    values[base.replace("=", "_") + suffix] = float(row[column])
    return out


def _search(mlflow, uri: str) -> list:
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        return mlflow.search_runs(search_all_experiments=True, output_format="list")
    finally:
        mlflow.set_tracking_uri(before)


@pytest.mark.slow
def test_a_tracked_smoke_run_reads_back_equal_to_comparison_csv(tmp_path):
    mlflow = pytest.importorskip(
        "mlflow", reason="MLflow (the optional extra tracking) is not importable", exc_type=ImportError
    )
    from kdq_lab.app.run import run_experiment
    from kdq_lab.app.tracking import track_report
    from kdq_lab.execution.runner import ExecOptions
    from kdq_lab.experiment.plan import PlanOptions
    from kdq_lab.files import made_by_lab
    from kdq_lab.report.checks import static_problems

    report, store = tmp_path / "report", f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    (tmp_path / "store").mkdir()
    options = PlanOptions(out=report, jobs=2, only=["popularity", "lightfm_ids"])
    outcome = run_experiment(SMOKE, options, ExecOptions(progress=False, fresh=True), track_uri=store)
    assert outcome.ok, outcome.failed
    assert not (report / "tracking").exists(), "an explicit URI writes nothing into the report"

    runs = _search(mlflow, store)
    assert (tmp_path / "store" / "artifacts").is_dir(), "a SQLite store's artifacts go beside it, not into ./mlruns"
    parents = [r for r in runs if r.data.tags.get("kdq.level") == "report"]
    children = [r for r in runs if r.data.tags.get("kdq.level") == "run"]
    assert len(parents) == 1 and all(r.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for r in children)
    comparison = pd.read_csv(report / "comparison.csv")
    expected = _expected(comparison)
    logged = {(r.data.tags["kdq.run"], r.data.tags["kdq.split"]): r for r in children}
    assert sorted(logged) == sorted(expected) and len(children) == len(expected), "one MLflow run per run x split"
    for key, child in logged.items():
        assert child.data.metrics.keys() == expected[key].keys(), key
        assert child.data.metrics == pytest.approx(expected[key], rel=1e-12, abs=0), key
        assert child.data.params["model"] and child.data.tags["kdq.exclude"] == "seen"
        assert child.data.tags["kdq.split_hash"] and child.data.tags["kdq.git_commit"]
        artifacts = {a.path for a in mlflow.MlflowClient(store).list_artifacts(child.info.run_id)}
        assert {"summary.json", "03_train_evaluate.html"} <= artifacts

    parent_id = track_report(report)  # the embedded default: inside the report, on its marker
    assert (report / "tracking" / "mlflow.db").is_file() and made_by_lab(report)
    assert static_problems(report) == []
    default = _search(mlflow, f"sqlite:///{report / 'tracking' / 'mlflow.db'}")
    assert len(default) == 1 + len(expected) and parent_id in {r.info.run_id for r in default}


@pytest.mark.parametrize("uri", ["sqlite:///x\x1b[2J.db", ""])
def test_a_dry_run_refuses_a_bad_track_uri_too(uri, capsys):
    from kdq_lab.cli import main

    smoke = Path(__file__).resolve().parents[2] / "notebooks" / "experiments" / "smoke.yaml"
    assert main(["run", str(smoke), "--track-uri", uri, "--dry-run"]) == 2
    assert "--track-uri" in capsys.readouterr().err
