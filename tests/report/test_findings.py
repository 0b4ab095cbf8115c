"""Findings computed from hand-made tables: best runs, paired tests with Holm, cold start, caveats, escaping."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from kdq_lab.evaluation import holm
from kdq_lab.evaluation.resolution import minimum_detectable_effect
from kdq_lab.models.registry import CEILING, IDS, OTHER, PROFILE, run_role
from kdq_lab.report.findings import compute_findings, write_findings
from kdq_lab.report.findings_html import findings_html
from kdq_lab.runs.records import ExperimentInfo

METRIC = "ndcg@10"
RUNS = {  # run -> (model, params, label)
    "pop": ("popularity", {}, "Popularity"),
    "ids": ("lightfm", {"features": "ids"}, "LightFM ids"),
    "knn": ("itemknn", {}, "ItemKNN"),
    "hyb": ("lightfm", {"features": "both"}, "LightFM hybrid <b>"),
    "oracle": ("oracle", {}, "oracle"),
}
# per split: which users are new, and each run's mean ndcg on them (noise added per user)
MEANS = {
    "cold": {"pop": 0.10, "ids": 0.09, "knn": 0.10, "hyb": 0.30, "oracle": 0.50},
    "warm": {"pop": 0.05, "ids": 0.20, "knn": 0.15, "hyb": 0.12, "oracle": 0.40},
}


def make_info(seeds: list[int], runs: dict = RUNS) -> ExperimentInfo:
    return ExperimentInfo(
        name="t",
        title="질문 <i>?</i>",
        dataset="d",
        k=[10],
        metric=METRIC,
        reference="pop",
        seeds=seeds,
        refit=True,
        exclude="seen",
        bootstrap={"samples": 200, "seed": 0},
        splits={"cold": {}, "warm": {}},
        runs=[
            {"run": r, "label": lab, "model": m, "params": p, "split": s, "seeds": seeds, "folder": f"{r}__{s}"}
            for r, (m, p, lab) in runs.items()
            for s in ("cold", "warm")
        ],
    )


def make_tables(
    seeds: list[int], means: dict = MEANS, n_users: int = 300, noise: float = 0.05, ties: dict | None = None
):
    """Per-user tables and the comparison rows they imply (segments all / new / returning)."""
    rng = np.random.default_rng(0)
    per_user, rows = {}, []
    for split, values in means.items():
        returning = "new" if split == "cold" else "returning"
        base = rng.random(n_users) * 0.1
        for run, mean in values.items():
            frames = [
                pd.DataFrame(
                    {
                        "user": np.arange(n_users),
                        "seed": seed,
                        "returning": returning,
                        METRIC: np.clip(base + mean - 0.05 + rng.normal(0, noise, n_users), 0, 1),
                    }
                )
                for seed in seeds
            ]
            table = pd.concat(frames, ignore_index=True)
            per_user[(run, split)] = table
            value = table[METRIC].mean()
            spread = 2 * table[METRIC].std() / np.sqrt(len(table))
            seed_name = str(seeds[0]) if len(seeds) == 1 else "mean"
            for segment in ("all", returning):
                rows.append(
                    {
                        "run": run,
                        "label": RUNS[run][2],
                        "model": RUNS[run][0],
                        "split": split,
                        "seed": seed_name,
                        "segment": segment,
                        "status": "ok",
                        "n_users": n_users,
                        METRIC: value,
                        f"{METRIC}_lo": value - spread,
                        f"{METRIC}_hi": value + spread,
                        "ties@10": (ties or {}).get((run, split), 0) if segment == "all" else np.nan,
                    }
                )
    return per_user, pd.DataFrame(rows)


@pytest.fixture(scope="module")
def findings():
    per_user, comparison = make_tables([1, 2])
    return compute_findings(make_info([1, 2]), comparison, per_user)


def test_roles_follow_what_a_run_learns_from():
    assert [run_role(m, p) for m, p, _ in RUNS.values()] == [OTHER, IDS, IDS, PROFILE, CEILING]
    assert run_role("lightfm", {"features": "items"}) == OTHER
    assert run_role("no-such-kind", {}) == OTHER


def test_best_run_per_split_never_the_ceiling(findings):
    best = {s.split: s.best.run for s in findings.splits}
    assert best == {"cold": "hyb", "warm": "ids"}
    cold = findings.splits[0]
    assert cold.best.lo < cold.best.value < cold.best.hi
    assert cold.runner_up is not None and cold.runner_up.run in ("pop", "knn")


def test_best_is_tested_against_reference_and_best_ids_only_run(findings):
    cold, warm = findings.splits
    assert [(t.against, t.other.run) for t in cold.tests] == [("reference", "pop"), ("ids", "knn")]
    assert all(t.significant and t.diff > 0.15 for t in cold.tests)
    # the best run is itself ids-only: it is tested against the next best ids-only run
    assert warm.best_role == IDS and [(t.against, t.other.run) for t in warm.tests] == [
        ("reference", "pop"),
        ("ids", "knn"),
    ]
    assert "다음 ID 전용 모델" in findings_html(findings) and "the next best ids-only run" in findings_html(findings)


def test_holm_runs_over_every_test_of_the_findings(findings):
    tests = findings.tests
    assert len(tests) == 6  # 2 per split, new users, returning users
    assert [t.p_holm for t in tests] == pytest.approx(list(holm([t.p for t in tests])))
    assert all(t.p_holm >= t.p for t in tests)


def test_cold_start_recovery_and_cost(findings):
    new, cost = findings.new_users, findings.returning_users
    assert new is not None and cost is not None
    assert new.run.run == "hyb" and new.run.segment == "new" and new.other.run in ("pop", "knn")
    assert new.diff == pytest.approx(0.2, abs=0.02) and new.significant
    assert findings.new_ceiling is not None and findings.new_ceiling.run == "oracle"
    # the same profile run on returning users, against the best run without profile features there
    assert cost.run.run == "hyb" and cost.run.split == "warm" and cost.other.run == "ids"
    assert cost.diff == pytest.approx(-0.08, abs=0.02) and cost.significant
    text = findings_html(findings)
    assert "비용" in text and "a cost" in text and "significantly worse" in text
    share = (new.run.value - new.other.value) / (findings.new_ceiling.value - new.other.value)
    assert f"{share:.0%}" in text


NEAR = {"cold": {"pop": 0.10, "hyb": 0.1002}, "warm": {"pop": 0.10, "hyb": 0.1001}}  # a planted non-difference


def _near(sesoi: dict[str, float] | None = None, noise: float = 0.05):
    per_user, comparison = make_tables([1, 2], NEAR, noise=noise)
    info = replace(make_info([1, 2], {r: RUNS[r] for r in ("pop", "hyb")}), sesoi=sesoi or {})
    return compute_findings(info, comparison, per_user)


def test_a_non_significant_difference_is_inconclusive_with_its_mde():
    found = _near()
    assert not any(t.significant for t in found.tests) and all(t.verdict == "inconclusive" for t in found.tests)
    text = findings_html(found)
    assert "결론 없음" in text and "inconclusive" in text and "no difference" not in text
    assert "no significant difference" not in text and "유의한 차이 없음" not in text
    m = len(found.tests)
    assert m == 3, "cold against the reference, new users, returning users (on warm, the reference is best)"
    for t in found.tests:
        assert f"could detect differences of {t.mde:.4f} or more" in text
        assert t.mde == pytest.approx(float(minimum_detectable_effect(t.sd, t.n_users, 0.05 / m)))
    assert any(c.kind == "overlap" for c in found.caveats), "the runner-up's interval overlaps the best's"


@pytest.mark.parametrize(("sesoi", "verdict"), [(0.02, "equivalent"), (0.001, "inconclusive")])
def test_with_a_sesoi_a_planted_non_difference_is_equivalent_or_inconclusive(sesoi, verdict):
    found = _near({METRIC: sesoi, "auc": 0.5})
    assert {t.verdict for t in found.tests} == {verdict} and found.sesoi == sesoi
    text = findings_html(found)
    if verdict == "equivalent":  # the band is ten standard errors wide
        assert text.count(f"equivalent within ±{sesoi:.4f}") == len(found.tests)
    else:  # a band narrower than the test set can resolve
        assert all(t.mde > sesoi for t in found.tests) and "equivalent within" not in text
    assert f"smallest effect of interest {sesoi:.4f}" in text and "no difference" not in text


def test_a_planted_difference_is_different_even_with_a_sesoi(findings):
    per_user, comparison = make_tables([1, 2])
    found = compute_findings(replace(make_info([1, 2]), sesoi={METRIC: 0.5}), comparison, per_user)
    cold = found.splits[0]
    assert all(t.verdict == "different" for t in cold.tests), "significant comes first"


def test_findings_numbers_equal_findings_csv(findings, tmp_path):
    table = write_findings(tmp_path, findings)
    written = pd.read_csv(tmp_path / "findings.csv")
    assert len(written) == len(findings.tests) == len(table)
    text = findings_html(findings)
    for row in written.itertuples():
        assert f"{row.diff:+.4f} [{row.lo:+.4f}, {row.hi:+.4f}]" in text
        assert f"minimum detectable effect {row.mde:.4f}" in text
    assert written["verdict"].tolist() == [t.verdict for t in findings.tests]


def test_caveats_ties_single_seed_failed(findings):
    assert not [c for c in findings.caveats if c.kind in ("single_seed", "failed", "ties")]
    per_user, comparison = make_tables([1], ties={("knn", "cold"): 7})
    failed = {"run": "hyb", "label": "LightFM hybrid <b>", "split": "warm", "seed": "all", "segment": "all"}
    comparison = pd.concat([comparison, pd.DataFrame([failed | {"status": "failed", "n_users": 0}])])
    del per_user[("hyb", "warm")]
    comparison = comparison[
        ~((comparison["run"] == "hyb") & (comparison["split"] == "warm") & (comparison["status"] == "ok"))
    ]
    found = compute_findings(make_info([1]), comparison, per_user)
    kinds = {c.kind: c for c in found.caveats}
    assert kinds["ties"].split == "cold" and kinds["ties"].runs == (("ItemKNN", 7),)
    assert "single_seed" in kinds
    assert kinds["failed"].runs[0][0] == "LightFM hybrid <b> · warm"
    assert found.returning_users is None, "the profile run failed where the returning users are"
    text = findings_html(found)
    assert "시드가 하나뿐" in text and "실패한 실행" in text and "ItemKNN 7" in text


def test_user_strings_are_escaped(findings):
    text = findings_html(findings)
    assert "<b>" not in text.replace("<b>cold</b>", "").replace("<b>warm</b>", "").replace(
        "<b>신규 사용자</b>", ""
    ).replace("<b>기존 사용자</b>", "").replace("<b>질문 (question)</b>", "")
    assert "LightFM hybrid &lt;b&gt;" in text and "질문 &lt;i&gt;?&lt;/i&gt;" in text
    assert 'class="kdq-best" data-run="hyb"' in text and text.startswith('<section id="findings"')


def test_runs_equal_on_every_user_are_called_identical():
    per_user, comparison = make_tables([1, 2], NEAR)
    for split in ("cold", "warm"):  # hyb ranks exactly as pop on every user
        per_user[("hyb", split)] = per_user[("pop", split)].copy()
    info = make_info([1, 2], {r: RUNS[r] for r in ("pop", "hyb")})
    found = compute_findings(info, comparison, per_user)
    assert found.tests and all(t.verdict == "identical" for t in found.tests)
    text = findings_html(found)
    assert text.count("identical on every user") == len(found.tests) and "inconclusive" not in text
