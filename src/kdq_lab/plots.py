"""Shared figures. Hangul renders on a fresh machine: the lab registers NanumGothic from
the ``koreanize-matplotlib`` wheel (installed with the lab; nothing is downloaded)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import matplotlib.pyplot as plt
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
