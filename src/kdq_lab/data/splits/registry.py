"""Split kinds, registered once each: how experiments name a split, configure it, cut it and check it.

A split-kind module ends with ``register(SplitKind(...))``; ``kdq_lab.data.splits`` imports every
kind module, so the registry is complete once the package is imported. Nothing else in the lab
names a split kind: the CLI's choices, the experiment checks, the leakage checks and the notebooks'
claims all ask the registry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd
import scipy.sparse as sp

from kdq_lab.checks import check_number, is_finite
from kdq_lab.data.validate import RawDataset
from kdq_lab.errors import KdqError
from kdq_lab.limits import MAX_SEED

if TYPE_CHECKING:
    from kdq_lab.data.schema import DatasetSpec

#: The settings every kind takes (the flat keys of a split besides the kind's own options).
SHARED_KEYS = ("kind", "test_fraction", "validation_fraction", "seed", "positive_events", "positive_min_weight")


class InteractionsPart(Protocol):
    """A part of a prepared split, as far as the kinds' checks read it."""

    @property
    def interactions(self) -> sp.csr_matrix: ...


class PreparedSplit(Protocol):
    """What a kind's leakage counts and claims read of a prepared split.

    :class:`kdq_lab.data.store.PreparedSplit` is one; the kinds name this protocol, not the store, which
    is built on them.
    """

    @property
    def config(self) -> SplitConfig: ...

    @property
    def events(self) -> pd.DataFrame: ...

    @property
    def known(self) -> InteractionsPart: ...

    @property
    def withheld_until_test(self) -> np.ndarray: ...


@dataclass(frozen=True)
class SplitOptions:
    """Base of a kind's own frozen options (none by default), checked in ``__post_init__``.

    A field's ``metadata["help"]`` is its help text (the CLI makes a ``--<name>`` flag of it).
    """

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Holdout:
    """What one cut of a split holds out, as a rule that also places events of any type.

    Positive events decide the cut; :meth:`covers` (the kind's ``covers``) then tells, for any
    event (a view, a low rating), whether it falls in the held-out period: after its user's
    cutoff, on a held-out user or item, on a held-out pair.
    """

    kind: str
    held: np.ndarray  # per positive event: 1 held out, 0 kept, -1 dropped
    cutoff: np.ndarray | None = None  # per user, seconds (temporal kinds)
    entities: np.ndarray | None = None  # held-out users or items (cold kinds), sorted
    pairs: np.ndarray | None = None  # held-out pair keys, sorted
    listed: np.ndarray | None = None  # every pair a split file lists, sorted (others belong to no period)
    validation: Holdout | None = None  # a validation cut the source gives itself (a split file's validation part)

    def covers(self, user: np.ndarray, item: np.ndarray, time: np.ndarray, n_items: int) -> np.ndarray:
        """Whether each event (row positions, time in seconds) lies in the held-out period."""
        return split_kind(self.kind).covers(self, user, item, time, n_items)


@dataclass(frozen=True)
class HoldoutRequest:
    """What a kind's ``hold_out`` is asked: hold out ``fraction`` of ``events`` with ``seed``.

    ``events`` are positive events (``user``, ``item`` row positions, ``time`` in seconds,
    ``weight``); ``carve_validation`` says whether validation will be carved from what is kept.
    """

    events: pd.DataFrame
    fraction: float
    seed: int
    options: SplitOptions
    raw: RawDataset
    carve_validation: bool = False

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.raw.users), len(self.raw.items)


#: A claim a notebook asserts, and whether it holds.
Claims = dict[str, bool]


