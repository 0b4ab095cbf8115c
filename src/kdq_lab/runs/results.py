"""A run's metric values as one tidy long table, ``results.parquet``: one row per seed × segment × metric × k.

Columns (:data:`COLUMNS`): ``run``, ``split``, ``seed`` (the seed as text, or ``mean`` / ``std`` for the
rows pooled over seeds when there are several), ``segment`` (``all``, ``returning``, ``new``,
``history:0`` ..., and declared ones such as ``occupations:학생``, ``occupations:count=2``),
``metric``, ``k`` (nullable: ``auc`` has none), ``value``, ``lo``, ``hi`` (95% bootstrap interval
over users; NaN for aggregate list metrics and ``std`` rows) and ``n_users`` (users in the segment;
users per seed on pooled rows). Per-user metrics have every segment; list metrics segment ``all``.
``comparison.csv`` is a pivot of these tables (:func:`wide`). Nothing reads them by position.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from kdq_lab.errors import KdqError
from kdq_lab.evaluation.segments import ALL
from kdq_lab.evaluation.stats import bootstrap_ci, pooled_bootstrap_ci
from kdq_lab.files import atomic_file
from kdq_lab.limits import MAX_ENTITY_ROWS
from kdq_lab.parquetfile import read_parquet

COLUMNS = ("run", "split", "seed", "segment", "metric", "k", "value", "lo", "hi", "n_users")
POOLED = ("mean", "std")
FILE = "results.parquet"


def column_name(metric: str, k: object) -> str:
    """``ndcg@10`` for (ndcg, 10), ``auc`` for (auc, missing k)."""
    return metric if k is None or pd.isna(k) else f"{metric}@{int(k)}"  # type: ignore[call-overload]


def _split_name(column: str) -> tuple[str, int | None]:
    name, _, k = column.partition("@")
    return name, int(k) if k else None


def _rows(
    head: dict[str, object], columns: Sequence[str], values: dict[str, tuple[float, float, float]], n: int
) -> list[dict[str, object]]:
    out = []
    for column in columns:
        name, k = _split_name(column)
        value, lo, hi = values[column]
        out.append(head | {"metric": name, "k": k, "value": value, "lo": lo, "hi": hi, "n_users": n})
    return out


def seed_rows(
    head: dict[str, object],
    per_user: pd.DataFrame,
    groups: list[tuple[str, np.ndarray]],
    metrics: list[str],
    bootstrap: tuple[int, int],
) -> list[dict[str, object]]:
    """Per segment with users: each per-user metric's mean and 95% bootstrap interval (``bootstrap``: samples, seed)."""
    rows: list[dict[str, object]] = []
    for segment, members in groups:
        if not len(members):
            continue
        ci = bootstrap_ci(per_user.iloc[members], metrics, n_boot=bootstrap[0], seed=bootstrap[1])
        values = {m: (float(ci.at[m, "mean"]), float(ci.at[m, "lo"]), float(ci.at[m, "hi"])) for m in metrics}
        rows += _rows(head | {"segment": segment}, metrics, values, len(members))
    return rows


def list_rows(
    head: dict[str, object], values: dict[str, float | np.ndarray], bootstrap: tuple[int, int], n_users: int
) -> list[dict[str, object]]:
    """Segment ``all``: aggregate list metrics as they are, per-list metrics as their mean with an interval."""
    out: dict[str, tuple[float, float, float]] = {}
    for column, value in values.items():
        if isinstance(value, np.ndarray):
            ci = bootstrap_ci(pd.DataFrame({column: value}), [column], n_boot=bootstrap[0], seed=bootstrap[1])
            out[column] = (float(np.nanmean(value)), float(ci.at[column, "lo"]), float(ci.at[column, "hi"]))
        else:
            out[column] = (float(value), np.nan, np.nan)
    return _rows(head | {"segment": ALL}, list(out), out, n_users)


def pooled_rows(
    head: dict[str, object],
    tables: list[pd.DataFrame],
    groups: list[list[tuple[str, np.ndarray]]],
    metrics: list[str],
    bootstrap: tuple[int, int],
) -> list[dict[str, object]]:
    """Per segment: each metric's mean over seeds (stratified bootstrap interval) and its between-seed std.

    ``tables`` and ``groups`` are per seed, in seed order; a segment present in no seed is left out.
    """
    labels = list(dict.fromkeys(label for seed_groups in groups for label, _ in seed_groups))
    rows: list[dict[str, object]] = []
    for segment in labels:
        members = [dict(seed_groups).get(segment, np.zeros(0, dtype=np.int64)) for seed_groups in groups]
        parts = [t.iloc[m] for t, m in zip(tables, members)]
        n = round(np.mean([len(p) for p in parts]))
        if n == 0:
            continue
        ci = pooled_bootstrap_ci(parts, metrics, n_boot=bootstrap[0], seed=bootstrap[1])
        mean = {m: (float(ci.at[m, "mean"]), float(ci.at[m, "lo"]), float(ci.at[m, "hi"])) for m in metrics}
        std = {m: (float(ci.at[m, "std"]), np.nan, np.nan) for m in metrics}
        rows += _rows(head | {"seed": "mean", "segment": segment}, metrics, mean, n)
        rows += _rows(head | {"seed": "std", "segment": segment}, metrics, std, n)
    return rows


