"""What changed between two reports of the same experiment (``kdq-lab diff OLD NEW``).

Every run × split × segment × per-user metric of both reports is compared, old against new:

* **paired**, when the run used the same prepared splits (the same ``split_id`` hash for every seed) and the
  same seeds in both: the per-user values of ``metrics.parquet`` are paired user by user (each user's
  difference averaged over seeds, as the lab pairs); a row whose users are all equal is unchanged (no test is
  needed), any other is tested with Wilcoxon's signed-rank test, Holm-adjusted over the changed paired rows of
  the diff, and gets its minimum detectable effect at that family's Bonferroni level
  (:mod:`kdq_lab.evaluation.resolution`);
* **unpaired** otherwise: the two 95% intervals from the runs' summaries; a row moved when they do not overlap.

A row *moved beyond its resolution* when its paired test is significant after Holm (α = 0.05), or, unpaired,
its intervals are disjoint. Runs present in one report only are listed as added or removed, and the
experiment's resolved parameters and the package versions that differ are named (from the manifests).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from kdq_lab import limits
from kdq_lab.errors import KdqError
from kdq_lab.evaluation import add_segments, holm
from kdq_lab.evaluation.metrics import per_user_columns
from kdq_lab.evaluation.resolution import family_alpha, minimum_detectable_effect
from kdq_lab.evaluation.segments import BUILT_IN_SEGMENTS as SEGMENTS
from kdq_lab.evaluation.segments import segment_rows
from kdq_lab.jsonfile import read_json
from kdq_lab.parquetfile import read_parquet
from kdq_lab.report.resolution import ALPHA
from kdq_lab.runs.records import ExperimentInfo, RunSummary
from kdq_lab.runs.results import metric_value, read_results

ROW_KEYS = ["run", "split", "segment", "metric"]
DIFF_COLUMNS = [
    *ROW_KEYS,
    "old",
    "old_lo",
    "old_hi",
    "new",
    "new_lo",
    "new_hi",
    "delta",
    "paired",
    "changed",
    "p",
    "p_holm",
    "mde",
    "moved",
]


@dataclass(frozen=True)
class Report:
    """A report folder as the diff reads it: its experiment, finished runs and manifest."""

    folder: Path
    info: ExperimentInfo
    summaries: dict[tuple[str, str], RunSummary]
    manifest: dict[str, Any]
    results: dict[tuple[str, str], pd.DataFrame]  # each finished run's tidy results table

    @classmethod
    def read(cls, folder: Path) -> Report:
        folder = Path(folder)
        if not (folder / "experiment.json").is_file() or not (folder / "manifest.json").is_file():
            raise KdqError(f"{folder}: not a report folder (no experiment.json and manifest.json)")
        info = ExperimentInfo.read(folder / "experiment.json")
        summaries, results = {}, {}
        for spec in info.runs:
            path = folder / "runs" / spec["folder"] / "summary.json"
            if path.is_file():
                summaries[(spec["run"], spec["split"])] = RunSummary.read(path)
                results[(spec["run"], spec["split"])] = read_results(path.parent)
        manifest = read_json(folder / "manifest.json", "manifest")
        if not isinstance(manifest, dict):
            raise KdqError(f"{folder / 'manifest.json'}: expected a JSON object")
        return cls(folder, info, summaries, manifest, results)

    def per_user(self, run: str, split: str) -> pd.DataFrame:
        folder = next(s["folder"] for s in self.info.runs if (s["run"], s["split"]) == (run, split))
        path = self.folder / "runs" / folder / "metrics.parquet"
        return add_segments(read_parquet(path, limits.MAX_INTERACTION_ROWS, "per-user metrics"))


@dataclass(frozen=True)
class Diff:
    """Everything ``kdq-lab diff`` states."""

    experiment: str
    rows: pd.DataFrame  # DIFF_COLUMNS
    added: tuple[str, ...]  # "run · split" only in the new report
    removed: tuple[str, ...]
    parameters: tuple[tuple[str, str, str], ...]  # (key, old, new)
    versions: tuple[tuple[str, str, str], ...]

    @property
    def moved(self) -> pd.DataFrame:
        """The rows that moved beyond their resolution."""
        return self.rows[self.rows["moved"]]

    @property
    def exit_code(self) -> int:
        """0 when nothing moved beyond resolution and no run was added or removed, else 1."""
        return int(bool(len(self.moved) or self.added or self.removed))


def _same_splits(old: RunSummary, new: RunSummary) -> bool:
    """The same seeds, each with the same prepared split (hash)."""
    return {f.seed: f.split_id for f in old.per_seed} == {f.seed: f.split_id for f in new.per_seed}


def _figures(results: pd.DataFrame, segment: str, metric: str) -> tuple[float, float, float]:
    """(mean, lo, hi) of a run's metric on a segment: pooled over seeds where there are several."""
    try:
        return metric_value(results, metric, segment)
    except KdqError:  # a segment without users has no row
        return np.nan, np.nan, np.nan


