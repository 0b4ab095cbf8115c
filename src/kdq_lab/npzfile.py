"""Arrays from ``.npz`` files, each member's header checked before any array is read.

An ``.npz`` file is a zip of ``.npy`` members, each a header (dtype, shape) and the data.
numpy allocates what a header claims before it reads the data, so a member claiming 10¹³
values exhausts memory from a file of a few bytes. :func:`read_npz` opens only a regular
file (a FIFO never hangs it), reads every member's header without its data, and refuses
before loading anything:

* a member the caller does not expect, or more than :data:`~kdq_lab.limits.MAX_NPZ_MEMBERS`;
* object dtypes (they would need pickle);
* more elements than the caller's bound for that member (derived from the sizes its
  companion files declare) or than :data:`~kdq_lab.limits.MAX_ARRAY_ELEMENTS`;
* a header whose claim does not match the member's size in the zip directory, and data
  that inflates more than :data:`~kdq_lab.limits.MAX_EXPANSION` times (a zip bomb).

Then the arrays are read with ``allow_pickle=False``. :func:`read_csr` rebuilds a sparse
matrix saved by ``scipy.sparse.save_npz`` from such checked arrays, with its shape and
every CSR invariant checked (scipy's own ``load_npz`` trusts them).
"""

from __future__ import annotations

import math
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from kdq_lab.errors import DataError, KdqError, Problem
from kdq_lab.inputs import open_regular
from kdq_lab.limits import EXPANSION_FLOOR, MAX_ARRAY_ELEMENTS, MAX_EXPANSION, MAX_NPZ_MEMBERS

#: Errors of a zip or ``.npy`` stream that is truncated or malformed.
_CORRUPT = (zipfile.BadZipFile, zlib.error, ValueError, EOFError, NotImplementedError, OverflowError)
_HEADER_BYTES = 10_000  # numpy's own default bound on an .npy header


def _header(member: Any) -> tuple[np.dtype, tuple[int, ...], int]:
    """(dtype, shape, offset of the data) of an ``.npy`` stream, reading only its header."""
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(member, max_header_size=_HEADER_BYTES)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(member, max_header_size=_HEADER_BYTES)
    else:
        raise ValueError(f".npy format version {version} is not read by the lab")
    return dtype, shape, member.tell()


def _member_problem(
    info: zipfile.ZipInfo, header: tuple[np.dtype, tuple[int, ...], int], bound: int, basis: str
) -> str | None:
    """Why a member may not be loaded, from its header and zip entry alone (``None``: it may)."""
    dtype, shape, offset = header
    count = math.prod(shape)
    if dtype.hasobject:
        return f"holds Python objects (dtype {dtype}); the lab reads numbers and text only, never pickle"
    if count > MAX_ARRAY_ELEMENTS:
        return f"claims {count:,} values (shape {shape}); an array the lab reads has at most {MAX_ARRAY_ELEMENTS:,}"
    if count > bound:
        return f"claims {count:,} values (shape {shape}); {basis} allow at most {bound:,}"
    if info.file_size != offset + count * dtype.itemsize:
        return f"claims {count:,} values of {dtype.itemsize} bytes, but the zip entry holds {info.file_size:,} bytes"
    if info.file_size > EXPANSION_FLOOR and info.file_size > MAX_EXPANSION * max(info.compress_size, 1):
        return f"inflates {info.file_size / max(info.compress_size, 1):,.0f} times (at most {MAX_EXPANSION})"
    return None


def _problems(archive: zipfile.ZipFile, bounds: Mapping[str, int], file: str, basis: str) -> list[Problem]:
    """Every member that may not be loaded, judged from the zip directory and the headers alone."""
    infos = archive.infolist()
    if len(infos) > MAX_NPZ_MEMBERS:
        return [Problem(file, None, None, f"{len(infos):,} arrays", f"at most {MAX_NPZ_MEMBERS} are read")]
    names = [info.filename.removesuffix(".npy") for info in infos]
    out = []
    for name, info in zip(names, infos):
        if name not in bounds:
            problem: str | None = f"not an array expected here (expected: {', '.join(bounds)})"
        elif names.count(name) > 1:
            problem = "stored twice"
        else:
            with archive.open(info) as member:
                problem = _member_problem(info, _header(member), bounds[name], basis)
        if problem:
            out.append(Problem(file, None, name, None, problem, "array"))
    return out


