"""Finished runs kept by content hash, so the same command again reuses them (locally or after a lost cluster).

A run's key hashes everything its outputs depend on: the notebook's source, its parameters
(prepared splits by their id, which hashes the raw files and the split settings), the lab's
own code and the installed package versions. Only successful runs are kept. The cache lives
in ``data/processed/run-cache/`` (derived data: ``make clean`` removes it).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

import kdq_lab
from kdq_lab.files import MARKER, atomic_dir, copy_lab_folder, sha256_file, stable_hash
from kdq_lab.provenance import package_versions

CACHE = "run-cache"
COMPLETE = ".complete"  # written last into a cached run: the copy is whole
#: Parameters that only say where outputs go or how fast to work: never part of a key.
VOLATILE = frozenset({"OUTPUT_DIR", "REPORT_DIR"})


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """SHA-256 of the lab's source files (names and bytes): the same on every machine with the same code."""
    package = Path(kdq_lab.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode("utf-8") + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _portable(parameters: dict[str, Any]) -> dict[str, Any]:
    """Parameters without volatile entries, prepared splits named by their folder (= split id), not their path."""
    out = {k: v for k, v in parameters.items() if k not in VOLATILE}
    if isinstance(out.get("SPLITS"), list):
        out["SPLITS"] = [{**ref, "folder": Path(ref["folder"]).name} for ref in out["SPLITS"]]
    if isinstance(out.get("RUN"), dict):
        out["RUN"] = {k: v for k, v in out["RUN"].items() if k != "threads"}
    return out


def unit_key(notebook: Path, parameters: dict[str, Any]) -> str:
    """The content key of executing ``notebook`` with ``parameters``."""
    payload = {
        "notebook": sha256_file(Path(notebook)),
        "parameters": _portable(parameters),
        "code": code_fingerprint(),
        "versions": package_versions(),
    }
    return stable_hash(payload, 24)


def lookup(processed: Path, key: str) -> Path | None:
    """The cached outputs of ``key``, or ``None``."""
    folder = Path(processed) / CACHE / key
    return folder if (folder / COMPLETE).is_file() else None


def keep(processed: Path, key: str, outputs: Path) -> None:
    """Copy a finished run's output folder into the cache (atomically; links and special files are skipped)."""
    with atomic_dir(Path(processed) / CACHE / key) as tmp:
        copy_lab_folder(outputs, tmp)
        (tmp / COMPLETE).write_text(key + "\n", encoding="utf-8")


def restore(cached: Path, target: Path) -> None:
    """Put cached outputs where the run would have written them (links and special files are skipped)."""
    copy_lab_folder(cached, target, skip=(COMPLETE, MARKER))
