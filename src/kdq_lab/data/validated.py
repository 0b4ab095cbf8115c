"""The validated dataset, stored once per version of the raw files.

Validating reads and parses every raw file: at the ``large`` scale that takes minutes.
The first reader of a dataset version (the runner, before any notebook starts) validates
it and stores the result in compact form under
``data/processed/<dataset>/validated-<hash>/``: ``users.parquet`` and ``items.parquet``
(as loaded), ``interactions.parquet`` (user and item row positions, UTC time, event code,
weight, positive) and ``manifest.json`` (the raw files' hashes). Every later reader of the
same raw files loads that instead: no second validation, no second hashing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from kdq_lab.data.schema import read_spec
from kdq_lab.data.validate import EVENT, ITEM, POSITIVE, TIME, USER, WEIGHT, RawDataset, load_dataset, raw_hashes
from kdq_lab.errors import KdqError
from kdq_lab.files import atomic_dir, check_apart, stable_hash, write_json
from kdq_lab.jsonfile import read_json

VALIDATED_FORMAT = 1
MANIFEST = "manifest.json"


def validated_folder(dataset_dir: Path, processed_root: Path, hashes: dict[str, str]) -> Path:
    """Where the validated copy of this version of the dataset lives (never in, around or inside the dataset)."""
    key = stable_hash({"format": VALIDATED_FORMAT, "raw": hashes})
    folder = Path(processed_root) / read_spec(dataset_dir).name / f"validated-{key}"
    check_apart(folder, {"the dataset folder": dataset_dir})
    return folder


def _write(raw: RawDataset, folder: Path) -> None:
    frame = raw.interactions
    with atomic_dir(folder) as tmp:
        raw.users.to_parquet(tmp / "users.parquet", index=False)
        raw.items.to_parquet(tmp / "items.parquet", index=False)
        pd.DataFrame(
            {
                "user": frame[USER].cat.codes.to_numpy(),
                "item": frame[ITEM].cat.codes.to_numpy(),
                TIME: frame[TIME],
                "event": frame[EVENT].cat.codes.to_numpy(),
                WEIGHT: frame[WEIGHT].to_numpy(),
                POSITIVE: frame[POSITIVE].to_numpy(),
            }
        ).to_parquet(tmp / "interactions.parquet", index=False)
        write_json(tmp / MANIFEST, {"format": VALIDATED_FORMAT, "dataset": raw.name, "raw_hashes": raw.hashes})


def _read(folder: Path, dataset_dir: Path, hashes: dict[str, str]) -> RawDataset:
    spec = read_spec(dataset_dir)
    users = pd.read_parquet(folder / "users.parquet")
    items = pd.read_parquet(folder / "items.parquet")
    stored = pd.read_parquet(folder / "interactions.parquet")
    interactions = pd.DataFrame(
        {
            USER: pd.Categorical.from_codes(stored["user"].to_numpy(), categories=pd.Index(users[spec.users.id])),
            ITEM: pd.Categorical.from_codes(stored["item"].to_numpy(), categories=pd.Index(items[spec.items.id])),
            TIME: stored[TIME],
            EVENT: pd.Categorical.from_codes(
                stored["event"].to_numpy(np.int8), categories=list(spec.interactions.event_weights)
            ),
            WEIGHT: stored[WEIGHT].to_numpy(),
            POSITIVE: stored[POSITIVE].to_numpy(),
        }
    )
    del stored
    pa.default_memory_pool().release_unused()  # Parquet decoding buffers: give them back now
    return RawDataset(Path(dataset_dir), spec, users, items, interactions, dict(hashes))


def load_validated(dataset_dir: Path, processed_root: Path, hashes: dict[str, str] | None = None) -> RawDataset:
    """The dataset, from its validated copy; validated (raising :class:`DataError` if invalid) and stored first.

    ``hashes`` (the raw files' SHA-256, when the caller has them) spares hashing the raw files.
    """
    hashes = hashes if hashes is not None else raw_hashes(dataset_dir)
    folder = validated_folder(dataset_dir, processed_root, hashes)
    if _stored(folder, hashes):
        return _read(folder, dataset_dir, hashes)
    raw = load_dataset(dataset_dir, hashes=hashes)
    _write(raw, folder)
    return raw


def store_validated(dataset_dir: Path, processed_root: Path, hashes: dict[str, str]) -> Path:
    """Validate and store the dataset unless this version is stored already; the stored folder.

    Raises :class:`DataError` listing every problem when the dataset is invalid. Nothing
    is kept in memory afterwards.
    """
    folder = validated_folder(dataset_dir, processed_root, hashes)
    if not _stored(folder, hashes):
        _write(load_dataset(dataset_dir, hashes=hashes), folder)
    return folder


def _stored(folder: Path, hashes: dict[str, str]) -> bool:
    try:
        manifest = read_json(folder / MANIFEST, "validated dataset's manifest")
    except (OSError, KdqError):
        return False
    return (
        isinstance(manifest, dict)
        and manifest.get("format") == VALIDATED_FORMAT
        and manifest.get("raw_hashes") == hashes
    )
