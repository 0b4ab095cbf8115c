"""Project paths and lab-wide defaults.

Paths resolve from the project root: the nearest folder above the current
directory (or above this package) that holds ``pyproject.toml`` and ``src/kdq_lab``.
Set ``KDQ_LAB_ROOT`` to point the lab elsewhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATASET = "kdq-catalog"
DEFAULT_SEED = 7
#: Most runs (after grid expansion) an experiment may define; ``kdq-lab run --max-runs`` raises it.
MAX_RUNS = 200


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
    if env := os.environ.get("KDQ_LAB_ROOT"):
        return Path(env).resolve()
    for origin in (start or Path.cwd(), Path(__file__).resolve()):
        for candidate in (origin, *origin.parents):
            if _looks_like_root(candidate):
                return candidate
    return (start or Path.cwd()).resolve()


@dataclass(frozen=True)
class Paths:
    """Where the lab reads and writes."""

    root: Path

    @classmethod
    def default(cls) -> Paths:
        return cls(find_root())

    @property
    def raw(self) -> Path:
        return self.root / "data" / "raw"

    @property
    def processed(self) -> Path:
        return self.root / "data" / "processed"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def notebooks(self) -> Path:
        return self.root / "notebooks"

    @property
    def experiments(self) -> Path:
        return self.notebooks / "experiments"
