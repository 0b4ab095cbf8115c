"""Value checks shared by every configuration: clear errors that say what was expected."""

from __future__ import annotations

from typing import Any

import numpy as np

from kdq_lab.errors import KdqError


def is_int(value: Any) -> bool:
    """An integer, not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """An int or float (numpy ones too), not a bool."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def check_number(
    owner: str,
    name: str,
    value: Any,
    low: float,
    *,
    integer: bool = False,
    strict: bool = False,
    optional: bool = False,
) -> None:
    """Raise :class:`KdqError` unless ``value`` is a number (an integer if asked) >= ``low`` (> if ``strict``).

    ``optional`` also accepts ``None``.
    """
    if optional and value is None:
        return
    ok = (is_int(value) if integer else is_number(value)) and (value > low if strict else value >= low)
    if not ok:
        kind = "an integer" if integer else "a number"
        bound = f"> {low:g}" if strict else f">= {low:g}"
        tail = " or null" if optional else ""
        raise KdqError(f"{owner} {name} must be {kind} {bound}{tail}, not {value!r}")


def check_choice(owner: str, name: str, value: Any, allowed: tuple[Any, ...]) -> None:
    """Raise :class:`KdqError` unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        shown = ", ".join("null" if a is None else str(a) for a in allowed)
        raise KdqError(f"{owner} {name}={value!r} is not allowed; choose one of {shown}")


def check_bool(owner: str, name: str, value: Any, optional: bool = False) -> None:
    """Raise :class:`KdqError` unless ``value`` is true or false (or ``None`` when ``optional``)."""
    if not (isinstance(value, bool) or (optional and value is None)):
        raise KdqError(f"{owner} {name} must be true or false{' or null' if optional else ''}, not {value!r}")
