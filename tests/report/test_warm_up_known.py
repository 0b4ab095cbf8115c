"""Known answer for the warm-up curve: the cross-over comes later (or never) when the profile carries the signal.

Two small catalogs with planted effects: ``hidden_taste=0`` (behaviour follows the profile alone) and every
profile column inert (shuffled across users: history carries all the signal). Each runs LightFM ids (role ids)
and the LightFM hybrid (role profile) on a warm-up curve through the package (split, run, records, comparison,
per-user tables), as the runner would.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kdq_lab.data.catalog import generate_catalog
from kdq_lab.data.plants import PROFILE_COLUMNS, Plant
from kdq_lab.data.splits import SplitConfig, expand_split
from kdq_lab.data.store import load_split, prepare
from kdq_lab.models.registry import IDS, PROFILE, run_role
from kdq_lab.report.comparison import RunRecord, comparison_table
from kdq_lab.report.findings import load_per_user
from kdq_lab.report.warm_up import Curve, cross_over_table, warm_up_curves
from kdq_lab.runs.records import ExperimentInfo
from kdq_lab.runs.results import read_results
from kdq_lab.runs.run import RunConfig, run, save_run

RUNS = {
    "ids": ("lightfm", {"features": "ids", "epochs": 30, "patience": 3}),
    "hybrid": ("lightfm", {"features": "both", "identity": True, "normalize": "l1", "epochs": 30, "patience": 3}),
}
SHOTS = [0, 1, 3, 6]


def warm_up_curve(root: Path, plant: Plant) -> Curve:
    catalog = generate_catalog(root / "catalog", scale="small", seed=7, progress=False, plant=plant)
    splits = expand_split("warm", {"kind": "warm_up", "shots": SHOTS, "test_fraction": 0.3})
    runs, records = [], []
    for name, flat in splits.items():
        data = {1: load_split(prepare(catalog, SplitConfig.from_dict(flat | {"seed": 1}), root / "processed"))}
        for run_name, (model, params) in RUNS.items():
            result = run(RunConfig(run_name, model, params, split=name, bootstrap_samples=200), data)
            folder = save_run(result, root / "report" / "runs" / f"{run_name}__{name}", save_model=False)
            runs.append(
                {
                    "run": run_name,
                    "label": run_name,
                    "model": model,
                    "params": params,
                    "split": name,
                    "seeds": [1],
                    "folder": folder.name,
                }
            )
            records.append(
                RunRecord(run_name, run_name, model, name, folder, result.summary, None, read_results(folder))
            )
    info = ExperimentInfo(
        "k", "k", "d", [10], "ndcg@10", None, [1], True, "seen", {"samples": 200, "seed": 0}, splits, runs
    )
    roles = {name: run_role(model, params) for name, (model, params) in RUNS.items()}
    assert roles == {"ids": IDS, "hybrid": PROFILE}
    [curve] = warm_up_curves(
        info, comparison_table(info, records), roles, load_per_user(root / "report", info, "ndcg@10")
    )
    return curve


@pytest.mark.slow
def test_the_cross_over_comes_later_when_the_profile_carries_the_signal(tmp_path):
    profile = warm_up_curve(tmp_path / "profile", Plant(hidden_taste=0.0))
    history = warm_up_curve(tmp_path / "history", Plant(inert_fields=PROFILE_COLUMNS))
    assert history.cross_over is not None
    assert profile.cross_over is None or profile.cross_over > history.cross_over
    # with the profile carrying everything, the hybrid is significantly better for a user who revealed nothing
    first = cross_over_table([profile]).iloc[0]
    assert first["shots"] == 0 and first["ids_significantly_worse"]
