"""Experiment YAML → a validated list of runs. Mistakes are caught before a notebook starts.

An experiment names a dataset, splits, runs (model + parameters, with grid expansion),
seeds, the k list, the headline metric and the reference run for paired comparisons::

    name: kdq-default
    dataset: kdq-catalog
    seeds: [42]
    k: [5, 10, 20]
    metric: ndcg@10
    reference: popularity
    splits:
      cold_users: {kind: cold_users, test_fraction: 0.2, validation_fraction: 0.1}
    runs:
      popularity: {model: popularity}
      lightfm_hybrid:
        model: lightfm
        params: {features: both}
        grid: {identity: [true, false]}      # → lightfm_hybrid-identity=true, lightfm_hybrid-identity=false

Each seed sets the split seed and the model's seed unless the run's parameters fix it;
one notebook runs a run on a split over every seed. ``exclude`` picks the items removed
from each user's ranking (``seen``, the default, or ``train_positives``; see
:mod:`kdq_lab.data.targets`). ``sample_users: {n: 10000, seed: 0}`` evaluates a seeded
sample of ``n`` test users (the same users for every run of a split and seed), for quick
looks at scale; the runs' summaries and the manifest record it. A composite model (its spec lists ``parts``)
names other runs of the experiment in those parameters (``first: popularity``, grid-expanded names too): each
must be a run of a persistable model, never the composite itself, without cycles; the parts run first, on the
same splits and seeds, and keep their fitted models for it. ``segments: {by_feature: [occupations,
age_band]}`` adds segments by user feature columns of the dataset to every run's results (declared
segment kinds: :mod:`kdq_lab.evaluation.segments`). Names become folders, so they must be safe names
(:mod:`kdq_lab.names`). Every size the file asks for is bounded (:mod:`kdq_lab.limits`): the trainings
(runs after grid expansion × splits × seeds, at most ``max_runs``) are counted from the YAML before anything
is expanded. A run on a split writes ``runs/<run>__<split>/`` (:func:`run_folder`), so run names, split names and
expanded grid names may not contain ``__``: with it, runs ``x`` and ``x__y`` on splits ``y__z`` and ``z`` would
share one folder.
"""

from __future__ import annotations

import fnmatch
import itertools
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from kdq_lab import limits
from kdq_lab.checks import check_number, is_int
from kdq_lab.config import Paths
from kdq_lab.data.registry import BUILTIN, dataset_exists, dataset_spec
from kdq_lab.data.schema import DatasetSpec
from kdq_lab.data.splits import SplitConfig, expand_split, split_keys
from kdq_lab.data.targets import EXCLUDE_RULES
from kdq_lab.errors import DataError, KdqError
from kdq_lab.evaluation.metrics import headline_k, parse_metric
from kdq_lab.evaluation.segments import segment_kinds
from kdq_lab.experiment.ablation import COLUMNS_PARAMETER, Ablation, count_variants, parse_ablation
from kdq_lab.models import REGISTRY, ModelSpec, model_spec
from kdq_lab.names import name_problem
from kdq_lab.tuning.space import parse_space
from kdq_lab.tuning.study import TuningConfig, study_context
from kdq_lab.yamlfile import YamlChecker, YamlDocument, parse_assignment

TOP_KEYS = {
    "name",
    "title",
    "description",
    "dataset",
    "seeds",
    "k",
    "metric",
    "reference",
    "refit",
    "exclude",
    "bootstrap",
    "sample_users",
    "segments",
    "exposure",
    "splits",
    "runs",
    "notebooks",
    "tuning",
    "tuned",
    "sesoi",
    "ablation",
    "tracking",
}
RUN_KEYS = {"model", "params", "grid", "label", "search"}
TUNING_KEYS = {"trials", "timeout", "seed", "pruner"}
BOOTSTRAP_KEYS = {"samples", "seed"}
SAMPLE_KEYS = {"n", "seed"}
NOTEBOOK_KEYS = {"notebook", "parameters"}
MAX_URI = 1000  # characters of a tracking URI
#: Separates the run from the split in a run's folder name; no run or split name may contain it.
FOLDER_SEPARATOR = "__"