@dataclass(frozen=True)
class SplitKind:
    """Everything the lab needs to know about a split kind.

    Attributes
    ----------
    name
        The name experiments use (``kind: cold_users``).
    summary
        One line for the CLI's help and the README.
    hold_out
        ``hold_out(request)``: the :class:`Holdout` of the request's events.
    covers
        ``covers(holdout, user, item, time, n_items)``: which events (of any type) lie in the
        held-out period.
    options
        The kind's own frozen options (a :class:`SplitOptions`; none by default).
    withholds
        ``withholds(holdout, raw)``: the items (a mask) a model may not train on before the held-out
        period, or ``None`` when the kind withholds nothing. Items with a known positive are kept anyway.
    validation_kind
        The kind that carves validation from train, with its default options, ``validation_fraction``
        and seed + 1 (``None``: this kind).
    seeded
        Whether the seed decides which events are held out.
    leakage
        ``leakage(split)``: the kind's own leak counts (each must be 0), added to the shared ones.
    dataset_problems
        ``dataset_problems(options, spec)``: ``(key, value, what is wrong)`` for options the dataset
        cannot serve (checked when an experiment is loaded).
    prepared_claims
        ``prepared_claims(split, checks)``: what ``02_prepare_data`` asserts for this kind, from the
        prepared split and its leakage checks.
    evaluated_claims
        ``evaluated_claims(split, per_user)``: what ``03_train_evaluate`` asserts for this kind, from a
        seed's per-user metrics (``n_train``, ``n_test``, ...).
    expand
        ``expand(flat)``: one experiment split written as several (name suffix → flat split; e.g. a list of
        ``warm_up`` shots, one split per value, for a curve across them), or ``None`` when it is one split.
        :func:`expand_split` names them ``<split>-<suffix>``.
    """

    name: str
    summary: str
    hold_out: Callable[[HoldoutRequest], Holdout]
    covers: Callable[[Holdout, np.ndarray, np.ndarray, np.ndarray, int], np.ndarray]
    options: type[SplitOptions] = SplitOptions
    withholds: Callable[[Holdout, RawDataset], np.ndarray | None] | None = None
    validation_kind: str | None = None
    seeded: bool = False
    leakage: Callable[[PreparedSplit], dict[str, float]] | None = None
    dataset_problems: Callable[[Any, DatasetSpec], list[tuple[str, Any, str]]] | None = None
    prepared_claims: Callable[[PreparedSplit, Mapping[str, float]], Claims] | None = None
    evaluated_claims: Callable[[PreparedSplit, pd.DataFrame], Claims] | None = None
    expand: Callable[[dict[str, Any]], dict[str, dict[str, Any]] | None] | None = None

    def option_names(self) -> list[str]:
        return [f.name for f in fields(self.options)]

    def accepted_keys(self) -> list[str]:
        """Every flat key a split of this kind takes: the shared ones, then its options."""
        return [*SHARED_KEYS, *self.option_names()]

    def carver(self) -> SplitKind:
        """The kind that carves validation from this kind's train part."""
        return split_kind(self.validation_kind or self.name)


REGISTRY: dict[str, SplitKind] = {}


def register(kind: SplitKind) -> SplitKind:
    """Add a split kind (each kind once; its option names may not shadow the shared keys)."""
    if kind.name in REGISTRY:
        raise ValueError(f"split kind {kind.name!r} is registered twice")
    if shadowed := set(kind.option_names()) & set(SHARED_KEYS):
        raise ValueError(f"split kind {kind.name!r}: options {sorted(shadowed)} shadow shared keys")
    REGISTRY[kind.name] = kind
    return kind


def split_kind(name: Any) -> SplitKind:
    """The registered kind ``name``; an unknown kind is an error listing the known ones."""
    if not isinstance(name, str) or name not in REGISTRY:
        raise KdqError(f"split kind {name!r} is unknown; choose one of {', '.join(REGISTRY)}")
    return REGISTRY[name]


def split_keys(name: Any) -> list[str]:
    """The flat keys a split of kind ``name`` takes (the shared keys alone for an unknown kind)."""
    return split_kind(name).accepted_keys() if isinstance(name, str) and name in REGISTRY else list(SHARED_KEYS)


