"""The comparison report's figures. Every run keeps one style in every figure; legends sit outside the axes.

:func:`run_styles` gives each run a colour and a marker from the experiment's run order
(so a run looks the same in every figure of a report), no two runs sharing both; the
ceiling (the oracle) is black and dashed with a star, the reference grey and dash-dotted,
colours no other run gets. Figures use constrained layout with the legend placed
``outside`` the axes, so a legend never covers data. Labels are the experiment's own text:
each figure is drawn in the lab's style (:func:`kdq_lab.plots.use_lab_style`), where a ``$``
is a dollar sign, and legends list their runs explicitly (matplotlib would leave out a label
starting with ``_``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import to_hex
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from kdq_lab.plots import use_lab_style

_TAB20 = [to_hex(c) for c in colormaps["tab20"].colors]  # type: ignore[attr-defined]
_GREYS = {14, 15}
#: Strong colours first, then their light partners; tab20's greys are kept for the reference.
PALETTE: tuple[str, ...] = tuple(_TAB20[i] for start in (0, 1) for i in range(start, 20, 2) if i not in _GREYS)
MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X")  # 7 is coprime with 18: 126 distinct pairs


@dataclass(frozen=True)
class RunStyle:
    """How one run is drawn: colour, marker, line style and a bar hatch (empty for ordinary runs)."""

    color: str
    marker: str
    linestyle: str = "-"
    hatch: str = ""
    linewidth: float = 1.5


CEILING_STYLE = RunStyle("#000000", "*", "--", "//", 2.0)
REFERENCE_STYLE = RunStyle("#7f7f7f", "h", "-.", "..", 2.0)


def run_styles(
    runs: Sequence[str], reference: str | None = None, ceilings: Collection[str] = ()
) -> dict[str, RunStyle]:
    """A style per run, in the experiment's run order (see the module docstring)."""
    styles: dict[str, RunStyle] = {}
    ordinary = 0
    for run in dict.fromkeys(runs):
        if run in ceilings:
            styles[run] = CEILING_STYLE
        elif run == reference:
            styles[run] = REFERENCE_STYLE
        else:
            styles[run] = RunStyle(PALETTE[ordinary % len(PALETTE)], MARKERS[ordinary % len(MARKERS)])
            ordinary += 1
    return styles


def _ok(rows: pd.DataFrame, segment: str = "all", split: str | None = None) -> pd.DataFrame:
    keep = (rows["segment"] == segment) & (rows["status"] == "ok")
    if split is not None:
        keep &= rows["split"] == split
    return rows[keep]


def _labels(rows: pd.DataFrame) -> dict[str, str]:
    return dict(zip(rows["run"], rows["label"]))


def _marker_handles(runs: Sequence[str], styles: dict[str, RunStyle], labels: dict[str, str]) -> list[Line2D]:
    return [
        Line2D([], [], color=styles[r].color, marker=styles[r].marker, linestyle="none", label=labels.get(r, r))
        for r in runs
    ]


def metric_bars(rows: pd.DataFrame, metric: str, styles: dict[str, RunStyle], segment: str = "all") -> plt.Figure:
    """One panel per split: the metric per run with its 95% interval, best on top; ceiling and reference marked."""
    use_lab_style()
    rows = _ok(rows, segment)
    splits = list(dict.fromkeys(rows["split"]))
    labels = _labels(rows)
    height = 0.32 * rows["run"].nunique() + 1.6
    fig, axes = plt.subplots(1, max(len(splits), 1), figsize=(7.5 * max(len(splits), 1), height), squeeze=False)
    fig.set_layout_engine("constrained")
    marked: dict[str, Line2D] = {}
    for ax, split in zip(axes[0], splits):
        part = rows[rows["split"] == split].set_index("run").sort_values(metric)
        ax.barh(
            range(len(part)),
            part[metric],
            color=[styles[r].color for r in part.index],
            hatch=[styles[r].hatch for r in part.index],
            edgecolor="white",
            xerr=[part[metric] - part[f"{metric}_lo"], part[f"{metric}_hi"] - part[metric]],
            capsize=2,
        )
        for run in part.index:
            style = styles[run]
            if style in (CEILING_STYLE, REFERENCE_STYLE):
                name = "오라클 상한 (oracle ceiling)" if style == CEILING_STYLE else "기준 모델 (reference)"
                marked[name] = ax.axvline(
                    part.loc[run, metric], color=style.color, linestyle=style.linestyle, linewidth=1, label=name
                )
        ax.set_yticks(range(len(part)), [labels[r] for r in part.index])
        ax.set(title=f"{split} · {segment}", xlabel=f"{metric} (95% CI)")
    if marked:
        fig.legend(handles=list(marked.values()), loc="outside lower center", ncols=len(marked), frameon=False)
    return fig


