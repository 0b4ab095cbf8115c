"""For whom does a run work: quality per group of people, against the group's own ceiling, and disparity tests.

Groups are the declared segments by user feature (``segments: {by_feature: [...]}``): one group per
value of a column, and for a multi-valued column a user is in every group they list (the groups
overlap; a user is counted once in each group and once in its *rest*, never twice in a mean).
Groups smaller than ``min_users`` are pooled into ``<column>:other`` (each user once).

Per run × split × column, for each group on the headline metric:

* its mean with a bootstrap interval over users;
* its **gap to the rest** (group mean minus the mean of users outside it), with a bootstrap interval
  (users resampled jointly, one set of replicates for every group) and a two-sided permutation test
  (one set of permutations for every group); Holm over the groups of the column;
* its **share of the ceiling**: the run's mean over the oracle's mean on the same users (ratio of
  means, users resampled jointly), where the experiment has a ceiling run.

A group is *flagged* when it is below the rest after Holm (p_holm < alpha and gap < 0).
"""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kdq_lab.data.store import SplitData, load_split
from kdq_lab.evaluation.segments import ALL, SegmentContext, segment_groups
from kdq_lab.evaluation.stats import holm, replicate_means
from kdq_lab.files import atomic_file
from kdq_lab.models.registry import CEILING, run_role
from kdq_lab.report.comparison import RunRecord, summary_rows
from kdq_lab.runs.records import ExperimentInfo
from kdq_lab.runs.results import POOLED

MIN_USERS = 30
ALPHA = 0.05
_PERM_BYTES = 1 << 24  # float keys per chunk of permutations


@dataclass(frozen=True)
class GroupQuality:
    """One group's quality in one run × split (see the module docstring); ``share*`` NaN without a ceiling."""

    column: str
    group: str
    n_users: int
    mean: float
    lo: float
    hi: float
    rest: float
    gap: float
    gap_lo: float
    gap_hi: float
    p_perm: float
    p_holm: float
    share: float
    share_lo: float
    share_hi: float
    pooled: tuple[str, ...] = ()  # groups pooled into this one (``<column>:other``)

    def flagged(self, alpha: float = ALPHA) -> bool:
        """Significantly below the rest of the users after Holm over the column's groups."""
        return bool(self.gap < 0 and self.p_holm < alpha)


def pool_small(
    groups: list[tuple[str, np.ndarray]], column: str, min_users: int = MIN_USERS
) -> list[tuple[str, np.ndarray, tuple[str, ...]]]:
    """The groups of ``column`` (label ``column:value``) with those under ``min_users`` pooled into ``column:other``.

    Count groups (``column:count=n``) are left out; each user is in ``other`` once however many small groups
    they list. Returns (label, rows, pooled labels).
    """
    prefix = f"{column}:"
    mine = [(label, rows) for label, rows in groups if label.startswith(prefix) and ":count=" not in label]
    big = [(label, np.asarray(rows), ()) for label, rows in mine if len(rows) >= min_users]
    small = [(label, np.asarray(rows)) for label, rows in mine if 0 < len(rows) < min_users]
    out: list[tuple[str, np.ndarray, tuple[str, ...]]] = list(big)
    if small:
        rows = np.unique(np.concatenate([r for _, r in small]))
        out.append((f"{column}:other", rows, tuple(label for label, _ in small)))
    return out


def permuted_sums(values: np.ndarray, n_perm: int, seed: int) -> np.ndarray:
    """Prefix sums of ``n_perm`` random permutations of ``values`` (n_perm × n): the sum of a random m-subset is
    column m - 1, so one set of permutations serves every group size."""
    values = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_perm, _PERM_BYTES // (8 * max(len(values), 1))))
    parts = []
    for start in range(0, n_perm, chunk):
        size = min(chunk, n_perm - start)
        parts.append(np.cumsum(rng.permuted(np.broadcast_to(values, (size, len(values))), axis=1), axis=1))
    return np.vstack(parts) if parts else np.zeros((0, len(values)))


