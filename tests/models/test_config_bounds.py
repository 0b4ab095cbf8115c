"""Every numeric parameter of every registered model is bounded: huge, negative, NaN and infinite values are refused.

Parametrised over the registry and each configuration's fields, so a new model (or a new numeric
field) is covered by registering it.
"""

from __future__ import annotations

import math
from dataclasses import fields

import pytest

from kdq_lab.errors import KdqError
from kdq_lab.limits import MAX_SEED
from kdq_lab.models import REGISTRY, model_spec

#: (kind, field) pairs whose negative values are meaningful; none today.
NEGATIVE_ALLOWED: set[tuple[str, str]] = set()


def numeric_fields(kind: str) -> list[str]:
    """Fields annotated ``int``, ``float`` or an optional one of them."""
    out = []
    for f in fields(model_spec(kind).config):
        types = {part.strip() for part in str(f.type).split("|")}
        if types & {"int", "float"} and types <= {"int", "float", "None"}:
            out.append(f.name)
    return out


CASES = [(kind, name) for kind in sorted(REGISTRY) for name in numeric_fields(kind)]


def test_the_registry_has_numeric_fields_to_check():
    names = {f"{kind}.{name}" for kind, name in CASES}
    assert {"lightfm.no_components", "lightfm.learning_rate", "ease.max_items", "itemknn.shrink"} <= names
    assert {"popularity.window_days", "random.seed", "content.history_weight"} <= names


@pytest.mark.parametrize("kind, name", CASES, ids=[f"{k}.{n}" for k, n in CASES])
@pytest.mark.parametrize("value", [10**29, math.nan, math.inf, -math.inf, -1], ids=["1e29", "nan", "inf", "-inf", "-1"])
def test_out_of_range_values_are_refused_naming_the_field(kind, name, value):
    if value == -1 and (kind, name) in NEGATIVE_ALLOWED:
        pytest.skip("negative values are meaningful here")
    spec = model_spec(kind)
    with pytest.raises(KdqError) as caught:
        spec.make({name: value})
    assert f"{kind} {name} must be" in str(caught.value)


@pytest.mark.parametrize("kind", [k for k in sorted(REGISTRY) if model_spec(k).seed_parameter])
def test_seeds_take_32_bits(kind):
    spec = model_spec(kind)
    spec.make({spec.seed_parameter: MAX_SEED})  # numpy's RandomState (LightFM, Optuna) takes up to here
    with pytest.raises(KdqError, match="at most 4,294,967,295"):
        spec.make({spec.seed_parameter: MAX_SEED + 1})


@pytest.mark.parametrize(
    "params, fragment",
    [
        ({"no_components": 10**9}, "no_components must be an integer >= 1 (at most 1,024)"),
        ({"epochs": 10_001}, "epochs must be an integer >= 1 (at most 10,000)"),
        ({"max_sampled": 1001}, "max_sampled must be an integer >= 1 (at most 1,000)"),
        ({"num_threads": 257}, "num_threads must be an integer >= 1 (at most 256)"),
        ({"validation_users": 10**8}, "validation_users must be an integer >= 1 or null (at most 10,000,000)"),
        ({"patience": 10**5}, "patience must be an integer >= 1 or null (at most 10,000)"),
    ],
)
def test_lightfm_bounds_name_the_limit(params, fragment):
    model_spec("lightfm").make({"no_components": 1024, "epochs": 10_000, "max_sampled": 1000, "num_threads": 256})
    with pytest.raises(KdqError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        model_spec("lightfm").make(params)


@pytest.mark.parametrize(
    "kind, params",
    [
        ("ease", {"max_items": 50_001}),
        ("ease", {"l2": 1e13}),
        ("itemknn", {"neighbors": 100_001}),
        ("popularity", {"window_days": 36_501}),
    ],
)
def test_baseline_bounds(kind, params):
    with pytest.raises(KdqError, match=f"{kind} {next(iter(params))} must be"):
        model_spec(kind).make(params)
