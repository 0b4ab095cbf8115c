"""Hangul renders with the bundled font: no missing-glyph boxes on a fresh machine."""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib import font_manager

from kdq_lab.plots import HANGUL_FONT, use_hangul_font


def test_hangul_renders_without_missing_glyphs(tmp_path):
    assert use_hangul_font() == HANGUL_FONT
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
