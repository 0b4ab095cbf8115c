"""One run: a model on one split, over every seed of the experiment. Behind ``03_train_evaluate``.

Protocol, per seed (each seed has its own prepared split and sets the model's seed):

* the model is fitted on train, with early stopping on validation where it has epochs,
  on the experiment's headline metric and exclusion rule;
* with ``refit`` it is fitted again on train + validation (iterative models: for the best
  epoch count), so every model sees the same history before the test period;
* test positives are ranked against every item except those the exclusion rule removes
  (``seen``: anything the user had an event with before the test period, whose later
  positives are dropped from the target; ``train_positives``: known positives only).

The run's summary gives every seed's metrics (segments, intervals, aggregates, the
``ties@k`` diagnostic) and their mean and spread over seeds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kdq_lab.config import Paths
from kdq_lab.data.registry import resolve_dataset
from kdq_lab.data.splits import SplitConfig
from kdq_lab.data.store import SplitData, load_split, prepare
from kdq_lab.data.targets import sample_users, target
from kdq_lab.evaluation import add_segments, beyond_accuracy, bootstrap_ci, hits_by_popularity
from kdq_lab.evaluation.metrics import headline_k, per_user_columns, ties_columns
from kdq_lab.evaluation.ranking import EvalOptions, Evaluation, evaluate_all
from kdq_lab.evaluation.segments import HISTORY_BINS
from kdq_lab.evaluation.stats import pooled_bootstrap_ci
from kdq_lab.files import atomic_file
from kdq_lab.models import Iterative, Persistable, Scorer, TrainData, model_spec
from kdq_lab.models.base import item_popularity
from kdq_lab.provenance import package_versions
from kdq_lab.runs.records import RunSummary

#: Segments summarised for every run: all users, new vs returning, history bins.
SEGMENTS: tuple[str, ...] = ("all", "returning", "new", *(f"history:{b[2]}" for b in HISTORY_BINS))


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs besides its data: what the runner hands to ``03_train_evaluate``.

    ``params`` are the run's own model parameters; each seed fills in the model's seed and
    early-stopping metric (the headline ``metric``) unless they are set here.
    """

    run: str
    model: str
    params: dict[str, Any] = field(default_factory=dict)
    split: str = "split"
    label: str = ""
    ks: tuple[int, ...] = (10,)
    metric: str = "ndcg@10"
    exclude: str = "seen"
    refit: bool = True
    bootstrap_samples: int = 1000
    bootstrap_seed: int = 0
    threads: int | None = None
    sample_users: dict[str, int] | None = None  # {n, seed}: a seeded sample of the test users


@dataclass
class SeedResult:
    """A fitted and evaluated model on one seed's split."""

    seed: int
    split: SplitData
    model: Scorer
    evaluation: Evaluation
    history: pd.DataFrame | None
    figures: dict[str, Any]

    @property
    def per_user(self) -> pd.DataFrame:
        return self.evaluation.per_user


@dataclass
class RunResult:
    """A run over all its seeds, with its summary record."""

    config: RunConfig
    seeds: list[SeedResult]
    summary: RunSummary

    def per_user(self) -> pd.DataFrame:
        """Per-user metrics of every seed, with a ``seed`` column."""
        return pd.concat([s.per_user.assign(seed=s.seed) for s in self.seeds], ignore_index=True)


def fit_model(
    kind: str, params: dict[str, Any], split: SplitData, refit: bool, exclude: str = "seen"
) -> tuple[Scorer, pd.DataFrame | None]:
    """Fit (with early stopping where the model has epochs), then optionally refit on train + validation."""
    spec = model_spec(kind)
    has_validation = split.validation.interactions.nnz > 0
    model = spec.make(params)
    if not isinstance(model, Iterative):
        return model.fit(TrainData.from_split(split, refit=refit and has_validation, exclude=exclude)), None
    model.fit(TrainData.from_split(split, exclude=exclude))
    history = model.learning_curve()
    if refit and has_validation:
        model = model.for_refit().fit(TrainData.from_split(split, refit=True, exclude=exclude))
    return model, history


