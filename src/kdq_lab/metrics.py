"""The lab's metric vocabulary: names, ``name@k`` parsing, which metrics are per user, which way is better.

Per-user metrics (one value per test user, averaged with bootstrap intervals):
``precision@k``, ``recall@k``, ``ndcg@k``, ``map@k``, ``hit@k``, ``mrr``, ``auc``.
Aggregate metrics (one value per run, from the top-k lists): ``coverage@k``,
``novelty@k``, ``diversity@k``, ``popularity@k``. The diagnostic ``ties@k`` counts users
whose k-th and (k+1)-th eligible scores tie. The headline k of a k list is 10 when
listed, else the first k.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kdq_lab.errors import KdqError
from kdq_lab.limits import MAX_K

PER_USER_AT_K: tuple[str, ...] = ("precision", "recall", "ndcg", "map", "hit")
PER_USER_PLAIN: tuple[str, ...] = ("mrr", "auc")
AGGREGATE_AT_K: tuple[str, ...] = ("coverage", "novelty", "diversity", "popularity")


@dataclass(frozen=True)
class Metric:
    """A metric name with its cut-off (``None`` for ``mrr`` and ``auc``)."""

    name: str
    k: int | None = None

    def __str__(self) -> str:
        return self.name if self.k is None else f"{self.name}@{self.k}"

    @property
    def per_user(self) -> bool:
        return self.name in PER_USER_AT_K or self.name in PER_USER_PLAIN


def parse_metric(text: object, ks: Sequence[int] | None = None, per_user: bool = True) -> Metric:
    """Parse ``name@k`` (or ``mrr``/``auc``); with ``ks``, k must be one of them. Raises :class:`KdqError`."""
    allowed = PER_USER_AT_K + PER_USER_PLAIN + (() if per_user else AGGREGATE_AT_K)
    shown = ", ".join(f"{m}@k" for m in allowed if m not in PER_USER_PLAIN) + ", mrr, auc"
    if not isinstance(text, str):
        raise KdqError(f"metric {text!r}: expected text like ndcg@10 ({shown})")
    name, at, k = text.partition("@")
    if name not in allowed:
        raise KdqError(f"metric {text!r} is unknown; choose one of {shown}")
    if name in PER_USER_PLAIN:
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
    """Per-user metric columns for a k list, in report order."""
    return [f"{m}@{k}" for k in ks for m in PER_USER_AT_K] + list(PER_USER_PLAIN)


def aggregate_columns(ks: Sequence[int]) -> list[str]:
    """Aggregate (top-list) metric columns for a k list."""
    return [f"{m}@{k}" for k in ks for m in AGGREGATE_AT_K]


def ties_columns(ks: Sequence[int]) -> list[str]:
    """The ``ties@k`` diagnostic columns for a k list."""
    return [f"ties@{k}" for k in ks]
