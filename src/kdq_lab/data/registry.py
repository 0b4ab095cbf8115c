"""Find a dataset by path or name; built-in KDQ catalogs are generated on first use (offline)."""

from __future__ import annotations

import json
from pathlib import Path

from kdq_lab.config import DEFAULT_SEED, Paths
from kdq_lab.data.catalog import GENERATOR_VERSION, catalog_spec, generate_catalog
from kdq_lab.data.schema import SPEC_FILE, DatasetSpec, read_spec
from kdq_lab.errors import KdqError

#: Built-in datasets: name -> (scale, seed). ``kdq-catalog`` is the lab's default.
BUILTIN: dict[str, tuple[str, int]] = {
    "kdq-catalog": ("default", DEFAULT_SEED),
    "kdq-catalog-small": ("small", DEFAULT_SEED),
    "kdq-catalog-tiny": ("tiny", DEFAULT_SEED),
}


def _generated_version(folder: Path) -> int | None:
    """The generator version that made ``folder``, or ``None`` if the lab did not generate it."""
    params = folder / "ground_truth" / "params.json"
    try:
        return json.loads(params.read_text(encoding="utf-8")).get("generator_version")
    except (OSError, ValueError, AttributeError):
        return None


def dataset_exists(name_or_path: str | Path, paths: Paths | None = None) -> bool:
    """Whether :func:`resolve_dataset` can find (or generate) this dataset."""
    paths = paths or Paths.default()
    return (str(name_or_path) in BUILTIN or (Path(name_or_path) / SPEC_FILE).is_file()
            or (paths.raw / str(name_or_path) / SPEC_FILE).is_file())


def dataset_spec(name_or_path: str | Path, paths: Paths | None = None) -> DatasetSpec | None:
    """The ``dataset.yaml`` of a dataset, without generating anything (``None`` if not found)."""
    paths = paths or Paths.default()
    for folder in (Path(name_or_path), paths.raw / str(name_or_path)):
        if (folder / SPEC_FILE).is_file() and str(name_or_path) not in BUILTIN:
            return read_spec(folder)
    return catalog_spec(str(name_or_path)) if str(name_or_path) in BUILTIN else None


def resolve_dataset(name_or_path: str | Path, paths: Paths | None = None, progress: bool = True) -> Path:
    """The folder of a dataset given as a path, a name under ``data/raw/``, or a built-in name.

    A built-in catalog missing from ``data/raw/`` (or made by an older generator) is
    generated there first, deterministically. A folder there that the lab did not
    generate is never overwritten.
    """
    paths = paths or Paths.default()
    candidate = Path(name_or_path)
    if (candidate / SPEC_FILE).is_file() and str(name_or_path) not in BUILTIN:
        return candidate
    folder = paths.raw / str(name_or_path)
    if str(name_or_path) in BUILTIN:
        version = _generated_version(folder)
        if folder.exists() and version is None:
            raise KdqError(f"{folder} holds data the lab did not generate, but {name_or_path!r} is a built-in name; "
                           "move that folder or give your dataset another name")
        if version != GENERATOR_VERSION:
            scale, seed = BUILTIN[str(name_or_path)]
            generate_catalog(folder, scale=scale, seed=seed, name=str(name_or_path), progress=progress)
        return folder
    if (folder / SPEC_FILE).is_file():
        return folder
    raise KdqError(
        f"no dataset {str(name_or_path)!r}: not a folder with {SPEC_FILE}, not under {paths.raw}, "
        f"and not built in ({', '.join(BUILTIN)})"
    )
