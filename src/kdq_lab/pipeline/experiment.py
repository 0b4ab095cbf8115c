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

Each seed sets the split seed and the model's seed (``random_state`` / ``seed``) unless
the run's parameters fix it.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from kdq_lab.config import Paths
from kdq_lab.data.registry import BUILTIN, dataset_exists, dataset_spec
from kdq_lab.data.schema import DatasetSpec
from kdq_lab.data.splits import SplitConfig
from kdq_lab.errors import DataError, KdqError
from kdq_lab.models import MODELS, make_model, model_parameters
from kdq_lab.yamlfile import YamlChecker, YamlDocument, parse_assignment

TOP_KEYS = {"name", "title", "description", "dataset", "seeds", "k", "metric", "reference", "refit", "bootstrap",
            "splits", "runs", "notebooks"}
RUN_KEYS = {"model", "params", "grid", "label"}
BOOTSTRAP_KEYS = {"samples", "seed"}
NOTEBOOK_KEYS = {"notebook", "parameters"}
METRICS = ("precision", "recall", "ndcg", "map", "hit", "mrr", "auc")
_SEEDED = {"lightfm": "random_state", "random": "seed"}


@dataclass(frozen=True)
class RunSpec:
    """One notebook execution: a run on one split with one seed."""

    run: str
    label: str
    model: str
    params: dict[str, Any]
    split: str
    split_config: SplitConfig
    seed: int
    folder: str


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
    bootstrap_samples: int
    bootstrap_seed: int
    splits: dict[str, SplitConfig]
    runs: dict[str, tuple[str, dict[str, Any], str]]  # expanded name -> (model, params, label)
    notebooks: tuple[NotebookSpec, ...]
    source: str
    raw: dict[str, Any]

    def jobs(self, only: list[str] | None = None) -> list[RunSpec]:
        """Every run × split × seed, optionally restricted to runs matching ``only`` (names or globs)."""
        names = [n for n in self.runs if not only or any(_matches(n, pattern) for pattern in only)]
        out = []
        for name in names:
            model, params, label = self.runs[name]
            for split, config in self.splits.items():
                for seed in self.seeds:
                    seeded = dict(params)
                    if model in _SEEDED and _SEEDED[model] not in seeded:
                        seeded[_SEEDED[model]] = seed
                    folder = f"{name}__{split}" + (f"__s{seed}" if len(self.seeds) > 1 else "")
                    out.append(RunSpec(name, label, model, seeded, split, _with_seed(config, seed), seed, folder))
        return out

    def split_jobs(self) -> list[tuple[str, int, SplitConfig]]:
        """Every split × seed, each prepared once."""
        return [(split, seed, _with_seed(config, seed)) for split, config in self.splits.items() for seed in self.seeds]


def _with_seed(config: SplitConfig, seed: int) -> SplitConfig:
    return replace(config, seed=seed)


def _matches(name: str, pattern: str) -> bool:
    import fnmatch

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
    """Problems of an experiment file (adds integer lists to the shared YAML checks)."""

    def int_list(self, data: dict, key: str, default: list[int]) -> tuple[int, ...]:
        value = data.get(key, default)
        value = [value] if isinstance(value, int) and not isinstance(value, bool) else value
        if not isinstance(value, list) or not value or not all(isinstance(v, int) and not isinstance(v, bool)
                                                               for v in value):
            self.add((key,), value, "expected an integer or a non-empty list of integers")
            return tuple(default)
        return tuple(value)


