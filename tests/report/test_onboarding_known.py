"""Known answer: on a catalog where one profile field has no effect by construction (a planted inert field), the
onboarding study finds it not significant, and a field that drives behaviour significant."""

from __future__ import annotations

import pytest

from kdq_lab.data.catalog import generate_catalog
from kdq_lab.data.plants import Plant
from kdq_lab.data.splits import SplitConfig
from kdq_lab.data.store import load_split, prepare
from kdq_lab.report.onboarding import HELPS, NOT_SIGNIFICANT, by_seed, field_effects, importance_pairs
from kdq_lab.runs.run import RunConfig, run

FIELDS = ["occupations", "interests", "goals", "coding_experience", "age_band", "region"]
HYBRID = {"features": "both", "epochs": 40, "patience": 5}


def study(tmp_path, inert: str, params: dict | None = None, fields: list[str] = FIELDS):
    folder = generate_catalog(
        tmp_path / "kdq", scale="small", seed=3, progress=False, plant=Plant(inert_fields=(inert,))
    )
    config = SplitConfig.from_dict({"kind": "cold_users", "test_fraction": 0.2, "validation_fraction": 0.1, "seed": 42})
    split = load_split(prepare(folder, config, tmp_path / "processed"))
    base = RunConfig(
        "hybrid",
        "lightfm",
        {**HYBRID, **(params or {})},
        ks=(10,),
        bootstrap_samples=100,
        importance={"fields": fields, "repeats": 20},
    )
    return split, run(base, {42: split})


@pytest.mark.slow
@pytest.mark.parametrize("inert, driver", [("region", "goals"), ("occupations", "goals"), ("occupations", "interests")])
def test_permutation_importance_finds_the_inert_field_not_significant(tmp_path, inert, driver):
    _, result = study(tmp_path, inert)
    table = field_effects(importance_pairs(result.importance()), n_boot=1000).set_index("field")
    assert table.loc[inert, "verdict"] == NOT_SIGNIFICANT, table
    assert table.loc[inert, "lo"] <= 0 <= table.loc[inert, "hi"], "its interval includes 0"
    assert table.loc[driver, "verdict"] == HELPS, table


@pytest.mark.slow
def test_retrained_without_the_inert_field_the_model_loses_nothing_and_without_a_driver_it_does(tmp_path):
    """An inert field cannot help by construction; carrying it may cost (its embeddings are noise, and with l1 rows
    it dilutes the fields that matter): on this catalog the model is better without it. Goals drive behaviour."""
    split, result = study(tmp_path, "region", fields=["region", "goals"])
    pairs = {}
    for field in ("region", "goals"):
        columns = [c for c in FIELDS if c != field]
        without = run(
            RunConfig(
                f"hybrid-drop={field}", "lightfm", {**HYBRID, "user_columns": columns}, ks=(10,), bootstrap_samples=100
            ),
            {42: split},
        )
        pairs[field] = (by_seed(result.per_user(), "ndcg@10"), by_seed(without.per_user(), "ndcg@10"))
    table = field_effects(pairs).set_index("field")
    assert table.loc["region", "verdict"] != HELPS, table
    assert table.loc["goals", "verdict"] == HELPS, table
