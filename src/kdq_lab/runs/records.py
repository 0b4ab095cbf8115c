"""Typed records passed between the steps of an experiment, each with one writer and one reader.

* :class:`SplitRef`: a prepared split the runner hands to notebooks (no notebook re-prepares).
* :class:`RunSummary`: what a finished run reports (``summary.json``), with each seed's :class:`SeedFacts`;
  its metric values are the tidy table ``results.parquet`` (:mod:`kdq_lab.runs.results`).
* :class:`RunStatus`: why a run failed (``status.json``).
* :class:`ExperimentInfo`: what ``04_compare_models`` needs to know (``experiment.json``).

Every record carries ``format``; a reader refuses another format or a missing field with
an error naming the file. Nothing else in the lab reads these files by key.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

from kdq_lab.errors import KdqError
from kdq_lab.files import write_json
from kdq_lab.jsonfile import read_json

FORMAT = 2  # 2: a run's per-seed facts are typed records, its metric values in results.parquet
R = TypeVar("R", bound="_Record")


class _Record:
    """Shared JSON reading and writing with validation."""

    def write(self, path: Path) -> Path:
        """Write atomically as deterministic JSON."""
        write_json(Path(path), {"format": FORMAT, **asdict(self)})  # type: ignore[call-overload]
        return Path(path)

    @classmethod
    def read(cls: type[R], path: Path) -> R:
        """Read and check a record written by :meth:`write`."""
        path = Path(path)
        try:
            data = read_json(path, cls.__name__)
        except FileNotFoundError:
            raise KdqError(f"{path}: missing ({cls.__name__})") from None
        return cls.from_dict(data, str(path))

    @classmethod
    def from_dict(cls: type[R], data: Any, source: str = "record") -> R:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise KdqError(f"{source}: {cls.__name__} format {found!r}; this lab reads format {FORMAT}")
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        required = {
            f.name
            for f in fields(cls)  # type: ignore[arg-type]
            if f.default is MISSING and f.default_factory is MISSING
        }
        missing = sorted(required - set(data))
        if missing:
            raise KdqError(f"{source}: {cls.__name__} lacks {', '.join(missing)}")
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class SplitRef(_Record):
    """A prepared split of an experiment: its name, seed, configuration and folder."""

    name: str
    seed: int
    config: dict[str, Any]
    folder: str


@dataclass(frozen=True)
class SeedFacts:
    """What one seed of a run did, besides its metric values (those are in the run's ``results.parquet``).

    Attributes
    ----------
    seed
        The seed (of the split and the model).
    split_id, split_folder
        The prepared split it ran on.
    params
        The model's resolved parameters (with its seed).
    n_users, n_test_users
        Test users evaluated, and test users before any sampling.
    n_test_positives, dropped_seen
        Test positives ranked, and those dropped because the user had already seen the item.
    fit_seconds, eval_seconds
        Wall time of fitting (with refit) and of evaluation.
    best_epoch
        The early-stopping choice of an iterative model (``None`` otherwise).
    validation_share
        Time spent validating for early stopping, as a share of training time (``None``: none).
    ties
        ``ties@k`` → users whose k-th and (k+1)-th eligible scores tie.
    hits_by_popularity
        Item popularity bucket → ``test_items``, ``hits@k``, ``recall@k`` (headline k).
    """

    seed: int
    split_id: str
    split_folder: str
    params: dict[str, Any]
    n_users: int
    n_test_users: int
    n_test_positives: int
    dropped_seen: int
    fit_seconds: float
    eval_seconds: float
    best_epoch: int | None
    validation_share: float | None
    ties: dict[str, int]
    hits_by_popularity: dict[str, dict[str, float]]

    @classmethod
    def from_dict(cls, data: Any, source: str) -> SeedFacts:
        """Read one seed's facts, naming the source and what is missing."""
        if not isinstance(data, dict):
            raise KdqError(f"{source}: a seed's facts must be a mapping, not {type(data).__name__}")
        missing = sorted({f.name for f in fields(cls)} - set(data))
        if missing:
            raise KdqError(f"{source}: seed {data.get('seed', '?')} lacks {', '.join(missing)}")
        return cls(**{f.name: data[f.name] for f in fields(cls)})


@dataclass(frozen=True)
class RunSummary(_Record):
    """A finished run on one split over its seeds: what it was, and each seed's facts (:class:`SeedFacts`).

    Metric values are not here: they are the run's tidy table ``results.parquet``
    (:mod:`kdq_lab.runs.results`). ``segments`` are the declared segment kinds with their columns.
    """

    run: str
    label: str
    model: str
    params: dict[str, Any]
    split: str
    split_config: dict[str, Any]
    seeds: list[int]
    dataset: str
    raw_hashes: dict[str, str]
    k: list[int]
    metric: str
    exclude: str
    refit: bool
    per_seed: tuple[SeedFacts, ...]
    deterministic: bool
    versions: dict[str, str]
    status: str = "ok"
    sample_users: dict[str, int] | None = None  # {n, seed} when only a sample of test users was evaluated
    segments: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Any, source: str = "record") -> RunSummary:
        record = super().from_dict(data, source)
        seeds = record.per_seed
        if not isinstance(seeds, (list, tuple)):
            raise KdqError(f"{source}: per_seed must be a list of seeds' facts, not {type(seeds).__name__}")
        return replace(record, per_seed=tuple(SeedFacts.from_dict(s, f"{source}: per_seed") for s in seeds))

    def seed(self, seed: int | str) -> SeedFacts:
        """One seed's facts (``KeyError`` if the run has no such seed)."""
        for facts in self.per_seed:
            if str(facts.seed) == str(seed):
                return facts
        raise KeyError(seed)

    def seconds(self) -> float:
        """Fit plus evaluation seconds over every seed."""
        return float(sum(s.fit_seconds + s.eval_seconds for s in self.per_seed))


@dataclass(frozen=True)
class RunStatus(_Record):
    """Why a run failed: the error excerpt and its executed notebook (relative to the report)."""

    status: str
    error: str
    notebook: str | None = None


@dataclass(frozen=True)
class ExperimentInfo(_Record):
    """What the comparison step needs to know about an experiment.

    ``runs`` lists every planned run × split: ``run``, ``label``, ``model``, ``params``,
    ``split``, ``seeds`` and ``folder`` (under ``runs/``).
    """

    name: str
    title: str
    dataset: str
    k: list[int]
    metric: str
    reference: str | None
    seeds: list[int]
    refit: bool
    exclude: str
    bootstrap: dict[str, int]
    splits: dict[str, dict[str, Any]]
    runs: list[dict[str, Any]]
    notebooks: list[str] = field(default_factory=list)
    ablation: dict[str, Any] | None = None  # the onboarding study (experiment/ablation.py), when declared
    sample_users: dict[str, int] | None = None
    sesoi: dict[str, float] = field(default_factory=dict)  # metric -> smallest effect of interest
