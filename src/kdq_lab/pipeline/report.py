"""Comparison tables of an experiment's runs: ``comparison.csv``, ``comparison.md``, ``paired.csv``.

``comparison.csv`` has one row per run × split × seed × segment (``all``, ``returning``,
``new``, ``history:0`` ...), every mean metric with its 95% interval (``_lo`` / ``_hi``),
beyond-accuracy metrics (segment ``all``), ``n_users``, ``fit_seconds``, ``eval_seconds``,
``status`` and, for failed runs, the error excerpt and the executed notebook.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kdq_lab.evaluation import paired_comparison
from kdq_lab.files import atomic_file
from kdq_lab.pipeline.runs import SEGMENTS, metric_columns

ID_COLUMNS = ["run", "split", "seed", "segment", "status", "n_users"]


def load_experiment_info(report_dir: Path) -> dict[str, Any]:
    return json.loads((Path(report_dir) / "experiment.json").read_text(encoding="utf-8"))


def load_runs(report_dir: Path) -> list[dict[str, Any]]:
    """Every planned run with its summary (``status: ok``) or its failure record."""
    report_dir = Path(report_dir)
    info = load_experiment_info(report_dir)
    records = []
    for spec in info["runs"]:
        folder = report_dir / "runs" / spec["folder"]
        record = {"run": spec["run"], "label": spec["label"], "model": spec["model"], "split": spec["split"],
                  "seed": spec["seed"], "folder": folder}
        if (folder / "summary.json").is_file():
            record["summary"] = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
            record["status"] = "ok"
        else:
            status = folder / "status.json"
            failure = json.loads(status.read_text(encoding="utf-8")) if status.is_file() else {
                "error": "not run", "notebook": None}
            record |= {"status": "failed", "error": failure.get("error"), "notebook": failure.get("notebook")}
        records.append(record)
    return records


def comparison_table(records: list[dict[str, Any]], ks: list[int]) -> pd.DataFrame:
    """One row per run × split × seed × segment (see the module docstring)."""
    metrics = metric_columns(ks)
    rows = []
    for record in records:
        base = {"run": record["run"], "split": record["split"], "seed": record["seed"]}
        if record["status"] != "ok":
            rows.append(base | {"segment": "all", "status": "failed", "n_users": 0, "error": record.get("error"),
                                "notebook": record.get("notebook")})
            continue
        summary = record["summary"]
        for segment in SEGMENTS:
            values = summary["metrics"].get(segment)
            if not values or values["n_users"] == 0:
                continue
            row = base | {"segment": segment, "status": "ok", "n_users": values["n_users"]}
            for metric in metrics:
                ci = values[metric]
                row |= {metric: ci["mean"], f"{metric}_lo": ci["lo"], f"{metric}_hi": ci["hi"]}
            if segment == "all":
                row |= summary["beyond"]
            row |= {"fit_seconds": summary["fit_seconds"], "eval_seconds": summary["eval_seconds"],
                    "best_epoch": summary.get("best_epoch")}
            rows.append(row)
    table = pd.DataFrame(rows)
    ordered = ID_COLUMNS + [c for m in metrics for c in (m, f"{m}_lo", f"{m}_hi")]
    rest = [c for c in table.columns if c not in ordered]
    return table.reindex(columns=ordered + rest)


def paired_table(records: list[dict[str, Any]], reference: str | None, metrics: list[str], n_boot: int = 1000,
                 seed: int = 0) -> pd.DataFrame:
    """Every run minus the reference run, on the same test users, per split and seed and metric."""
    if reference is None:
        return pd.DataFrame()
    tables = {(r["run"], r["split"], r["seed"]): pd.read_parquet(r["folder"] / "metrics.parquet").set_index("user")
              for r in records if r["status"] == "ok"}
    rows = []
    for (run, split, run_seed), table in tables.items():
        base = tables.get((reference, split, run_seed))
        if run == reference or base is None:
            continue
        for metric in metrics:
            result = paired_comparison(table[metric], base[metric], n_boot=n_boot, seed=seed)
            rows.append({"run": run, "reference": reference, "split": split, "seed": run_seed, "metric": metric}
                        | result)
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame, digits: int = 4) -> str:
    """A GitHub-style table with floats at ``digits`` decimals."""
    def cell(value: Any) -> str:
        if isinstance(value, (float, np.floating)):
            return "" if np.isnan(value) else f"{value:.{digits}f}"
        return str(value).replace("|", "\\|")

    header = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"


def headline(comparison: pd.DataFrame, metric: str, segment: str = "all") -> pd.DataFrame:
    """Readable headline table: the metric as 'mean [lo, hi]' plus beyond-accuracy and timings."""
    rows = comparison[comparison["segment"] == segment].copy()
    k = metric.partition("@")[2] or "10"
    rows[metric] = [f"{m:.4f} [{lo:.4f}, {hi:.4f}]" if s == "ok" else "failed"
                    for m, lo, hi, s in zip(rows[metric], rows[f"{metric}_lo"], rows[f"{metric}_hi"], rows["status"])]
    columns = ["run", "split", "seed", "n_users", metric, f"recall@{k}", "auc", f"coverage@{k}", f"novelty@{k}",
               f"diversity@{k}", "fit_seconds", "eval_seconds", "status"]
    return rows.reindex(columns=[c for c in columns if c in rows.columns or c == metric])


def write_comparison(report_dir: Path) -> dict[str, pd.DataFrame]:
    """Write ``comparison.csv``, ``comparison.md`` and ``paired.csv``; return the tables."""
    report_dir = Path(report_dir)
    info = load_experiment_info(report_dir)
    records = load_runs(report_dir)
    comparison = comparison_table(records, info["k"])
    metrics = [info["metric"], *(m for m in ("recall@10", "auc") if m in comparison.columns and m != info["metric"])]
    paired = paired_table(records, info["reference"], metrics, info["bootstrap"]["samples"], info["bootstrap"]["seed"])
    with atomic_file(report_dir / "comparison.csv") as handle:
        comparison.to_csv(handle, index=False)
    with atomic_file(report_dir / "paired.csv") as handle:
        paired.to_csv(handle, index=False)
    main = headline(comparison, info["metric"])
    new_vs_returning = headline(comparison, info["metric"], "new"), headline(comparison, info["metric"], "returning")
    text = [f"# {info['title']}\n", f"Dataset `{info['dataset']}`, metric `{info['metric']}` with 95% bootstrap "
            f"intervals over users, k = {info['k']}.\n", "## All test users\n", markdown(main)]
    for name, table in zip(("New users (no history)", "Returning users"), new_vs_returning):
        if len(table):
            text += [f"\n## {name}\n", markdown(table)]
    if len(paired):
        text += [f"\n## Paired difference against `{info['reference']}`\n",
                 markdown(paired[["run", "split", "seed", "metric", "diff", "lo", "hi", "p_wilcoxon", "n_users"]])]
    with atomic_file(report_dir / "comparison.md") as handle:
        handle.write("\n".join(text))
    return {"comparison": comparison, "paired": paired, "headline": main}
