"""One run: prepare the split, fit a model, evaluate it on test, summarise, save. Behind ``03_train_evaluate``.

Protocol. The model is fitted on train, with early stopping on validation where it
has epochs. With ``refit`` it is then fitted again on train + validation (LightFM
with the best epoch count), so every model sees the same history before the test
period. Test items are ranked against every item except the user's train and
validation positives.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kdq_lab.config import Paths
from kdq_lab.data.registry import resolve_dataset
from kdq_lab.data.splits import SplitConfig
from kdq_lab.data.store import SplitData, load_split, prepare
from kdq_lab.evaluation import add_segments, beyond_accuracy, bootstrap_ci, hits_by_popularity, top_k
from kdq_lab.evaluation.ranking import evaluate_with_ranks
from kdq_lab.evaluation.segments import HISTORY_BINS
from kdq_lab.files import atomic_file, to_json
from kdq_lab.models import LightFMHybrid, Scorer, TrainData, make_model
from kdq_lab.models.base import item_popularity
from kdq_lab.provenance import package_versions

#: Segments summarised for every run: all users, new vs returning, history bins.
SEGMENTS: tuple[str, ...] = ("all", "returning", "new", *(f"history:{b[2]}" for b in HISTORY_BINS))


def metric_columns(ks: list[int] | tuple[int, ...]) -> list[str]:
    """Per-user metric columns for a k list, in report order."""
    return [f"{m}@{k}" for k in ks for m in ("precision", "recall", "ndcg", "map", "hit")] + ["mrr", "auc"]


@dataclass
class RunResult:
    """A fitted and evaluated run."""

    name: str
    model_kind: str
    params: dict[str, Any]
    split_name: str
    seed: int
    ks: list[int]
    split: SplitData
    model: Scorer
    per_user: pd.DataFrame
    ranks: pd.DataFrame
    top: np.ndarray
    summary: dict[str, Any]
    history: pd.DataFrame | None


def fit_model(kind: str, params: dict[str, Any], split: SplitData, refit: bool) -> tuple[Scorer, pd.DataFrame | None]:
    """Fit (with early stopping), then optionally refit on train + validation; return model and learning curve."""
    has_validation = split.validation.interactions.nnz > 0
    if kind != "lightfm":
        return make_model(kind, params).fit(TrainData.from_split(split, refit=refit and has_validation)), None
    model = make_model(kind, params).fit(TrainData.from_split(split))
    assert isinstance(model, LightFMHybrid)
    history = model.history_
    if refit and has_validation:
        best = model.best_epoch_
        config = replace(model.config, epochs=best, patience=None)
        model = LightFMHybrid(config).fit(TrainData.from_split(split, refit=True))
        model.best_epoch_ = best
    return model, history


def summarise(per_user: pd.DataFrame, ks: list[int], n_boot: int, seed: int) -> dict[str, dict[str, dict[str, float]]]:
    """Mean and 95% bootstrap interval of every metric, for each segment with users."""
    metrics = metric_columns(ks)
    table = add_segments(per_user)
    out = {}
    for segment in SEGMENTS:
        if segment == "all":
            rows = table
        elif segment in ("returning", "new"):
            rows = table[table["returning"] == segment]
        else:
            rows = table[table["history"] == segment.split(":", 1)[1]]
        ci = bootstrap_ci(rows, metrics, n_boot=n_boot, seed=seed)
        out[segment] = {"n_users": int(len(rows)), **{m: {k: float(v) for k, v in ci.loc[m].items() if k != "n_users"}
                                                     for m in metrics}}
    return out


def train_and_evaluate(dataset: str, split: SplitConfig | dict[str, Any], model: str, params: dict[str, Any] | None = None,
                       *, ks: list[int] | tuple[int, ...] = (10,), refit: bool = True, run_name: str | None = None,
                       split_name: str | None = None, threads: int | None = None, bootstrap_samples: int = 1000,
                       bootstrap_seed: int = 0, paths: Paths | None = None) -> RunResult:
    """Prepare (or reuse) the split, fit the model, evaluate it and summarise the result."""
    paths = paths or Paths.default()
    config = split if isinstance(split, SplitConfig) else SplitConfig(**split)
    params = dict(params or {})
    ks = sorted({int(k) for k in ks})
    dataset_dir = resolve_dataset(dataset, paths)
    data = load_split(prepare(dataset_dir, config, paths.processed))

    started = time.perf_counter()
    fitted, history = fit_model(model, params, data, refit)
    fit_seconds = time.perf_counter() - started

    started = time.perf_counter()
    known = data.known.interactions
    per_user, ranks = evaluate_with_ranks(fitted, data.test.interactions, train=known, k=ks, num_threads=threads,
                                          user_ids=data.user_ids)
    per_user = add_segments(per_user)
    users = per_user["user"].to_numpy()
    top = top_k(fitted, users, max(ks), exclude=known, num_threads=threads)
    eval_seconds = time.perf_counter() - started

    popularity = item_popularity(known)
    n_known_users = int((known.getnnz(axis=1) > 0).sum())
    beyond = {}
    for k in ks:
        for name, value in beyond_accuracy(top[:, :k], popularity, n_known_users, data.item_features).items():
            beyond[f"{name}@{k}"] = value
    headline_k = 10 if 10 in ks else ks[0]
    buckets = hits_by_popularity(ranks, popularity, headline_k)
    summary = {
        "run": run_name or model,
        "model": model,
        "params": params,
        "split": split_name or config.kind,
        "split_config": config.to_dict(),
        "split_id": data.split_id,
        "seed": config.seed,
        "dataset": data.dataset,
        "raw_hashes": data.manifest["raw_hashes"],
        "k": ks,
        "refit": refit,
        "status": "ok",
        "n_users": int(len(per_user)),
        "n_test_positives": int(data.test.interactions.nnz),
        "fit_seconds": fit_seconds,
        "eval_seconds": eval_seconds,
        "best_epoch": getattr(fitted, "best_epoch_", None),
        "deterministic": getattr(getattr(fitted, "config", None), "deterministic", True),
        "metrics": summarise(per_user, ks, bootstrap_samples, bootstrap_seed),
        "beyond": beyond,
        "hits_by_popularity": {str(k): v for k, v in buckets.to_dict(orient="index").items()},
        "versions": package_versions(),
    }
    return RunResult(summary["run"], model, params, summary["split"], config.seed, ks, data, fitted, per_user,
                     ranks, top, summary, history)


def save_run(result: RunResult, folder: Path, save_model: bool = True) -> Path:
    """Write ``metrics.parquet`` (per user), ``summary.json``, ``history.parquet`` and, for LightFM, ``model/``.

    Each file is written atomically. The folder is shared with the executed notebook, so it is
    not replaced whole: the runner's report folder, or ``kdq-lab train``'s, is atomic itself.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    table = result.per_user.copy()
    for column in ("history", "returning"):
        table[column] = table[column].astype(str)
    with atomic_file(folder / "metrics.parquet", "wb") as handle:
        table.to_parquet(handle, index=False)
    with atomic_file(folder / "summary.json") as handle:
        handle.write(to_json(result.summary))
    if result.history is not None:
        with atomic_file(folder / "history.parquet", "wb") as handle:
            result.history.to_parquet(handle, index=False)
    if save_model and isinstance(result.model, LightFMHybrid):
        manifest = result.split.manifest
        result.model.save(folder / "model", items=result.split.items, extra={
            "dataset": result.split.dataset, "split_id": result.split.split_id, "run": result.name,
            "item_id_column": manifest["item_id_column"], "item_text_columns": manifest["item_text_columns"],
        })
    return folder
