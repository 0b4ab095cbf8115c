"""The warm-up curve: the headline metric against the positives a new user has revealed, and the cross-over.

A curve is the splits of one expanded ``warm_up`` entry (``shots: [0, 1, 2, ...]``): every split of it holds
out the same users (:mod:`kdq_lab.data.splits.warm_up`), so its points differ only in what the users revealed.
At each ``shots`` value n, the best ids-only run (collaborative filtering from ids alone) is tested against the
best profile run (the highest means at that n) with the findings' paired Wilcoxon test over users; the n's of
a curve are one family, adjusted by Holm's method. The **cross-over** is the smallest n at which the best
ids-only run is no longer significantly worse than the best profile run, or ``None`` within the tested n.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from html import escape

import matplotlib.pyplot as plt
import pandas as pd

from kdq_lab.data.splits import SplitConfig
from kdq_lab.models.registry import CEILING, IDS, PROFILE
from kdq_lab.plots import use_lab_style
from kdq_lab.report.findings import PerUser, Test, _paired, _resolve, _score, _scores
from kdq_lab.report.findings_html import _difference, _num, _p, _run, _sentence
from kdq_lab.report.resolution import ALPHA
from kdq_lab.runs.records import ExperimentInfo

KIND = "warm_up"


@dataclass(frozen=True)
class Point:
    """One n of a curve: its split, and the test of the best ids-only run against the best profile run."""

    shots: int
    split: str
    test: Test | None  # None when a role has no finished run there

    @property
    def worse(self) -> bool:
        """Whether the best ids-only run is significantly worse (Holm-adjusted) than the best profile run."""
        return self.test is not None and self.test.significant and self.test.diff < 0


@dataclass(frozen=True)
class Curve:
    """A warm-up curve: its points by ``shots``, and the cross-over (``None``: none within the tested n)."""

    name: str
    points: tuple[Point, ...]

    @property
    def cross_over(self) -> int | None:
        tested = [p for p in self.points if p.test is not None]
        return next((p.shots for p in tested if not p.worse), None)


def curves(info: ExperimentInfo) -> dict[str, list[tuple[int, str]]]:
    """The warm-up curves of an experiment: name → (shots, split), by shots.

    Splits belong to one curve when their settings differ only in ``shots``; a curve is named after its
    first split without the ``-shots=<n>`` its expansion added.
    """
    groups: dict[tuple[tuple[str, str], ...], list[tuple[int, str]]] = {}
    for split, flat in info.splits.items():
        config = SplitConfig.from_dict(flat)
        if config.kind != KIND:
            continue
        shots = int(flat["shots"])
        identity = tuple(sorted((key, repr(value)) for key, value in flat.items() if key not in ("shots", "seed")))
        groups.setdefault(identity, []).append((shots, split))
    named = {}
    for members in groups.values():
        members.sort()
        shots, split = members[0]
        suffix = f"-shots={shots}"
        named[split[: -len(suffix)] if split.endswith(suffix) else split] = members
    return named


def curve_table(info: ExperimentInfo, comparison: pd.DataFrame, roles: Mapping[str, str]) -> pd.DataFrame:
    """Every run's headline metric at every n of every curve: curve, shots, split, run, label, role, mean, lo, hi,
    n_users (all users of the split; the oracle is a row like any other, with role ``ceiling``)."""
    metric = info.metric
    rows = _scores(comparison, metric, "all")
    out = []
    for name, members in curves(info).items():
        for shots, split in members:
            for _, row in rows[rows["split"] == split].iterrows():
                out.append(
                    {
                        "curve": name,
                        "shots": shots,
                        "split": split,
                        "run": row["run"],
                        "label": row["label"],
                        "role": roles.get(row["run"], ""),
                        "mean": float(row[metric]),
                        "lo": float(row[f"{metric}_lo"]),
                        "hi": float(row[f"{metric}_hi"]),
                        "n_users": int(row["n_users"]),
                    }
                )
    columns = ["curve", "shots", "split", "run", "label", "role", "mean", "lo", "hi", "n_users"]
    return pd.DataFrame(out, columns=columns)


def curve_figure(table: pd.DataFrame, curve: str, metric: str, cross_over: int | None = None) -> plt.Figure:
    """The headline metric against n for every run of one curve, with 95% intervals; the oracle dashed."""
    use_lab_style()
    fig, ax = plt.subplots(figsize=(7, 4))
    rows = table[table["curve"] == curve]
    for _name, points in rows.groupby("run", sort=False):
        points = points.sort_values("shots")
        ceiling = points["role"].iloc[0] == CEILING
        err = [points["mean"] - points["lo"], points["hi"] - points["mean"]]
        ax.errorbar(
            points["shots"],
            points["mean"],
            yerr=err,
            label=str(points["label"].iloc[0]),
            capsize=3,
            linestyle="--" if ceiling else "-",
            marker="" if ceiling else "o",
        )
    if cross_over is not None:
        ax.axvline(cross_over, color="grey", linewidth=1, linestyle=":")
    ax.set_xlabel("positives revealed by the new user (n)")
    ax.set_ylabel(metric)
    ax.legend(fontsize="small", loc="best")
    fig.tight_layout()
    return fig


def _common_users(per_user: PerUser, splits: list[str]) -> pd.MultiIndex:
    """(seed, user) pairs evaluated on every split of a curve (under ``exclude: seen`` some have no target at an n)."""
    found = None
    for split in splits:
        evaluated = [pd.MultiIndex.from_frame(t[["seed", "user"]]) for (_, s), t in per_user.items() if s == split]
        for index in evaluated:
            found = index if found is None else found.intersection(index)
    return found if found is not None else pd.MultiIndex.from_arrays([[], []], names=["seed", "user"])


def _only(table: pd.DataFrame, keep: pd.MultiIndex) -> pd.DataFrame:
    return table[pd.MultiIndex.from_frame(table[["seed", "user"]]).isin(keep)]


def warm_up_curves(
    info: ExperimentInfo, comparison: pd.DataFrame, roles: Mapping[str, str], per_user: PerUser
) -> list[Curve]:
    """Each curve with its tests (best ids-only − best profile run at each n) and their Holm adjustment."""
    metric = info.metric
    rows = _scores(comparison, metric, "all")
    found = []
    for name, members in curves(info).items():
        points = []
        splits = [split for _, split in members]
        common = _common_users(per_user, splits)
        tables = {key: _only(table, common) for key, table in per_user.items() if key[1] in splits}
        for shots, split in members:
            here = rows[rows["split"] == split].sort_values(metric, ascending=False, kind="stable")
            role = here["run"].map(roles)
            profile, ids = here[role == PROFILE], here[role == IDS]
            test = None
            if len(profile) and len(ids):
                best_ids, best_profile = _score(ids.iloc[0], metric, "all"), _score(profile.iloc[0], metric, "all")
                if (best_ids.run, split) in tables and (best_profile.run, split) in tables:
                    test = _paired(tables, best_ids, best_profile, metric, "profile", info.bootstrap)
            points.append(Point(shots, split, test))
        # the n's of a curve are one family: Holm-adjusted and resolved (MDE, verdict) together
        resolved = iter(_resolve([p.test for p in points if p.test is not None], info.sesoi.get(metric)))
        points = [replace(p, test=next(resolved)) if p.test else p for p in points]
        found.append(Curve(name, tuple(points)))
    return found


def cross_over_table(found: list[Curve]) -> pd.DataFrame:
    """One row per curve and n: the runs compared, the difference with its interval, p and Holm-adjusted p."""
    rows = [
        {
            "curve": curve.name,
            "shots": p.shots,
            "ids_run": p.test.run.run,
            "profile_run": p.test.other.run,
            "ids": p.test.run.value,
            "profile": p.test.other.value,
            "diff": p.test.diff,
            "lo": p.test.lo,
            "hi": p.test.hi,
            "p": p.test.p,
            "p_holm": p.test.p_holm,
            "n_users": p.test.n_users,
            "ids_significantly_worse": p.worse,
            "cross_over": curve.cross_over,
        }
        for curve in found
        for p in curve.points
        if p.test is not None
    ]
    return pd.DataFrame(rows)


def curve_html(curve: Curve, metric: str) -> str:
    """The cross-over in words (Korean first, English gloss), with the test at each n; user strings escaped."""
    name = escape(curve.name)
    tested = [p for p in curve.points if p.test is not None]
    if not tested:
        return ""
    if curve.cross_over is None:
        top = max(p.shots for p in tested)
        head = _sentence(
            f"<b>{name}</b>: 시험한 n (최대 {top}) 안에서는 교차점이 없습니다. 매 n에서 ID 전용 최고 모델이 "
            f"프로필 최고 모델보다 유의하게 나쁩니다 (Holm 보정, α = {ALPHA}).",
            f"{name}: no cross-over within the tested n (up to {top}): at every n the best ids-only run is "
            f"significantly worse than the best profile run (Holm-adjusted, α = {ALPHA})",
        )
    else:
        n = curve.cross_over
        head = _sentence(
            f"<b>{name}</b>: 교차점은 n = {n}: 새 사용자가 긍정 상호작용 {n}개를 보인 뒤부터 ID 전용 최고 모델이 "
            f"프로필 최고 모델보다 유의하게 나쁘지 않습니다 (Holm 보정, α = {ALPHA}).",
            f"{name}: the cross-over is n = {n}: once a new user has revealed {n} positives, the best ids-only run "
            f"is no longer significantly worse than the best profile run (Holm-adjusted, α = {ALPHA})",
        )
    items = []
    for p in tested:
        assert p.test is not None
        test = p.test
        verdict = (
            ("유의하게 더 나쁨", "significantly worse")
            if p.worse
            else ("유의하게 나쁘지 않음", "not significantly worse")
        )
        if test.significant and test.diff > 0:
            verdict = ("유의하게 더 좋음", "significantly better")
        items.append(
            "<li>"
            + _sentence(
                f"n = {p.shots}: {_run(test.run)} − {_run(test.other)}, {escape(metric)} {_difference(test)}; "
                f"{verdict[0]} (Holm 보정 {_p(test.p_holm)}).",
                f"n = {p.shots}: {escape(test.run.label)} ({_num(test.run.value)}) − {escape(test.other.label)} "
                f"({_num(test.other.value)}): {_difference(test)}, {verdict[1]} (Holm-adjusted {_p(test.p_holm)})",
            )
            + "</li>"
        )
    return f'<div class="kdq-warm-up"><p>{head}</p><ul>{"".join(items)}</ul></div>'
