"""Comparison tables of an experiment's runs: ``comparison.csv``, ``comparison.md``, ``paired.csv``.

``comparison.csv`` has one row per run × split × seed × segment (``all``, ``returning``,
``new``, ``history:0`` ...): every mean metric with its 95% interval (``_lo`` / ``_hi``),
aggregate metrics and the ``ties@k`` diagnostic (segment ``all``), ``n_users``,
``dropped_seen``, ``fit_seconds``, ``eval_seconds``, ``status`` and, for failed runs, the
error excerpt and the executed notebook. With several seeds, each run × split × segment
also has a ``mean`` row (the mean over seeds, with a stratified bootstrap interval) and a
``std`` row (the spread between seeds). ``flags`` names what a reader must know, e.g. that
ties crossed the top-k cut-off. ``paired.csv`` compares every run with the reference on
the same users, per seed and over all seeds (``seed = all``); ``p_holm`` is the Wilcoxon
p-value adjusted by Holm's method over the runs compared within each split × metric × seed; each comparison
also has its resolution (``mde``, and with the experiment's ``sesoi`` an equivalence test) and a ``verdict``
(:mod:`kdq_lab.report.resolution`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kdq_lab.evaluation import holm, paired_comparison
from kdq_lab.evaluation.metrics import aggregate_columns, headline_k, per_user_columns, ties_columns
from kdq_lab.files import atomic_file
from kdq_lab.report.resolution import resolve_table
from kdq_lab.runs.records import ExperimentInfo, RunStatus, RunSummary
from kdq_lab.runs.results import POOLED, read_results, wide

ID_COLUMNS = ["run", "label", "model", "split", "seed", "segment", "status", "n_users"]
PAIRED_SHOWN = ["run", "split", "seed", "metric", "diff", "lo", "hi", "p_wilcoxon", "p_holm", "n_users"]


@dataclass(frozen=True)
class RunRecord:
    """A planned run × split with its summary and results table (``ok``) or its failure."""

    run: str
    label: str
    model: str
    split: str
    folder: Path
    summary: RunSummary | None
    failure: RunStatus | None
    results: pd.DataFrame | None = None

    @property
    def ok(self) -> bool:
        return self.summary is not None


def load_runs(report_dir: Path) -> tuple[ExperimentInfo, list[RunRecord]]:
    """The experiment and every planned run with its summary and results, or its failure record."""
    report_dir = Path(report_dir)
    info = ExperimentInfo.read(report_dir / "experiment.json")
    records = []
    for spec in info.runs:
        folder = report_dir / "runs" / spec["folder"]
        summary = RunSummary.read(folder / "summary.json") if (folder / "summary.json").is_file() else None
        failure, results = None, None
        if summary is None:
            status = folder / "status.json"
            failure = RunStatus.read(status) if status.is_file() else RunStatus("failed", "not run", None)
        else:
            results = read_results(folder)
        records.append(
            RunRecord(spec["run"], spec["label"], spec["model"], spec["split"], folder, summary, failure, results)
        )
    return info, records


def _ties_flag(ties: dict[str, int], k: int) -> str:
    count = ties.get(f"ties@{k}", 0)
    return f"ties@{k}: {count} users" if count else ""


def _facts_rows(summary: RunSummary, k_head: int) -> pd.DataFrame:
    """Per seed (and ``mean``/``std`` over several): ties, flags, timings and ``dropped_seen`` of segment ``all``."""
    seeds = summary.per_seed
    rows: list[dict[str, Any]] = [
        {"seed": str(f.seed)}
        | f.ties
        | {
            "flags": _ties_flag(f.ties, k_head),
            "dropped_seen": f.dropped_seen,
            "fit_seconds": f.fit_seconds,
            "eval_seconds": f.eval_seconds,
            "best_epoch": f.best_epoch,
        }
        for f in seeds
    ]
    if len(seeds) > 1:
        ties = pd.DataFrame([f.ties for f in seeds]).sum()
        timing = pd.DataFrame(
            [
                {"fit_seconds": f.fit_seconds, "eval_seconds": f.eval_seconds, "dropped_seen": f.dropped_seen}
                for f in seeds
            ]
        )
        rows.append(
            {"seed": "mean"} | ties.to_dict() | {"flags": _ties_flag(ties.to_dict(), k_head)} | timing.mean().to_dict()
        )
        rows.append({"seed": "std"} | timing.std(ddof=1).to_dict())
    return pd.DataFrame(rows)


def comparison_table(info: ExperimentInfo, records: list[RunRecord]) -> pd.DataFrame:
    """One row per run × split × seed × segment, plus mean and std rows over seeds (see the module docstring).

    A pivot of each run's results table (:mod:`kdq_lab.runs.results`) joined with its seeds' facts.
    """
    ks = info.k
    metrics = per_user_columns(ks)
    k_head = headline_k(ks)
    parts = []
    for record in records:
        base: dict[str, Any] = {"run": record.run, "label": record.label, "model": record.model, "split": record.split}
        if record.summary is None or record.results is None:
            assert record.failure is not None
            failed = {"seed": "all", "segment": "all", "status": "failed", "n_users": 0}
            parts.append(
                pd.DataFrame([base | failed | {"error": record.failure.error, "notebook": record.failure.notebook}])
            )
            continue
        table = wide(record.results)
        table = table.drop(columns=[c for c in table.columns if c.endswith(("_lo", "_hi")) and c[:-3] not in metrics])
        facts = _facts_rows(record.summary, k_head)
        ties_and_flags = [c for c in facts.columns if c.startswith("ties@") or c == "flags"]
        on_all = facts[["seed", *ties_and_flags]].assign(segment="all")
        table = table.merge(on_all, on=["seed", "segment"], how="left")
        table = table.merge(facts.drop(columns=ties_and_flags), on="seed", how="left")
        parts.append(table.assign(**base, status="ok"))
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    ordered = ID_COLUMNS + [c for m in metrics for c in (m, f"{m}_lo", f"{m}_hi")]
    extra = (
        aggregate_columns(ks)
        + ties_columns(ks)
        + ["flags", "dropped_seen", "fit_seconds", "eval_seconds", "best_epoch", "error", "notebook"]
    )
    return table.reindex(columns=ordered + [c for c in extra if c in table.columns])


def summary_rows(comparison: pd.DataFrame, segment: str = "all") -> pd.DataFrame:
    """One row per run × split: the ``mean`` row over seeds where there is one, else the single seed's row."""
    rows = comparison[comparison["segment"] == segment]
    pooled = rows["seed"] == "mean"
    has_mean = set(zip(rows.loc[pooled, "run"], rows.loc[pooled, "split"]))
    single = ~rows["seed"].isin(POOLED) & ~pd.Series(
        [(r, s) in has_mean for r, s in zip(rows["run"], rows["split"])], index=rows.index, dtype=bool
    )
    return rows[pooled | single]