def segment_rows(table: pd.DataFrame, segment: str) -> pd.DataFrame:
    """The users of one segment (``all``, ``new``, ``returning``, ``history:1-4`` ...)."""
    if segment == "all":
        return table
    if segment in ("returning", "new"):
        return table[table["returning"] == segment]
    return table[table["history"] == segment.split(":", 1)[1]]


def summarise(per_user: pd.DataFrame, ks: list[int], n_boot: int, seed: int) -> dict[str, dict[str, Any]]:
    """Mean and 95% bootstrap interval of every metric, for each segment with users."""
    metrics = per_user_columns(ks)
    table = add_segments(per_user)
    out = {}
    for segment in SEGMENTS:
        rows = segment_rows(table, segment)
        ci = bootstrap_ci(rows, metrics, n_boot=n_boot, seed=seed)
        out[segment] = {
            "n_users": len(rows),
            **{m: {k: float(v) for k, v in ci.loc[m].items() if k != "n_users"} for m in metrics},
        }
    return out


def pooled(results: list[SeedResult], ks: list[int], n_boot: int, seed: int) -> dict[str, dict[str, Any]]:
    """Per segment: each metric's mean over seeds, its stratified bootstrap interval and between-seed std."""
    metrics = per_user_columns(ks)
    tables = [add_segments(r.per_user) for r in results]
    out = {}
    for segment in SEGMENTS:
        rows = [segment_rows(t, segment) for t in tables]
        ci = pooled_bootstrap_ci(rows, metrics, n_boot=n_boot, seed=seed)
        out[segment] = {
            "n_users": round(np.mean([len(r) for r in rows])),  # users per seed
            **{m: {k: float(v) for k, v in ci.loc[m].items() if k != "n_users"} for m in metrics},
        }
    return out


def _validation_share(history: pd.DataFrame | None) -> float | None:
    """Time spent validating for early stopping, as a share of the epochs' training time."""
    if history is None or "validation_seconds" not in history or not history["seconds"].sum():
        return None
    return float(history["validation_seconds"].sum() / history["seconds"].sum())


def run_seed(config: RunConfig, split: SplitData, seed: int) -> SeedResult:
    """Fit and evaluate the run's model on one seed's split."""
    ks = sorted(config.ks)
    params = model_spec(config.model).resolve(config.params, seed=seed, metric=config.metric)
    started = time.perf_counter()
    model, history = fit_model(config.model, params, split, config.refit, config.exclude)
    fit_seconds = time.perf_counter() - started

    started = time.perf_counter()
    goal = target(split, "test", config.exclude)
    test_users = int((goal.positives.getnnz(axis=1) > 0).sum())
    if config.sample_users:
        goal = sample_users(goal, config.sample_users["n"], config.sample_users["seed"])
    evaluation = evaluate_all(
        model,
        goal.positives,
        exclude=goal.exclude,
        k=ks,
        num_threads=config.threads,
        options=EvalOptions(history=goal.history, user_ids=split.user_ids, top=max(ks)),
    )
    evaluation = Evaluation(add_segments(evaluation.per_user), evaluation.ranks, evaluation.top)
    eval_seconds = time.perf_counter() - started

    known = split.known.interactions
    popularity = item_popularity(known)
    n_known_users = int((known.getnnz(axis=1) > 0).sum())
    assert evaluation.top is not None  # asked for with options.top
    beyond = {}
    for k in ks:
        for name, value in beyond_accuracy(
            evaluation.top[:, :k], popularity, n_known_users, split.item_features
        ).items():
            beyond[f"{name}@{k}"] = value
    buckets = hits_by_popularity(evaluation.ranks, popularity, headline_k(ks))
    per_user = evaluation.per_user
    figures = {
        "split_id": split.split_id,
        "split_folder": str(split.folder),
        "params": params,
        "n_users": len(per_user),
        "n_test_users": test_users,  # before sampling
        "n_test_positives": int(goal.positives.nnz),
        "dropped_seen": int(goal.dropped),
        "fit_seconds": fit_seconds,
        "eval_seconds": eval_seconds,
        "best_epoch": model.best_epoch() if isinstance(model, Iterative) else None,
        "validation_share": _validation_share(history),
        "metrics": summarise(per_user, ks, config.bootstrap_samples, config.bootstrap_seed),
        "beyond": beyond,
        "ties": {column: int(per_user[column].sum()) for column in ties_columns(ks)},
        "hits_by_popularity": {str(k): v for k, v in buckets.to_dict(orient="index").items()},
    }
    return SeedResult(seed, split, model, evaluation, history, figures)


