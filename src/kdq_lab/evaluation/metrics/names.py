"""The lab's metric vocabulary, read from the registry: ``name@k`` parsing, report columns, the headline k.

Per-user metrics (one value per test user, averaged with bootstrap intervals) and list metrics
(``per_list`` and ``aggregate``, from the top-k lists) are whatever is registered in
:mod:`kdq_lab.evaluation.metrics`. The diagnostic ``ties@k`` counts users whose k-th and
(k+1)-th eligible scores tie. The headline k of a k list is 10 when listed, else the first k.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kdq_lab.errors import KdqError
from kdq_lab.evaluation.metrics.registry import metric_specs
from kdq_lab.limits import MAX_K


@dataclass(frozen=True)
class Metric:
    """A metric name with its cut-off (``None`` for a metric without k, e.g. ``mrr`` and ``auc``)."""

    name: str
    k: int | None = None

    def __str__(self) -> str:
        return self.name if self.k is None else f"{self.name}@{self.k}"

    @property
    def per_user(self) -> bool:
        return any(s.name == self.name for s in metric_specs("per_user"))


def parse_metric(text: object, ks: Sequence[int] | None = None, per_user: bool = True) -> Metric:
    """Parse ``name@k`` (or a name without k); with ``ks``, k must be one of them. Raises :class:`KdqError`."""
    specs = {s.name: s for s in metric_specs() if s.kind == "per_user" or not per_user}
    shown = ", ".join(f"{s.name}@k" if s.takes_k else s.name for s in specs.values())
    if not isinstance(text, str):
        raise KdqError(f"metric {text!r}: expected text like ndcg@10 ({shown})")
    name, at, k = text.partition("@")
    if name not in specs:
        raise KdqError(f"metric {text!r} is unknown; choose one of {shown}")
    if not specs[name].takes_k:
        if at:
            raise KdqError(f"metric {text!r}: {name} takes no @k")
        return Metric(name)
    if not (k.isascii() and k.isdigit()) or len(k) > len(str(MAX_K)) or not 1 <= int(k) <= MAX_K:
        raise KdqError(f"metric {text!r}: {name} needs a cut-off from 1 to {MAX_K}, e.g. {name}@10")
    if ks is not None and int(k) not in ks:
        raise KdqError(f"metric {text!r}: k={k} is not in the experiment's k list {list(ks)}")
    return Metric(name, int(k))


def headline_k(ks: Sequence[int]) -> int:
    """The k shown first: 10 when listed, else the first k."""
    return 10 if 10 in ks else next(iter(ks))


def per_user_columns(ks: Sequence[int]) -> list[str]:
    """Per-user metric columns for a k list, in report order: each k's metrics, then those without k."""
    specs = metric_specs("per_user")
    return [f"{s.name}@{k}" for k in ks for s in specs if s.takes_k] + [s.name for s in specs if not s.takes_k]


def aggregate_columns(ks: Sequence[int]) -> list[str]:
    """List-metric columns (``per_list`` and ``aggregate``) for a k list."""
    return [f"{s.name}@{k}" for k in ks for s in metric_specs() if s.kind != "per_user"]


def ties_columns(ks: Sequence[int]) -> list[str]:
    """The ``ties@k`` diagnostic columns for a k list."""
    return [f"ties@{k}" for k in ks]