def paired_table(info: ExperimentInfo, records: list[RunRecord], metrics: list[str]) -> pd.DataFrame:
    """Every run minus the reference run on the same test users: per seed, and over all seeds."""
    if info.reference is None:
        return pd.DataFrame()
    n_boot, boot_seed = info.bootstrap["samples"], info.bootstrap["seed"]
    tables = {(r.run, r.split): pd.read_parquet(r.folder / "metrics.parquet") for r in records if r.ok}
    rows = []
    for (run, split), table in tables.items():
        base = tables.get((info.reference, split))
        if run == info.reference or base is None:
            continue
        seeds = sorted(set(table["seed"]) & set(base["seed"]))
        for metric in metrics:
            mine = [table[table["seed"] == s].set_index("user")[metric] for s in seeds]
            theirs = [base[base["seed"] == s].set_index("user")[metric] for s in seeds]
            head = {"run": run, "reference": info.reference, "split": split, "metric": metric}
            for seed, a, b in zip(seeds, mine, theirs):
                rows.append(head | {"seed": str(seed)} | paired_comparison(a, b, n_boot=n_boot, seed=boot_seed))
            if len(seeds) > 1:
                rows.append(head | {"seed": "all"} | paired_comparison(mine, theirs, n_boot=n_boot, seed=boot_seed))
    table = pd.DataFrame(rows)
    if len(table):
        family = table.groupby(["split", "metric", "seed"], sort=False)["p_wilcoxon"]
        table["p_holm"] = family.transform(lambda p: holm(p.to_numpy()))
    return resolve_table(table, ["split", "metric", "seed"], info.sesoi)


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
    """Readable headline table: the metric as 'mean [lo, hi]' (± between-seed std), beyond-accuracy, timings."""
    rows = summary_rows(comparison, segment).copy()
    k = metric.partition("@")[2] or "10"
    std = (
        comparison[(comparison["segment"] == segment) & (comparison["seed"] == "std")].set_index(["run", "split"])[
            metric
        ]
        if (comparison["seed"] == "std").any()
        else pd.Series(dtype=float)
    )
    shown = []
    for run, split, m, lo, hi, status in zip(
        rows["run"], rows["split"], rows[metric], rows[f"{metric}_lo"], rows[f"{metric}_hi"], rows["status"]
    ):
        if status != "ok":
            shown.append("failed")
            continue
        spread = std.get((run, split), np.nan)
        shown.append(f"{m:.4f} [{lo:.4f}, {hi:.4f}]" + (f" ±{spread:.4f}" if np.isfinite(spread) else ""))
    rows[metric] = shown
    columns = [
        "run",
        "split",
        "seed",
        "n_users",
        metric,
        f"recall@{k}",
        "auc",
        f"coverage@{k}",
        f"novelty@{k}",
        f"diversity@{k}",
        "fit_seconds",
        "eval_seconds",
        "flags",
        "status",
    ]
    return rows.reindex(columns=[c for c in columns if c in rows.columns or c == metric])


