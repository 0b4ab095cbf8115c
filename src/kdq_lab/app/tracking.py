"""Log a finished report to MLflow (``kdq-lab run --track``; the optional extra ``tracking``).

Each run × split becomes an MLflow run under a parent run for the report: its resolved configuration
as params, each segment's mean and 95% interval bounds as metrics (the rows ``comparison.csv`` shows:
the mean over seeds, or the single seed's), the experiment, split hashes, git commit and exclusion
rule as tags, and its HTML page and ``summary.json`` as artifacts. Everything is read back from the
report folder (:func:`kdq_lab.report.comparison.load_runs`), so tracking never changes a result.

The default store is embedded: ``<report>/tracking/mlflow.db`` (SQLite) with artifacts beside it,
recorded on the report's marker like the tuning studies' ``optuna.db``. No server, no network.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pandas as pd

from kdq_lab.errors import KdqError
from kdq_lab.experiment.schema import MAX_URI
from kdq_lab.files import record_in_marker
from kdq_lab.jsonfile import read_json
from kdq_lab.report.comparison import RunRecord, load_runs
from kdq_lab.runs.results import column_name

FOLDER = "tracking"
DATABASE = "mlflow.db"
ARTIFACTS = "artifacts"
EXTRA = 'pip install -e ".[tracking]"'
#: MLflow's metric and param keys: letters, digits and ``_ - . space / :``; anything else becomes ``_``.
_KEY_UNSAFE = re.compile(r"[^\w.\- /:]")
_VALUE_MAX = 6000  # MLflow 3's longest param value


def require_mlflow() -> None:
    """Refuse tracking, before any work, when the optional extra is not installed; keep MLflow's telemetry off."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # set before MLflow is imported: nothing leaves
    os.environ.setdefault("DO_NOT_TRACK", "true")
    try:
        import mlflow  # noqa: F401
    except ImportError as exc:
        raise KdqError(f"--track needs MLflow, the optional extra 'tracking': {EXTRA} ({exc})") from None


def check_uri(uri: str) -> str:
    """``uri`` if it can be a tracking URI (printable, at most :data:`MAX_URI` characters), else a clear error."""
    if not uri.strip() or len(uri) > MAX_URI or not uri.isprintable():
        raise KdqError(
            f"--track-uri {uri[:80]!r}: expected an MLflow tracking URI of 1 to {MAX_URI} printable characters"
        )
    return uri


def default_uri(report: Path) -> str:
    """The embedded store of a report: ``sqlite:///<report>/tracking/mlflow.db``."""
    return f"sqlite:///{(Path(report) / FOLDER / DATABASE).resolve()}"


def _artifact_root(uri: str) -> str | None:
    """Artifacts of a SQLite store go beside its file (MLflow's default, ``./mlruns``, is wherever the lab runs);
    other stores decide themselves (``None``)."""
    if not uri.startswith("sqlite:///"):
        return None
    return (Path(uri.removeprefix("sqlite:///")).resolve().parent / ARTIFACTS).as_uri()


def _key(text: str) -> str:
    return _KEY_UNSAFE.sub("_", text)


def _metrics(record: RunRecord) -> dict[str, float]:
    """``<segment>/<metric>_at_<k>`` (and ``.../lo``, ``.../hi``) from the rows ``comparison.csv`` shows."""
    table = record.results
    if table is None or table.empty:
        return {}
    pooled = table["seed"] == "mean"
    rows = table[pooled] if pooled.any() else table
    out: dict[str, float] = {}
    for row in rows.itertuples(index=False):
        base = _key(f"{row.segment}/{column_name(str(row.metric), row.k).replace('@', '_at_')}")
        for suffix, value in (("", row.value), ("/lo", row.lo), ("/hi", row.hi)):
            if not pd.isna(value):
                out[base + suffix] = float(value)
    return out


