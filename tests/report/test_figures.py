"""Report figures: one style per run everywhere, unique colour + marker pairs, legends outside the data."""

from __future__ import annotations

import itertools

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from figure_text import LITERAL, assert_literal
from matplotlib.colors import to_hex

from kdq_lab.plots import use_lab_style
from kdq_lab.report import figures
from kdq_lab.report.figures import CEILING_STYLE, PALETTE, REFERENCE_STYLE, run_styles

RUNS = ["random", "pop", *(f"model_{i}" for i in range(13)), "oracle"]


@pytest.fixture(scope="module")
def view() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for split, segment in (("cold", "new"), ("warm", "returning")):
        for i, run in enumerate(RUNS):
            value = 0.01 * i + rng.random() * 0.01
            base = {"run": run, "label": f"{run} 레이블 (label)", "split": split, "status": "ok", "n_users": 10}
            metrics = {"ndcg@10": value, "ndcg@10_lo": value - 0.005, "ndcg@10_hi": value + 0.005}
            metrics |= {f"{m}@{k}": value * k / 10 for m in ("ndcg", "recall") for k in (5, 10, 20)}
            metrics |= {"coverage@10": rng.random(), "novelty@10": 5 + rng.random(), "diversity@10": rng.random()}
            rows += [base | {"segment": "all"} | metrics, base | {"segment": segment} | metrics]
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def styles():
    return run_styles(RUNS, reference="pop", ceilings={"oracle"})


def test_styles_are_unique_and_ceiling_and_reference_stand_apart(styles):
    ordinary = [s for r, s in styles.items() if r not in ("pop", "oracle")]
    assert len({s.color for s in ordinary}) == len(ordinary), "up to 18 ordinary runs never share a colour"
    assert styles["oracle"] == CEILING_STYLE and styles["pop"] == REFERENCE_STYLE
    others = {s.color for s in ordinary}
    assert CEILING_STYLE.color not in others and REFERENCE_STYLE.color not in others
    assert CEILING_STYLE.linestyle != "-" and REFERENCE_STYLE.linestyle != "-" and CEILING_STYLE.hatch
    many = run_styles([f"r{i}" for i in range(126)])
    assert len({(s.color, s.marker) for s in many.values()}) == 126, "no two runs share colour and marker"
    assert len(set(PALETTE)) == len(PALETTE) == 18


def test_a_run_keeps_its_style_in_every_figure(view, styles):
    use_lab_style()
    seen: dict[str, set[str]] = {}
    lines = figures.metric_over_k(view, "ndcg", [5, 10, 20], "cold", styles)
    for line in lines.axes[0].get_lines():
        seen.setdefault(line.get_label().split(" ")[0], set()).add(to_hex(line.get_color()))
    scatter = figures.tradeoff(view, "ndcg@10", 10, "warm", styles)
    for handle in scatter.legends[0].legend_handles:
        seen.setdefault(handle.get_label().split(" ")[0], set()).add(to_hex(handle.get_color()))
    bars = figures.metric_bars(view, "ndcg@10", styles)
    ax = bars.axes[0]
    labels = [t.get_text().split(" ")[0] for t in ax.get_yticklabels()]
    for label, patch in zip(labels, ax.patches):
        seen.setdefault(label, set()).add(to_hex(patch.get_facecolor()))
    assert set(seen) == set(RUNS)
    assert all(colours == {styles[run].color} for run, colours in seen.items()), seen
    for fig in (lines, scatter, bars):
        plt.close(fig)


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


FIGURES = ["metric_bars", "segment_bars", "metric_over_k", "tradeoff"]


def draw(name: str, view: pd.DataFrame, styles) -> plt.Figure:
    """One of the report's figures, on the ``warm`` split where it draws one split."""
    if name == "metric_bars":
        return figures.metric_bars(view, "ndcg@10", styles)
    if name == "segment_bars":
        return figures.segment_bars(view, "ndcg@10", styles)
    if name == "metric_over_k":
        return figures.metric_over_k(view, "recall", [5, 10, 20], "warm", styles)
    return figures.tradeoff(view, "ndcg@10", 10, "warm", styles)


@pytest.mark.parametrize("name", FIGURES)
def test_legends_never_cover_the_axes(view, styles, name):
    use_lab_style()
    fig = draw(name, view, styles)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legends = fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert legends, "every comparison figure has a legend"
    for legend, ax in itertools.product(legends, fig.axes):
        assert not _overlap(legend.get_window_extent(renderer), ax.get_window_extent(renderer)), (name, ax.get_title())
    plt.close(fig)


@pytest.mark.parametrize("name", FIGURES)
def test_run_labels_are_drawn_as_written(view, styles, name, matplotlib_defaults):
    """Labels matplotlib would read as math, split or drop (a leading ``_``) appear whole, in every figure."""
    labels = {run: f"{LITERAL[i % len(LITERAL)]} {run}" for i, run in enumerate(RUNS)}
    fig = draw(name, view.assign(label=view["run"].map(labels)), styles)
    assert_literal(fig, list(labels.values()))
