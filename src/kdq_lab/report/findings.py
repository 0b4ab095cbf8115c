"""The report's findings, computed from the numbers: best run per split, paired tests, cold start, caveats.

Per split, the best run is the one with the highest headline metric (the ceiling aside),
shown with its 95% interval. It is tested against the reference run and against the best
ids-only run (each model kind's ``role``, :mod:`kdq_lab.models.registry`) with a paired Wilcoxon signed-rank test over
users, each user's difference averaged over the seeds that tested them. For the cold
start, the best run with profile features is compared on new users with the best run
without them (and with the ceiling, where there is one), and on returning users with the
best run without them there. Every p-value of the findings is adjusted together by Holm's
method; a run is *significantly better* when its difference is positive and the adjusted
p-value is below :data:`kdq_lab.report.resolution.ALPHA`. Every test also carries its resolution over the same family
(:mod:`kdq_lab.report.resolution`): its minimum detectable effect and, with the experiment's
``sesoi`` for the metric, an equivalence test; its ``verdict`` is different, equivalent or inconclusive.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kdq_lab.evaluation import holm, paired_comparison
from kdq_lab.evaluation.metrics import headline_k
from kdq_lab.files import atomic_file
from kdq_lab.models.registry import CEILING, IDS, PROFILE, run_role
from kdq_lab.report.comparison import summary_rows
from kdq_lab.report.fairness import exposure_sentences, fairness_sentences
from kdq_lab.report.resolution import DIFFERENT, EQUIVALENT, resolve_family
from kdq_lab.runs.records import ExperimentInfo

PerUser = Mapping[tuple[str, str], pd.DataFrame]  # (run, split) -> user, seed, returning, metrics


@dataclass(frozen=True)
class Score:
    """A run's headline metric on one split and segment, with its 95% interval."""

    run: str
    label: str
    split: str
    segment: str
    value: float
    lo: float
    hi: float
    n_users: int


@dataclass(frozen=True)
class Test:
    """A paired test of ``run`` against ``other`` on the same users (``against`` says why this one)."""

    against: str  # reference | ids | new | returning
    run: Score
    other: Score
    diff: float
    lo: float
    hi: float
    p: float
    n_users: int
    sd: float = np.nan  # spread of the users' differences
    p_holm: float = np.nan
    mde: float = np.nan  # minimum detectable effect at 80% power, at the family's Bonferroni level
    sesoi: float = np.nan  # smallest effect of interest (NaN: none declared)
    p_equivalence_holm: float = np.nan
    verdict: str = "inconclusive"  # different | equivalent | inconclusive

    @property
    def significant(self) -> bool:
        """Whether ``run`` is significantly better or worse after Holm's adjustment."""
        return self.verdict == DIFFERENT

    @property
    def equivalent(self) -> bool:
        """Whether the difference is shown to lie within ``±sesoi`` (and is not significant)."""
        return self.verdict == EQUIVALENT

    @property
    def disagrees(self) -> bool:
        """Whether the test's verdict and the interval of the mean difference (excludes 0 or not) differ."""
        return self.significant == bool(self.lo <= 0 <= self.hi)


@dataclass(frozen=True)
class SplitFinding:
    """The best run of a split, its runner-up and its tests."""

    split: str
    best: Score
    best_role: str
    runner_up: Score | None
    tests: tuple[Test, ...]

    @property
    def overlap(self) -> bool:
        """Whether the runner-up's interval overlaps the best run's."""
        return self.runner_up is not None and self.runner_up.hi >= self.best.lo


@dataclass(frozen=True)
class Caveat:
    """Something a reader must know: ``kind`` is ties, single_seed, failed, overlap or disagree."""

    kind: str
    split: str = ""
    runs: tuple[tuple[str, int], ...] = ()  # (label, count)


@dataclass(frozen=True)
class Findings:
    """Everything the Findings section states."""

    question: str
    metric: str
    k: int
    reference: str | None
    splits: tuple[SplitFinding, ...]
    new_users: Test | None
    new_ceiling: Score | None
    returning_users: Test | None
    caveats: tuple[Caveat, ...]
    sesoi: float | None = None  # the experiment's smallest effect of interest in ``metric``
    for_whom: tuple[str, ...] = ()  # groups below the rest, then creator exposure (:mod:`kdq_lab.report.fairness`)

    @property
    def tests(self) -> list[Test]:
        """Every test of the findings: the family Holm's adjustment ran over."""
        found = [t for s in self.splits for t in s.tests]
        return found + [t for t in (self.new_users, self.returning_users) if t is not None]


FINDINGS_COLUMNS = [
    "against",
    "run",
    "other",
    "split",
    "segment",
    "diff",
    "lo",
    "hi",
    "p",
    "p_holm",
    "n_users",
    "sd",
    "mde",
    "sesoi",
    "p_equivalence_holm",
    "verdict",
]