def write_comparison(report_dir: Path) -> dict[str, pd.DataFrame]:
    """Write ``comparison.csv``, ``comparison.md`` and ``paired.csv``; return the tables."""
    report_dir = Path(report_dir)
    info, records = load_runs(report_dir)
    comparison = comparison_table(info, records)
    k = headline_k(info.k)
    metrics = [info.metric, *(m for m in (f"recall@{k}", "auc") if m in comparison.columns and m != info.metric)]
    paired = paired_table(info, records, metrics)
    with atomic_file(report_dir / "comparison.csv") as handle:
        comparison.to_csv(handle, index=False)
    with atomic_file(report_dir / "paired.csv") as handle:
        paired.to_csv(handle, index=False)
    main = headline(comparison, info.metric)
    seeds = f"seeds {info.seeds}" + (" (mean over seeds, ± between-seed std)" if len(info.seeds) > 1 else "")
    text = [
        f"# {info.title}\n",
        f"Dataset `{info.dataset}`, metric `{info.metric}` with 95% bootstrap intervals "
        f"over users, k = {info.k}, {seeds}. Excluded from each user's ranking: "
        f"{EXCLUDE_TEXT.get(info.exclude, info.exclude)}.\n",
        "## All test users\n",
        markdown(main),
    ]
    for name, segment in (("New users (no history)", "new"), ("Returning users", "returning")):
        table = headline(comparison, info.metric, segment)
        if len(table):
            text += [f"\n## {name}\n", markdown(table)]
    if len(paired):
        shown = paired[paired["seed"] == ("all" if len(info.seeds) > 1 else str(info.seeds[0]))]
        text += [
            f"\n## Paired difference against `{info.reference}`\n",
            markdown(shown[[*PAIRED_SHOWN, "mde", "verdict"]]),
        ]
    with atomic_file(report_dir / "comparison.md") as handle:
        handle.write("\n".join(text))
    return {"comparison": comparison, "paired": paired, "headline": main}


EXCLUDE_TEXT = {
    "seen": "every item the user had any event with before the test period (positives on such items are "
    "dropped from the target)",
    "train_positives": "the user's known positives only (as lightfm.evaluation)",
}
