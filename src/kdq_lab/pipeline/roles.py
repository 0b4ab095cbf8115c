"""What each run learns from, so the report can name the best ids-only run and the runs with profile features.

* ``ceiling``: knows the generator's truth (the oracle); shown, never a contender;
* ``profile``: scores users from their profile features (new users included);
* ``ids``: collaborative filtering from interaction ids alone (user and item identities);
* ``other``: neither (random, popularity, item features with user ids, unknown kinds).

A model configuration that has LightFM's ``side(users)`` says itself which sides use
features; the other kinds are listed here.
"""

from __future__ import annotations

from typing import Any

from kdq_lab.errors import KdqError
from kdq_lab.models import model_spec

CEILING, PROFILE, IDS, OTHER = "ceiling", "profile", "ids", "other"
KIND_ROLES = {"oracle": CEILING, "content": PROFILE, "itemknn": IDS, "ease": IDS}


def run_role(model: str, params: dict[str, Any]) -> str:
    """The role of a run of ``model`` with ``params`` (see the module docstring)."""
    if model in KIND_ROLES:
        return KIND_ROLES[model]
    try:
        config = model_spec(model).config.from_dict(dict(params), model)
    except KdqError:
        return OTHER
    side = getattr(config, "side", None)
    if side is None:
        return OTHER
    users, items = side(True)[0], side(False)[0]
    if users:
        return PROFILE
    return OTHER if items else IDS
