"""Value checks shared by every configuration: clear errors that say what was expected."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from kdq_lab.errors import KdqError


def is_int(value: Any) -> bool:
    """An integer, not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """An int or float (numpy ones too), not a bool."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def is_finite(value: Any) -> bool:
    """A number that is neither NaN nor infinite (integers always are)."""
    return is_int(value) or (is_number(value) and math.isfinite(value))


def bound_text(bound: float) -> str:
    """A bound for messages: whole numbers with thousands separators (``4,294,967,295``), others as ``%g``."""
    return f"{int(bound):,}" if float(bound).is_integer() and abs(bound) < 1e15 else f"{bound:g}"


def check_number(
    owner: str,
    name: str,
    value: Any,
    low: float,
    *,
    high: float | None = None,
    integer: bool = False,
    strict: bool = False,
    optional: bool = False,
) -> None:
    """Raise :class:`KdqError` unless ``value`` is a finite number (an integer if asked) in range.

    The range is ``>= low`` (``> low`` if ``strict``) and, given ``high``, ``<= high``; NaN and
    infinities are refused everywhere. ``optional`` also accepts ``None``.
    """
    if optional and value is None:
        return
    ok = (is_int(value) if integer else is_finite(value)) and (
        (value > low if strict else value >= low) and (high is None or value <= high)
    )
    if not ok:
        kind = "an integer" if integer else "a number"
        bound = f"> {bound_text(low)}" if strict else f">= {bound_text(low)}"
        tail = " or null" if optional else ""
        top = "" if high is None else f" (at most {bound_text(high)})"
        raise KdqError(f"{owner} {name} must be {kind} {bound}{tail}{top}, not {value!r}")


def check_choice(owner: str, name: str, value: Any, allowed: tuple[Any, ...]) -> None:
    """Raise :class:`KdqError` unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        shown = ", ".join("null" if a is None else str(a) for a in allowed)
        raise KdqError(f"{owner} {name}={value!r} is not allowed; choose one of {shown}")


def check_bool(owner: str, name: str, value: Any, optional: bool = False) -> None:
    """Raise :class:`KdqError` unless ``value`` is true or false (or ``None`` when ``optional``)."""
    if not (isinstance(value, bool) or (optional and value is None)):
        raise KdqError(f"{owner} {name} must be true or false{' or null' if optional else ''}, not {value!r}")


def value_key(value: Any) -> Any:
    """What a parsed YAML value is, for telling repeats apart: equal numbers are one value, whatever
    their spelling (``1``, ``01``, ``0x1``, ``1.0``), but ``true`` is not the number 1 and ``'1'`` is text."""
    if isinstance(value, (bool, np.bool_)):
        return ("bool", bool(value))
    if is_number(value):
        return ("number", value)
    if isinstance(value, (list, tuple)):
        return ("list", tuple(value_key(v) for v in value))
    if isinstance(value, dict):
        return ("mapping", frozenset((value_key(k), value_key(v)) for k, v in value.items()))
    if isinstance(value, (set, frozenset)):
        return ("set", frozenset(value_key(v) for v in value))
    return (type(value).__name__, value)


def first_repeat(values: list[Any]) -> tuple[int, int] | None:
    """(first position, position of its repeat) of the first value listed twice (see :func:`value_key`), or None."""
    seen: dict[Any, int] = {}
    for position, value in enumerate(values):
        key = value_key(value)
        if key in seen:
            return seen[key], position
        seen[key] = position
    return None