def permutation_p(
    values: np.ndarray, inside: np.ndarray, n_perm: int, seed: int, sums: np.ndarray | None = None
) -> float:
    """Two-sided permutation p-value of mean(inside) - mean(outside), group sizes fixed (add-one estimate).

    ``sums``: :func:`permuted_sums` of ``values`` to reuse (its rows are the permutations).
    """
    values = np.asarray(values, dtype=np.float64)
    n, m = len(values), int(inside.sum())
    if m == 0 or m == n:
        return np.nan
    total = values.sum()
    observed = abs(values[inside].mean() - (total - values[inside].sum()) / (n - m))
    sums = permuted_sums(values, n_perm, seed) if sums is None else sums
    picked = sums[:, m - 1]
    diffs = np.abs(picked / m - (total - picked) / (n - m))
    return (int((diffs >= observed - 1e-12).sum()) + 1) / (len(sums) + 1)


def _interval(replicates: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    finite = replicates[np.isfinite(replicates)]
    if not len(finite):
        return np.nan, np.nan
    alpha = (1 - level) / 2
    return float(np.quantile(finite, alpha)), float(np.quantile(finite, 1 - alpha))


def group_quality(
    column: str,
    values: np.ndarray,
    groups: list[tuple[str, np.ndarray]],
    ceiling: np.ndarray | None = None,
    *,
    n_boot: int = 1000,
    n_perm: int = 1000,
    seed: int = 0,
    min_users: int = MIN_USERS,
) -> list[GroupQuality]:
    """Quality of each group of ``column`` (see the module docstring): per-user ``values``, rows of each group.

    ``ceiling`` holds the oracle's value for the same users (same order); NaN values are skipped.
    """
    values = np.asarray(values, dtype=np.float64)
    usable = np.isfinite(values)
    sums = permuted_sums(values[usable], n_perm, seed)  # one set of permutations for every group of the column
    top = np.full(len(values), np.nan) if ceiling is None else np.asarray(ceiling, dtype=np.float64)
    found = []
    for label, members, pooled in pool_small(groups, column, min_users):
        inside = np.zeros(len(values), dtype=bool)
        inside[members] = True
        inside &= usable
        if inside.any() and (usable & ~inside).any():
            found.append((label, inside, pooled))
    # one bootstrap for every group: users resampled jointly; per replicate each group's mean, its rest's mean and
    # its ceiling's mean are NaN-masked columns of the same draws (so gaps and shares are paired within a replicate)
    masked = [
        np.where(m, v, np.nan)
        for _, inside, _ in found
        for m, v in ((inside, values), (usable & ~inside, values), (inside, top))
    ]
    means = replicate_means(np.column_stack(masked), n_boot, seed) if found else np.zeros((n_boot, 0))
    rows: list[dict[str, object]] = []
    for i, (label, inside, pooled) in enumerate(found):
        own, rest, own_top = values[inside], values[usable & ~inside], top[inside]
        own_means, rest_means, top_means = means[:, 3 * i], means[:, 3 * i + 1], means[:, 3 * i + 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            ceiling_mean = float(np.nanmean(own_top)) if np.isfinite(own_top).any() else np.nan
            share = own.mean() / ceiling_mean if ceiling_mean > 0 else np.nan
            share_lo, share_hi = _interval(own_means / top_means)
        rows.append(
            {
                "column": column,
                "group": label,
                "n_users": int(inside.sum()),
                "mean": float(own.mean()),
                "lo": _interval(own_means)[0],
                "hi": _interval(own_means)[1],
                "rest": float(rest.mean()),
                "gap": float(own.mean() - rest.mean()),
                "gap_lo": _interval(own_means - rest_means)[0],
                "gap_hi": _interval(own_means - rest_means)[1],
                "p_perm": permutation_p(values[usable], inside[usable], n_perm, seed, sums),
                "share": float(share),
                "share_lo": share_lo,
                "share_hi": share_hi,
                "pooled": pooled,
            }
        )
    adjusted = holm([float(r["p_perm"]) for r in rows])  # type: ignore[arg-type]
    return [GroupQuality(**r, p_holm=float(p)) for r, p in zip(rows, adjusted)]  # type: ignore[arg-type]


@dataclass(frozen=True)
class GroupValues:
    """Per-user values of one run on one split over its seeds (rows: seed × user), with the groups of each column.

    ``ceiling`` is the ceiling run's value for the same (seed, user) rows (NaN where it has none), or ``None``.
    """

    values: np.ndarray
    ceiling: np.ndarray | None
    groups: list[tuple[str, np.ndarray]]


def group_values(
    per_user: pd.DataFrame,
    splits: dict[int, SplitData],
    metric: str,
    columns: list[str],
    ceiling: pd.DataFrame | None = None,
) -> GroupValues:
    """Stack a run's per-user ``metric`` over seeds (``per_user``: ``seed``, ``user`` = matrix row, the metric).

    Each seed's groups by the user feature ``columns`` come from its split (the segments registry's
    ``by_feature``); a group's rows are offset into the stacked order.
    """
    values: list[np.ndarray] = []
    tops: list[np.ndarray] = []
    groups: dict[str, list[np.ndarray]] = {}
    offset = 0
    for seed, rows in per_user.groupby("seed", sort=True):
        rows = rows.reset_index(drop=True)
        split = splits[int(seed)]
        context = SegmentContext(rows, split.user_features, split.user_vocab)
        for label, members in segment_groups(context, {"by_feature": tuple(columns)}):
            if label != ALL:
                groups.setdefault(label, []).append(np.asarray(members) + offset)
        values.append(rows[metric].to_numpy(dtype=np.float64))
        if ceiling is not None:
            theirs = ceiling[ceiling["seed"] == seed].set_index("user")[metric]
            tops.append(theirs.reindex(rows["user"]).to_numpy(dtype=np.float64))
        offset += len(rows)
    stacked = [(label, np.concatenate(parts)) for label, parts in groups.items()]
    return GroupValues(np.concatenate(values), np.concatenate(tops) if ceiling is not None else None, stacked)


#: Columns of ``fairness.csv``, one row per run × split × column × group.
TABLE_COLUMNS = [
    "run", "label", "split", "column", "group", "n_users", "mean", "lo", "hi", "rest", "gap", "gap_lo", "gap_hi",
    "p_perm", "p_holm", "share", "share_lo", "share_hi", "flagged", "pooled",
]  # fmt: skip


def fairness_table(
    report_dir: Path, info: ExperimentInfo, records: list[RunRecord], columns: list[str], *, n_perm: int = 2000
) -> pd.DataFrame:
    """Group quality of every finished run × split on the headline metric, against the split's ceiling run if any.

    Reads each run's ``metrics.parquet`` and, once per prepared split, its users (the groups); the ceiling is the
    run whose model's role is ``ceiling`` (the oracle). Bootstrap samples and seed are the experiment's.
    """
    roles = {spec["run"]: run_role(spec["model"], spec["params"]) for spec in info.runs}
    loaded: dict[str, SplitData] = {}
    rows = []
    for split in info.splits:
        done = [r for r in records if r.split == split and r.ok and r.summary is not None]
        wanted = ["user", "seed", "n_train", info.metric]  # n_train: the built-in segments read it
        tables = {r.run: pd.read_parquet(r.folder / "metrics.parquet", columns=wanted) for r in done}
        top = next((tables[r.run] for r in done if roles.get(r.run) == CEILING), None)
        for record in done:
            if roles.get(record.run) == CEILING:
                continue
            assert record.summary is not None
            splits = {}
            for facts in record.summary.per_seed:
                if facts.split_folder not in loaded:
                    loaded[facts.split_folder] = load_split(Path(facts.split_folder))
                splits[facts.seed] = loaded[facts.split_folder]
            stacked = group_values(tables[record.run], splits, info.metric, columns, top)
            for column in columns:
                found = group_quality(
                    column, stacked.values, stacked.groups, stacked.ceiling,
                    n_boot=info.bootstrap["samples"], n_perm=n_perm, seed=info.bootstrap["seed"],
                )  # fmt: skip
                head = {"run": record.run, "label": record.label, "split": split}
                rows += [head | asdict(g) | {"flagged": g.flagged(), "pooled": " ".join(g.pooled)} for g in found]
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def _number(value: float) -> str:
    return f"{value:.4f}"


def fairness_sentences(table: pd.DataFrame, metric: str, alpha: float = ALPHA) -> list[str]:
    """The Findings' words on groups of people, Korean first with an English gloss; every number is the table's.

    Per split and column: each group flagged (below the rest after Holm) with its gap, interval and p, and the run
    serving that group best; or that no group of the column is significantly below the rest.
    """
    out = []
    for (split, column), rows in table.groupby(["split", "column"], sort=False):
        flagged = rows[rows["flagged"]]
        if flagged.empty:
            out.append(
                f"분할 {split}: 어떤 {column} 집단도 나머지 사용자보다 {metric}가 유의하게 낮지 않다 "
                f"(Holm, α = {alpha}). "
                f"(Split {split}: no {column} group is significantly below the other users on {metric} after Holm.)"
            )
            continue
        for _, g in flagged.iterrows():
            same = rows[rows["group"] == g["group"]]
            best = same.loc[same["mean"].idxmax()]
            served = f"[{_number(best['lo'])}, {_number(best['hi'])}]"
            out.append(
                f"분할 {split}, {g['label']}: {g['group']} 사용자 {g['n_users']}명의 {metric}는 나머지보다 "
                f"{_number(-g['gap'])} 낮다 (차이 {_number(g['gap'])}, 95% 구간 [{_number(g['gap_lo'])}, "
                f"{_number(g['gap_hi'])}], Holm p = {_number(g['p_holm'])}); 이 집단을 가장 잘 돕는 실행은 "
                f"{best['label']} ({_number(best['mean'])}, 95% 구간 {served}). "
                f"(Split {split}, {g['label']}: users listing {g['group']} score {_number(-g['gap'])} lower than the "
                f"rest; best served by {best['label']}, {_number(best['mean'])} {served}.)"
            )
    return out


def declared_columns(records: list[RunRecord]) -> list[str]:
    """The user feature columns the experiment declared as segments (``by_feature``), from its first finished run."""
    for record in records:
        if record.summary is not None:
            return list(record.summary.segments.get("by_feature", []))
    return []


def write_fairness(report_dir: Path, info: ExperimentInfo, records: list[RunRecord]) -> pd.DataFrame:
    """Compute the group table of the declared columns and write it as ``fairness.csv`` (empty: none declared)."""
    columns = declared_columns(records)
    table = fairness_table(report_dir, info, records, columns) if columns else pd.DataFrame(columns=TABLE_COLUMNS)
    with atomic_file(Path(report_dir) / "fairness.csv") as handle:
        table.to_csv(handle, index=False)
    return table


def fairness_html(table: pd.DataFrame, metric: str, exposure: list[str] | None = None) -> str:
    """The "for whom" section: the sentences (groups, then creators' ``exposure``), then per split and column a
    table of groups × runs.

    A cell is the group's mean, its share of the ceiling in parentheses, marked ▼ when flagged; every name is escaped.
    """
    said = [html.escape(s) for s in exposure or []]
    if table.empty:
        return (
            "<p>실험이 사용자 특성 세그먼트를 선언하지 않았습니다 "
            "(the experiment declares no segments by user feature: <code>segments: {by_feature: [...]}</code>).</p>"
            + "".join(f"<p>{s}</p>" for s in said)
        )
    sentences = [html.escape(s) for s in fairness_sentences(table, metric)] + said
    parts = ["<ul>", *(f"<li>{s}</li>" for s in sentences), "</ul>"]
    for (split, column), rows in table.groupby(["split", "column"], sort=False):
        labels = list(dict.fromkeys(rows["label"]))
        head = "".join(f"<th>{html.escape(str(label))}</th>" for label in labels)
        body = []
        for group, cells in rows.groupby("group", sort=False):
            by_label = {c["label"]: c for _, c in cells.iterrows()}
            shown = []
            for label in labels:
                c = by_label.get(label)
                if c is None:
                    shown.append("<td></td>")
                    continue
                share = "" if pd.isna(c["share"]) else f" ({c['share']:.2f})"
                shown.append(f"<td>{'▼ ' if c['flagged'] else ''}{c['mean']:.4f}{share}</td>")
            n = int(cells["n_users"].iloc[0])
            body.append(f"<tr><td>{html.escape(str(group))}</td><td>{n}</td>{''.join(shown)}</tr>")
        parts.append(
            f"<h4>{html.escape(str(split))} · {html.escape(str(column))}</h4><table><thead><tr><th>group</th>"
            f"<th>users</th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        )
    return "".join(parts)


def exposure_sentences(comparison: pd.DataFrame, k: int, baseline: str = "popularity") -> list[str]:
    """Per split: each run's creator-exposure Gini@k and the runs above ``baseline``'s, Korean first, numbers as in
    ``comparison.csv`` (the mean row over seeds, or the single seed's). Empty when no run has ``exposure_gini@k``.

    The Gini is an aggregate of all lists: no interval over users is computed yet. A run above ``baseline`` is said to
    be so *beyond the between-seed spread* only when each of its seeds' values exceeds each of ``baseline``'s (two
    seeds or more each, the same seeds); otherwise the comparison of means is called a point comparison.
    """
    column = f"exposure_gini@{k}"
    if column not in comparison.columns:
        return []
    rows = summary_rows(comparison, ALL)
    rows = rows[(rows["status"] == "ok") & rows[column].notna()]
    per_seed = comparison[(comparison["segment"] == ALL) & ~comparison["seed"].isin(POOLED)]
    per_seed = per_seed[(per_seed["status"] == "ok") & per_seed[column].notna()]
    out = []
    for split, runs in rows.groupby("split", sort=False):
        base = runs[runs["run"] == baseline]
        listed = ", ".join(f"{r['label']} {_number(r[column])}" for _, r in runs.sort_values(column).iterrows())
        text = f"분할 {split}: 창작자 노출의 Gini@{k} (creator exposure Gini@{k}): {listed}."
        if len(base):
            value = float(base[column].iloc[0])
            above = [r for _, r in runs.iterrows() if r["run"] != baseline and r[column] > value]
            seeds = per_seed[per_seed["split"] == split].groupby("run")[column].agg(["min", "max", "count"])
            spread = seeds.reindex([baseline, *(r["run"] for r in above)]).fillna({"count": 0})
            separated = (spread["count"] >= 2) & (spread["min"] > spread.at[baseline, "max"])
            clear = [r for r in above if spread.at[baseline, "count"] >= 2 and separated[r["run"]]]
            names = ", ".join(str(r["label"]) for r in above)
            beyond = ", ".join(str(r["label"]) for r in clear)
            text += (
                f" {baseline}({_number(value)})보다 노출을 더 집중시키는 실행: {names or '없음'}; 그중 시드 간 변동을 "
                f"넘는 차이 (모든 시드에서 {baseline}의 모든 시드보다 높음): {beyond or '없음'}; 나머지는 평균의 점 "
                f"비교일 뿐 구간이 없다 (runs concentrating creator exposure more than {baseline}: {names or 'none'}; "
                f"beyond the between-seed spread, every seed above every seed of {baseline}: {beyond or 'none'}; "
                "the rest is a point comparison of means, no interval over users yet)."
            )
        out.append(text)
    return out
