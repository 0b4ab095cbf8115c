"""Shared figures, drawn the lab's way: Hangul renders, and text shows exactly what it says.

Hangul renders on a fresh machine: the lab registers NanumGothic from the ``koreanize-matplotlib``
wheel (installed with the lab; nothing is downloaded). Text is literal: matplotlib reads text
between ``$`` signs as math, so a run label or an item title such as ``pop $\\notacommand$`` would
stop the figure (and the notebook drawing it); :func:`use_lab_style` turns math parsing off for
every text drawn after it (titles, axis and tick labels, legends, annotations). Every figure
function of the lab calls it, and every notebook calls it first. Log axes need
:func:`readable_log_ticks`: matplotlib writes their tick labels as math.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib import font_manager, ticker
from matplotlib.scale import LogTransform

from kdq_lab.explain import Explanation

HANGUL_FONT = "NanumGothic"


def _font_files() -> list[Path]:
    spec = importlib.util.find_spec("koreanize_matplotlib")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("koreanize-matplotlib is not installed; `make venv` installs it with the lab")
    return sorted(Path(next(iter(spec.submodule_search_locations)), "fonts").glob("*.ttf"))


@functools.cache
def _register_fonts() -> None:
    for path in _font_files():
        font_manager.fontManager.addfont(str(path))


def use_lab_style() -> str:
    """Make matplotlib draw the lab's way (see the module docstring); return the font family.

    NanumGothic is the default font, DejaVu Sans (shipped with matplotlib) the fallback for the
    few symbols it lacks (e.g. "−"); ``text.parse_math`` is off, so ``$`` is a dollar sign.
    """
    _register_fonts()
    plt.rcParams["font.family"] = [HANGUL_FONT, "DejaVu Sans"]
    plt.rcParams["axes.unicode_minus"] = False
    plt.rcParams["text.parse_math"] = False
    return HANGUL_FONT


def readable_log_ticks(fig: plt.Figure) -> plt.Figure:
    """Plain tick labels (``1``, ``10``, ``1e+04``) on every log axis of ``fig``.

    matplotlib labels log axes with math (``$\\mathdefault{10^{2}}$``), which literal text
    (:func:`use_lab_style`) would show as it is written.
    """
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            transform = axis.get_transform()
            if isinstance(transform, LogTransform):
                axis.set_major_formatter(ticker.LogFormatter(transform.base))
                axis.set_minor_formatter(ticker.LogFormatter(transform.base, labelOnlyBase=False))
    return fig


def save(fig: plt.Figure, path: Path, dpi: int = 120) -> Path:
    """Save a figure (PNG), creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def explanation_bars(explanation: Explanation, title: str, n: int = 10) -> plt.Figure:
    """The ``n`` largest terms of one explanation (the user bias left out: it is the same for every item)."""
    terms = [t for t in explanation.terms if t.kind != "user_bias"]
    terms = sorted(terms, key=lambda t: -abs(t.value))[:n][::-1]
    use_lab_style()
    fig, ax = plt.subplots(figsize=(9, 0.35 * len(terms) + 1.2))
    ax.barh(
        [t.label for t in terms],
        [t.value for t in terms],
        color=["#55a868" if t.value > 0 else "#c44e52" for t in terms],
    )
    ax.set(title=title, xlabel="기여도 (contribution to the score)")
    fig.tight_layout()
    return fig