def segment_bars(
    rows: pd.DataFrame, metric: str, styles: dict[str, RunStyle], segments: tuple[str, ...] = ("new", "returning")
) -> plt.Figure:
    """Per split: the metric for each run on new users (solid) and returning users (hatched), with intervals."""
    use_lab_style()
    rows = rows[rows["segment"].isin(segments) & (rows["status"] == "ok")]
    splits = list(dict.fromkeys(rows["split"]))
    labels = _labels(rows)
    fig, axes = plt.subplots(
        1,
        max(len(splits), 1),
        figsize=(7.5 * max(len(splits), 1), 0.4 * rows["run"].nunique() + 1.8),
        squeeze=False,
    )
    fig.set_layout_engine("constrained")
    for ax, split in zip(axes[0], splits):
        part = rows[rows["split"] == split]
        runs = list(dict.fromkeys(part.sort_values(metric)["run"]))
        height = 0.8 / len(segments)
        for i, segment in enumerate(segments):
            seg = part[part["segment"] == segment].set_index("run").reindex(runs)
            present = seg[metric].notna()
            ax.barh(
                [r + i * height for r, ok in enumerate(present) if ok],
                seg.loc[present, metric],
                height=height,
                color=[styles[r].color for r in seg.index[present]],
                hatch="///" if i else None,
                alpha=0.6 if i else 1.0,
                edgecolor="white",
                xerr=[
                    seg.loc[present, metric] - seg.loc[present, f"{metric}_lo"],
                    seg.loc[present, f"{metric}_hi"] - seg.loc[present, metric],
                ],
                capsize=2,
            )
        ax.set_yticks([r + 0.4 - height / 2 for r in range(len(runs))], [labels[r] for r in runs])
        ax.set(title=f"{split}: 신규 vs 기존 사용자 (new vs returning)", xlabel=metric)
    keys = [
        Patch(facecolor="#999999", label="신규 사용자 (new)"),
        Patch(facecolor="#999999", alpha=0.6, hatch="///", label="기존 사용자 (returning)"),
    ]
    fig.legend(handles=keys[: len(segments)], loc="outside lower center", ncols=len(segments), frameon=False)
    return fig


def metric_over_k(rows: pd.DataFrame, base: str, ks: list[int], split: str, styles: dict[str, RunStyle]) -> plt.Figure:
    """``base@k`` against k for every run on one split (segment all), the legend to the right."""
    use_lab_style()
    rows = _ok(rows, split=split)
    fig, ax = plt.subplots(figsize=(9, 4.2), layout="constrained")
    labels = _labels(rows)
    lines = []
    for run in dict.fromkeys(rows["run"]):
        style = styles[run]
        values = [rows.loc[rows["run"] == run, f"{base}@{k}"].mean() for k in ks]
        (line,) = ax.plot(
            ks,
            values,
            color=style.color,
            marker=style.marker,
            linestyle=style.linestyle,
            linewidth=style.linewidth,
            label=labels[run],
        )
        lines.append(line)
    ax.set(xlabel="k", ylabel=f"{base}@k", title=f"{base}@k: {split}", xticks=ks)
    fig.legend(handles=lines, loc="outside right upper", fontsize=8, frameon=False)
    return fig


def tradeoff(rows: pd.DataFrame, metric: str, k: int, split: str, styles: dict[str, RunStyle]) -> plt.Figure:
    """Coverage, novelty and diversity against accuracy, one marker per run (segment all), the legend to the right."""
    use_lab_style()
    rows = _ok(rows, split=split)
    measures = [m for m in (f"coverage@{k}", f"novelty@{k}", f"diversity@{k}") if m in rows]
    fig, axes = plt.subplots(
        1, len(measures), figsize=(4.5 * len(measures) + 3, 4), squeeze=False, layout="constrained"
    )
    labels = _labels(rows)
    runs = list(dict.fromkeys(rows["run"]))
    for ax, measure in zip(axes[0], measures):
        for run in runs:
            point = rows[rows["run"] == run]
            style = styles[run]
            ax.scatter(point[measure], point[metric], color=style.color, marker=style.marker, s=60, zorder=3)
        ax.set(xlabel=measure, ylabel=metric, title=f"{measure} vs {metric} ({split})")
    fig.legend(handles=_marker_handles(runs, styles, labels), loc="outside right upper", fontsize=8, frameon=False)
    return fig
