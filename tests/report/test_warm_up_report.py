"""The warm-up curve and its cross-over, from hand-made tables with a known answer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kdq_lab.models.registry import run_role
from kdq_lab.report.warm_up import cross_over_table, curve_html, curve_table, curves, warm_up_curves
from kdq_lab.runs.records import ExperimentInfo

METRIC = "ndcg@10"
RUNS = {  # run -> (model, params, label)
    "pop": ("popularity", {}, "Popularity"),
    "ids": ("lightfm", {"features": "ids"}, "LightFM ids"),
    "knn": ("itemknn", {}, "ItemKNN <i>"),
    "hyb": ("lightfm", {"features": "both"}, "LightFM hybrid"),
    "oracle": ("oracle", {}, "oracle"),
}
ROLES = {run: run_role(model, params) for run, (model, params, _) in RUNS.items()}


def warm_split(shots: int, top: int, seed_fraction: float = 0.2) -> dict:
    return {"kind": "warm_up", "shots": shots, "max_shots": top, "test_fraction": seed_fraction}


def make_case(ids_by_n: dict[int, float], profile: float = 0.3, n_users: int = 400, seeds=(1, 2), extra=None):
    """A curve whose best ids-only mean at each n is ``ids_by_n[n]`` (kNN a little below) and profile's constant."""
    top = max(ids_by_n)
    splits = {f"warm-shots={n}": warm_split(n, top) for n in ids_by_n} | (extra or {})
    info = ExperimentInfo(
        name="t",
        title="q",
        dataset="d",
        k=[10],
        metric=METRIC,
        reference="pop",
        seeds=list(seeds),
        refit=True,
        exclude="seen",
        bootstrap={"samples": 200, "seed": 0},
        splits=splits,
        runs=[
            {"run": r, "label": lab, "model": m, "params": p, "split": s, "seeds": list(seeds), "folder": f"{r}__{s}"}
            for r, (m, p, lab) in RUNS.items()
            for s in splits
        ],
    )
    rng = np.random.default_rng(0)
    per_user, rows = {}, []
    for split in splits:
        n = int(splits[split].get("shots", 0))
        base = rng.random(n_users) * 0.1
        means = {"pop": 0.05, "ids": ids_by_n.get(n, 0.1), "knn": ids_by_n.get(n, 0.1) - 0.02, "hyb": profile}
        means["oracle"] = 0.9
        for run, mean in means.items():
            table = pd.concat(
                [
                    pd.DataFrame(
                        {
                            "user": np.arange(n_users),
                            "seed": seed,
                            "returning": "new",
                            METRIC: np.clip(base + mean - 0.05 + rng.normal(0, 0.05, n_users), 0, 1),
                        }
                    )
                    for seed in seeds
                ],
                ignore_index=True,
            )
            per_user[(run, split)] = table
            value, spread = table[METRIC].mean(), 2 * table[METRIC].std() / np.sqrt(len(table))
            rows.append(
                {
                    "run": run,
                    "label": RUNS[run][2],
                    "model": RUNS[run][0],
                    "split": split,
                    "seed": "mean",
                    "segment": "all",
                    "status": "ok",
                    "n_users": n_users,
                    METRIC: value,
                    f"{METRIC}_lo": value - spread,
                    f"{METRIC}_hi": value + spread,
                }
            )
    return info, pd.DataFrame(rows), per_user


@pytest.mark.parametrize(
    ("ids_by_n", "expected"),
    [
        ({0: 0.05, 1: 0.1, 2: 0.2, 3: 0.3, 5: 0.4}, 3),  # ids reaches the profile's 0.3 at n = 3
        ({0: 0.05, 1: 0.3, 2: 0.35, 5: 0.4}, 1),
        ({0: 0.05, 1: 0.06, 2: 0.08, 5: 0.1}, None),  # never within the tested n
        ({0: 0.32, 3: 0.4}, 0),  # history-free ids already as good: profile carries nothing
    ],
)
def test_the_cross_over_is_the_first_n_where_ids_is_not_significantly_worse(ids_by_n, expected):
    info, comparison, per_user = make_case(ids_by_n)
    [curve] = warm_up_curves(info, comparison, ROLES, per_user)
    assert curve.name == "warm"
    assert curve.cross_over == expected
    assert [p.shots for p in curve.points] == sorted(ids_by_n)
    assert all(p.test is not None and p.test.run.run == "ids" and p.test.other.run == "hyb" for p in curve.points)