def findings_table(findings: Findings) -> pd.DataFrame:
    """Every test of the findings as one row (``findings.csv``): the numbers its sentences state."""
    rows = [
        {"against": t.against, "run": t.run.run, "other": t.other.run, "split": t.run.split, "segment": t.run.segment}
        | {name: getattr(t, name) for name in FINDINGS_COLUMNS[5:]}
        for t in findings.tests
    ]
    return pd.DataFrame(rows, columns=FINDINGS_COLUMNS)


def write_findings(report_dir: Path, findings: Findings) -> pd.DataFrame:
    """Write :func:`findings_table` as ``findings.csv`` in the report; return it."""
    table = findings_table(findings)
    with atomic_file(Path(report_dir) / "findings.csv") as handle:
        table.to_csv(handle, index=False)
    return table


def load_per_user(report_dir: Path, info: ExperimentInfo, metric: str) -> dict[tuple[str, str], pd.DataFrame]:
    """Per-user ``metric`` of every finished run × split: user, seed, returning and the metric."""
    tables = {}
    for spec in info.runs:
        path = Path(report_dir) / "runs" / spec["folder"] / "metrics.parquet"
        if path.is_file():
            tables[(spec["run"], spec["split"])] = pd.read_parquet(path, columns=["user", "seed", "returning", metric])
    return tables


def _scores(comparison: pd.DataFrame, metric: str, segment: str) -> pd.DataFrame:
    rows = summary_rows(comparison, segment)
    return rows[(rows["status"] == "ok") & rows[metric].notna() & (rows["n_users"] > 0)]


def _score(row: Any, metric: str, segment: str) -> Score:
    return Score(
        row["run"],
        row["label"],
        row["split"],
        segment,
        float(row[metric]),
        float(row[f"{metric}_lo"]),
        float(row[f"{metric}_hi"]),
        int(row["n_users"]),
    )