def run_folder(run: str, split: str) -> str:
    """The folder of ``run`` on ``split`` under ``runs/``.

    One-to-one over the names an experiment accepts: neither name contains :data:`FOLDER_SEPARATOR` and a
    split name starts with a letter or digit, so the last ``__`` of a folder name is the separator (a run
    name may end with ``_``: run ``x_`` on split ``s`` is ``x___s``).
    """
    return f"{run}{FOLDER_SEPARATOR}{split}"


@dataclass(frozen=True)
class RunDef:
    """A run of the experiment (after grid expansion): its model, parameters, label and search space."""

    model: str
    params: dict[str, Any]
    label: str
    search: dict[str, dict[str, Any]] = field(default_factory=dict)  # parameter -> range, YAML form
    split: str | None = None  # the only split it runs on (an ablation's variants); None: every split


@dataclass(frozen=True)
class RunSpec:
    """One notebook execution: a run on one split, over the experiment's seeds."""

    run: str
    label: str
    model: str
    params: dict[str, Any]
    split: str
    split_config: SplitConfig
    seeds: tuple[int, ...]
    folder: str
    search: dict[str, dict[str, Any]] = field(default_factory=dict)
    importance: dict[str, Any] | None = None  # permutation importance the run measures (an ablation's base run)


@dataclass(frozen=True)
class NotebookSpec:
    """An extra notebook executed once for the report (e.g. the catalog exploration)."""

    notebook: str
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Experiment:
    """A validated experiment."""

    name: str
    title: str
    dataset: str
    seeds: tuple[int, ...]
    k: tuple[int, ...]
    metric: str
    reference: str | None
    refit: bool
    exclude: str
    bootstrap_samples: int
    bootstrap_seed: int
    splits: dict[str, SplitConfig]
    runs: dict[str, RunDef]  # by expanded name
    notebooks: tuple[NotebookSpec, ...]
    source: str
    raw: dict[str, Any]
    tuning: TuningConfig = field(default_factory=TuningConfig)
    tuned: bool = False
    sample_users: dict[str, int] | None = None  # {n, seed}: test users evaluated per run, seed and split
    sesoi: dict[str, float] = field(default_factory=dict)  # metric -> smallest effect of interest
    segments: dict[str, list[str]] = field(default_factory=dict)  # declared segment kind -> user feature columns
    exposure: str | None = None  # item column owning items (creator): exposure metrics per owner
    ablation: Ablation | None = None  # the onboarding study (experiment/ablation.py)
    tracking: bool = False  # log the report to MLflow (app/tracking.py)
    tracking_uri: str | None = None  # its store; None: the report's embedded tracking/mlflow.db

    def parts_of(self, run: str) -> dict[str, str]:
        """The runs a composite run is built from, by parameter (empty for a run that trains itself)."""
        definition = self.runs[run]
        return {name: str(value) for name, value in model_spec(definition.model).part_runs(definition.params).items()}

    def part_runs(self) -> set[str]:
        """Runs some composite run is built from (they keep every seed's fitted models)."""
        return {part for run in self.runs for part in self.parts_of(run).values()}

    def depth(self, run: str) -> int:
        """0 for a run that trains itself; a composite's is one more than its deepest part's (the loader refused
        cycles)."""
        parts = self.parts_of(run).values()
        return 1 + max(self.depth(part) for part in parts) if parts else 0

    def jobs(self, only: list[str] | None = None) -> list[RunSpec]:
        """Every run × split (each over all seeds), optionally only runs matching ``only`` (names or globs) and
        the runs the selected composites are built from."""
        chosen = {n for n in self.runs if not only or any(_matches(n, pattern) for pattern in only)}
        todo = list(chosen)
        while todo:
            for part in self.parts_of(todo.pop()).values():
                if part not in chosen:
                    chosen.add(part)
                    todo.append(part)
        names = [n for n in self.runs if n in chosen]
        return [
            RunSpec(name, run.label, run.model, dict(run.params), split, config, self.seeds,
                    run_folder(name, split), dict(run.search),
                    self.ablation.importance(name, split) if self.ablation else None)
            for name in names
            for run in [self.runs[name]]
            for split, config in self.splits.items()
            if run.split in (None, split)
        ]  # fmt: skip

    def study_context(self, spec: RunSpec, hashes: dict[str, str]) -> dict[str, Any]:
        """What the study of a run × split is tuned on (``hashes``: the dataset's raw files): see
        :func:`kdq_lab.tuning.study.study_context`. Studies tune on the first seed's split."""
        split = replace(spec.split_config, seed=self.seeds[0]).to_dict()
        return study_context(spec.model, spec.params, spec.search, self.metric, self.exclude, hashes, split)

    def split_jobs(self) -> list[tuple[str, int, SplitConfig]]:
        """Every split × seed, each prepared once."""
        return [
            (split, seed, replace(config, seed=seed)) for split, config in self.splits.items() for seed in self.seeds
        ]


