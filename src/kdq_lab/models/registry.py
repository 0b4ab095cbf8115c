"""Model kinds, registered once each: how experiments name a model, build it, seed it and tune it.

A model module ends with ``register(ModelSpec(...))``; ``kdq_lab.models`` imports every
model module, so the registry is complete once the package is imported. Nothing else
in the lab names a model kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, cast

from kdq_lab.errors import KdqError
from kdq_lab.jsonfile import read_json
from kdq_lab.limits import MAX_MODEL_JSON_BYTES
from kdq_lab.models.base import Composite, Iterative, ModelConfig, Persistable, Scorer, declares

#: What a run learns from; the report's Findings compare runs by it (see ``ModelSpec.role``).
CEILING, PROFILE, IDS, OTHER = "ceiling", "profile", "ids", "other"


@dataclass(frozen=True)
class ModelSpec:
    """Everything the lab needs to know about a model kind.

    Attributes
    ----------
    kind
        The name experiments use (``model: popularity``).
    build
        ``build(config)`` returns an unfitted model.
    config
        The model's frozen configuration dataclass (a :class:`ModelConfig`).
    summary
        One line for tables and the README.
    seed_parameter
        The configuration field an experiment seed sets, or ``None`` for deterministic models.
    metric_parameter
        The field that picks the early-stopping metric (set to the experiment's headline
        metric unless a run chooses), or ``None`` for models without epochs.
    search_space
        Tunable parameters and their default ranges (``search: default``).
    narrow_search
        The model's own rule for dropping default ranges that the run's fixed parameters make
        pointless (e.g. a side's normalisation when that side has no features), or ``None``.
    parts
        The configuration parameters that name other runs of the same experiment whose fitted models
        this (composite) model is built from (see :class:`~kdq_lab.models.base.Composite`); empty for
        a model that trains itself.
    role
        What the model learns from: ``ceiling`` (knows the truth; shown, never a contender),
        ``profile`` (scores users from their profile features, new users included), ``ids``
        (collaborative filtering from interaction ids alone) or ``other``; or a function of the
        configuration when that decides it (LightFM).
    """

    kind: str
    build: Callable[[Any], Scorer]
    config: type[ModelConfig]
    summary: str
    seed_parameter: str | None = None
    metric_parameter: str | None = None
    search_space: dict[str, dict[str, Any]] = field(default_factory=dict)
    narrow_search: Callable[[dict[str, dict[str, Any]], dict[str, Any]], dict[str, dict[str, Any]]] | None = None
    role: str | Callable[[Any], str] = OTHER
    parts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.parts and not self.composite:
            raise ValueError(f"model kind {self.kind!r} names parts but its class is not a Composite")
        if self.composite and not self.parts:
            raise ValueError(f"model kind {self.kind!r} is a Composite but names no parts")

    @property
    def iterative(self) -> bool:
        """Whether the kind trains in iterations with early stopping (answered from its class)."""
        return declares(self.build, Iterative)

    @property
    def persistable(self) -> bool:
        """Whether fitted models of the kind save to and load from npz + json (answered from its class)."""
        return declares(self.build, Persistable)

    @property
    def composite(self) -> bool:
        """Whether the kind is built from other runs' fitted models (answered from its class)."""
        return declares(self.build, Composite)

    def pin_iterations(self, params: dict[str, Any], n: int) -> dict[str, Any]:
        """``params`` that train exactly ``n`` iterations without early stopping (iterative kinds only)."""
        if not self.iterative:
            raise KdqError(f"model {self.kind!r} does not train in iterations")
        return cast(type[Iterative], self.build).pin_iterations(params, n)

    def part_runs(self, params: dict[str, Any]) -> dict[str, Any]:
        """The runs a composite run with ``params`` is built from, by parameter (empty: not a composite)."""
        return {name: params.get(name) for name in self.parts}

    def defaults(self) -> dict[str, Any]:
        """Every parameter with its default value."""
        return self.config().to_dict()

    def make(self, params: dict[str, Any] | None = None) -> Scorer:
        """An unfitted model from ``params`` (checked: unknown names and bad values are clear errors)."""
        return self.build(self.config.from_dict(dict(params or {}), self.kind))

    def resolve(self, params: dict[str, Any], seed: int | None = None, metric: str | None = None) -> dict[str, Any]:
        """``params`` with the experiment's seed and headline metric filled in, unless the run sets them."""
        out = dict(params)
        if seed is not None and self.seed_parameter and self.seed_parameter not in out:
            out[self.seed_parameter] = seed
        if metric is not None and self.metric_parameter and self.metric_parameter not in out:
            out[self.metric_parameter] = metric
        return out

    def default_search(self, fixed: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """The default search space of a run that fixes ``fixed`` itself (those are never searched)."""
        space = {name: dict(span) for name, span in self.search_space.items() if name not in fixed}
        return self.narrow_search(space, fixed) if self.narrow_search else space

    def parameter_names(self) -> list[str]:
        return [f.name for f in fields(self.config)]

    def role_of(self, params: dict[str, Any]) -> str:
        """The role of a run with ``params`` (see ``role``)."""
        if callable(self.role):
            return self.role(self.config.from_dict(dict(params), self.kind))
        return self.role


REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Add a model kind (each kind once)."""
    if spec.kind in REGISTRY:
        raise ValueError(f"model kind {spec.kind!r} is registered twice")
    REGISTRY[spec.kind] = spec
    return spec


def model_spec(kind: Any) -> ModelSpec:
    """The spec of a registered kind; an unknown kind is an error listing the known ones."""
    if not isinstance(kind, str) or kind not in REGISTRY:
        raise KdqError(f"unknown model {kind!r}; choose one of {', '.join(REGISTRY)}")
    return REGISTRY[kind]


def run_role(kind: str, params: dict[str, Any]) -> str:
    """The role of a run of ``kind`` with ``params``; ``other`` for a kind or parameters this lab does not know."""
    try:
        return model_spec(kind).role_of(params)
    except KdqError:
        return OTHER


def make_model(kind: str, params: dict[str, Any] | None = None) -> Scorer:
    """Build a model by kind name; unknown kinds or parameters raise a clear error."""
    return model_spec(kind).make(params)


def load_model(folder: Path) -> Any:
    """Load a saved model of any persistable kind (the kind is read from ``model.json``)."""
    folder = Path(folder)
    try:
        meta = read_json(folder / "model.json", "saved model's model.json", MAX_MODEL_JSON_BYTES)
    except FileNotFoundError:
        raise KdqError(f"{folder}: no model.json; not a saved kdq_lab model") from None
    if not isinstance(meta, dict):
        raise KdqError(f"{folder / 'model.json'}: corrupt (expected a JSON object, found {type(meta).__name__})")
    kind = meta.get("kind")
    spec = model_spec(kind)
    if not spec.persistable:
        raise KdqError(f"{folder}: models of kind {kind!r} cannot be loaded")
    return cast(type[Persistable], spec.build).load(folder)