def _ranked(rows: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Rows best first (a stable sort: equal values keep the experiment's order)."""
    return rows.sort_values(metric, ascending=False, kind="stable")


def _paired(
    per_user: PerUser, run: Score, other: Score, metric: str, against: str, bootstrap: Mapping[str, int]
) -> Test:
    a, b = per_user[(run.run, run.split)], per_user[(other.run, other.split)]
    if run.segment != "all":
        a, b = a[a["returning"] == run.segment], b[b["returning"] == run.segment]
    seeds = sorted(set(a["seed"]) & set(b["seed"]))
    mine = [a[a["seed"] == s].set_index("user")[metric] for s in seeds]
    theirs = [b[b["seed"] == s].set_index("user")[metric] for s in seeds]
    result = paired_comparison(mine, theirs, n_boot=bootstrap["samples"], seed=bootstrap["seed"])
    return Test(
        against,
        run,
        other,
        result["diff"],
        result["lo"],
        result["hi"],
        result["p_wilcoxon"],
        int(result["n_users"]),
        result["sd"],
    )


def _split_finding(
    split: str,
    rows: pd.DataFrame,
    roles: Mapping[str, str],
    reference: str | None,
    per_user: PerUser,
    metric: str,
    bootstrap: Mapping[str, int],
) -> SplitFinding | None:
    contenders = _ranked(rows[(rows["split"] == split) & (rows["run"].map(roles) != CEILING)], metric)
    if contenders.empty:
        return None
    scores = [_score(row, metric, "all") for _, row in contenders.iterrows()]
    best = scores[0]
    others = {"reference": [s for s in scores[1:] if s.run == reference]}
    others["ids"] = [s for s in scores[1:] if roles.get(s.run) == IDS][:1]
    tests = tuple(
        _paired(per_user, best, other[0], metric, against, bootstrap)
        for against, other in others.items()
        if other and (best.run, split) in per_user and (other[0].run, split) in per_user
    )
    return SplitFinding(split, best, roles.get(best.run, ""), scores[1] if len(scores) > 1 else None, tests)


def _busiest_split(rows: pd.DataFrame) -> str | None:
    """The split with the most users in a segment's rows."""
    if rows.empty:
        return None
    return str(rows.groupby("split", sort=False)["n_users"].max().idxmax())


def _cold_start(
    comparison: pd.DataFrame,
    roles: Mapping[str, str],
    per_user: PerUser,
    metric: str,
    bootstrap: Mapping[str, int],
) -> tuple[Test | None, Score | None, Test | None]:
    """Profile features on new users (and the ceiling there), and what the same run costs returning users."""
    new = _scores(comparison, metric, "new")
    split = _busiest_split(new)
    if split is None:
        return None, None, None
    new = _ranked(new[new["split"] == split], metric)
    role = new["run"].map(roles)
    with_profile, without = new[role == PROFILE], new[(role != PROFILE) & (role != CEILING)]
    ceiling = new[role == CEILING]
    if with_profile.empty or without.empty:
        return None, None, None
    chosen = _score(with_profile.iloc[0], metric, "new")
    new_test = _paired(per_user, chosen, _score(without.iloc[0], metric, "new"), metric, "new", bootstrap)
    top = _score(ceiling.iloc[0], metric, "new") if len(ceiling) else None
    returning = _scores(comparison, metric, "returning")
    split = _busiest_split(returning)
    returning = _ranked(returning[returning["split"] == split], metric)
    role = returning["run"].map(roles)
    mine = returning[returning["run"] == chosen.run]
    without = returning[(role != PROFILE) & (role != CEILING)]
    if mine.empty or without.empty:
        return new_test, top, None
    cost = _paired(
        per_user,
        _score(mine.iloc[0], metric, "returning"),
        _score(without.iloc[0], metric, "returning"),
        metric,
        "returning",
        bootstrap,
    )
    return new_test, top, cost


def _caveats(
    comparison: pd.DataFrame, info: ExperimentInfo, k: int, splits: list[SplitFinding], tests: list[Test]
) -> list[Caveat]:
    caveats = []
    rows = summary_rows(comparison, "all")
    ties = f"ties@{k}"
    for split in info.splits:
        part = rows[(rows["split"] == split) & (rows["status"] == "ok")]
        if ties in part:
            tied = part[part[ties].fillna(0) > 0].sort_values(ties, ascending=False, kind="stable")
            if len(tied):
                caveats.append(Caveat("ties", split, tuple(zip(tied["label"], tied[ties].astype(int)))))
    if len(info.seeds) == 1:
        caveats.append(Caveat("single_seed"))
    failed = rows[rows["status"] != "ok"]
    if len(failed):
        listed = tuple((f"{run} · {split}", 0) for run, split in zip(failed["label"], failed["split"]))
        caveats.append(Caveat("failed", runs=listed))
    caveats += [Caveat("overlap", s.split) for s in splits if s.overlap]
    split_of = {"all": "", "new": " (new)", "returning": " (returning)"}
    disagree = tuple(
        (f"{t.run.label} − {t.other.label} · {t.run.split}{split_of[t.run.segment]}", 0) for t in tests if t.disagrees
    )
    if disagree:
        caveats.append(Caveat("disagree", runs=disagree))
    return caveats


def _resolve(family: list[Test], sesoi: float | None) -> list[Test]:
    """The family's tests with Holm-adjusted p-values and their resolution (MDE, equivalence, verdict)."""
    if not family:
        return []
    table = pd.DataFrame(
        {
            "diff": [t.diff for t in family],
            "sd": [t.sd for t in family],
            "n_users": [t.n_users for t in family],
            "p_holm": holm([t.p for t in family]),
        }
    )
    table = pd.concat([table.drop(columns="sd"), resolve_family(table, sesoi)], axis=1)
    return [
        replace(
            t,
            p_holm=float(row["p_holm"]),
            mde=float(row["mde"]),
            sesoi=float(row["sesoi"]),
            p_equivalence_holm=float(row["p_equivalence_holm"]),
            verdict=str(row["verdict"]),
        )
        for t, (_, row) in zip(family, table.iterrows())
    ]


def compute_findings(
    info: ExperimentInfo, comparison: pd.DataFrame, per_user: PerUser, fairness: pd.DataFrame | None = None
) -> Findings:
    """The findings of an experiment from its comparison table and per-user metrics (module docstring).

    ``fairness``: the group table already written as ``fairness.csv`` (:func:`kdq_lab.report.fairness.write_fairness`);
    its sentences and the creator-exposure sentences of ``comparison`` become :attr:`Findings.for_whom`.
    """
    metric = info.metric
    roles = {spec["run"]: run_role(spec["model"], spec["params"]) for spec in info.runs}
    rows = _scores(comparison, metric, "all")
    splits = [
        found
        for split in info.splits
        if (found := _split_finding(split, rows, roles, info.reference, per_user, metric, info.bootstrap)) is not None
    ]
    new_test, ceiling, cost = _cold_start(comparison, roles, per_user, metric, info.bootstrap)
    # one family: every p-value stated in the findings
    family = [t for s in splits for t in s.tests] + [t for t in (new_test, cost) if t is not None]
    resolved = iter(_resolve(family, info.sesoi.get(metric)))
    splits = [replace(s, tests=tuple(next(resolved) for _ in s.tests)) for s in splits]
    new_test = next(resolved) if new_test else None
    cost = next(resolved) if cost else None
    k = headline_k(info.k)
    tests = [t for s in splits for t in s.tests] + [t for t in (new_test, cost) if t is not None]
    return Findings(
        info.title,
        metric,
        k,
        info.reference,
        tuple(splits),
        new_test,
        ceiling,
        cost,
        tuple(_caveats(comparison, info, k, splits, tests)),
        info.sesoi.get(metric),
        tuple(([] if fairness is None else fairness_sentences(fairness, metric)) + exposure_sentences(comparison, k)),
    )
