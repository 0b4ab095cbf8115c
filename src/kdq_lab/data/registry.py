"""Find a dataset by path or name; built-in KDQ catalogs are generated on first use (offline)."""

from __future__ import annotations

from pathlib import Path

from kdq_lab.config import DEFAULT_SEED, Paths
from kdq_lab.data.catalog import GENERATOR_VERSION, SCALES, catalog_spec, generate_catalog
from kdq_lab.data.schema import SPEC_FILE, DatasetSpec, read_spec
from kdq_lab.errors import KdqError
from kdq_lab.jsonfile import read_json
from kdq_lab.names import RULE, name_problem

#: Built-in datasets: name -> (scale, seed). ``kdq-catalog`` is the lab's default; ``-large`` (1.2M users,
#: Parquet) is for scale benchmarks and takes a minute and a half to generate.
BUILTIN: dict[str, tuple[str, int]] = {
    "kdq-catalog": ("default", DEFAULT_SEED),
    "kdq-catalog-small": ("small", DEFAULT_SEED),
    "kdq-catalog-tiny": ("tiny", DEFAULT_SEED),
    "kdq-catalog-large": ("large", DEFAULT_SEED),
}


def _generated_version(folder: Path) -> int | None:
    """The generator version that made ``folder``, or ``None`` if the lab did not generate it."""
    params = folder / "ground_truth" / "params.json"
    try:
        data = read_json(params, "generator parameters")
    except (OSError, KdqError):
        return None
    return data.get("generator_version") if isinstance(data, dict) else None


def _given_folder(name_or_path: str | Path) -> Path | None:
    """The argument as a dataset folder (one holding ``dataset.yaml``), unless it is a built-in name."""
    candidate = Path(name_or_path)
    return candidate if str(name_or_path) not in BUILTIN and (candidate / SPEC_FILE).is_file() else None


def _named_folder(name: str, paths: Paths) -> Path | None:
    """``data/raw/<name>`` for a safe name; ``None`` for anything else (never joined onto data/raw)."""
    return paths.raw / name if name_problem(name) is None else None


def dataset_exists(name_or_path: str | Path, paths: Paths | None = None) -> bool:
    """Whether :func:`resolve_dataset` can find (or generate) this dataset."""
    paths = paths or Paths.default()
    named = _named_folder(str(name_or_path), paths)
    return (
        str(name_or_path) in BUILTIN
        or _given_folder(name_or_path) is not None
        or (named is not None and (named / SPEC_FILE).is_file())
    )


def dataset_spec(name_or_path: str | Path, paths: Paths | None = None) -> DatasetSpec | None:
    """The ``dataset.yaml`` of a dataset, without generating anything (``None`` if not found)."""
    paths = paths or Paths.default()
    if str(name_or_path) in BUILTIN:
        return catalog_spec(str(name_or_path), SCALES[BUILTIN[str(name_or_path)][0]].file_format)
    for folder in (_given_folder(name_or_path), _named_folder(str(name_or_path), paths)):
        if folder is not None and (folder / SPEC_FILE).is_file():
            return read_spec(folder)
    return None


def resolve_dataset(name_or_path: str | Path, paths: Paths | None = None, progress: bool = True) -> Path:
    """The folder of a dataset given as a path, a name under ``data/raw/``, or a built-in name.

    A built-in catalog missing from ``data/raw/`` (or made by an older generator) is
    generated there first, deterministically. A folder there that the lab did not
    generate is never overwritten.
    """
    paths = paths or Paths.default()
    given = _given_folder(name_or_path)
    if given is not None:
        return given
    folder = _named_folder(str(name_or_path), paths)
    if folder is None:
        raise KdqError(
            f"no dataset {str(name_or_path)!r}: not a folder with {SPEC_FILE}, and not a dataset name "
            f"under {paths.raw} (a name uses {RULE})"
        )
    if str(name_or_path) in BUILTIN:
        version = _generated_version(folder)
        if folder.exists() and version is None:
            raise KdqError(
                f"{folder} holds data the lab did not generate, but {name_or_path!r} is a built-in name; "
                "move that folder or give your dataset another name"
            )
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