def pooled_list_rows(head: dict[str, object], seeds: pd.DataFrame) -> list[dict[str, object]]:
    """Mean and between-seed std (ddof=1) of each list metric's per-seed value (``seeds``: its per-seed rows)."""
    rows: list[dict[str, object]] = []
    for (metric, k), group in seeds.groupby(["metric", "k"], sort=False, dropna=False):
        values = group["value"].astype(np.float64).reset_index(drop=True)
        n = int(group["n_users"].iloc[0])
        for name, value in (("mean", values.mean()), ("std", values.std(ddof=1))):
            key = {"seed": name, "segment": ALL, "metric": metric, "k": None if pd.isna(k) else int(k)}
            rows.append(head | key | {"value": float(value), "lo": np.nan, "hi": np.nan, "n_users": n})
    return rows


def frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    """The rows as a results table with its column types (``k`` a nullable integer)."""
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    table["k"] = table["k"].astype("Int64")
    table["n_users"] = table["n_users"].astype(np.int64)
    for column in ("value", "lo", "hi"):
        table[column] = table[column].astype(np.float64)
    for column in ("run", "split", "seed", "segment", "metric"):
        table[column] = table[column].astype(str)
    return table


def write_results(table: pd.DataFrame, folder: Path) -> Path:
    """Write ``results.parquet`` atomically."""
    path = Path(folder) / FILE
    with atomic_file(path, "wb") as handle:
        table.to_parquet(handle, index=False)
    return path


def read_results(folder: Path) -> pd.DataFrame:
    """A run's ``results.parquet``, its columns checked (an error names the file and what is missing)."""
    path = Path(folder) / FILE
    if not path.is_file():
        raise KdqError(f"{path}: missing (the run's results table)")
    table = read_parquet(path, MAX_ENTITY_ROWS, "results table")
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise KdqError(f"{path}: results table lacks column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)}")
    return frame(table[list(COLUMNS)].to_dict(orient="records"))


def wide(results: pd.DataFrame, intervals: bool = True) -> pd.DataFrame:
    """One row per run × split × seed × segment (in the table's order), a column per metric (and ``_lo``/``_hi``)."""
    keys = ["run", "split", "seed", "segment"]
    names = [column_name(m, k) for m, k in zip(results["metric"], results["k"])]
    long = results.assign(column=names)
    index = pd.MultiIndex.from_frame(long[keys].drop_duplicates())
    out = long.pivot(index=keys, columns="column", values="value").reindex(index)
    columns = list(dict.fromkeys(names))
    parts = [out[columns]]
    if intervals:
        parts += [
            long.pivot(index=keys, columns="column", values=side).reindex(index)[columns].add_suffix(f"_{side}")
            for side in ("lo", "hi")
        ]
    n_users = long.groupby(keys, sort=False)["n_users"].first().reindex(index)
    return pd.concat([n_users.rename("n_users"), *parts], axis=1).reset_index()


def headline_rows(results: pd.DataFrame, segment: str = ALL) -> pd.DataFrame:
    """The rows a single figure per metric is read from: ``mean`` over seeds when pooled, else the only seed's."""
    rows = results[results["segment"] == segment]
    pooled = rows[rows["seed"] == "mean"]
    return pooled if len(pooled) else rows[~rows["seed"].isin(POOLED)]


def metric_value(results: pd.DataFrame, column: str, segment: str = ALL) -> tuple[float, float, float]:
    """(value, lo, hi) of one metric column (``ndcg@10``) from :func:`headline_rows`."""
    name, k = _split_name(column)
    rows = headline_rows(results, segment)
    match = rows[(rows["metric"] == name) & (rows["k"].isna() if k is None else rows["k"] == k)]
    if len(match) != 1:
        raise KdqError(f"results: {len(match)} rows of {column} in segment {segment!r} (expected one)")
    row = match.iloc[0]
    return float(row["value"]), float(row["lo"]), float(row["hi"])
