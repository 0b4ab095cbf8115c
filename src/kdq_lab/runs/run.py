"""One run: a model on one split, over every seed of the experiment. Behind ``03_train_evaluate``.

Protocol, per seed (each seed has its own prepared split and sets the model's seed):

* the model is fitted on train, with early stopping on validation where it has epochs,
  on the experiment's headline metric and exclusion rule;
* with ``refit`` it is fitted again on train + validation (iterative models: for the best
  iteration count), so every model sees the same history before the test period;
* a composite model is not trained: it is built from its parts' fitted models (other runs
  of the experiment on the same split, which saved each seed's train fit and refit in
  ``models/<seed>/fit`` and ``models/<seed>/refit``), choosing on validation with the train
  fits and scoring test with the refits;
* test positives are ranked against every item except those the exclusion rule removes
  (``seen``: anything the user had an event with before the test period, whose later
  positives are dropped from the target; ``train_positives``: known positives only).

The run's summary gives every seed's facts (:class:`~kdq_lab.runs.records.SeedFacts`: timings, users,
the ``ties@k`` diagnostic); its results table every seed's metrics by segment with intervals, list
metrics, and their mean and spread over seeds (:mod:`kdq_lab.runs.results`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
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
from kdq_lab.errors import KdqError
from kdq_lab.evaluation.beyond import list_metrics
from kdq_lab.evaluation.metrics import ListFacts, headline_k, metric_specs, per_user_columns, ties_columns
from kdq_lab.evaluation.ranking import EvalOptions, Evaluation, evaluate_all
from kdq_lab.evaluation.segments import SegmentContext, add_segments, hits_by_popularity, segment_groups
from kdq_lab.files import atomic_file
from kdq_lab.models import Composite, Iterative, Persistable, Refittable, Scorer, TrainData, load_model, model_spec
from kdq_lab.models.base import item_popularity
from kdq_lab.provenance import package_versions
from kdq_lab.runs.importance import ImportanceOptions, permutation_importance
from kdq_lab.runs.records import RunSummary, SeedFacts
from kdq_lab.runs.results import frame, list_rows, pooled_list_rows, pooled_rows, seed_rows, write_results

#: Where a run that is a composite's part keeps every seed's fitted models: ``models/<seed>/{fit,refit}/``.
MODELS = "models"


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
    save_models: bool = False  # keep every seed's train fit and refit (a composite is built from this run)
    parts: dict[str, str] = field(default_factory=dict)  # composite: parameter -> the part run's folder
    importance: dict[str, Any] | None = None  # {fields, repeats, seed}: permutation importance (ImportanceOptions)
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
    fitted: Scorer | None = None  # the fit on train, when ``model`` is a refit (kept for composites)
    importance: pd.DataFrame | None = None  # per user and field (evaluation.importance), when the run asks

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

    def importance(self) -> pd.DataFrame | None:
        """Permutation importance per user, field and seed (``None`` when the run did not measure it)."""
        tables = [s.importance.assign(seed=s.seed) for s in self.seeds if s.importance is not None]
        return pd.concat(tables, ignore_index=True) if tables else None


def fit_model(
    kind: str,
    params: dict[str, Any],
    split: SplitData,
    refit: bool,
    exclude: str = "seen",
    keep_fit: bool = False,
    parts: Mapping[str, Path] | None = None,
    seed: int | None = None,
) -> tuple[Scorer, pd.DataFrame | None, Scorer | None]:
    """Fit on train (with validation where the model chooses on it), then optionally refit on train + validation.

    Returns the model, its learning curve (iterative models) and, with ``keep_fit`` or a refit of an
    iterative or refittable model, the fit on train alone (``None`` when the model is that fit). A composite is
    built from ``parts``: parameter → the folder of the part run, whose ``models/<seed>/`` it loads.
    """
    spec = model_spec(kind)
    refitting = refit and split.validation.interactions.nnz > 0

    def data(on_validation_too: bool) -> TrainData:
        return TrainData.from_split(split, refit=on_validation_too, exclude=exclude)

    model = spec.make(params)
    if isinstance(model, Composite):
        chosen = model.fit_parts(data(False), _load_parts(parts or {}, seed, "fit"))
        if not refitting:
            return chosen, None, None
        return model.refit_parts(data(True), _load_parts(parts or {}, seed, "refit")), None, chosen
    if isinstance(model, Iterative):
        model.fit(data(False))
        history = model.learning_curve()
        if not refitting:
            return model, history, None
        return model.with_iterations(model.best_iteration()).fit(data(True)), history, model
    if isinstance(model, Refittable):  # chooses on validation (e.g. a threshold), then refits keeping the choice
        model.fit(data(False))
        if not refitting:
            return model, None, None
        return model.for_refit().fit(data(True)), None, model
    on_train = spec.make(params).fit(data(False)) if refitting and keep_fit else None
    return model.fit(data(refitting)), None, on_train


def _load_parts(parts: Mapping[str, Path], seed: int | None, stage: str) -> dict[str, Scorer]:
    """Each part run's saved model of ``seed`` (``fit``: on train; ``refit``: on train + validation)."""
    loaded = {}
    for parameter, folder in parts.items():
        saved = Path(folder) / MODELS / str(seed) / stage
        if not (saved / "model.json").is_file():
            raise KdqError(
                f"part {parameter!r} of this composite has no saved {stage} model for seed {seed} in "
                f"{saved}: did its run fail?"
            )
        loaded[parameter] = load_model(saved)
    return loaded


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


