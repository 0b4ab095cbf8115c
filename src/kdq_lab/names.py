"""Names that become path components (datasets, experiments, splits, runs, personas, ``--only``).

One documented pattern, checked when a file is loaded and before anything is written:
ASCII letters, digits, ``_``, ``.``, ``=`` and ``-``; starting with a letter or digit; no
``..``; at most :data:`MAX_LENGTH` characters. Such a name can never leave its folder.
"""

from __future__ import annotations

import re
from typing import Any

from kdq_lab.errors import KdqError

NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.=-]*"
MAX_LENGTH = 120
RULE = (
    f"letters, digits, '_', '.', '=' or '-', starting with a letter or digit, without '..', "
    f"at most {MAX_LENGTH} characters"
)


def name_problem(value: Any) -> str | None:
    """Why ``value`` cannot be used as a path component, or ``None`` if it can."""
    if not isinstance(value, str):
        return f"expected a name ({RULE}), not {type(value).__name__}"
    if not re.fullmatch(NAME_PATTERN, value) or ".." in value or len(value) > MAX_LENGTH:
        return f"not a safe name: use {RULE}"
    return None


def check_name(value: Any, what: str) -> str:
    """Return ``value`` if it is a safe name; raise :class:`KdqError` naming ``what`` otherwise."""
    problem = name_problem(value)
    if problem is not None:
        raise KdqError(f"{what} {value!r}: {problem}")
    return value
