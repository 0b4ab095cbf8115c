"""Typed records passed between the steps of an experiment, each with one writer and one reader.

* :class:`SplitRef`: a prepared split the runner hands to notebooks (no notebook re-prepares).
* :class:`RunSummary`: what a finished run reports (``summary.json``).
* :class:`RunStatus`: why a run failed (``status.json``).
* :class:`ExperimentInfo`: what ``04_compare_models`` needs to know (``experiment.json``).

Every record carries ``format``; a reader refuses another format or a missing field with
an error naming the file. Nothing else in the lab reads these files by key.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from kdq_lab.errors import KdqError
from kdq_lab.files import write_json
from kdq_lab.jsonfile import read_json

FORMAT = 1
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
class RunSummary(_Record):
    """A finished run on one split over its seeds.

    ``per_seed`` maps the seed (as text) to that seed's figures: ``split_id``, ``split_folder``, ``params``
    (resolved, with the model seed), ``n_users``, ``n_test_positives``, ``dropped_seen``,
    ``fit_seconds``, ``eval_seconds``, ``best_epoch``, ``metrics`` (segment → metric →
    ``mean``/``lo``/``hi``, and ``n_users``), ``beyond`` (aggregate metrics), ``ties``
    (``ties@k`` → users), ``hits_by_popularity`` and ``n_test_users`` (before any sampling).
    ``pooled`` has the same per-segment metrics averaged over seeds, with ``std`` between seeds.
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
    per_seed: dict[str, dict[str, Any]]
    pooled: dict[str, dict[str, Any]]
    deterministic: bool
    versions: dict[str, str]
    status: str = "ok"
    sample_users: dict[str, int] | None = None  # {n, seed} when only a sample of test users was evaluated

    def seconds(self) -> float:
        """Fit plus evaluation seconds over every seed."""
        return float(sum(s["fit_seconds"] + s["eval_seconds"] for s in self.per_seed.values()))


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