@dataclass(frozen=True)
class SplitConfig:
    """How to split a dataset: the shared settings, and the kind's own options.

    Experiments and manifests write it flat (``{kind: global_temporal, test_fraction: 0.25,
    cutoff: ...}``): :meth:`from_dict` routes the kind's keys into ``options`` and refuses keys the
    kind does not take; :meth:`to_dict` writes it flat again.

    Attributes
    ----------
    kind
        A registered split kind (a key of :data:`REGISTRY`).
    test_fraction
        Share of pairs (or users, items) held out for test (kinds with their own rule ignore it).
    validation_fraction
        Share of the remaining train part carved out for validation (0 disables).
    seed
        Seed of every random choice.
    positive_events, positive_min_weight
        Override the dataset's positive rule (e.g. MovieLens ``min_rating``).
    options
        The kind's own options (its ``SplitOptions`` dataclass; the base class: the kind's defaults).
    """

    kind: str = "user_temporal"
    test_fraction: float = 0.2
    validation_fraction: float = 0.1
    seed: int = 42
    positive_events: tuple[str, ...] | None = None
    positive_min_weight: float | None = None
    options: SplitOptions = SplitOptions()  # the base class stands for the kind's defaults

    def __post_init__(self) -> None:
        spec = split_kind(self.kind)
        if not (is_finite(self.test_fraction) and 0 < self.test_fraction < 1):
            raise KdqError(f"test_fraction must be between 0 and 1, not {self.test_fraction!r}")
        if not (is_finite(self.validation_fraction) and 0 <= self.validation_fraction < 1):
            raise KdqError(f"validation_fraction must be in [0, 1), not {self.validation_fraction!r}")
        check_number("split", "seed", self.seed, 0, high=MAX_SEED, integer=True)
        if self.positive_min_weight is not None and not is_finite(self.positive_min_weight):
            raise KdqError(f"positive_min_weight must be a finite number or null, not {self.positive_min_weight!r}")
        if self.positive_events is not None:
            if isinstance(self.positive_events, str) or not all(isinstance(e, str) for e in self.positive_events):
                raise KdqError(f"positive_events must be a list of event types, not {self.positive_events!r}")
            object.__setattr__(self, "positive_events", tuple(self.positive_events))
        if type(self.options) is not spec.options:
            if type(self.options) is not SplitOptions:
                raise KdqError(f"split kind {self.kind!r} takes {spec.options.__name__}, not {self.options!r}")
            object.__setattr__(self, "options", spec.options())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SplitConfig:
        """A split from its flat form; keys the kind does not take are an error naming the ones it does."""
        if not isinstance(data, Mapping):
            raise KdqError(f"a split is a mapping of settings, not {data!r}")
        spec = split_kind(data.get("kind", cls.kind))
        unknown = [str(key) for key in data if key not in spec.accepted_keys()]
        if unknown:
            raise KdqError(
                f"split kind {spec.name!r} takes no {', '.join(repr(k) for k in unknown)}; "
                f"it takes: {', '.join(spec.accepted_keys())}"
            )
        options = spec.options(**{key: value for key, value in data.items() if key in spec.option_names()})
        return cls(**{key: value for key, value in data.items() if key in SHARED_KEYS}, options=options)

    def to_dict(self) -> dict[str, Any]:
        """The flat form: the shared settings, then the kind's options."""
        data = {key: getattr(self, key) for key in SHARED_KEYS}
        if self.positive_events is not None:
            data["positive_events"] = list(self.positive_events)
        return data | self.options.to_dict()

    def dataset_problems(self, spec: DatasetSpec) -> list[tuple[str, Any, str]]:
        """``(key, value, what is wrong)`` for options of this split the dataset cannot serve."""
        check = split_kind(self.kind).dataset_problems
        return check(self.options, spec) if check else []


def expand_split(name: str, flat: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The splits an experiment's split ``name`` stands for (name → flat split): itself, or its kind's expansion.

    An expanded split is named ``<name>-<suffix>`` and keeps its curve's identity in the shared settings: splits
    that differ only in the expanded option belong to one curve.
    """
    kind = REGISTRY.get(flat.get("kind", SplitConfig.kind)) if isinstance(flat.get("kind", ""), str) else None
    expanded = kind.expand(dict(flat)) if kind is not None and kind.expand is not None else None
    if expanded is None:
        return {name: dict(flat)}
    return {f"{name}-{suffix}": config for suffix, config in expanded.items()}


def prepared_claims(split: PreparedSplit, checks: Mapping[str, float]) -> Claims:
    """What ``02_prepare_data`` asserts for the kind of ``split`` (claim → whether it holds)."""
    claims = split_kind(split.config.kind).prepared_claims
    return claims(split, checks) if claims else {}


def evaluated_claims(split: PreparedSplit, per_user: pd.DataFrame) -> Claims:
    """What ``03_train_evaluate`` asserts for the kind of ``split`` from a seed's per-user metrics."""
    claims = split_kind(split.config.kind).evaluated_claims
    return claims(split, per_user) if claims else {}
