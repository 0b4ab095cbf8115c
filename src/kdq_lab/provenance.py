"""Provenance recorded next to every result: package versions, git commit, threads."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

#: Distributions whose versions are recorded in every manifest.
PACKAGES = ("kdq-lab", "rectools-lightfm", "numpy", "scipy", "pandas", "pyarrow", "matplotlib", "papermill")


def package_versions() -> dict[str, str]:
    """Installed versions of :data:`PACKAGES` and of Python itself."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit(root: Path) -> str | None:
    """The checked-out commit (with ``-dirty`` if the tree has changes), or ``None`` outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")
