"""Experiment YAML → a validated list of runs. Every mistake is caught before a notebook starts.

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
from kdq_lab.data.registry import BUILTIN, dataset_exists
from kdq_lab.data.splits import SplitConfig
from kdq_lab.errors import DataError, KdqError, Problem
from kdq_lab.models import MODELS, make_model, model_parameters
from kdq_lab.yamlfile import YamlDocument

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
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise KdqError(f"--set {item!r}: expected key=value, e.g. --set dataset=kdq-catalog-small")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise KdqError(f"--set {item!r}: the value is not valid YAML") from None
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[parts[-1]] = value
    return data


class _Checker:
    def __init__(self, document: YamlDocument):
        self.document = document
        self.problems: list[Problem] = []

    def add(self, path: tuple[str, ...], value: Any, message: str) -> None:
        self.problems.append(self.document.problem(path, value, message))

    def keys(self, data: Any, path: tuple[str, ...], allowed: set[str], required: set[str] = frozenset()) -> dict:
        if not isinstance(data, dict):
            self.add(path, data, "expected a mapping (key: value lines)")
            return {}
        for key in data:
            if key not in allowed:
                self.add((*path, str(key)), key, f"unknown key; allowed: {', '.join(sorted(allowed))}")
        for key in sorted(required - set(data)):
            self.add(path, None, f"missing required key '{key}'")
        return data

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
    if not path.is_file():
        raise KdqError(f"no experiment file {path}")
    document = YamlDocument(path.read_text(encoding="utf-8"), str(path))
    check = _Checker(document)
    raw = document.data
    if not isinstance(raw, dict):
        check.add((), raw, "expected a mapping with name, dataset, splits and runs")
        raise DataError(check.problems, heading=f"invalid experiment {path}")
    data = check.keys(apply_overrides(raw, overrides or []), (), TOP_KEYS, {"name", "dataset", "splits", "runs"})
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        check.add(("name",), name, "expected a name of letters, digits, '-', '_' or '.' (it names the report folder)")
    dataset = data.get("dataset")
    if not isinstance(dataset, str) or not dataset:
        check.add(("dataset",), dataset, "expected a dataset name or folder")
    elif not dataset_exists(dataset, paths):
        check.add(("dataset",), dataset, f"no such dataset: not a folder with dataset.yaml, not under {paths.raw}, "
                                         f"not built in ({', '.join(BUILTIN)}); import or generate it first")
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
    bootstrap = check.keys(data.get("bootstrap", {}) or {}, ("bootstrap",), BOOTSTRAP_KEYS)
    samples, boot_seed = bootstrap.get("samples", 1000), bootstrap.get("seed", 0)
    if not isinstance(samples, int) or samples < 100:
        check.add(("bootstrap", "samples"), samples, "expected an integer >= 100")
    splits = _splits(check, data.get("splits"))
    runs = _runs(check, data.get("runs"))
    reference = data.get("reference")
    if reference is not None and reference not in runs:
        check.add(("reference",), reference, f"not a run of this experiment; runs: {', '.join(runs) or 'none'}")
    notebooks = _notebooks(check, data.get("notebooks", []), paths)
    if check.problems:
        raise DataError(check.problems, heading=f"invalid experiment {path}")
    return Experiment(
        name=name, title=str(data.get("title", name)), dataset=dataset, seeds=seeds, k=ks, metric=str(metric),
        reference=reference, refit=refit, bootstrap_samples=samples, bootstrap_seed=boot_seed, splits=splits,
        runs=runs, notebooks=notebooks, source=str(path), raw=data,
    )


def _splits(check: _Checker, data: Any) -> dict[str, SplitConfig]:
    allowed = {f.name for f in fields(SplitConfig)}
    out = {}
    for name, config in check.keys(data, ("splits",), set(data) if isinstance(data, dict) else set()).items():
        where = ("splits", str(name))
        config = check.keys(config, where, allowed - {"seed"}, {"kind"})
        if not config:
            continue
        try:
            out[str(name)] = SplitConfig(**config)
        except (KdqError, TypeError) as exc:
            check.add(where, config.get("kind"), str(exc))
    if isinstance(data, dict) and not data:
        check.add(("splits",), None, "expected at least one split")
    return out


def _runs(check: _Checker, data: Any) -> dict[str, tuple[str, dict[str, Any], str]]:
    out: dict[str, tuple[str, dict[str, Any], str]] = {}
    runs = check.keys(data, ("runs",), set(data) if isinstance(data, dict) else set())
    if isinstance(data, dict) and not data:
        check.add(("runs",), None, "expected at least one run")
    for name, run in runs.items():
        where = ("runs", str(name))
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.]*", str(name)):
            check.add(where, name, "run names use letters, digits, '_' and '.' ('-' separates grid values)")
            continue
        run = check.keys(run, where, RUN_KEYS, {"model"})
        if not run:
            continue
        model = run.get("model")
        if model not in MODELS:
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
        entry = check.keys(entry, ("notebooks",), NOTEBOOK_KEYS, {"notebook"})
        if not entry:
            continue
        if entry["notebook"] not in available:
            check.add(("notebooks",), entry["notebook"], f"no such notebook; available: {', '.join(available)}")
            continue
        out.append(NotebookSpec(str(entry["notebook"]), dict(entry.get("parameters") or {})))
    return tuple(out)