def read_npz(
    path: Path, bounds: Mapping[str, int], what: str = "npz file", basis: str = "the sizes it should have"
) -> dict[str, np.ndarray]:
    """The arrays of the ``.npz`` file at ``path``, once every member's header passed the checks above.

    ``bounds`` maps every array the caller expects to the most elements it may hold (``basis``
    says where they come from, for messages); any other member is refused. Problems are a
    :class:`DataError` naming the file and the array; a file that is not a readable zip of
    ``.npy`` members says "truncated or corrupt". A missing file raises :class:`FileNotFoundError`.
    """
    path = Path(path)
    with open_regular(path, what) as handle:
        try:
            with zipfile.ZipFile(handle) as archive:
                problems = _problems(archive, bounds, str(path), basis)
                if problems:
                    raise DataError(problems, heading=f"invalid {what} {path}")
                arrays = {}
                for info in archive.infolist():
                    with archive.open(info) as member:
                        array = np.lib.format.read_array(member, allow_pickle=False, max_header_size=_HEADER_BYTES)
                    arrays[info.filename.removesuffix(".npy")] = array
                return arrays
        except _CORRUPT as exc:
            raise KdqError(f"{path}: truncated or corrupt ({type(exc).__name__}: {exc})") from None


def csr_problems(file: str, prefix: str, parts: Mapping[str, np.ndarray | None]) -> list[Problem]:
    """Every invariant of a CSR matrix stored as ``data``, ``indices``, ``indptr`` and ``shape`` arrays.

    A bad index would crash compiled code that trusts it (LightFM's, scipy's). Problems name
    the arrays as ``prefix + part`` (e.g. ``user_features_indptr``).
    """

    def bad(part: str, message: str, value: Any = None) -> Problem:
        return Problem(file, None, f"{prefix}{part}", None if value is None else str(value), message, "array")

    missing = [bad(part, "missing array") for part in ("data", "indices", "indptr", "shape") if parts.get(part) is None]
    if missing:
        return missing
    data, indices, indptr, shape = (np.asarray(parts[p]) for p in ("data", "indices", "indptr", "shape"))
    if shape.shape != (2,) or shape.dtype.kind not in "iu" or (shape < 0).any():
        return [bad("shape", "expected two integers >= 0 (rows, columns)", shape.tolist())]
    rows, cols = (int(n) for n in shape)
    kinds = {"data": "iuf", "indices": "iu", "indptr": "iu"}
    wrong = [
        bad(
            part,
            f"expected a one-dimensional {'numeric' if part == 'data' else 'integer'} array, "
            f"found {array.dtype} with shape {array.shape}",
        )
        for part, array in (("data", data), ("indices", indices), ("indptr", indptr))
        if array.ndim != 1 or array.dtype.kind not in kinds[part]
    ]
    if wrong:
        return wrong
    out = []
    if len(indptr) != rows + 1:
        out.append(bad("indptr", f"has {len(indptr)} entries; expected rows + 1 = {rows + 1}"))
    else:
        if indptr[0] != 0:
            out.append(bad("indptr", "must start at 0", indptr[0]))
        falls = np.flatnonzero(np.diff(indptr) < 0)
        if falls.size:
            out.append(bad("indptr", f"must not decrease; it does after entry {falls[0]}", indptr[falls[0] + 1]))
        if indptr[-1] != len(indices):
            out.append(bad("indptr", f"must end at the number of stored entries ({len(indices)})", indptr[-1]))
    if len(data) != len(indices):
        out.append(bad("data", f"has {len(data)} entries, but indices has {len(indices)}"))
    outside = np.flatnonzero((indices < 0) | (indices >= cols))
    if outside.size:
        out.append(
            bad(
                "indices",
                f"{outside.size} column indices outside [0, {cols}) (first at position {outside[0]})",
                indices[outside[0]],
            )
        )
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        out.append(bad("data", f"{int((~np.isfinite(data)).sum())} values are not finite (NaN or infinite)"))
    return out


def read_csr(path: Path, shape: tuple[int, int], max_entries: int, what: str = "sparse matrix") -> sp.csr_matrix:
    """A CSR matrix saved by ``scipy.sparse.save_npz``, of exactly ``shape`` and at most ``max_entries`` entries."""
    rows, cols = shape
    entries = min(max_entries, rows * cols)
    bounds = {"data": entries, "indices": entries, "indptr": rows + 1, "shape": 2, "format": 1}
    arrays = read_npz(path, bounds, what, f"its shape {tuple(shape)} and {max_entries:,} entries")
    problems = csr_problems(str(path), "", arrays)
    stored = arrays.get("format")
    if stored is None or stored.dtype.kind != "S" or stored.tobytes().rstrip(b"\0") != b"csr":
        problems.append(Problem(str(path), None, "format", None, "expected a CSR matrix (format 'csr')", "array"))
    elif not problems and tuple(int(n) for n in arrays["shape"]) != tuple(shape):
        found = tuple(int(n) for n in arrays["shape"])
        problems.append(Problem(str(path), None, "shape", str(found), f"expected {tuple(shape)}", "array"))
    if problems:
        raise DataError(problems, heading=f"invalid {what} {path}")
    return sp.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]), shape=shape)
