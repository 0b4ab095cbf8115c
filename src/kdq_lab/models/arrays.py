"""Models saved as named arrays: ``model.npz`` (item vectors and CSR matrices) and ``model.json`` (kind, config,
sizes), never pickle.

A model class lists its arrays as a *layout*: name → the sides of its shape, ``("items",)`` for a vector with a
value per item, ``("users", "factors")`` for a dense matrix, and the names stored as CSR matrices (``sparse``):
``("users", "items")`` or ``("items", "items")``. Loading bounds every array by
the sizes ``model.json`` declares before reading it, then checks shapes, finiteness and every CSR invariant;
all problems are reported at once, naming the file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
import scipy.sparse as sp

from kdq_lab.errors import DataError, KdqError, Problem
from kdq_lab.files import atomic_dir
from kdq_lab.jsonfile import read_json
from kdq_lab.limits import MAX_ENTITY_ROWS, MAX_MODEL_JSON_BYTES
from kdq_lab.models.base import ModelConfig
from kdq_lab.npzfile import csr_problems, read_npz

FORMAT = 1
Layout = Mapping[str, tuple[str, ...]]
C = TypeVar("C", bound=ModelConfig)


def save_arrays(
    folder: Path,
    kind: str,
    config: ModelConfig,
    sizes: dict[str, int],
    arrays: dict[str, np.ndarray | sp.csr_matrix],
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``arrays`` (vectors as they are, CSR matrices as their four parts) and ``model.json``, atomically."""
    members: dict[str, np.ndarray] = {}
    for name, value in arrays.items():
        if sp.issparse(value):
            matrix = sp.csr_matrix(value)
            members |= {
                f"{name}_data": matrix.data,
                f"{name}_indices": matrix.indices,
                f"{name}_indptr": matrix.indptr,
                f"{name}_shape": np.asarray(matrix.shape, dtype=np.int64),
            }
        else:
            members[name] = np.asarray(value)
    meta = {"format": FORMAT, "kind": kind, "config": config.to_dict(), "sizes": sizes, "extra": extra or {}}
    with atomic_dir(Path(folder)) as tmp:
        np.savez_compressed(tmp / "model.npz", **cast(dict[str, Any], members))
        (tmp / "model.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return Path(folder)


def load_arrays(
    folder: Path,
    kind: str,
    config_type: type[C],
    layout: Layout,
    sparse: frozenset[str] = frozenset(),
    sides: frozenset[str] = frozenset(),
) -> tuple[C, dict[str, Any], dict[str, int]]:
    """(config, arrays by name, sizes) of a model saved by :func:`save_arrays` with this ``layout`` (the names in
    ``sparse`` are CSR matrices; ``sides``: sizes it needs besides its arrays')."""
    folder = Path(folder)
    file = folder / "model.json"
    try:
        meta = read_json(file, "saved model's model.json", MAX_MODEL_JSON_BYTES)
    except FileNotFoundError:
        raise KdqError(f"{folder}: no model.json; not a saved kdq_lab model") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("kind") != kind:
        found = (meta.get("format"), meta.get("kind")) if isinstance(meta, dict) else (None, None)
        raise KdqError(f"{file}: format {found[0]!r} kind {found[1]!r}; this lab reads format {FORMAT} kind {kind!r}")
    sizes = meta.get("sizes")
    sides = sides | {side for shape in layout.values() for side in shape}
    if not isinstance(sizes, dict) or not all(_count(sizes.get(side)) for side in sides):
        raise KdqError(f"{file}: 'sizes' must give {', '.join(sorted(sides))} as integers in [0, {MAX_ENTITY_ROWS:,}]")
    if not isinstance(meta.get("config"), dict):
        raise KdqError(f"{file}: 'config' must be a mapping of {kind} parameters")
    try:
        config = config_type.from_dict(meta["config"], kind)
    except (KdqError, TypeError, ValueError) as exc:
        raise KdqError(f"{file}: bad 'config': {exc}") from None
    bounds: dict[str, int] = {}
    for name, shape in layout.items():
        if name not in sparse:
            bounds[name] = math.prod(sizes[side] for side in shape)
        else:
            rows, entries = sizes[shape[0]], sizes[shape[0]] * sizes[shape[1]]
            bounds |= {
                f"{name}_data": entries,
                f"{name}_indices": entries,
                f"{name}_indptr": rows + 1,
                f"{name}_shape": 2,
            }
    npz = folder / "model.npz"
    try:
        stored = read_npz(npz, bounds, "saved model's arrays", f"the sizes in {file}")
    except FileNotFoundError:
        raise KdqError(f"{folder}: model.npz is missing") from None
    arrays, problems = _arrays(str(npz), stored, layout, sizes, sparse)
    if problems:
        raise DataError(problems, heading=f"invalid saved model {folder}")
    return config, arrays, sizes


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_ENTITY_ROWS


def _arrays(
    file: str, stored: dict[str, np.ndarray], layout: Layout, sizes: dict[str, int], sparse: frozenset[str]
) -> tuple[dict[str, Any], list[Problem]]:
    arrays: dict[str, Any] = {}
    problems: list[Problem] = []
    for name, shape in layout.items():
        expected = tuple(sizes[side] for side in shape)
        if name not in sparse:
            value = stored.get(name)
            if value is None or value.shape != expected or value.dtype.kind not in "iuf":
                found = "missing" if value is None else f"{value.dtype} {value.shape}"
                problems.append(Problem(file, None, name, found, f"expected numbers of shape {expected}", "array"))
            elif value.dtype.kind == "f" and not np.isfinite(value).all():
                problems.append(Problem(file, None, name, None, "values are not finite (NaN or infinite)", "array"))
            else:
                arrays[name] = value
            continue
        parts = {part: stored.get(f"{name}_{part}") for part in ("data", "indices", "indptr", "shape")}
        wrong = csr_problems(file, f"{name}_", parts)
        if not wrong and tuple(int(n) for n in np.asarray(parts["shape"])) != expected:
            wrong = [Problem(file, None, f"{name}_shape", str(parts["shape"]), f"expected {expected}", "array")]
        problems += wrong
        if not wrong:
            arrays[name] = sp.csr_matrix((parts["data"], parts["indices"], parts["indptr"]), shape=expected)
    return arrays, problems
