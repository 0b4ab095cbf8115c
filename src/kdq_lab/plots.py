"""Shared figures. Hangul renders on a fresh machine: the lab registers NanumGothic from
the ``koreanize-matplotlib`` wheel (installed with the lab; nothing is downloaded)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib import font_manager

from kdq_lab.explain import Explanation

HANGUL_FONT = "NanumGothic"


def _font_files() -> list[Path]:
    spec = importlib.util.find_spec("koreanize_matplotlib")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("koreanize-matplotlib is not installed; `make venv` installs it with the lab")
    return sorted(Path(next(iter(spec.submodule_search_locations)), "fonts").glob("*.ttf"))


def use_hangul_font() -> str:
    """Register the bundled NanumGothic fonts and make them matplotlib's default; return the family.

    DejaVu Sans (shipped with matplotlib) is the fallback for the few symbols NanumGothic lacks (e.g. "−").
    """
    for path in _font_files():
        font_manager.fontManager.addfont(str(path))
    plt.rcParams["font.family"] = [HANGUL_FONT, "DejaVu Sans"]
    plt.rcParams["axes.unicode_minus"] = False
    return HANGUL_FONT


def save(fig: plt.Figure, path: Path, dpi: int = 120) -> Path:
    """Save a figure (PNG), creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


# ----------------------------------------------------------------------------- comparison figures

ORACLE = "oracle"


def _runs_order(rows: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(rows["run"]))


def metric_bars(comparison: pd.DataFrame, metric: str, segment: str = "all") -> plt.Figure:
    """One panel per split: mean metric per run with its 95% interval; the oracle ceiling dashed."""
    rows = comparison[(comparison["segment"] == segment) & (comparison["status"] == "ok")]
    splits = list(dict.fromkeys(rows["split"]))
    fig, axes = plt.subplots(
        1,
        max(len(splits), 1),
        figsize=(6 * max(len(splits), 1), 0.45 * rows["run"].nunique() + 2),
        squeeze=False,
        sharex=True,
    )
    for ax, split in zip(axes[0], splits):
        part = rows[rows["split"] == split].groupby("run", sort=False)[[metric, f"{metric}_lo", f"{metric}_hi"]].mean()
        part = part.sort_values(metric)
        colors = ["#c44e52" if run == ORACLE else "#4c72b0" for run in part.index]
        ax.barh(
            part.index,
            part[metric],
            color=colors,
            xerr=[part[metric] - part[f"{metric}_lo"], part[f"{metric}_hi"] - part[metric]],
            capsize=3,
        )
        if ORACLE in part.index:
            ax.axvline(part.loc[ORACLE, metric], color="#c44e52", linestyle="--", linewidth=1, label="oracle ceiling")
            ax.legend(loc="lower right")
        ax.set(title=f"{split} · {segment}", xlabel=f"{metric} (95% CI)")
    fig.tight_layout()
    return fig


def segment_bars(comparison: pd.DataFrame, metric: str, segments: tuple[str, ...] = ("new", "returning")) -> plt.Figure:
    """Per split: the metric for each run on new vs returning users (with intervals)."""
    rows = comparison[comparison["segment"].isin(segments) & (comparison["status"] == "ok")]
    splits = list(dict.fromkeys(rows["split"]))
    fig, axes = plt.subplots(
        1, max(len(splits), 1), figsize=(6 * max(len(splits), 1), 0.5 * rows["run"].nunique() + 2), squeeze=False
    )
    for ax, split in zip(axes[0], splits):
        part = rows[rows["split"] == split]
        runs = _runs_order(part)
        height = 0.8 / len(segments)
        for i, segment in enumerate(segments):
            seg = (
                part[part["segment"] == segment]
                .groupby("run", sort=False)[[metric, f"{metric}_lo", f"{metric}_hi"]]
                .mean()
                .reindex(runs)
            )
            positions = [r + i * height for r in range(len(runs))]
            ax.barh(
                positions,
                seg[metric].fillna(0),
                height=height,
                label=segment,
                xerr=[(seg[metric] - seg[f"{metric}_lo"]).fillna(0), (seg[f"{metric}_hi"] - seg[metric]).fillna(0)],
                capsize=2,
            )
        ax.set_yticks([r + 0.4 - height / 2 for r in range(len(runs))], runs)
        ax.set(title=f"{split}: 신규 vs 기존 사용자 (new vs returning)", xlabel=metric)
        ax.legend()
    fig.tight_layout()
    return fig


def metric_over_k(comparison: pd.DataFrame, base: str, ks: list[int], split: str) -> plt.Figure:
    """``base@k`` against k for every run on one split (segment all)."""
    rows = comparison[
        (comparison["segment"] == "all") & (comparison["split"] == split) & (comparison["status"] == "ok")
    ]
    fig, ax = plt.subplots(figsize=(7, 4))
    for run in _runs_order(rows):
        part = rows[rows["run"] == run]
        values = [part[f"{base}@{k}"].mean() for k in ks]
        ax.plot(ks, values, marker="o", label=run, linestyle="--" if run == ORACLE else "-")
    ax.set(xlabel="k", ylabel=f"{base}@k", title=f"{base}@k: {split}")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return fig


def tradeoff(comparison: pd.DataFrame, metric: str, k: int, split: str) -> plt.Figure:
    """Coverage, novelty and diversity against accuracy, one point per run (segment all)."""
    rows = comparison[
        (comparison["segment"] == "all") & (comparison["split"] == split) & (comparison["status"] == "ok")
    ]
    measures = [m for m in (f"coverage@{k}", f"novelty@{k}", f"diversity@{k}") if m in rows]
    fig, axes = plt.subplots(1, len(measures), figsize=(5 * len(measures), 4), squeeze=False)
    for ax, measure in zip(axes[0], measures):
        part = rows.groupby("run", sort=False)[[measure, metric]].mean()
        ax.scatter(part[measure], part[metric])
        for run, (x, y) in part.iterrows():
            ax.annotate(run, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set(xlabel=measure, ylabel=metric, title=f"{measure} vs {metric} ({split})")
    fig.tight_layout()
    return fig


def explanation_bars(explanation: Explanation, title: str, n: int = 10) -> plt.Figure:
    """The ``n`` largest terms of one explanation (the user bias left out: it is the same for every item)."""
    terms = [t for t in explanation.terms if t.kind != "user_bias"]
    terms = sorted(terms, key=lambda t: -abs(t.value))[:n][::-1]
    fig, ax = plt.subplots(figsize=(9, 0.35 * len(terms) + 1.2))
    ax.barh(
        [t.label for t in terms],
        [t.value for t in terms],
        color=["#55a868" if t.value > 0 else "#c44e52" for t in terms],
    )
    ax.set(title=title, xlabel="기여도 (contribution to the score)")
    fig.tight_layout()
    return fig
