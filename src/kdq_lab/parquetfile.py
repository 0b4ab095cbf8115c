"""Parquet files a user gives the lab, their size judged from the metadata before any data is decoded.

A Parquet file compresses well: a 3 MB file can decode to 60 million rows. Before any
row is read, :func:`parquet_file` opens only a regular file (a FIFO never hangs it) and
refuses, from the footer and the metadata alone:

* a footer larger than :data:`~kdq_lab.limits.MAX_PARQUET_FOOTER_BYTES` (it is parsed whole);
* more rows than the caller's bound (users and items: :data:`~kdq_lab.limits.MAX_ENTITY_ROWS`,
  interactions: :data:`~kdq_lab.limits.MAX_INTERACTION_ROWS`);
* more columns than :data:`~kdq_lab.limits.MAX_COLUMNS`;
* column data that decodes to more than :data:`~kdq_lab.limits.MAX_EXPANSION` times the
  file's size (past :data:`~kdq_lab.limits.EXPANSION_FLOOR`): a decompression bomb.

The caller then reads in bounded batches (``iter_batches``), or whole for small tables.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kdq_lab.errors import DataError, Problem
from kdq_lab.inputs import open_regular
from kdq_lab.limits import EXPANSION_FLOOR, MAX_COLUMNS, MAX_EXPANSION, MAX_PARQUET_FOOTER_BYTES, too_many

_MAGIC = b"PAR1"


def _footer_problem(handle: BinaryIO, size: int) -> str | None:
    """Why the footer may not be parsed: not Parquet, or larger than its bound (``None``: it may)."""
    if size < 12:
        return "not a Parquet file (too short)"
    handle.seek(size - 8)
    tail = handle.read(8)
    if tail[4:] != _MAGIC:
        return "not a Parquet file (no PAR1 footer)"
    length = int.from_bytes(tail[:4], "little")
    if length + 12 > size:
        return f"not a Parquet file (its footer claims {length:,} bytes of a {size:,}-byte file)"
    if length > MAX_PARQUET_FOOTER_BYTES:
        return f"a Parquet metadata footer of {length:,} bytes; at most {MAX_PARQUET_FOOTER_BYTES:,} are read"
    return None


def metadata_problem(metadata: pq.FileMetaData, size: int, max_rows: int) -> str | None:
    """Why a table of this ``metadata`` (in a file of ``size`` bytes) may not be read, or ``None``."""
    rows = too_many(metadata.num_rows, max_rows, "rows")
    columns = too_many(metadata.num_columns, MAX_COLUMNS, "columns")
    if rows or columns:
        return rows or columns
    decoded = sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
    if decoded > EXPANSION_FLOOR and decoded > MAX_EXPANSION * max(size, 1):
        return (
            f"its column data decodes to {decoded:,} bytes, {decoded / max(size, 1):,.0f} times its size on disk "
            f"(at most {MAX_EXPANSION} times): a decompression bomb"
        )
    return None


def open_checked(handle: BinaryIO, max_rows: int) -> tuple[pq.ParquetFile | None, str | None]:
    """(the Parquet file, ``None``) once its footer and metadata passed the checks above, else (``None``, why not)."""
    size = os.fstat(handle.fileno()).st_size
    try:
        problem = _footer_problem(handle, size)
        if problem:
            return None, problem
        handle.seek(0)
        table = pq.ParquetFile(handle, pre_buffer=False)  # pre-buffering would keep every row group read in memory
    except (pa.ArrowException, OSError) as exc:
        return None, f"unreadable Parquet file ({exc})"
    problem = metadata_problem(table.metadata, size, max_rows)
    return (None, problem) if problem else (table, None)


@contextmanager
def parquet_file(path: Path, max_rows: int, what: str = "Parquet file") -> Iterator[pq.ParquetFile]:
    """The Parquet file at ``path``, open, once it passed :func:`open_checked`.

    A refusal is a :class:`DataError` naming the file; a missing file raises :class:`FileNotFoundError`.
    """
    with open_regular(Path(path), what) as handle:
        table, problem = open_checked(handle, max_rows)
        if table is None:
            raise _refusal(path, what, problem or "unreadable")
        yield table


def read_parquet(path: Path, max_rows: int, what: str = "Parquet file") -> pd.DataFrame:
    """A whole small table (its size checked first, see :func:`parquet_file`)."""
    with parquet_file(path, max_rows, what) as table:
        try:
            return table.read().to_pandas()
        except (pa.ArrowException, OSError) as exc:
            raise _refusal(path, what, f"unreadable Parquet data ({exc})") from None


def _refusal(path: Path, what: str, problem: str) -> DataError:
    return DataError([Problem(str(path), None, None, None, problem)], heading=f"invalid {what} {path}")