def _matches(name: str, pattern: str) -> bool:
    return name == pattern or fnmatch.fnmatchcase(name, pattern) or name.split("-", 1)[0] == pattern


def _value_text(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def expand_grid(name: str, params: dict[str, Any], grid: dict[str, list[Any]]) -> dict[str, dict[str, Any]]:
    """Expanded run names and parameters, e.g. ``hybrid-identity=true-normalize=l1``."""
    if not grid:
        return {name: dict(params)}
    keys = list(grid)
    out = {}
    for values in itertools.product(*(grid[k] for k in keys)):
        suffix = "-".join(f"{k}={_value_text(v)}" for k, v in zip(keys, values))
        out[f"{name}-{suffix}"] = {**params, **dict(zip(keys, values))}
    return out


def run_label(label: str, grid_values: dict[str, Any]) -> str:
    """A readable run label: the run's label, plus its grid values (``identity true, normalize l1``)."""
    if not grid_values:
        return label
    return f"{label} ({', '.join(f'{k} {_value_text(v)}' for k, v in grid_values.items())})"


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.path=value`` overrides (values parsed as YAML) to the raw experiment."""
    for item in overrides:
        key, value = parse_assignment(item)
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[parts[-1]] = value
    return data


class _Checker(YamlChecker):
    """Problems of an experiment file (adds sizes, integers, integer lists and names to the shared YAML checks)."""

    def int_list(self, data: dict, key: str, default: list[int], low: int, high: int) -> tuple[int, ...]:
        """An integer or a non-empty list of distinct integers in [low, high] (``default`` when absent or bad)."""
        value = data.get(key, default)
        value = [value] if isinstance(value, int) and not isinstance(value, bool) else value
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        ):
            self.add((key,), value, "expected an integer or a non-empty list of integers")
            return tuple(default)
        outside = [v for v in value if not low <= v <= high]
        if outside:
            self.add((key,), outside[0], f"every {key} value must be an integer >= {low} (at most {high:,})")
            return tuple(default)
        if self.repeated((key,), value):
            return tuple(default)
        return tuple(value)

    def sizes(self, data: dict[str, Any], max_runs: int) -> bool:
        """Refuse, from the YAML alone, an experiment asking for too much; whether it does.

        Counts seeds, splits, k values, extra notebooks and trainings (runs after grid expansion ×
        splits × seeds) without expanding or checking anything one by one.
        """
        before = len(self.problems)
        seeds, splits = limits.size_of(data.get("seeds", [42])), limits.size_of(data.get("splits"))
        if isinstance(data.get("splits"), dict) and splits <= limits.MAX_SPLITS:
            splits = sum(_split_count(name, flat) for name, flat in data["splits"].items())
        for key, count, limit, what in (
            ("seeds", seeds, limits.MAX_SEEDS, "seeds"),
            ("splits", splits, limits.MAX_SPLITS, "splits"),
            ("k", limits.size_of(data.get("k", [10])), limits.MAX_K_VALUES, "k values"),
            ("notebooks", limits.size_of(data.get("notebooks")), limits.MAX_NOTEBOOKS, "extra notebooks"),
        ):
            if problem := limits.too_many(count, limit, what):
                self.add((key,), f"{count:,} entries", problem)
        runs = data.get("runs")
        expanded = sum(
            math.prod(len(v) if isinstance(v, list) else 1 for v in run["grid"].values())
            if isinstance(run, dict) and isinstance(run.get("grid"), dict)
            else 1
            for run in (runs.values() if isinstance(runs, dict) else ())
        ) + count_variants(data.get("ablation"))
        trainings = expanded * max(splits, 1) * max(seeds, 1)
        if trainings > max_runs:
            self.add(
                ("runs",),
                f"{trainings:,} trainings",
                f"{expanded:,} runs (after grid expansion) x {splits:,} splits x {seeds:,} seeds make "
                f"{trainings:,} trainings, more than the cap of {max_runs:,}; shrink a grid or the seeds or "
                f"splits, or raise the cap with --max-runs (at most {limits.MAX_TRAININGS_CEILING:,})",
            )
        return len(self.problems) > before

    def integer(self, path: tuple[str, ...], value: Any, low: int, high: int, what: str = "") -> None:
        """Adds a problem unless ``value`` is an integer in [low, high]."""
        if not is_int(value) or not low <= value <= high:
            self.add(path, value, f"expected an integer >= {low} (at most {high:,}){what}")

    def name(self, path: tuple[str, ...], value: Any, what: str) -> bool:
        """Whether ``value`` is a safe name (it becomes a folder); adds a problem if not."""
        problem = name_problem(value)
        if problem:
            self.add(path, value, f"{what}: {problem}")
        return problem is None

    def folder_part(self, path: tuple[str, ...], value: Any, what: str) -> bool:
        """Whether ``value`` is a safe name without :data:`FOLDER_SEPARATOR` (a run or split name); adds a problem
        if not."""
        if not self.name(path, value, what):
            return False
        if FOLDER_SEPARATOR in value:
            why = f"it separates run and split in runs/<run>{FOLDER_SEPARATOR}<split>/: two pairs could share a folder"
            self.add(path, value, f"{what}: may not contain '{FOLDER_SEPARATOR}' ({why})")
            return False
        return True


def load_experiment(
    path: Path, overrides: list[str] | None = None, paths: Paths | None = None, max_runs: int = limits.MAX_TRAININGS
) -> Experiment:
    """Read, override and validate an experiment; raise :class:`DataError` listing every problem.

    First refuses, from the YAML alone, an experiment asking for too much (more than ``max_runs``
    trainings: runs after grid expansion × splits × seeds; too many seeds, splits, k values or
    notebooks). Then checks keys, names (they become folders), models, parameters and their
    values, splits, the reference run, the metric, the exclusion rule, the extra notebooks and
    that the dataset can be found (built-ins count).
    """
    path = Path(path)
    paths = paths or Paths.default()
    limits.check_at_most("--max-runs", max_runs, limits.MAX_TRAININGS_CEILING, "trainings")
    document = YamlDocument.from_path(path, "experiment file")
    check = _Checker(document)
    raw = document.data
    if not isinstance(raw, dict):
        check.add((), raw, "expected a mapping with name, dataset, splits and runs")
        raise DataError(check.problems, heading=f"invalid experiment {path}")
    data = check.mapping(apply_overrides(raw, overrides or []), (), TOP_KEYS, {"name", "dataset", "splits", "runs"})
    if check.sizes(data, max_runs):  # before anything is expanded or checked one by one
        raise DataError(check.problems, heading=f"invalid experiment {path}")
    name = data.get("name", path.stem)
    check.name(("name",), name, "the experiment name names the report folder")
    dataset = data.get("dataset")
    if not isinstance(dataset, str) or not dataset:
        check.add(("dataset",), dataset, "expected a dataset name or folder")
    elif not dataset_exists(dataset, paths):
        check.add(
            ("dataset",),
            dataset,
            f"no such dataset: not a folder with dataset.yaml, not under {paths.raw}, "
            f"not built in ({', '.join(BUILTIN)}); import or generate it first",
        )
    spec = dataset_spec(dataset, paths) if isinstance(dataset, str) and dataset_exists(dataset, paths) else None
    seeds = check.int_list(data, "seeds", [42], 0, limits.MAX_SEED)
    ks = check.int_list(data, "k", [10], 1, limits.MAX_K)
    metric = data.get("metric", f"ndcg@{headline_k(ks)}")
    try:
        parse_metric(metric, ks)
    except KdqError as exc:
        check.add(("metric",), metric, str(exc))
    refit = data.get("refit", True)
    if not isinstance(refit, bool):
        check.add(("refit",), refit, "expected true or false")
    exclude = data.get("exclude", "seen")
    if exclude not in EXCLUDE_RULES:
        check.add(
            ("exclude",),
            exclude,
            f"expected one of {', '.join(EXCLUDE_RULES)} (items excluded from a "
            "user's ranking: every item seen before, or only known positives)",
        )
    bootstrap = check.mapping(data.get("bootstrap", {}) or {}, ("bootstrap",), BOOTSTRAP_KEYS)
    samples, boot_seed = bootstrap.get("samples", 1000), bootstrap.get("seed", 0)
    check.integer(("bootstrap", "samples"), samples, limits.MIN_BOOTSTRAP_SAMPLES, limits.MAX_BOOTSTRAP_SAMPLES)
    check.integer(("bootstrap", "seed"), boot_seed, 0, limits.MAX_SEED)
    sample = data.get("sample_users")
    if sample is not None:
        sample = check.mapping(sample, ("sample_users",), SAMPLE_KEYS, {"n"})
        n, sample_seed = sample.get("n"), sample.get("seed", 0)
        check.integer(("sample_users", "n"), n, 1, limits.MAX_ENTITY_ROWS, "; test users evaluated per run")
        check.integer(("sample_users", "seed"), sample_seed, 0, limits.MAX_SEED)
        sample = {"n": n, "seed": sample_seed} if sample else None
    sesoi = _sesoi(check, data.get("sesoi") or {}, ks)
    segments = _segments(check, data.get("segments"), spec)
    exposure = _exposure(check, data.get("exposure"), spec)
    splits = _splits(check, data.get("splits"), spec)
    runs = _runs(check, data.get("runs"))
    _check_parts(check, runs)
    reference = data.get("reference")
    if reference is not None and (not isinstance(reference, str) or reference not in runs):
        check.add(("reference",), reference, f"not a run of this experiment; runs: {', '.join(runs) or 'none'}")
    notebooks = _notebooks(check, data.get("notebooks", []), paths)
    tuning = _tuning(check, data.get("tuning"))
    tracking_uri = _tracking(check, data.get("tracking"))
    ablation = None
    if data.get("ablation") is not None:
        ablation = parse_ablation(check, data["ablation"], runs, set(splits), spec)
        if ablation is not None:
            variants = _variants(ablation, runs, spec)
            for variant in variants:
                check.folder_part(
                    ("ablation", "fields"), variant, "a generated run name (the field becomes part of it)"
                )
            runs = {**runs, **variants}
    tuned = data.get("tuned", False)
    if not isinstance(tuned, bool):
        check.add(("tuned",), tuned, "expected true or false (use each run's best tuning trial)")
    elif tuned and not any(run.search for run in runs.values()):
        check.add(("tuned",), tuned, "no run has a search: block, so there is nothing tuned to use")
    if check.problems:
        raise DataError(check.problems, heading=f"invalid experiment {path}")
    assert isinstance(dataset, str)
    return Experiment(
        name=name,
        title=str(data.get("title", name)),
        dataset=dataset,
        seeds=seeds,
        k=ks,
        metric=str(metric),
        reference=reference,
        refit=refit,
        exclude=exclude,
        bootstrap_samples=samples,
        bootstrap_seed=boot_seed,
        splits=splits,
        runs=runs,
        notebooks=notebooks,
        source=str(path),
        raw=data,
        tuning=tuning,
        tuned=tuned,
        sample_users=sample,
        sesoi=sesoi,
        ablation=ablation,
        segments=segments,
        exposure=exposure,
        tracking="tracking" in data and data["tracking"] is not None,
        tracking_uri=tracking_uri,
    )


def _sesoi(check: _Checker, raw: Any, ks: tuple[int, ...]) -> dict[str, float]:
    """``sesoi: {metric: effect}``: per-user metrics of this experiment, each a number in (0, 1]."""
    sesoi: dict[str, float] = {}
    if not isinstance(raw, dict):
        check.add(("sesoi",), raw, "expected a mapping of metric: smallest effect of interest, e.g. {ndcg@10: 0.005}")
        return sesoi
    for metric, value in raw.items():
        try:
            parse_metric(metric, ks)
            check_number("sesoi", str(metric), value, 0.0, high=1.0, strict=True)
        except KdqError as exc:
            check.add(("sesoi", str(metric)), value, f"{exc} (the smallest difference of interest in this metric)")
            continue
        sesoi[str(metric)] = float(value)
    return sesoi


def _segments(check: _Checker, data: Any, spec: DatasetSpec | None) -> dict[str, list[str]]:
    """Declared segment kinds (``segments: {by_feature: [occupations, age_band]}``), checked against the dataset."""
    if data is None:
        return {}
    kinds = {kind.name: kind for kind in segment_kinds(declared=True)}
    data = check.mapping(data, ("segments",), set(kinds))
    out = {}
    for name, columns in data.items():
        where = ("segments", str(name))
        if name not in kinds:
            continue
        if not isinstance(columns, list) or not columns or not all(isinstance(c, str) for c in columns):
            check.add(where, columns, "expected a list of user feature column names, e.g. [occupations, age_band]")
            continue
        known = spec.users.feature_columns if spec is not None else tuple(columns)
        for problem in kinds[name].check(tuple(columns), known):
            check.add(where, columns, problem)
        out[name] = list(columns)
    return out


def _exposure(check: _Checker, data: Any, spec: DatasetSpec | None) -> str | None:
    """``exposure: {by: creator}``: the categorical item column whose values own items."""
    if data is None:
        return None
    column = check.mapping(data, ("exposure",), {"by"}, {"by"}).get("by")
    if column is None:
        return None
    known = spec.items.categorical if spec is not None else (column,)
    if not isinstance(column, str) or column not in known:
        check.add(("exposure", "by"), column, f"expected a categorical item column of the dataset ({', '.join(known)})")
        return None
    return column


def _variants(ablation: Ablation, runs: dict[str, RunDef], spec: DatasetSpec | None) -> dict[str, RunDef]:
    """The runs an ablation (checked) generates: ``<run>-drop=<field>``, ``<run>-only=<field>``."""
    out = {}
    for name in ablation.runs:
        base = runs[name]
        chosen = base.params.get(COLUMNS_PARAMETER)
        columns = tuple(chosen) if chosen is not None else (spec.users.feature_columns if spec else ablation.fields)
        for variant, (mode, field_name, kept) in ablation.variants(name, columns).items():
            what = "without" if mode == "drop_one" else "only"
            out[variant] = RunDef(
                base.model,
                {**base.params, COLUMNS_PARAMETER: list(kept)},
                f"{base.label} · {what} {field_name}",
                {},
                ablation.split,
            )
    return out


def _split_count(name: Any, flat: Any) -> int:
    """How many splits an experiment's split entry stands for (1 unless its kind expands it)."""
    try:
        return len(expand_split(str(name), flat)) if isinstance(flat, dict) else 1
    except KdqError:
        return 1  # the entry's problem is named when it is checked


def _splits(check: _Checker, data: Any, spec: DatasetSpec | None) -> dict[str, SplitConfig]:
    out: dict[str, SplitConfig] = {}
    for name, config in check.mapping(data, ("splits",), set(data) if isinstance(data, dict) else set()).items():
        where = ("splits", str(name))
        if not check.folder_part(where, name, "split names name folders"):
            continue
        kind = config.get("kind") if isinstance(config, dict) else None
        config = check.mapping(config, where, set(split_keys(kind)) - {"seed"}, {"kind"})  # the kind's keys
        if not config:
            continue
        try:
            expanded = {key: SplitConfig.from_dict(flat) for key, flat in expand_split(str(name), config).items()}
        except (KdqError, TypeError) as exc:
            check.add(where, config.get("kind"), str(exc))
            continue
        if len(expanded) > 1 and not all(check.folder_part(where, key, "expanded split names") for key in expanded):
            continue
        if taken := sorted(set(expanded) & set(out)):
            check.add(where, taken[0], "two splits share this name (an expanded one is named <split>-<option>=<value>)")
            continue
        out.update(_checked_splits(check, where, expanded, spec))
    if isinstance(data, dict) and not data:
        check.add(("splits",), None, "expected at least one split")
    return out


def _checked_splits(
    check: _Checker, where: tuple[str, ...], splits: dict[str, SplitConfig], spec: DatasetSpec | None
) -> dict[str, SplitConfig]:
    """The splits of one experiment entry, with the problems the dataset finds in them added."""
    out = {}
    for name, split in splits.items():
        for key, value, problem in split.dataset_problems(spec) if spec is not None else ():
            check.add((*where, key), value, problem)
        unknown = set(split.positive_events or ()) - set(spec.interactions.event_weights if spec else ())
        if spec is not None and unknown:
            check.add(
                (*where, "positive_events"),
                sorted(unknown),
                f"not event types of the dataset; it has: {', '.join(spec.interactions.event_weights)}",
            )
        out[name] = split
    return out


def _runs(check: _Checker, data: Any) -> dict[str, RunDef]:
    out: dict[str, RunDef] = {}
    runs = check.mapping(data, ("runs",), set(data) if isinstance(data, dict) else set())
    if isinstance(data, dict) and not data:
        check.add(("runs",), None, "expected at least one run")
    for name, run in runs.items():
        where = ("runs", str(name))
        if not check.folder_part(where, name, "run names name folders") or "-" in str(name):
            if "-" in str(name):
                check.add(where, name, "run names may not contain '-' (it separates grid values)")
            continue
        run = check.mapping(run, where, RUN_KEYS, {"model"})
        if not run:
            continue
        kind = run.get("model")
        if not isinstance(kind, str) or kind not in REGISTRY:
            check.add((*where, "model"), kind, f"unknown model; allowed: {', '.join(REGISTRY)}")
            continue
        spec = model_spec(kind)
        params = run.get("params") or {}
        grid = run.get("grid") or {}
        if not isinstance(params, dict):
            check.add((*where, "params"), params, "expected a mapping of parameters")
            continue
        if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
            check.add((*where, "grid"), grid, "expected a mapping parameter: [value, value, ...]")
            continue
        allowed = spec.parameter_names()
        for key in [*params, *grid]:
            if key not in allowed:
                check.add(
                    (*where, "params" if key in params else "grid", str(key)),
                    key,
                    f"unknown parameter for model '{kind}'; allowed: {', '.join(allowed) or 'none'}",
                )
        if any(key not in allowed for key in [*params, *grid]):
            continue
        repeats = [key for key, values in grid.items() if check.repeated((*where, "grid", str(key)), values)]
        if repeats:  # each would expand to the same run twice
            continue
        label = run.get("label", str(name))
        for expanded, values in expand_grid(str(name), params, grid).items():
            if not check.name(where, expanded, "an expanded run name (grid values become part of it)"):
                break
            if FOLDER_SEPARATOR in expanded:
                key = next(k for k in grid if FOLDER_SEPARATOR in f"{k}={_value_text(values[k])}")
                check.add((*where, "grid", str(key)), values[key],
                          f"a grid value may not contain '{FOLDER_SEPARATOR}': it becomes part of the run name "
                          f"{expanded!r}, and run names may not contain it")  # fmt: skip
                break
            try:
                spec.make(values)
            except (KdqError, TypeError, ValueError) as exc:
                check.add(where, _value_text(values), f"bad parameter value: {exc}")
                break
            search = _search(check, (*where, "search"), run.get("search"), spec, values)
            out[expanded] = RunDef(kind, values, run_label(str(label), {k: values[k] for k in grid}), search)
    return out


def _check_parts(check: _Checker, runs: dict[str, RunDef]) -> None:
    """Each composite's parts name persistable runs of the experiment, never itself, without cycles."""
    graph: dict[str, list[tuple[tuple[str, ...], str]]] = {}  # composite -> (where, part)
    for name, run in runs.items():
        base = name.split("-", 1)[0]
        for parameter, part in model_spec(run.model).part_runs(run.params).items():
            grid = check.document.node(("runs", base, "grid", parameter)) is not None
            where = ("runs", base, "grid" if grid else "params", parameter)
            if part == name:
                check.add(where, part, "a composite cannot be built from itself")
            elif not isinstance(part, str) or part not in runs:
                check.add(
                    where,
                    part,
                    f"expected the name of another run of this experiment (grid-expanded names "
                    f"too); runs: {', '.join(n for n in runs if n != name)}",
                )
            elif not model_spec(runs[part].model).persistable:
                check.add(
                    where,
                    part,
                    f"run {part!r} is a {runs[part].model} model, which cannot be saved (npz + "
                    "json) for a composite to load; choose a persistable model",
                )
            else:
                graph.setdefault(name, []).append((where, part))
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(run: str, path: list[str]) -> None:
        state[run] = 1
        for where, part in graph.get(run, []):
            if state.get(part) == 1:
                cycle = [*path[path.index(part) :], part]
                check.add(where, " -> ".join(cycle), "composite runs form a cycle: none of them could run first")
            elif part not in state:
                visit(part, [*path, part])
        state[run] = 2

    for composite in graph:
        if composite not in state:
            visit(composite, [composite])


def _search(
    check: _Checker, where: tuple[str, ...], raw: Any, spec: ModelSpec, fixed: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """A run's search space in YAML form (empty without ``search:``), its problems added to ``check``."""
    if raw is None:
        return {}
    space, problems = parse_space(raw, spec, fixed)
    for name, value, message in problems:
        check.add((*where, name) if name else where, value, message)
    if not space and not problems:
        check.add(where, raw, f"{spec.kind} has no tunable parameter left: the run fixes them all")
    return {name: span.to_dict() for name, span in space.items()}


def _tuning(check: _Checker, raw: Any) -> TuningConfig:
    """The ``tuning:`` block (budget per run × split, sampler seed, pruner); the default when absent."""
    if raw is None:
        return TuningConfig()
    data = check.mapping(raw, ("tuning",), TUNING_KEYS)
    budget = {"trials": data.get("trials"), "timeout": data.get("timeout")}
    if budget["trials"] is None and budget["timeout"] is None:
        budget["trials"] = TuningConfig().trials
    try:
        return TuningConfig(**budget, seed=data.get("seed", 0), pruner=data.get("pruner", "median"))
    except KdqError as exc:
        check.add(("tuning",), raw, str(exc))
        return TuningConfig()


def _tracking(check: _Checker, raw: Any) -> str | None:
    """``tracking: {uri: ...}``: the MLflow store's URI (any MLflow tracking URI); ``{}``: the embedded default."""
    if raw is None:
        return None
    uri = check.mapping(raw, ("tracking",), {"uri"}).get("uri")
    if uri is None:
        return None
    if not isinstance(uri, str) or not uri.strip() or len(uri) > MAX_URI or not uri.isprintable():
        check.add(
            ("tracking", "uri"), uri, f"expected an MLflow tracking URI: printable text of 1 to {MAX_URI} characters"
        )
        return None
    return uri


#: Parameters the runner gives every extra notebook (an experiment may not set them).
RUNNER_PARAMETERS = frozenset({"DATASET", "REPORT_DIR"})


def declared_parameters(notebook: Path) -> dict[str, Any]:
    """The parameters a notebook declares in its ``parameters`` cell (papermill's own reading)."""
    import papermill

    return dict(papermill.inspect_notebook(str(notebook)))


def plain_value(value: Any) -> bool:
    """Whether ``value`` is plain data: text, numbers, booleans, null, and lists or mappings of them."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return True
    if isinstance(value, list):
        return all(plain_value(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and plain_value(v) for k, v in value.items())
    return False


def _notebooks(check: _Checker, data: Any, paths: Paths) -> tuple[NotebookSpec, ...]:
    if not isinstance(data, list):
        check.add(("notebooks",), data, "expected a list of {notebook: NAME, parameters: {...}}")
        return ()
    available = sorted(p.stem for p in paths.notebooks.glob("*.ipynb"))
    out = []
    for entry in data:
        entry = check.mapping(entry, ("notebooks",), NOTEBOOK_KEYS, {"notebook"})
        if not entry:
            continue
        if entry["notebook"] not in available:
            check.add(("notebooks",), entry["notebook"], f"no such notebook; available: {', '.join(available)}")
            continue
        parameters = entry.get("parameters") or {}
        if not isinstance(parameters, dict):
            check.add(("notebooks",), parameters, "parameters: expected a mapping NAME: value")
            continue
        # papermill writes parameter names into a code cell: only names the notebook declares may pass
        declared = declared_parameters(paths.notebooks / f"{entry['notebook']}.ipynb")
        problems = 0
        for key, value in parameters.items():
            where = ("notebooks", "parameters", str(key))
            if not isinstance(key, str) or not key.isidentifier() or key not in declared:
                check.add(
                    where,
                    key,
                    f"not a parameter of {entry['notebook']}; it declares: "
                    f"{', '.join(sorted(set(declared) - RUNNER_PARAMETERS)) or 'none'}",
                )
            elif key in RUNNER_PARAMETERS:
                check.add(where, key, "set by the runner; an experiment may not override it")
            elif not plain_value(value):
                check.add(where, value, "expected plain data (text, numbers, true/false, null, lists, mappings)")
            else:
                continue
            problems += 1
        if not problems:
            out.append(NotebookSpec(str(entry["notebook"]), dict(parameters)))
    return tuple(out)