def run(config: RunConfig, splits: dict[int, SplitData]) -> RunResult:
    """Run ``config`` on every seed's split (seed → prepared split) and summarise."""
    if not splits:
        raise ValueError("a run needs at least one seed's split")
    results = [run_seed(config, split, seed) for seed, split in sorted(splits.items())]
    first = results[0].split
    ks = sorted(config.ks)
    deterministic = all(getattr(getattr(r.model, "config", None), "deterministic", True) for r in results)
    summary = RunSummary(
        run=config.run,
        label=config.label or config.run,
        model=config.model,
        params=dict(config.params),
        split=config.split,
        split_config={k: v for k, v in first.config.to_dict().items() if k != "seed"},
        seeds=[r.seed for r in results],
        dataset=first.dataset,
        raw_hashes=dict(first.manifest["raw_hashes"]),
        k=ks,
        metric=config.metric,
        exclude=config.exclude,
        refit=config.refit,
        per_seed={str(r.seed): r.figures for r in results},
        pooled=pooled(results, ks, config.bootstrap_samples, config.bootstrap_seed),
        deterministic=bool(deterministic),
        versions=package_versions(),
        sample_users=config.sample_users,
    )
    return RunResult(config, results, summary)


def save_run(result: RunResult, folder: Path, save_model: bool = True) -> Path:
    """Write ``metrics.parquet`` (per user and seed), ``summary.json``, ``history.parquet`` and the model.

    A model that can be saved goes to ``model/``: the first seed's (the others are reproduced
    from their seeds and parameters, recorded in the summary). Each file is written
    atomically; the folder is shared with the executed notebook, so it is not replaced whole
    (the runner's report folder, or ``kdq-lab train``'s, is atomic itself).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    table = result.per_user()
    for column in ("history", "returning"):
        table[column] = table[column].astype(str)
    with atomic_file(folder / "metrics.parquet", "wb") as handle:
        table.to_parquet(handle, index=False)
    result.summary.write(folder / "summary.json")
    curves = [s.history.assign(seed=s.seed) for s in result.seeds if s.history is not None]
    if curves:
        with atomic_file(folder / "history.parquet", "wb") as handle:
            pd.concat(curves, ignore_index=True).to_parquet(handle, index=False)
    first = result.seeds[0]
    if save_model and isinstance(first.model, Persistable):
        manifest = first.split.manifest
        first.model.save(
            folder / "model",
            items=first.split.items,
            extra={
                "dataset": first.split.dataset,
                "split_id": first.split.split_id,
                "run": result.config.run,
                "seed": first.seed,
                "item_id_column": manifest["item_id_column"],
                "item_text_columns": manifest["item_text_columns"],
            },
        )
    return folder


def model_folder(run_folder: Path) -> Path:
    """Where :func:`save_run` put a run's model (its first seed's)."""
    return Path(run_folder) / "model"


def train_and_evaluate(
    dataset: str, split: SplitConfig | dict[str, Any], config: RunConfig, *, paths: Paths | None = None
) -> RunResult:
    """Prepare (or reuse) one split of ``dataset``, then :func:`run` ``config`` on it (its seed)."""
    paths = paths or Paths.default()
    split_config = split if isinstance(split, SplitConfig) else SplitConfig.from_dict(split)
    data = load_split(prepare(resolve_dataset(dataset, paths), split_config, paths.processed))
    return run(config, {split_config.seed: data})
