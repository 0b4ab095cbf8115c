"""Processed splits on disk: ``data/processed/<dataset>/<split-id>/``.

A split folder holds parquet tables, npz matrices and a ``manifest.json`` with the
hashes of the raw files and every parameter. The split id hashes exactly those, so
an unchanged dataset and split are never rebuilt, and a changed one never reused.

Files: ``users.parquet``, ``items.parquet`` (profiles, row i = matrix row i),
``events.parquet`` (positive events with their part), ``train.npz``,
``validation.npz``, ``test.npz`` (summed weights; the interactions are their
non-zero pattern), ``seen_train.npz`` and ``seen_known.npz`` (pairs with an event of any
type, positive or not, in the train period and in train + validation: what the ``seen``
exclusion rule removes from a ranking), ``withheld.npz`` (items a model may not train on,
until validation and until test), ``user_features.npz``, ``item_features.npz``
(multi-hot, no identity, no normalisation), ``features.json`` (vocabularies) and, for
datasets with one, ``ground_truth/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from kdq_lab.checks import is_int
from kdq_lab.data.build import FeatureVocabulary, pair_matrices
from kdq_lab.data.schema import read_spec
from kdq_lab.data.splits import PARTS, SplitConfig, seen_pairs, split_events, withheld_items
from kdq_lab.data.validate import raw_hashes
from kdq_lab.data.validated import load_validated
from kdq_lab.errors import KdqError
from kdq_lab.files import atomic_dir, check_apart, copy_lab_folder, stable_hash, write_json
from kdq_lab.jsonfile import read_json
from kdq_lab.limits import MAX_ENTITY_ROWS, MAX_INTERACTION_ROWS
from kdq_lab.npzfile import read_csr, read_npz
from kdq_lab.provenance import package_versions

STORE_FORMAT = 3


@dataclass(frozen=True)
class Part:
    """One part of a split: binary interactions (int32) and summed weights (float32).

    The interactions are the weights' stored pattern, so a positive event of weight 0 still counts.
    """

    interactions: sp.csr_matrix
    weights: sp.csr_matrix

    @classmethod
    def from_weights(cls, weights: sp.csr_matrix) -> Part:
        weights = sp.csr_matrix(weights, dtype=np.float32)
        coo = weights.tocoo()
        return cls(*pair_matrices(coo.row, coo.col, coo.data, weights.shape))

    def __add__(self, other: Part) -> Part:
        a, b = self.weights.tocoo(), other.weights.tocoo()
        return Part(
            *pair_matrices(
                np.concatenate([a.row, b.row]),
                np.concatenate([a.col, b.col]),
                np.concatenate([a.data, b.data]),
                self.weights.shape,
            )
        )


@dataclass(frozen=True)
class SplitData:
    """A prepared split, loaded: what every model and evaluator consumes."""

    folder: Path
    manifest: dict
    users: pd.DataFrame
    items: pd.DataFrame
    events: pd.DataFrame
    user_vocab: FeatureVocabulary
    item_vocab: FeatureVocabulary
    user_features: sp.csr_matrix
    item_features: sp.csr_matrix
    train: Part
    validation: Part
    test: Part
    seen_train: sp.csr_matrix
    seen_known: sp.csr_matrix
    withheld_until_test: np.ndarray
    withheld_until_validation: np.ndarray

    @property
    def config(self) -> SplitConfig:
        return SplitConfig.from_dict(self.manifest["split"])

    @property
    def split_id(self) -> str:
        return self.manifest["split_id"]

    @property
    def dataset(self) -> str:
        return self.manifest["dataset"]

    @cached_property
    def user_ids(self) -> pd.Index:
        return pd.Index(self.users[self.manifest["user_id_column"]].astype(str))

    @cached_property
    def item_ids(self) -> pd.Index:
        return pd.Index(self.items[self.manifest["item_id_column"]].astype(str))

    @property
    def known(self) -> Part:
        """Train plus validation: everything known before the test period."""
        return self.train + self.validation

    @property
    def ground_truth(self) -> Path | None:
        folder = self.folder / "ground_truth"
        return folder if folder.is_dir() else None


def split_folder(
    dataset_dir: Path, config: SplitConfig, processed_root: Path, hashes: dict[str, str] | None = None
) -> Path:
    """Where the split of this dataset version and config lives (``hashes``: the raw files', if known).

    Refused if that folder would be, hold or lie inside the dataset folder (the split replaces it whole).
    """
    spec = read_spec(dataset_dir)
    hashes = hashes if hashes is not None else raw_hashes(dataset_dir, spec)
    key = stable_hash({"format": STORE_FORMAT, "raw": hashes, "split": config.to_dict()})
    folder = Path(processed_root) / spec.name / f"{config.kind}-{key}"
    check_apart(folder, {"the dataset folder": dataset_dir})
    return folder


def prepare(
    dataset_dir: Path,
    config: SplitConfig,
    processed_root: Path,
    force: bool = False,
    hashes: dict[str, str] | None = None,
) -> Path:
    """Validate, split and store a dataset, unless the same split is already stored.

    Returns the split folder. Nothing is written when validation fails. The dataset is
    validated once per version of its raw files (see :mod:`kdq_lab.data.validated`);
    ``hashes`` (the raw files' SHA-256, when the caller has them) spares hashing them again.
    """
    dataset_dir = Path(dataset_dir)
    hashes = hashes if hashes is not None else raw_hashes(dataset_dir)  # once, for the folder and the data
    out = split_folder(dataset_dir, config, processed_root, hashes)
    if (out / "manifest.json").is_file() and not force:
        return out
    raw = load_validated(dataset_dir, processed_root, hashes)
    cut = split_events(raw, config)
    spec, users, items, hashes = raw.spec, raw.users, raw.items, raw.hashes
    shape = (len(users), len(items))
    seen = {
        name: pair_matrices(*seen_pairs(raw, cut, periods), None, shape)[0]
        for name, periods in (("seen_train", ("train",)), ("seen_known", ("train", "validation")))
    }
    until_test, until_validation = withheld_items(raw, cut)
    del raw  # the interactions are no longer needed: free them before the features are built
    events = cut.events
    user_vocab = FeatureVocabulary.fit(users, spec.users, spec.separator)
    item_vocab = FeatureVocabulary.fit(items, spec.items, spec.separator)
    with atomic_dir(out) as tmp:
        users.to_parquet(tmp / "users.parquet", index=False)
        items.to_parquet(tmp / "items.parquet", index=False)
        events.to_parquet(tmp / "events.parquet", index=False)
        for name, vocab, frame in (("user", user_vocab, users), ("item", item_vocab, items)):
            sp.save_npz(tmp / f"{name}_features.npz", vocab.transform(frame)[0])
        write_json(tmp / "features.json", {"user": user_vocab.to_dict(), "item": item_vocab.to_dict()})
        counts = {}
        codes = events["part"].cat.codes.to_numpy()
        for code, part in enumerate(PARTS):
            rows = codes == code
            _, weights = pair_matrices(
                events["user"].to_numpy()[rows],
                events["item"].to_numpy()[rows],
                events["weight"].to_numpy()[rows],
                shape,
            )
            sp.save_npz(tmp / f"{part}.npz", weights)
            counts[part] = {
                "events": int(rows.sum()),
                "pairs": int(weights.nnz),
                "users": int((np.diff(weights.indptr) > 0).sum()),
            }
        for name, binary in seen.items():
            sp.save_npz(tmp / f"{name}.npz", binary)
            counts[name] = {"pairs": int(binary.nnz)}
        np.savez(tmp / "withheld.npz", until_test=until_test, until_validation=until_validation)
        counts["withheld_items"] = {
            "until_test": int(until_test.sum()),
            "until_validation": int(until_validation.sum()),
        }
        if spec.ground_truth:
            copy_lab_folder(dataset_dir / spec.ground_truth, tmp / "ground_truth")  # links skipped, never followed
        write_json(
            tmp / "manifest.json",
            {
                "format": STORE_FORMAT,
                "dataset": spec.name,
                "dataset_title": spec.title,
                "split_id": out.name,
                "split": config.to_dict(),
                "raw_hashes": hashes,
                "user_id_column": spec.users.id,
                "item_id_column": spec.items.id,
                "user_timestamp_column": spec.users.timestamp,
                "item_timestamp_column": spec.items.timestamp,
                "item_text_columns": list(spec.items.text),
                "shape": list(shape),
                "counts": counts,
                "versions": package_versions(),
            },
        )
    return out


def load_split(folder: Path) -> SplitData:
    """Load a split folder written by :func:`prepare`.

    Every array is read through :mod:`kdq_lab.npzfile`, bounded by the sizes the manifest and the
    vocabularies declare, and every sparse matrix's structure is checked before it is used.
    """
    folder = Path(folder)
    manifest_path = folder / "manifest.json"
    try:
        manifest = read_json(manifest_path, "split manifest")
    except FileNotFoundError:
        raise KdqError(f"{folder} is not a prepared split (no manifest.json); run `kdq-lab prepare` first") from None
    if not isinstance(manifest, dict) or manifest.get("format") != STORE_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise KdqError(f"{manifest_path}: store format {found} is not {STORE_FORMAT}; prepare it again")
    try:
        return _load(folder, manifest)
    except (KeyError, TypeError, ValueError) as exc:
        raise KdqError(f"{folder}: damaged split ({type(exc).__name__}: {exc}); prepare it again") from None


def _load(folder: Path, manifest: dict[str, Any]) -> SplitData:
    shape = manifest["shape"]
    if not (
        isinstance(shape, list) and len(shape) == 2 and all(is_int(n) and 0 <= n <= MAX_ENTITY_ROWS for n in shape)
    ):
        raise KdqError(f"{folder / 'manifest.json'}: shape {shape!r} is not two counts of at most {MAX_ENTITY_ROWS:,}")
    n_users, n_items = shape
    vocab = read_json(folder / "features.json", "split vocabularies")
    user_vocab, item_vocab = FeatureVocabulary.from_dict(vocab["user"]), FeatureVocabulary.from_dict(vocab["item"])

    def matrix(name: str, rows: int, columns: int, entries: int | None = None) -> sp.csr_matrix:
        """A stored matrix of ``rows x columns``, at most ``entries`` stored (default: every cell)."""
        bound = rows * columns if entries is None else entries
        return read_csr(folder / f"{name}.npz", (rows, columns), bound, f"split matrix {name}")

    parts = {part: Part.from_weights(matrix(part, n_users, n_items, MAX_INTERACTION_ROWS)) for part in PARTS}
    withheld = read_npz(folder / "withheld.npz", {"until_test": n_items, "until_validation": n_items}, "withheld items")
    return SplitData(
        folder=folder,
        manifest=manifest,
        users=pd.read_parquet(folder / "users.parquet"),
        items=pd.read_parquet(folder / "items.parquet"),
        events=pd.read_parquet(folder / "events.parquet"),
        user_vocab=user_vocab,
        item_vocab=item_vocab,
        user_features=matrix("user_features", n_users, len(user_vocab)),
        item_features=matrix("item_features", n_items, len(item_vocab)),
        seen_train=matrix("seen_train", n_users, n_items, MAX_INTERACTION_ROWS),
        seen_known=matrix("seen_known", n_users, n_items, MAX_INTERACTION_ROWS),
        withheld_until_test=withheld["until_test"],
        withheld_until_validation=withheld["until_validation"],
        **parts,
    )
