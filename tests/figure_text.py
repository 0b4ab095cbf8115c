"""Checks that a figure draws user text as written (shared by the figure tests)."""

from __future__ import annotations

import io

import matplotlib.pyplot as plt
from matplotlib.text import Text

#: User text matplotlib would read as math or mangle; each must be drawn as written
LITERAL = [
    "pop $\\notacommand$",  # an unknown command: the figure would fail
    "$x^$ 실험",  # broken math: the figure would fail
    "$x$ 그대로",  # valid math: the dollars would vanish
    "두 줄\n(two lines)",
    "100% 정확",
    "_밑줄로 시작",  # a legend would leave it out
    "큰당큐 — AI 영상",
]


def drawn_texts(fig: plt.Figure) -> list[Text]:
    """Every non-empty text of ``fig``, after drawing it whole (what saving a report figure does)."""
    fig.savefig(io.BytesIO(), format="png")
    return [t for t in fig.findobj(Text) if t.get_text()]


def assert_literal(fig: plt.Figure, expected: list[str]) -> None:
    texts = drawn_texts(fig)
    assert [t.get_text() for t in texts if t.get_parse_math()] == [], "text read as math"
    shown = {t.get_text() for t in texts}
    assert [e for e in expected if e not in shown] == [], "text missing from the figure"
    plt.close(fig)
