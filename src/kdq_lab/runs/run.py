"""One run: a model on one split, over every seed of the experiment. Behind ``03_train_evaluate``.

Protocol, per seed (each seed has its own prepared split and sets the model's seed):

* the model is fitted on train, with early stopping on validation where it has epochs,
  on the experiment's headline metric and exclusion rule;
* with ``refit`` it is fitted again on train + validation (iterative models: for the best
  epoch count), so every model sees the same history before the test period;
* test positives are ranked against every item except those the exclusion rule removes
  (``seen``: anything the user had an event with before the test period, whose later
  positives are dropped from the target; ``train_positives``: known positives only).

The run's summary gives every seed's facts (:class:`~kdq_lab.runs.records.SeedFacts`: timings, users,
the ``ties@k`` diagnostic); its results table every seed's metrics by segment with intervals, list
metrics, and their mean and spread over seeds (:mod:`kdq_lab.runs.results`).
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
from kdq_lab.evaluation.beyond import list_metrics
from kdq_lab.evaluation.metrics import ListFacts, headline_k, metric_specs, per_user_columns, ties_columns
from kdq_lab.evaluation.ranking import EvalOptions, Evaluation, evaluate_all
from kdq_lab.evaluation.segments import SegmentContext, add_segments, hits_by_popularity, segment_groups
from kdq_lab.files import atomic_file
from kdq_lab.models import Iterative, Persistable, Scorer, TrainData, model_spec
from kdq_lab.models.base import item_popularity
from kdq_lab.provenance import package_versions
from kdq_lab.runs.records import RunSummary, SeedFacts
from kdq_lab.runs.results import frame, list_rows, pooled_list_rows, pooled_rows, seed_rows, write_results


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
    segments: dict[str, list[str]] = field(default_factory=dict)  # declared segment kind -> columns
    exposure: str | None = None  # item column whose values own items (e.g. creator): exposure metrics by owner

    @property
    def bootstrap(self) -> tuple[int, int]:
        """(samples, seed) of every bootstrap interval."""
        return self.bootstrap_samples, self.bootstrap_seed


@dataclass
class SeedResult:
    """A fitted and evaluated model on one seed's split: its facts, segments and list metric values."""

    seed: int
    split: SplitData
    model: Scorer
    evaluation: Evaluation
    history: pd.DataFrame | None
    facts: SeedFacts
    groups: list[tuple[str, np.ndarray]]
    lists: dict[str, float | np.ndarray]  # list metric column -> value (aggregate) or per-list values

    @property
    def per_user(self) -> pd.DataFrame:
        return self.evaluation.per_user


@dataclass
class RunResult:
    """A run over all its seeds, with its summary record and its tidy results table (:mod:`kdq_lab.runs.results`)."""

    config: RunConfig
    seeds: list[SeedResult]
    summary: RunSummary
    results: pd.DataFrame

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


def results_table(config: RunConfig, seeds: list[SeedResult]) -> pd.DataFrame:
    """The run's tidy results: per seed and segment every per-user metric, list metrics, and pooled rows."""
    ks = sorted(config.ks)
    metrics = per_user_columns(ks)
    rows = []
    for s in seeds:
        head: dict[str, object] = {"run": config.run, "split": config.split, "seed": str(s.seed)}
        rows += seed_rows(head, s.per_user, s.groups, metrics, config.bootstrap)
        rows += list_rows(head, s.lists, config.bootstrap, len(s.per_user))
    if len(seeds) > 1:
        head = {"run": config.run, "split": config.split}
        per_seed = [s.per_user for s in seeds]
        rows += pooled_rows(head, per_seed, [s.groups for s in seeds], metrics, config.bootstrap)
        lists = frame(rows)
        lists = lists[lists["metric"].isin([m.name for m in metric_specs() if m.kind != "per_user"])]
        rows += pooled_list_rows(head, lists)
    return frame(rows)


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
    lists: dict[str, float | np.ndarray] = {}
    owner = pd.factorize(split.items[config.exposure])[0] if config.exposure else None
    for k in ks:
        top = ListFacts(evaluation.top[:, :k], popularity, n_known_users, split.item_features, owner)
        lists |= {f"{name}@{k}": value for name, value in list_metrics(top, k).items()}
    buckets = hits_by_popularity(evaluation.ranks, popularity, headline_k(ks))
    per_user = evaluation.per_user
    facts = SeedFacts(
        seed=seed,
        split_id=split.split_id,
        split_folder=str(split.folder),
        params=params,
        n_users=len(per_user),
        n_test_users=test_users,  # before sampling
        n_test_positives=int(goal.positives.nnz),
        dropped_seen=int(goal.dropped),
        fit_seconds=fit_seconds,
        eval_seconds=eval_seconds,
        best_epoch=model.best_epoch() if isinstance(model, Iterative) else None,
        validation_share=_validation_share(history),
        ties={column: int(per_user[column].sum()) for column in ties_columns(ks)},
        hits_by_popularity={str(k): v for k, v in buckets.to_dict(orient="index").items()},
    )
    context = SegmentContext(per_user, split.user_features, split.user_vocab)
    groups = segment_groups(context, {kind: tuple(columns) for kind, columns in config.segments.items()})
    return SeedResult(seed, split, model, evaluation, history, facts, groups, lists)


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
        per_seed=tuple(r.facts for r in results),
        deterministic=bool(deterministic),
        versions=package_versions(),
        sample_users=config.sample_users,
        segments={kind: list(columns) for kind, columns in config.segments.items()},
    )
    return RunResult(config, results, summary, results_table(config, results))


def save_run(result: RunResult, folder: Path, save_model: bool = True) -> Path:
    """Write ``metrics.parquet`` (per user and seed), ``results.parquet``, ``summary.json``, ``history.parquet``
    and the model.

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
    write_results(result.results, folder)
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