def run_seed(config: RunConfig, split: SplitData, seed: int, runs_dir: Path | None = None) -> SeedResult:
    """Fit and evaluate the run's model on one seed's split (a composite's parts are in ``runs_dir``)."""
    ks = sorted(config.ks)
    params = model_spec(config.model).resolve(config.params, seed=seed, metric=config.metric)
    started = time.perf_counter()
    parts = {name: runs_dir / folder for name, folder in config.parts.items()} if runs_dir else None
    if config.parts and not parts:
        raise KdqError(f"run {config.run} is a composite: it needs the folder of its parts' runs (runs_dir)")
    model, history, fitted = fit_model(
        config.model, params, split, config.refit, config.exclude, config.save_models, parts, seed
    )
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
        best_epoch=model.best_iteration() if isinstance(model, Iterative) else None,
        validation_share=_validation_share(history),
        ties={column: int(per_user[column].sum()) for column in ties_columns(ks)},
        hits_by_popularity={str(k): v for k, v in buckets.to_dict(orient="index").items()},
    )
    context = SegmentContext(per_user, split.user_features, split.user_vocab)
    groups = segment_groups(context, {kind: tuple(columns) for kind, columns in config.segments.items()})
    importance = None
    if config.importance:
        options = ImportanceOptions.from_dict({**config.importance, "metric": config.metric})
        importance = permutation_importance(model, split.user_features, goal, ks, options)
    return SeedResult(seed, split, model, evaluation, history, facts, groups, lists, fitted, importance)


def run(config: RunConfig, splits: dict[int, SplitData], runs_dir: Path | None = None) -> RunResult:
    """Run ``config`` on every seed's split (seed → prepared split) and summarise.

    ``runs_dir``: the folder holding the experiment's run folders (a composite loads its parts from there).
    """
    if not splits:
        raise ValueError("a run needs at least one seed's split")
    results = [run_seed(config, split, seed, runs_dir) for seed, split in sorted(splits.items())]
    first = results[0].split
    ks = sorted(config.ks)
    spec = model_spec(config.model)
    deterministic = all(spec.config.from_dict(r.facts.params, spec.kind).deterministic for r in results)
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
    """Write ``metrics.parquet`` (per user and seed), ``results.parquet``, ``summary.json``, ``history.parquet``,
    the model and, when the run measured it, ``importance.parquet`` (permutation importance per user, field and seed).

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
    importance = result.importance()
    if importance is not None:
        with atomic_file(folder / "importance.parquet", "wb") as handle:
            importance.to_parquet(handle, index=False)
    curves = [s.history.assign(seed=s.seed) for s in result.seeds if s.history is not None]
    if curves:
        with atomic_file(folder / "history.parquet", "wb") as handle:
            pd.concat(curves, ignore_index=True).to_parquet(handle, index=False)
    if result.config.save_models:  # every seed's train fit and refit, for the composites built from this run
        for seed in result.seeds:
            for stage, model in (("fit", seed.fitted or seed.model), ("refit", seed.model)):
                if not isinstance(model, Persistable):
                    raise KdqError(f"run {result.config.run}: a {result.config.model} model cannot be saved")
                model.save(
                    folder / MODELS / str(seed.seed) / stage, extra={"run": result.config.run, "seed": seed.seed}
                )
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
