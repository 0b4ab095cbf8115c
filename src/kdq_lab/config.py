"""Project paths and lab-wide defaults.

The project root (notebooks, experiments, personas) is the nearest folder above the
current directory (or above this package) that holds ``pyproject.toml`` and
``src/kdq_lab``; set ``KDQ_LAB_ROOT`` to point the lab elsewhere. What the lab writes
(``data/raw``, ``data/processed``, ``reports``) lives under the project root too, unless
``KDQ_LAB_DATA`` names another folder: the tests point it at a temporary folder, and
notebooks executed by papermill or nbval inherit it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATASET = "kdq-catalog"
DEFAULT_SEED = 7
ROOT_ENV = "KDQ_LAB_ROOT"
DATA_ENV = "KDQ_LAB_DATA"


def _looks_like_root(path: Path) -> bool:
    return (path / "pyproject.toml").is_file() and (path / "src" / "kdq_lab").is_dir()


def find_root(start: Path | None = None) -> Path:
    """Return the project root.

    Parameters
    ----------
    start
        Folder to search upwards from; defaults to the current directory, then
        this package's location.
    """
    if env := os.environ.get(ROOT_ENV):
        return Path(env).resolve()
    for origin in (start or Path.cwd(), Path(__file__).resolve()):
        for candidate in (origin, *origin.parents):
            if _looks_like_root(candidate):
                return candidate
    return (start or Path.cwd()).resolve()


@dataclass(frozen=True)
class Paths:
    """Where the lab reads (``root``) and writes (``workspace``, the root unless given)."""

    root: Path
    workspace: Path | None = None

    @classmethod
    def default(cls) -> Paths:
        """The project root, and ``KDQ_LAB_DATA`` as the workspace when it is set."""
        data = os.environ.get(DATA_ENV)
        return cls(find_root(), Path(data).resolve() if data else None)

    @property
    def home(self) -> Path:
        """The folder holding ``data/`` and ``reports/``."""
        return self.workspace or self.root

    @property
    def raw(self) -> Path:
        return self.home / "data" / "raw"

    @property
    def processed(self) -> Path:
        return self.home / "data" / "processed"

    @property
    def reports(self) -> Path:
        return self.home / "reports"

    @property
    def notebooks(self) -> Path:
        return self.root / "notebooks"

    @property
    def experiments(self) -> Path:
        return self.notebooks / "experiments"

    def environment(self) -> dict[str, str]:
        """The variables that make a child process (a notebook kernel) see these paths: ``KDQ_LAB_ROOT`` and
        ``KDQ_LAB_DATA``."""
        return {ROOT_ENV: str(self.root), DATA_ENV: str(self.home)}

    def notebook(self, name: str) -> Path:
        """The notebook ``name`` (without ``.ipynb``) under ``notebooks/``."""
        return self.notebooks / f"{name}.ipynb"