def load_experiment(path: Path, overrides: list[str] | None = None, paths: Paths | None = None) -> Experiment:
    """Read, override and validate an experiment; raise :class:`DataError` listing every problem.

    Checks keys, models, parameters and their values, splits, the reference run, the
    metric, the extra notebooks, and that the dataset can be found (built-ins count).
    """
    path = Path(path)
    paths = paths or Paths.default()
    document = YamlDocument.from_path(path, "experiment file")
    check = _Checker(document)
    raw = document.data
    if not isinstance(raw, dict):
        check.add((), raw, "expected a mapping with name, dataset, splits and runs")
        raise DataError(check.problems, heading=f"invalid experiment {path}")
    data = check.mapping(apply_overrides(raw, overrides or []), (), TOP_KEYS, {"name", "dataset", "splits", "runs"})
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        check.add(("name",), name, "expected a name of letters, digits, '-', '_' or '.' (it names the report folder)")
    dataset = data.get("dataset")
    if not isinstance(dataset, str) or not dataset:
        check.add(("dataset",), dataset, "expected a dataset name or folder")
    elif not dataset_exists(dataset, paths):
        check.add(("dataset",), dataset, f"no such dataset: not a folder with dataset.yaml, not under {paths.raw}, "
                                         f"not built in ({', '.join(BUILTIN)}); import or generate it first")
    spec = dataset_spec(dataset, paths) if isinstance(dataset, str) and dataset_exists(dataset, paths) else None
    seeds = check.int_list(data, "seeds", [42])
    ks = check.int_list(data, "k", [10])
    if any(k < 1 for k in ks):
        check.add(("k",), list(ks), "every k must be >= 1")
    metric = data.get("metric", f"ndcg@{ks[0]}")
    base, _, at = str(metric).partition("@")
    if base not in METRICS or (at and (not at.isdigit() or int(at) not in ks)) or (not at and base not in ("mrr", "auc")):
        check.add(("metric",), metric, f"expected one of {', '.join(METRICS)} with @k for a k in {list(ks)} "
                                       "(mrr and auc take no @k)")
    refit = data.get("refit", True)
    if not isinstance(refit, bool):
        check.add(("refit",), refit, "expected true or false")
    bootstrap = check.mapping(data.get("bootstrap", {}) or {}, ("bootstrap",), BOOTSTRAP_KEYS)
    samples, boot_seed = bootstrap.get("samples", 1000), bootstrap.get("seed", 0)
    if not isinstance(samples, int) or isinstance(samples, bool) or samples < 100:
        check.add(("bootstrap", "samples"), samples, "expected an integer >= 100")
    if not isinstance(boot_seed, int) or isinstance(boot_seed, bool) or boot_seed < 0:
        check.add(("bootstrap", "seed"), boot_seed, "expected an integer >= 0")
    if any(seed < 0 for seed in seeds):
        check.add(("seeds",), list(seeds), "seeds must be >= 0")
    splits = _splits(check, data.get("splits"), spec)
    runs = _runs(check, data.get("runs"))
    reference = data.get("reference")
    if reference is not None and (not isinstance(reference, str) or reference not in runs):
        check.add(("reference",), reference, f"not a run of this experiment; runs: {', '.join(runs) or 'none'}")
    notebooks = _notebooks(check, data.get("notebooks", []), paths)
    if check.problems:
        raise DataError(check.problems, heading=f"invalid experiment {path}")
    return Experiment(
        name=name, title=str(data.get("title", name)), dataset=dataset, seeds=seeds, k=ks, metric=str(metric),
        reference=reference, refit=refit, bootstrap_samples=samples, bootstrap_seed=boot_seed, splits=splits,
        runs=runs, notebooks=notebooks, source=str(path), raw=data,
    )


def _splits(check: _Checker, data: Any, spec: DatasetSpec | None) -> dict[str, SplitConfig]:
    allowed = {f.name for f in fields(SplitConfig)}
    out = {}
    for name, config in check.mapping(data, ("splits",), set(data) if isinstance(data, dict) else set()).items():
        where = ("splits", str(name))
        config = check.mapping(config, where, allowed - {"seed"}, {"kind"})
        if not config:
            continue
        try:
            split = SplitConfig(**config)
        except (KdqError, TypeError) as exc:
            check.add(where, config.get("kind"), str(exc))
            continue
        if spec is not None and split.predefined and split.predefined not in spec.predefined_splits:
            check.add((*where, "predefined"), split.predefined,
                      f"the dataset has no such split; it has: {', '.join(spec.predefined_splits) or 'none'}")
        unknown = set(split.positive_events or ()) - set(spec.interactions.event_weights if spec else ())
        if spec is not None and unknown:
            check.add((*where, "positive_events"), sorted(unknown),
                      f"not event types of the dataset; it has: {', '.join(spec.interactions.event_weights)}")
        out[str(name)] = split
    if isinstance(data, dict) and not data:
        check.add(("splits",), None, "expected at least one split")
    return out


def _runs(check: _Checker, data: Any) -> dict[str, tuple[str, dict[str, Any], str]]:
    out: dict[str, tuple[str, dict[str, Any], str]] = {}
    runs = check.mapping(data, ("runs",), set(data) if isinstance(data, dict) else set())
    if isinstance(data, dict) and not data:
        check.add(("runs",), None, "expected at least one run")
    for name, run in runs.items():
        where = ("runs", str(name))
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.]*", str(name)):
            check.add(where, name, "run names use letters, digits, '_' and '.' ('-' separates grid values)")
            continue
        run = check.mapping(run, where, RUN_KEYS, {"model"})
        if not run:
            continue
        model = run.get("model")
        if not isinstance(model, str) or model not in MODELS:
            check.add((*where, "model"), model, f"unknown model; allowed: {', '.join(MODELS)}")
            continue
        params = run.get("params") or {}
        grid = run.get("grid") or {}
        if not isinstance(params, dict):
            check.add((*where, "params"), params, "expected a mapping of parameters")
            continue
        if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
            check.add((*where, "grid"), grid, "expected a mapping parameter: [value, value, ...]")
            continue
        allowed = model_parameters(model)
        for key in [*params, *grid]:
            if key not in allowed:
                check.add((*where, "params" if key in params else "grid", str(key)), key,
                          f"unknown parameter for model '{model}'; allowed: {', '.join(allowed) or 'none'}")
        if any(key not in allowed for key in [*params, *grid]):
            continue
        for expanded, values in expand_grid(str(name), params, grid).items():
            try:
                make_model(model, values)
            except (KdqError, TypeError, ValueError) as exc:
                check.add(where, _value_text(values), f"bad parameter value: {exc}")
                break
            out[expanded] = (model, values, str(run.get("label", expanded)))
    return out


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
        out.append(NotebookSpec(str(entry["notebook"]), dict(parameters)))
    return tuple(out)
