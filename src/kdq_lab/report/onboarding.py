"""Which sign-up questions earn their place: the onboarding study's effects, verdicts and words (``07_onboarding``).

Three measures of each profile field, each paired over the same new users (a user's difference
averaged over the seeds that tested them; bootstrap interval; Wilcoxon signed-rank test; Holm's
adjustment within each measure's family of fields):

``permutation``
    the base run's metric minus its metric with the field shuffled across users (no retraining);
``drop_one``
    the base run's metric minus the metric of the run retrained without the field;
``only_one``
    the metric of the run retrained with the field alone minus the no-profile run's (the experiment's
    reference, popularity: what a new user gets when nothing is asked).

A positive difference means the field helps. A field *helps* (or *hurts*) when its adjusted
p-value is below :data:`ALPHA` and its interval excludes 0 on that side; otherwise it is *not
significant* and is never ranked: its interval includes 0.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from kdq_lab.evaluation import holm, paired_comparison
from kdq_lab.evaluation.stats import pooled_bootstrap_ci
from kdq_lab.experiment.schema import run_folder
from kdq_lab.plots import use_lab_style
from kdq_lab.runs.records import ExperimentInfo

ALPHA = 0.05
MEASURES = ("permutation", "drop_one", "only_one")
HELPS, HURTS, NOT_SIGNIFICANT = "helps", "hurts", "not significant"
#: Columns of the study's CSV (``onboarding.csv``), one row per base run × measure × field.
COLUMNS = ["run", "measure", "field", "diff", "lo", "hi", "p_wilcoxon", "p_holm", "n_users", "verdict"]
Pair = tuple[Sequence[pd.Series], Sequence[pd.Series]]  # (per seed: the measured, per seed: what it is paired with)


def by_seed(table: pd.DataFrame, column: str) -> list[pd.Series]:
    """One series per seed of ``column``, indexed by user (a table with ``seed`` and ``user`` columns)."""
    return [group.set_index("user")[column] for _, group in table.groupby("seed", sort=True)]


def verdict(diff: float, lo: float, hi: float, p_holm: float, alpha: float = ALPHA) -> str:
    """``helps``, ``hurts`` or ``not significant`` (the adjusted test and the interval must agree)."""
    if not np.isfinite(p_holm) or p_holm >= alpha:
        return NOT_SIGNIFICANT
    if diff > 0 and lo > 0:
        return HELPS
    if diff < 0 and hi < 0:
        return HURTS
    return NOT_SIGNIFICANT


def field_effects(pairs: Mapping[str, Pair], n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One family of paired tests, field → (measured, paired with): ``field``, ``diff``, ``lo``, ``hi``,
    ``p_wilcoxon``, ``p_holm`` (Holm over this family), ``n_users`` and ``verdict``."""
    rows = [{"field": field, **paired_comparison(list(a), list(b), n_boot, seed)} for field, (a, b) in pairs.items()]
    table = pd.DataFrame(rows, columns=["field", "diff", "lo", "hi", "p_wilcoxon", "p_bootstrap", "n_users"])
    table["p_holm"] = holm(table["p_wilcoxon"].to_numpy()) if len(table) else []
    table["verdict"] = [verdict(r.diff, r.lo, r.hi, r.p_holm) for r in table.itertuples()]
    return table.drop(columns="p_bootstrap")


def importance_pairs(importance: pd.DataFrame) -> dict[str, Pair]:
    """Permutation pairs from ``importance.parquet`` (seed, user, field, base, permuted)."""
    return {
        str(field): (by_seed(rows, "base"), by_seed(rows, "permuted"))
        for field, rows in importance.groupby("field", sort=False)
    }


