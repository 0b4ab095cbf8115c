"""Every run × split gets its own folder: names with '__' are refused at load, and the plan refuses shared outputs."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from kdq_lab.errors import DataError, KdqError
from kdq_lab.experiment import plan as planning
from kdq_lab.experiment.plan import PlanOptions, plan_experiment
from kdq_lab.experiment.schema import RunDef, load_experiment, run_folder
from kdq_lab.names import name_problem

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "notebooks" / "experiments" / "smoke.yaml"
POP = {"model": "popularity"}
BASE = {"name": "t", "dataset": "kdq-catalog-tiny", "k": [10], "splits": {"cold": {"kind": "cold_users"}}}


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "experiment.yaml"
    plain = json.loads(json.dumps(data))  # no shared objects: YAML would write them as aliases, which the lab refuses
    path.write_text(yaml.safe_dump(plain, sort_keys=False), encoding="utf-8")
    return path


def problems(tmp_path: Path, data: dict, overrides: list[str] | None = None) -> list:
    with pytest.raises(DataError) as caught:
        load_experiment(write(tmp_path, data), overrides)
    return caught.value.problems


SEPARATOR_CASES = [
    # (the experiment's runs and splits, the keys refused)
    ({"runs": {"x": POP, "x__y": POP}, "splits": {"y__z": {"kind": "random"}, "z": {"kind": "random"}}},
     {"runs.x__y", "splits.y__z"}),
    ({"runs": {"x": POP}, "splits": {"s__": {"kind": "random"}}}, {"splits.s__"}),
    ({"runs": {"a__": POP}}, {"runs.a__"}),
    ({"runs": {"h": {"model": "lightfm", "grid": {"loss": ["warp", "a__b"]}}}}, {"runs.h.grid.loss"}),
    ({"runs": {"k": {"model": "popularity", "grid": {"window_days": [7, 30]}, "label": "x"},
               "h": {"model": "lightfm", "grid": {"loss": ["warp"], "user_normalize": ["none", "l1__"]}}}},
     {"runs.h.grid.user_normalize"}),
]  # fmt: skip


@pytest.mark.parametrize("change, refused", SEPARATOR_CASES)
def test_names_with_the_folder_separator_are_refused_with_their_line(tmp_path, change, refused):
    found = [p for p in problems(tmp_path, BASE | change) if "may not contain '__'" in p.message]
    assert {p.column for p in found} == refused, "\n".join(map(str, found))
    assert all(p.line is not None and p.file.endswith("experiment.yaml") for p in found)


def test_an_override_cannot_bring_the_separator_in(tmp_path):
    found = problems(tmp_path, BASE | {"runs": {"x": POP}}, ["runs.x__y.model=popularity"])
    assert [p.column for p in found if "may not contain '__'" in p.message] == ["runs.x__y"]


@pytest.mark.parametrize(
    "grid, key",
    [
        ({"no_components": [8, 16, 8]}, "no_components"),
        ({"loss": ["warp", "bpr"], "user_normalize": ["l1", "l1"]}, "user_normalize"),
        ({"identity": [True, True]}, "identity"),
    ],
)
def test_grid_points_that_expand_to_one_name_are_refused(tmp_path, grid, key):
    found = problems(tmp_path, BASE | {"runs": {"h": {"model": "lightfm", "grid": grid}}})
    matches = [p for p in found if "each value may be listed once" in p.message]  # two runs, one folder
    assert [p.column for p in matches] == [f"runs.h.grid.{key}"] and matches[0].line is not None


def test_accepted_names_map_to_distinct_folders():
    """run_folder is one-to-one on the names an experiment accepts, and the last '__' splits it back."""
    candidates = ["x", "x_", "x_y", "y", "y_z", "z", "a.b", "a=1", "9_", "x_y_"]
    runs = [n for n in candidates if name_problem(n) is None and "__" not in n and "-" not in n]
    splits = [n for n in candidates if name_problem(n) is None and "__" not in n]
    pairs = list(itertools.product(runs, splits))
    folders = {run_folder(run, split): (run, split) for run, split in pairs}
    assert len(folders) == len(pairs) == 100
    assert all(tuple(folder.rsplit("__", 1)) == pair for folder, pair in folders.items())


def _doctored(monkeypatch, change):
    """plan_experiment on the smoke experiment, with ``change`` applied to it after loading (bypassing its checks)."""
    load = planning.load_experiment
    monkeypatch.setattr(planning, "load_experiment", lambda *args, **kwargs: change(load(*args, **kwargs)))


def test_the_plan_refuses_two_runs_in_one_folder_even_past_the_experiment_checks(monkeypatch, tmp_path):
    def colliding(experiment):
        split = experiment.splits["global"]
        run = RunDef("popularity", {}, "popularity")
        return replace(experiment, runs={"x": run, "x__y": run}, splits={"y__z": split, "z": split}, reference=None)

    _doctored(monkeypatch, colliding)
    with pytest.raises(KdqError) as caught:
        plan_experiment(SMOKE, PlanOptions(out=tmp_path / "r"))
    message = str(caught.value)
    assert "runs/x__y__z" in message
    assert "run x on split y__z" in message and "run x__y on split z" in message


def test_the_plan_refuses_folders_that_differ_only_by_case(monkeypatch, tmp_path):
    def cased(experiment):
        run = RunDef("popularity", {}, "popularity")
        return replace(experiment, runs={"Pop": run, "pop": run}, reference=None)

    _doctored(monkeypatch, cased)
    with pytest.raises(KdqError, match=r"run Pop on split global and .* run pop on split global"):
        plan_experiment(SMOKE, PlanOptions(out=tmp_path / "r"))


def test_the_plan_refuses_a_notebook_written_twice(tmp_path):
    twice = yaml.safe_load(SMOKE.read_text(encoding="utf-8"))
    twice["notebooks"] = [{"notebook": "01_explore_catalog"}, {"notebook": "01_explore_catalog"}]
    with pytest.raises(KdqError, match=r"would write 01_explore_catalog\.ipynb: 01_explore_catalog .* and 01_explore"):
        plan_experiment(write(tmp_path, twice), PlanOptions(out=tmp_path / "r"))


def test_a_plan_of_distinct_outputs_passes(tmp_path):
    plan = plan_experiment(SMOKE, PlanOptions(out=tmp_path / "r"))
    outputs = [step.output for step in plan.steps()]
    assert len(outputs) == len(set(outputs)) >= 5
    with pytest.raises(KdqError, match="two steps of the plan would write runs/popularity__global"):
        replace(plan, stages=(*plan.stages, ("again", tuple(s for s in plan.steps() if s.key == "popularity__global"))))
