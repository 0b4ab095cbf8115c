"""Figures are drawn the lab's way: Hangul renders, and every text shows exactly what it says.

matplotlib reads text between ``$`` signs as math: ``pop $\\notacommand$`` would stop a figure,
``$x$`` would lose its dollars. The lab turns math parsing off (``use_lab_style``), and every
figure function draws in that style even when nothing set it before.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest
from figure_text import LITERAL, assert_literal, drawn_texts
from matplotlib import font_manager

from kdq_lab.explain import Explanation, Term
from kdq_lab.plots import HANGUL_FONT, explanation_bars, readable_log_ticks, use_lab_style

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_hangul_renders_without_missing_glyphs(tmp_path):
    assert use_lab_style() == HANGUL_FONT
    path = font_manager.findfont(font_manager.FontProperties(family=HANGUL_FONT), fallback_to_default=False)
    assert "NanumGothic" in path
    fig, ax = plt.subplots()
    ax.set_title("큰당큐: 예술인 × AI 영상 — 콜드 스타트")
    ax.set_xlabel("음수 −1 과 한글")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns "Glyph ... missing from font(s)"
        fig.savefig(tmp_path / "hangul.png")
    plt.close(fig)
    assert (tmp_path / "hangul.png").stat().st_size > 1000


def test_the_fonts_are_registered_once():
    use_lab_style()
    before = len(font_manager.fontManager.ttflist)
    use_lab_style()
    use_lab_style()
    assert len(font_manager.fontManager.ttflist) == before


@pytest.mark.parametrize("text", LITERAL)
def test_every_kind_of_text_is_literal_in_the_lab_style(text, matplotlib_defaults):
    """Titles, axis and tick labels, legends, annotations, figure titles, colour bars and free text."""
    use_lab_style()
    fig, (ax, other) = plt.subplots(1, 2)
    bars = ax.bar([text, "b"], [1, 2])  # categorical ticks: the text becomes a tick label
    ax.set(title=text, xlabel=text, ylabel=text)
    legend = ax.legend(handles=[bars], labels=[text])
    annotation = ax.annotate(text, (0, 1))
    free = ax.text(0.5, 0.5, text)
    title = fig.suptitle(text)
    image = other.imshow([[0, 1], [1, 0]])
    bar = fig.colorbar(image, ax=other, label=text)
    other.set_yticks([0, 1], [text, "y"])
    drawn_texts(fig)
    ticks = [t for t in [*ax.get_xticklabels(), *other.get_yticklabels()] if t.get_text() == text]
    elements = [ax.title, ax.xaxis.label, ax.yaxis.label, *legend.get_texts(), annotation, free, title]
    elements += [bar.ax.yaxis.label, *ticks]
    assert len(ticks) == 2 and [e.get_text() for e in elements] == [text] * len(elements)
    assert not any(e.get_parse_math() for e in elements), "text read as math"
    assert_literal(fig, [text])


@pytest.mark.parametrize("text", LITERAL)
def test_explanation_chart_draws_titles_and_terms_as_written(text, matplotlib_defaults):
    terms = [
        Term("pair", f"관심사: {text}", "주제: AI 영상", 0.8),
        Term("item_bias", None, f"제작자: {text}", -0.3),
        Term("user_bias", "사용자", None, 0.1),
    ]
    fig = explanation_bars(Explanation(3, 0.6, terms), f"{text}: why #1 — {text}")
    assert_literal(fig, [f"{text}: why #1 — {text}", f"관심사: {text} × 주제: AI 영상", f"제작자: {text}"])


def test_log_axes_keep_readable_ticks_in_the_lab_style(matplotlib_defaults):
    use_lab_style()
    fig, ax = plt.subplots()
    ax.loglog([1, 10, 100, 1000], [1, 50, 900, 20000])
    math = [t.get_text() for t in drawn_texts(fig) if "$" in t.get_text()]
    assert math, "matplotlib writes log ticks as math (what readable_log_ticks is for)"
    readable_log_ticks(fig)
    ticks = [t.get_text() for t in drawn_texts(fig) if t in ax.get_xticklabels() + ax.get_yticklabels()]
    assert "100" in ticks and not [t for t in ticks if "$" in t or "mathdefault" in t]
    plt.close(fig)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_draws_in_the_lab_style(path):
    """The settings cell sets the style before any cell draws (so notebook cells' own figures are literal)."""
    cells = [c for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]
    first = "".join(cells[0]["source"])
    assert "use_lab_style()" in first, f"{path.name}: the settings cell calls use_lab_style()"