def load_effects(report_dir: Path, info: ExperimentInfo, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Every measure of every base run of the experiment's ``ablation`` on its split(s), in :data:`COLUMNS`.

    Reads ``runs/<run>__<split>/metrics.parquet`` (and the base run's ``importance.parquet``); a
    variant or measure that did not run is left out (the notebook says which).
    """
    ablation = info.ablation or {}
    metric, frames = info.metric, []
    splits = [ablation["split"]] if ablation.get("split") else list(info.splits)

    def metric_of(run: str, split: str) -> list[pd.Series] | None:
        path = Path(report_dir) / "runs" / run_folder(run, split) / "metrics.parquet"
        return by_seed(pd.read_parquet(path, columns=["user", "seed", metric]), metric) if path.is_file() else None

    for split in splits:
        nothing = metric_of(info.reference, split) if info.reference else None
        for run in ablation.get("runs", []):
            base = metric_of(run, split)
            families: dict[str, dict[str, Pair]] = {m: {} for m in MEASURES}
            shuffled = Path(report_dir) / "runs" / run_folder(run, split) / "importance.parquet"
            if shuffled.is_file():
                families["permutation"] = importance_pairs(pd.read_parquet(shuffled))
            for field in ablation.get("fields", []):
                dropped, only = metric_of(f"{run}-drop={field}", split), metric_of(f"{run}-only={field}", split)
                if base is not None and dropped is not None:
                    families["drop_one"][field] = (base, dropped)
                if nothing is not None and only is not None:
                    families["only_one"][field] = (only, nothing)
            for measure, pairs in families.items():
                if pairs:
                    table = field_effects(pairs, n_boot, seed).assign(run=run, split=split, measure=measure)
                    frames.append(table)
    if not frames:
        return pd.DataFrame(columns=["split", *COLUMNS])
    return pd.concat(frames, ignore_index=True)[["split", *COLUMNS]]


def disagreements(effects: pd.DataFrame) -> pd.DataFrame:
    """Fields whose permutation and drop-one verdicts differ, per run and split: ``permutation``, ``drop_one``."""
    wide = effects[effects["measure"].isin(["permutation", "drop_one"])].pivot_table(
        index=["split", "run", "field"], columns="measure", values="verdict", aggfunc="first"
    )
    if not {"permutation", "drop_one"} <= set(wide.columns):
        return pd.DataFrame(columns=["split", "run", "field", "permutation", "drop_one"])
    wide = wide.dropna(subset=["permutation", "drop_one"])
    return wide[wide["permutation"] != wide["drop_one"]].reset_index()[
        ["split", "run", "field", "permutation", "drop_one"]
    ]


def _num(value: float) -> str:
    return f"{value:+.4f}"


def _p(value: float) -> str:
    return "p < 0.001" if value < 0.001 else f"p = {value:.3f}"


def _effect(row: pd.Series) -> str:
    return f"{row['field']} {_num(row['diff'])} [{_num(row['lo'])}, {_num(row['hi'])}], Holm {_p(row['p_holm'])}"


def _why_not(row: pd.Series) -> tuple[str, str]:
    """Why a field is not significant: its interval includes 0, or (interval aside) the adjusted test is not."""
    if row["lo"] <= 0 <= row["hi"]:
        return "구간이 0을 포함", "the interval includes 0"
    return "Holm 보정 검정이 유의하지 않음", "the Holm-adjusted test is not significant"


MEASURE_WORDS = {
    "permutation": ("섞었을 때의 손실 (재학습 없음)", "loss when shuffled, no retraining"),
    "drop_one": ("빼고 재학습했을 때의 손실", "loss when retrained without it"),
    "only_one": ("그 질문 하나만으로 얻는 이득 (질문 없음 대비)", "gain of asking it alone over asking nothing"),
}


def sentences(effects: pd.DataFrame, metric: str) -> list[tuple[str, str]]:
    """The findings as (Korean, English) pairs; every number is a value of ``effects`` (4 decimals, as in the CSV).

    Per run, split and measure: which fields significantly help, hurt, and which are not significant
    (their interval includes 0); then the order to ask the helping fields in (by their only-one gain);
    then where permutation and drop-one disagree.
    """
    out: list[tuple[str, str]] = []
    for (split, run), rows in effects.groupby(["split", "run"], sort=False):
        for measure in MEASURES:
            family = rows[rows["measure"] == measure]
            if family.empty:
                continue
            ko_what, en_what = MEASURE_WORDS[measure]
            helps = family[family["verdict"] == HELPS].sort_values("diff", ascending=False)
            hurts = family[family["verdict"] == HURTS].sort_values("diff")
            flat = family[family["verdict"] == NOT_SIGNIFICANT]
            listed = "; ".join(_effect(r) for _, r in helps.iterrows()) or "없음"
            listed_en = "; ".join(_effect(r) for _, r in helps.iterrows()) or "none"
            out.append(
                (
                    f"{run} ({split}), {metric} {ko_what}: 유의하게 도움이 되는 항목 — {listed}",
                    f"{en_what}: fields that significantly help — {listed_en}",
                )
            )
            if not hurts.empty:
                text = "; ".join(_effect(r) for _, r in hurts.iterrows())
                out.append((f"유의하게 해가 되는 항목 — {text}", f"fields that significantly hurt — {text}"))
            if not flat.empty:
                ko = "; ".join(f"{_effect(r)} ({_why_not(r)[0]})" for _, r in flat.iterrows())
                en = "; ".join(f"{_effect(r)} ({_why_not(r)[1]})" for _, r in flat.iterrows())
                out.append((f"유의하지 않음 — {ko}", f"not significant — {en}"))
        only = rows[(rows["measure"] == "only_one") & (rows["verdict"] == HELPS)].sort_values("diff", ascending=False)
        if not only.empty:
            order = " → ".join(only["field"])
            out.append(
                (
                    f"질문 순서 (혼자서 유의하게 도움이 되는 항목, 이득 순): {order}; 나머지 항목은 순위를 매기지 않음",
                    f"order to ask (fields that help on their own, by gain): {order}; the others are not ranked",
                )
            )
    for row in disagreements(effects).itertuples():
        if row.permutation == HELPS:
            ko = f"{row.field}: 섞으면 손해지만 빼고 재학습하면 유의한 손실이 없음 — 모델이 다른 항목으로 우회함 (중복)"
            en = (
                f"{row.field}: shuffling it hurts, but a model retrained without it loses nothing significant — "
                "it routes around the field through the others (redundant)"
            )
        else:
            ko = f"{row.field}: 순열 중요도는 {row.permutation}, 빼고 재학습하면 {row.drop_one}"
            en = f"{row.field}: permutation says {row.permutation}, drop-one retraining says {row.drop_one}"
        out.append((ko, en))
    return out


def sentences_html(pairs: list[tuple[str, str]]) -> str:
    """The findings as an HTML list, Korean first with the English gloss; every string escaped."""
    items = "".join(f'<li>{escape(ko)} <span class="kdq-en" lang="en">({escape(en)})</span></li>' for ko, en in pairs)
    return f'<ul class="kdq-onboarding">{items}</ul>'


def values_given(column: pd.Series, separator: str) -> pd.Series:
    """How many values each user gave for a field (a multi-valued cell counts its parts; empty is 0)."""
    text = column.fillna("").astype(str)
    return (text.str.count(re.escape(separator)) + 1).where(text.str.len() > 0, 0)


def by_values_given(
    tables: Mapping[str, pd.DataFrame], counts: Mapping[int, pd.Series], metric: str, n_boot: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """The n잡러 curve: each run's ``metric`` by how many values a user gave (``1``, ``2``, ``3+``).

    ``tables``: run → per-user metrics with ``seed`` and ``user``; ``counts``: seed → values given,
    indexed by user row. Returns ``run``, ``given``, ``mean``, ``lo``, ``hi`` (pooled over seeds), ``n_users``.
    """
    rows = []
    for run, table in tables.items():
        given = pd.concat(
            [group.assign(given=counts[int(s)].reindex(group["user"]).to_numpy()) for s, group in table.groupby("seed")]
        )
        given["given"] = np.where(given["given"] >= 3, "3+", given["given"].astype(int).astype(str))
        for bucket, group in given.groupby("given", sort=True):
            ci = pooled_bootstrap_ci([g for _, g in group.groupby("seed")], [metric], n_boot, seed).loc[metric]
            rows.append(
                {
                    "run": run,
                    "given": bucket,
                    "mean": ci["mean"],
                    "lo": ci["lo"],
                    "hi": ci["hi"],
                    "n_users": int(ci["n_users"]),
                }
            )
    return pd.DataFrame(rows, columns=["run", "given", "mean", "lo", "hi", "n_users"])


def effects_figure(effects: pd.DataFrame, metric: str) -> plt.Figure:
    """One panel per measure: each field's difference with its 95% interval, one colour per run (0 marked)."""
    use_lab_style()
    measures = [m for m in MEASURES if (effects["measure"] == m).any()]
    runs = list(dict.fromkeys(effects["run"]))
    fig, axes = plt.subplots(
        1,
        max(len(measures), 1),
        figsize=(4.2 * max(len(measures), 1), 3.6),
        sharey=True,
        layout="constrained",
        squeeze=False,
    )
    for ax, measure in zip(axes[0], measures):
        rows = effects[effects["measure"] == measure]
        fields = list(dict.fromkeys(rows["field"]))
        for i, run in enumerate(runs):
            mine = rows[rows["run"] == run].set_index("field").reindex(fields)
            y = np.arange(len(fields)) + (i - (len(runs) - 1) / 2) * 0.25
            err = np.vstack([mine["diff"] - mine["lo"], mine["hi"] - mine["diff"]])
            ax.errorbar(mine["diff"], y, xerr=err, fmt="o", capsize=3, label=run)
        ax.axvline(0, color="grey", linewidth=0.8)
        ax.set_yticks(np.arange(len(fields)), fields)
        ko, en = MEASURE_WORDS[measure]
        ax.set_title(f"{ko}\n({en})", fontsize=9)
        ax.set_xlabel(f"Δ {metric}")
    if measures:
        fig.legend(
            handles=axes[0][0].get_legend_handles_labels()[0],
            labels=runs,
            loc="outside lower center",
            ncols=max(len(runs), 1),
        )
    return fig


def given_figure(curve: pd.DataFrame, field: str, metric: str) -> plt.Figure:
    """The n잡러 curve: each run's metric by the number of values given, with 95% intervals."""
    use_lab_style()
    fig, ax = plt.subplots(figsize=(6, 3.6), layout="constrained")
    order = sorted(curve["given"].unique(), key=lambda g: (len(g), g))
    for run, rows in curve.groupby("run", sort=False):
        rows = rows.set_index("given").reindex(order)
        err = np.vstack([rows["mean"] - rows["lo"], rows["hi"] - rows["mean"]])
        ax.errorbar(order, rows["mean"], yerr=err, marker="o", capsize=3, label=str(run))
    ax.set(xlabel=f"{field}: 답한 값의 수 (values given)", ylabel=metric)
    fig.legend(loc="outside right upper", fontsize=8)
    return fig


def curve_points(
    tests: pd.DataFrame, metric: str, n_boot: int = 1000, seed: int = 0, share: float = 0.9
) -> tuple[pd.DataFrame, dict[str, float]]:
    """The questionnaire curve and how many questions reach ``share`` of the full profile's gain.

    ``tests``: per-user test metrics of every prefix (``step``, ``fields``, ``seed``, ``user``, metric;
    :func:`kdq_lab.runs.questionnaire.curve_tables`). Users are resampled within each seed (the same
    users for every step), the per-seed means averaged. Returns the points (``step``, ``fields``,
    ``mean``, ``lo``, ``hi``, ``share``: the part of the full profile's gain over no profile reached)
    and ``{"reach", "lo", "hi", "share"}``: the fewest questions whose gain reaches ``share`` of the full
    gain, with its 95% percentile interval (NaN where the full profile gains nothing).
    """
    steps = sorted(tests["step"].unique())
    names = tests.drop_duplicates("step").set_index("step")["fields"].reindex(steps)
    rng = np.random.default_rng(seed)
    replicates, centres = [], []
    for _, rows in tests.groupby("seed", sort=True):
        matrix = rows.pivot_table(index="user", columns="step", values=metric).reindex(columns=steps).to_numpy()
        centres.append(np.nanmean(matrix, axis=0))
        draws = rng.integers(0, len(matrix), size=(n_boot, len(matrix)))
        replicates.append(np.nanmean(matrix[draws], axis=1))  # n_boot × steps
    pooled, centre = np.mean(replicates, axis=0), np.mean(centres, axis=0)

    def reached(means: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        gain = means - means[..., :1]
        full = gain[..., -1:]
        with np.errstate(invalid="ignore", divide="ignore"):
            part = np.where(full > 0, gain / full, np.nan)
        hits = part >= share - 1e-12
        first = np.where(hits.any(axis=-1), hits.argmax(axis=-1), np.nan).astype(float)
        return part, np.where(np.isfinite(part[..., -1]), first, np.nan)

    part, reach = reached(centre)
    _, reaches = reached(pooled)
    points = pd.DataFrame(
        {
            "step": steps,
            "fields": names.to_numpy(),
            "mean": centre,
            "lo": np.quantile(pooled, 0.025, axis=0),
            "hi": np.quantile(pooled, 0.975, axis=0),
            "share": part,
        }
    )
    finite = reaches[np.isfinite(reaches)]
    lo, hi = (float(np.quantile(finite, q)) if len(finite) else np.nan for q in (0.025, 0.975))
    return points, {"reach": float(reach), "lo": lo, "hi": hi, "share": share}


def curve_sentences(points: pd.DataFrame, reach: Mapping[str, float], metric: str, run: str) -> list[tuple[str, str]]:
    """The curve in words (Korean first): the order chosen on validation, each step's test metric with its interval,
    and how many questions reach the share of the full gain (with its interval)."""
    steps = [
        f"{row.fields.split('+')[-1] if row.step else '질문 없음'} {row.mean:.4f} [{row.lo:.4f}, {row.hi:.4f}]"
        for row in points.itertuples()
    ]
    steps_en = [s.replace("질문 없음", "no question") for s in steps]
    out = [
        (
            f"{run}: 질문 순서 (검증 데이터에서 탐욕적으로 선택), 단계별 test {metric} — {' → '.join(steps)}",
            f"order to ask (chosen greedily on validation), test {metric} at each step — {' → '.join(steps_en)}",
        )
    ]
    if np.isfinite(reach["reach"]):
        n, lo, hi, pct = int(reach["reach"]), reach["lo"], reach["hi"], f"{reach['share']:.0%}"
        out.append(
            (
                f"전체 프로필 이득의 {pct}에 도달하는 질문 수: {n}개 (95% 구간 [{lo:.0f}, {hi:.0f}])",
                f"questions that reach {pct} of the full profile's gain: {n} (95% interval [{lo:.0f}, {hi:.0f}])",
            )
        )
    else:
        out.append(
            (
                "전체 프로필이 질문 없음보다 낫지 않음: 도달 질문 수를 정할 수 없음",
                "the full profile does not beat no profile: no number of questions reaches its gain",
            )
        )
    return out


def curve_figure(points: pd.DataFrame, metric: str, run: str, oracle: float | None = None) -> plt.Figure:
    """The questionnaire curve with 95% intervals, from no profile to the full profile; the oracle's level marked."""
    use_lab_style()
    fig, ax = plt.subplots(figsize=(7, 3.8), layout="constrained")
    labels = ["없음 (none)", *[f.split("+")[-1] for f in points["fields"].iloc[1:]]]
    err = np.vstack([points["mean"] - points["lo"], points["hi"] - points["mean"]])
    ax.errorbar(np.arange(len(points)), points["mean"], yerr=err, marker="o", capsize=3, label=run)
    if oracle is not None and np.isfinite(oracle):
        ax.axhline(oracle, color="black", linestyle="--", linewidth=1, label="oracle (상한)")
    ax.set_xticks(
        np.arange(len(points)), [f"+{label}" if i else label for i, label in enumerate(labels)], rotation=30, ha="right"
    )
    ax.set(xlabel="질문 순서 (questions, in the order asked)", ylabel=metric)
    fig.legend(loc="outside right upper", fontsize=8)
    return fig