def test_tests_are_holm_adjusted_over_the_n_of_a_curve():
    info, comparison, per_user = make_case({0: 0.05, 1: 0.28, 2: 0.29, 4: 0.3})
    [curve] = warm_up_curves(info, comparison, ROLES, per_user)
    from kdq_lab.evaluation import holm

    raw = [p.test.p for p in curve.points if p.test]
    np.testing.assert_allclose([p.test.p_holm for p in curve.points if p.test], holm(raw))
    assert sorted(raw) != sorted(holm(raw).tolist())  # the adjustment changed something


def test_curves_group_splits_that_differ_only_in_shots():
    extra = {
        "other-shots=0": warm_split(0, 2, seed_fraction=0.3),
        "other-shots=2": warm_split(2, 2, seed_fraction=0.3),
        "cold": {"kind": "cold_users"},
    }
    info, comparison, _ = make_case({0: 0.05, 2: 0.4}, extra=extra)
    assert curves(info) == {
        "warm": [(0, "warm-shots=0"), (2, "warm-shots=2")],
        "other": [(0, "other-shots=0"), (2, "other-shots=2")],
    }
    table = curve_table(info, comparison, ROLES)
    assert set(table["split"]) == {"warm-shots=0", "warm-shots=2", "other-shots=0", "other-shots=2"}
    assert (table.loc[table["run"] == "oracle", "role"] == "ceiling").all()
    assert (table["lo"] <= table["mean"]).all() and (table["mean"] <= table["hi"]).all()


def test_the_words_state_the_numbers_of_the_table_and_escape_labels():
    info, comparison, per_user = make_case({0: 0.05, 1: 0.1, 3: 0.31})
    found = warm_up_curves(info, comparison, ROLES, per_user)
    table = cross_over_table(found)
    html = curve_html(found[0], METRIC)
    assert "교차점은 n = 3" in html and "cross-over is n = 3" in html
    for _, row in table.iterrows():
        assert f"{row['diff']:+.4f} [{row['lo']:+.4f}, {row['hi']:+.4f}]" in html


def test_no_cross_over_is_said_in_words_and_labels_are_escaped():
    info, comparison, per_user = make_case({0: 0.05, 2: 0.06})
    comparison.loc[comparison["run"] == "ids", "label"] = "<script>x</script>"
    [curve] = warm_up_curves(info, comparison, ROLES, per_user)
    html = curve_html(curve, METRIC)
    assert "교차점이 없습니다" in html and "no cross-over within the tested n (up to 2)" in html
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_the_figure_draws_every_run_of_the_curve_with_its_interval(matplotlib_defaults):
    import matplotlib.pyplot as plt

    from kdq_lab.report.warm_up import curve_figure

    info, comparison, _ = make_case({0: 0.05, 1: 0.1, 3: 0.31})
    table = curve_table(info, comparison, ROLES)
    fig = curve_figure(table, "warm", METRIC, cross_over=3)
    labels = [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
    assert labels == [RUNS[r][2] for r in RUNS]  # the oracle too, labels as written
    assert len(fig.axes[0].containers) == len(RUNS)  # one errorbar container per run
    plt.close(fig)


@pytest.mark.parametrize("dropped", [[0, 1, 2], list(range(50, 90))])
def test_every_n_is_tested_on_the_users_evaluated_at_every_n(dropped):
    info, comparison, per_user = make_case({0: 0.05, 1: 0.1, 3: 0.31})
    for run in RUNS:  # at n = 3 these users had no target left (e.g. every remaining positive was seen)
        table = per_user[(run, "warm-shots=3")]
        per_user[(run, "warm-shots=3")] = table[~table["user"].isin(dropped)]
    [curve] = warm_up_curves(info, comparison, ROLES, per_user)
    counts = {p.shots: p.test.n_users for p in curve.points if p.test}
    assert counts == {n: 400 - len(dropped) for n in (0, 1, 3)}