def _params(record: RunRecord, info: Any) -> dict[str, str]:
    """The run's resolved configuration, flattened (``params.<name>``, ``split.<name>``)."""
    assert record.summary is not None
    summary = record.summary
    plain: dict[str, Any] = {
        "run": record.run,
        "label": record.label,
        "model": record.model,
        "dataset": summary.dataset,
        "split": record.split,
        "seeds": summary.seeds,
        "k": summary.k,
        "metric": summary.metric,
        "exclude": summary.exclude,
        "refit": summary.refit,
        "sample_users": summary.sample_users,
        "bootstrap": info.bootstrap,
    }
    plain |= {f"params.{name}": value for name, value in summary.params.items()}
    plain |= {f"split.{name}": value for name, value in summary.split_config.items()}
    return {
        _key(name): json.dumps(value, ensure_ascii=False, default=str)[:_VALUE_MAX] for name, value in plain.items()
    }


def _log(client: Any, run_id: str, params: dict[str, str], metrics: dict[str, float], tags: dict[str, str]) -> None:
    from mlflow.entities import Metric, Param, RunTag

    now = int(time.time() * 1000)
    params_list = [Param(k, v) for k, v in params.items()]
    metric_list = [Metric(k, v, now, 0) for k, v in metrics.items()]
    tag_list = [RunTag(k, v) for k, v in tags.items()]
    for start in range(0, max(len(params_list), len(metric_list), len(tag_list)), 100):  # MLflow's batch limits
        client.log_batch(
            run_id,
            metrics=metric_list[start : start + 100],
            params=params_list[start : start + 100],
            tags=tag_list[start : start + 100],
        )


def track_report(report: Path, uri: str | None = None) -> str:
    """Log the report at ``report`` to the MLflow store at ``uri`` (default: :func:`default_uri`).

    Returns the parent run's id. Failed runs are logged with status ``FAILED`` and no metrics.
    """
    require_mlflow()
    from mlflow.tracking import MlflowClient

    report = Path(report)
    info, records = load_runs(report)
    manifest = read_json(report / "manifest.json", "manifest")
    embedded = uri is None
    uri = uri or default_uri(report)
    artifacts = _artifact_root(uri)
    if embedded:
        (report / FOLDER / ARTIFACTS).mkdir(parents=True, exist_ok=True)
    client = MlflowClient(tracking_uri=uri)
    try:
        experiment = client.get_experiment_by_name(info.name)
        experiment_id = (
            experiment.experiment_id
            if experiment is not None
            else client.create_experiment(info.name, artifact_location=artifacts)
        )
        common = {
            "kdq.experiment": info.name,
            "kdq.dataset": info.dataset,
            "kdq.git_commit": str(manifest.get("git_commit") or "unknown"),
            "kdq.exclude": info.exclude,
            "kdq.report": str(report.resolve()),
        }
        parent = client.create_run(experiment_id, run_name=info.name, tags=common | {"kdq.level": "report"})
        parent_id = parent.info.run_id
        _log(client, parent_id, {}, {}, {"mlflow.note.content": info.title})
        for name in ("index.html", "comparison.csv", "experiment.json", "manifest.json"):
            if (report / name).is_file():
                client.log_artifact(parent_id, str(report / name))
        for record in records:
            tags = common | {"kdq.level": "run", "kdq.run": record.run, "kdq.split": record.split}
            tags["mlflow.parentRunId"] = parent_id
            if record.summary is not None:
                tags["kdq.split_hash"] = ",".join(dict.fromkeys(s.split_id for s in record.summary.per_seed))
            child = client.create_run(experiment_id, run_name=f"{record.run}__{record.split}", tags=tags)
            child_id = child.info.run_id
            if record.summary is None:
                assert record.failure is not None
                _log(client, child_id, {}, {}, {"kdq.error": record.failure.error[:_VALUE_MAX]})
                client.set_terminated(child_id, "FAILED")
                continue
            _log(client, child_id, _params(record, info), _metrics(record), {})
            for page in [*sorted(record.folder.glob("*.html")), record.folder / "summary.json"]:
                client.log_artifact(child_id, str(page))
            client.set_terminated(child_id)
        client.set_terminated(parent_id, "FINISHED" if all(r.ok for r in records) else "FAILED")
    finally:
        if embedded and (report / FOLDER).is_dir():
            record_in_marker(report, [report / FOLDER])
    return parent_id