def _user_differences(old: pd.DataFrame, new: pd.DataFrame, segment: str, metrics: list[str]) -> pd.DataFrame:
    """Per user, new minus old of each metric, averaged over the seeds that tested the user in both."""
    a, b = segment_rows(old, segment), segment_rows(new, segment)
    joined = b.merge(a, on=["user", "seed"], suffixes=("", "_old"))
    diffs = pd.DataFrame({m: joined[m].to_numpy(np.float64) - joined[f"{m}_old"].to_numpy(np.float64) for m in metrics})
    return diffs.groupby(joined["user"].to_numpy()).mean()


def _paired_rows(run: str, split: str, old: Report, new: Report, metrics: list[str]) -> list[dict[str, Any]]:
    old_table, new_table = old.per_user(run, split), new.per_user(run, split)
    rows = []
    for segment in SEGMENTS:
        diffs = _user_differences(old_table, new_table, segment, metrics)
        if diffs.empty:
            continue
        for metric in metrics:
            d = diffs[metric].dropna().to_numpy()
            nonzero = d[d != 0]
            changed = len(nonzero) > 0
            p = float(scipy_stats.wilcoxon(nonzero).pvalue) if changed else np.nan  # equal users need no test
            sd = float(d.std(ddof=1)) if len(d) > 1 else np.nan
            rows.append(
                {"run": run, "split": split, "segment": segment, "metric": metric, "paired": True}
                | {"changed": changed, "p": p, "sd": sd, "n_users": len(d), "delta": float(d.mean())}
            )
    return rows


def _unpaired_rows(
    run: str, split: str, old: pd.DataFrame, new: pd.DataFrame, metrics: list[str]
) -> list[dict[str, Any]]:
    rows = []
    for segment in SEGMENTS:
        for metric in metrics:
            (o, olo, ohi), (n, nlo, nhi) = _figures(old, segment, metric), _figures(new, segment, metric)
            if np.isnan(o) and np.isnan(n):
                continue
            moved = bool(nlo > ohi or olo > nhi)
            rows.append(
                {"run": run, "split": split, "segment": segment, "metric": metric, "paired": False}
                | {"changed": o != n, "p": np.nan, "sd": np.nan, "n_users": 0, "delta": n - o, "moved": moved}
            )
    return rows


def _flat(value: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(value, Mapping):
        out: dict[str, str] = {}
        for key, item in value.items():
            out |= _flat(item, f"{prefix}.{key}" if prefix else str(key))
        return out
    return {prefix: repr(value)}


def _differences(old: Any, new: Any) -> tuple[tuple[str, str, str], ...]:
    a, b = _flat(old if isinstance(old, Mapping) else {}), _flat(new if isinstance(new, Mapping) else {})
    return tuple((key, a.get(key, "—"), b.get(key, "—")) for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key))


def compute_diff(old_folder: Path, new_folder: Path) -> Diff:
    """Compare two reports of the same experiment (module docstring); :class:`KdqError` for anything else."""
    old, new = Report.read(old_folder), Report.read(new_folder)
    if old.info.name != new.info.name:
        raise KdqError(
            f"{new.folder}: a report of experiment {new.info.name!r}, {old.folder} of {old.info.name!r}; "
            "diff compares two reports of the same experiment"
        )
    metrics = [m for m in per_user_columns(new.info.k) if m in per_user_columns(old.info.k)]
    rows: list[dict[str, Any]] = []
    for key in [k for k in new.summaries if k in old.summaries]:
        a, b = old.summaries[key], new.summaries[key]
        if _same_splits(a, b):
            rows += _paired_rows(*key, old, new, metrics)
        else:
            rows += _unpaired_rows(*key, old.results[key], new.results[key], metrics)
    table = pd.DataFrame(rows, columns=[*ROW_KEYS, "paired", "changed", "p", "sd", "n_users", "delta", "moved"])
    for column, default in (("moved", False), ("paired", False), ("changed", False)):
        table[column] = table[column].astype("boolean").fillna(default).astype(bool)
    paired = table["paired"].to_numpy(bool)
    table["p_holm"] = np.nan
    table.loc[paired, "p_holm"] = holm(table.loc[paired, "p"].to_numpy())
    level = family_alpha(ALPHA, int(np.isfinite(table["p"].to_numpy(np.float64)).sum()))
    table["mde"] = np.where(paired, minimum_detectable_effect(table["sd"], table["n_users"], level), np.nan)
    table["moved"] = np.where(paired, table["p_holm"].fillna(1.0) < ALPHA, table["moved"])
    figures = [
        (_figures(old.results[(r, s)], g, m), _figures(new.results[(r, s)], g, m))
        for r, s, g, m in zip(table["run"], table["split"], table["segment"], table["metric"])
    ]
    for i, side in enumerate(("old", "new")):
        for j, suffix in enumerate(("", "_lo", "_hi")):
            table[f"{side}{suffix}"] = [f[i][j] for f in figures]
    names = {key: f"{key[0]} · {key[1]}" for key in (*old.summaries, *new.summaries)}
    return Diff(
        new.info.name,
        table.reindex(columns=DIFF_COLUMNS),
        tuple(names[k] for k in new.summaries if k not in old.summaries),
        tuple(names[k] for k in old.summaries if k not in new.summaries),
        _differences(old.manifest.get("resolved"), new.manifest.get("resolved")),
        _differences(old.manifest.get("versions"), new.manifest.get("versions")),
    )
