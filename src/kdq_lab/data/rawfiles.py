"""Reading raw tables (CSV or Parquet) as text, in chunks, and collecting their problems.

Every cell is read as text, exactly as written (CSV) or as its text form (Parquet; a
missing value is an empty cell), so one set of checks serves both formats. A problem's
line is the CSV line (header = line 1) or the Parquet row (1 = first row).

Sizes are checked before pandas or Arrow decode anything (:mod:`kdq_lab.limits`): only a
regular file is opened; a CSV header is read with a bounded read (at most
:data:`~kdq_lab.limits.MAX_LINE_BYTES`, :data:`~kdq_lab.limits.MAX_COLUMNS` columns), then one
vectorised pass over the raw bytes (numpy, in blocks) checks UTF-8, finds any line longer than
:data:`~kdq_lab.limits.MAX_LINE_BYTES` (quoted fields may hold commas and newlines) and counts the
lines against the table's row bound; a Parquet file is judged from its footer and metadata
(:mod:`kdq_lab.parquetfile`).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kdq_lab.errors import KdqError, Problem
from kdq_lab.inputs import not_regular, open_regular
from kdq_lab.limits import MAX_COLUMNS, MAX_ENTITY_ROWS, MAX_LINE_BYTES, too_many
from kdq_lab.parquetfile import open_checked

DETAILS_PER_CHECK = 10
#: How an undecodable byte reads once decoded with ``backslashreplace`` (bytes 0x80-0xff).
_ESCAPED_BYTE = r"\\x[89a-f][0-9a-f]"
_TEXT = pd.StringDtype("pyarrow")
_WHOLE = 1 << 30  # rows per chunk when a table is read whole
_BLOCK = 1 << 23  # bytes per block of the pass over a CSV file
_QUOTE, _COMMA, _NEWLINE = ord('"'), ord(","), ord("\n")


@dataclass(frozen=True)
class Rows:
    """Consecutive rows of a file being checked: row ``i`` of ``frame`` is on line ``first_line + i``."""

    file: str
    frame: pd.DataFrame
    first_line: int

    def line(self, row: int | np.integer) -> int:
        return self.first_line + int(row)


@dataclass
class _Tally:
    """One check's flagged rows across chunks: the first few itemised, the rest counted."""

    file: str
    column: str | None
    message: str
    shown: list[Problem] = field(default_factory=list)
    total: int = 0

    def problems(self) -> list[Problem]:
        if self.total <= DETAILS_PER_CHECK:
            return self.shown
        return [*self.shown, Problem(self.file, None, self.column, None, f"{self.total} rows in all: {self.message}")]


@dataclass
class Collector:
    """Collects problems and warnings, itemising a few rows per check and counting the rest.

    A check applied chunk by chunk is one check: its rows are tallied together.
    """

    now: pd.Timestamp = field(default_factory=lambda: pd.Timestamp.now(tz="UTC"))
    stamps: dict[tuple[str, str], Any] = field(default_factory=dict)  # timestamp columns, for cross-file checks
    _entries: dict[bool, list[Problem | _Tally]] = field(default_factory=lambda: {False: [], True: []})
    _tallies: dict[tuple[str, str | None, str, bool], _Tally] = field(default_factory=dict)

    def _flat(self, warning: bool) -> list[Problem]:
        out: list[Problem] = []
        for entry in self._entries[warning]:
            out += entry.problems() if isinstance(entry, _Tally) else [entry]
        return out

    @property
    def problems(self) -> list[Problem]:
        return self._flat(False)

    @property
    def warnings(self) -> list[Problem]:
        return self._flat(True)

    def add(
        self, file: str, line: int | None, column: str | None, value: str | None, message: str, warning: bool = False
    ) -> None:
        self._entries[warning].append(Problem(file, line, column, value, message))

    def tally(
        self,
        file: str,
        column: str | None,
        message: str,
        lines: list[tuple[int, str]],
        total: int,
        warning: bool = False,
    ) -> None:
        """Flagged rows of one check, given as (line, shown value) of the first few and the total."""
        key = (file, column, message, warning)
        if key not in self._tallies:
            self._tallies[key] = _Tally(file, column, message)
            self._entries[warning].append(self._tallies[key])
        tally = self._tallies[key]
        room = DETAILS_PER_CHECK - len(tally.shown)
        tally.shown += [Problem(file, line, column, value, message) for line, value in lines[: max(room, 0)]]
        tally.total += total

    def rows(
        self,
        rows: Rows,
        mask: np.ndarray | pd.Series,
        column: str,
        message: str,
        values: pd.Series | None = None,
        warning: bool = False,
    ) -> None:
        """One problem per flagged row of ``rows.frame[column]`` (a few itemised, then a count)."""
        flagged = np.flatnonzero(np.asarray(mask, dtype=bool))
        if not len(flagged):
            return
        shown = values if values is not None else rows.frame[column]
        details = [(rows.line(r), str(shown.iloc[r])) for r in flagged[:DETAILS_PER_CHECK]]
        self.tally(rows.file, column, message, details, len(flagged), warning)


# ----------------------------------------------------------------------------- CSV


def _outside_quotes(data: np.ndarray, inside: int = 0) -> np.ndarray:
    """Whether each byte is outside a quoted field (``inside``: whether the bytes start inside one).

    A doubled quote inside a field toggles twice, so the parity of quotes seen so far tells.
    """
    return (np.bitwise_xor.accumulate((data == _QUOTE).view(np.uint8)) ^ inside) == 0


@dataclass
class _Scan:
    """What one pass over a CSV file's bytes found, before pandas reads it."""

    utf8: bool = True
    long_line: tuple[int, int] | None = None  # (offset of its first byte, its line) of a line too long
    lines: int = 0  # lines outside quoted fields, the header included


def _scan(handle: BinaryIO, max_lines: int) -> _Scan:
    """UTF-8, line lengths and the number of lines, in blocks of bytes; stops at a line too long or too many lines.

    Vectorised: per block, the quote parity (a cumulative XOR), then the newlines outside quotes.
    """
    decoder, scan = codecs.getincrementaldecoder("utf-8")(), _Scan()
    base, start, start_line, newlines, inside = 0, 0, 1, 0, 0  # start: first byte of the open line
    while block := handle.read(_BLOCK):
        if scan.utf8:
            try:
                decoder.decode(block)
            except UnicodeDecodeError:
                scan.utf8 = False
        data = np.frombuffer(block, dtype=np.uint8)
        outside = _outside_quotes(data, inside)
        is_newline = data == _NEWLINE
        ends = np.flatnonzero(is_newline & outside)
        starts = np.concatenate(([start - base], ends + 1))
        lengths = np.append(ends, len(data)) - starts  # the last one: the open line so far
        too_long = np.flatnonzero(lengths > MAX_LINE_BYTES)
        if too_long.size:
            first = int(starts[too_long[0]])
            line = start_line if too_long[0] == 0 else newlines + int(np.count_nonzero(is_newline[:first])) + 1
            scan.long_line = (base + first, line)
            return scan
        scan.lines += len(ends)
        if scan.lines > max_lines:
            return scan
        if len(ends):
            start = base + int(ends[-1]) + 1
            start_line = newlines + int(np.count_nonzero(is_newline[: ends[-1] + 1])) + 1
        newlines += int(np.count_nonzero(is_newline))
        inside, base = int(not outside[-1]), base + len(data)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        scan.utf8 = False
    scan.lines += base > start  # a last line without a newline
    return scan


def _repeated_header(name: str, header: pd.Series, out: Collector) -> bool:
    """Report header names given twice (pandas would rename the copy ``x.1`` and the lab ignore it)."""
    repeated = (header.duplicated() & (header != "")).to_numpy()
    for position in np.flatnonzero(repeated):
        column = header.iloc[position]
        first = int(np.flatnonzero(header.to_numpy() == column)[0])
        out.add(
            name,
            1,
            column,
            column,
            f"column named twice in the header (fields {first + 1} and {position + 1}); "
            "one of the two would be silently ignored: rename or remove one",
        )
    return bool(repeated.any())


def _header_problems(name: str, header: pd.Series, columns: tuple[str, ...], out: Collector) -> bool:
    """Repeated or missing header columns; whether the file can be checked further."""
    repeated = _repeated_header(name, header, out)
    missing = [c for c in columns if c not in set(header)]
    for column in missing:
        out.add(name, 1, column, None, f"missing column; the header has: {', '.join(map(str, header))}")
    return not (repeated or missing)


def _bad_bytes(rows: Rows, out: Collector) -> None:
    """Report the cells of a non-UTF-8 file that hold undecodable bytes.

    Such a file is read with every undecodable byte shown as ``\\xNN`` text, so every other
    check still runs on ordinary text, in every kind of column.
    """
    for column in rows.frame.columns:
        bad = rows.frame[column].str.contains(_ESCAPED_BYTE).to_numpy(dtype=bool)
        out.rows(rows, bad, column, "not valid UTF-8; save the file as UTF-8")


def _header_fields(handle: BinaryIO) -> int | None:
    """Fields of the header line, read with one bounded read (``None``: longer than a line may be)."""
    data = np.frombuffer(handle.read(MAX_LINE_BYTES + 1), dtype=np.uint8)
    handle.seek(0)
    outside = _outside_quotes(data)
    ends = np.flatnonzero((data == _NEWLINE) & outside)
    length = int(ends[0]) if len(ends) else len(data)
    if length > MAX_LINE_BYTES:
        return None
    return int(np.count_nonzero((data[:length] == _COMMA) & outside[:length])) + 1


def _long_line(handle: BinaryIO, name: str, header: pd.Series | None, scan: _Scan, out: Collector) -> None:
    """Report the line too long to read: its line, and the column where it passes the bound."""
    assert scan.long_line is not None
    offset, line = scan.long_line
    handle.seek(offset)
    data = np.frombuffer(handle.read(MAX_LINE_BYTES), dtype=np.uint8)
    position = int(np.count_nonzero((data == _COMMA) & _outside_quotes(data)))
    column = str(header.iloc[position]) if header is not None and position < len(header) else f"field {position + 1}"
    out.add(
        name,
        line,
        column,
        None,
        f"line longer than {MAX_LINE_BYTES:,} bytes (it passes the limit in this column); "
        "a table's line holds one row of short values: is a quote left open, or a file not CSV?",
    )


def _csv_chunks(
    handle: BinaryIO, name: str, columns: tuple[str, ...], out: Collector, chunk_rows: int, max_rows: int
) -> Iterator[Rows]:
    fields = _header_fields(handle)
    if fields is None or fields > MAX_COLUMNS:
        problem = f"a header line longer than {MAX_LINE_BYTES:,} bytes" if fields is None else None
        out.add(name, 1, None, None, problem or too_many(fields or 0, MAX_COLUMNS, "columns in the header") or "")
        return
    scan = _scan(handle, max_rows + 1)
    handle.seek(0)
    options: dict[str, Any] = {
        "keep_default_na": False,
        "na_filter": False,
        "encoding": "utf-8",
        "encoding_errors": "strict" if scan.utf8 else "backslashreplace",
        "dtype": _TEXT,
    }
    try:
        header = pd.read_csv(handle, header=None, nrows=1, **options).iloc[0]  # at most a line long
    except pd.errors.EmptyDataError:
        header = None
    handle.seek(0)
    if scan.long_line is not None:
        _long_line(handle, name, header, scan, out)
        return
    if header is None:
        out.add(name, None, None, None, "empty file: expected a header line naming the columns")
        return
    if scan.lines - 1 > max_rows:
        out.add(name, None, None, None, f"more than {max_rows:,} rows below the header: at most {max_rows:,} are read")
        return
    if not scan.utf8:
        for column in header:
            if re.search(_ESCAPED_BYTE, str(column)):
                out.add(name, 1, column, None, "not valid UTF-8 in the header; save the file as UTF-8")
    if not _header_problems(name, header, columns, out):
        return
    seen = 0
    try:
        with pd.read_csv(handle, chunksize=chunk_rows, **options) as reader:
            for frame in reader:
                rows = Rows(name, frame.reset_index(drop=True), seen + 2)
                if not scan.utf8:
                    _bad_bytes(rows, out)
                seen += len(frame)
                yield rows
    except pd.errors.ParserError as exc:
        match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if match:
            out.add(
                name,
                int(match.group(2)),
                None,
                None,
                f"expected {match.group(1)} comma-separated fields, found {match.group(3)}",
            )
        else:
            out.add(name, None, None, None, f"unreadable CSV: {exc}")
        return
    if not seen:
        out.add(name, None, None, None, "no data rows below the header")


# ----------------------------------------------------------------------------- Parquet


def arrow_text(series: pd.Series) -> pa.Array:
    """A text column as one Arrow string array (no Python object per value)."""
    data = pa.array(series.astype(_TEXT).array)  # the Arrow data itself (a Series would go through objects)
    return data.combine_chunks() if isinstance(data, pa.ChunkedArray) else data


def _text_frame(batch: pa.RecordBatch) -> pd.DataFrame:
    """Every column as text (missing values as empty cells)."""
    columns = {}
    for name, column in zip(batch.schema.names, batch.columns):
        if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
            column = pc.cast(column, pa.string())
        columns[name] = pd.Series(pc.fill_null(column, ""), dtype=_TEXT)
    return pd.DataFrame(columns)


def _parquet_chunks(
    handle: BinaryIO, name: str, columns: tuple[str, ...], out: Collector, chunk_rows: int, max_rows: int
) -> Iterator[Rows]:
    table, problem = open_checked(handle, max_rows)
    if table is None:
        out.add(name, None, None, None, problem or "unreadable Parquet file")
        return
    if not _header_problems(name, pd.Series(table.schema_arrow.names, dtype=object), columns, out):
        return
    seen = 0
    try:
        for batch in table.iter_batches(batch_size=chunk_rows):
            frame = _text_frame(batch)
            seen += len(frame)
            yield Rows(name, frame, seen - len(frame) + 1)
    except (pa.ArrowException, OSError) as exc:
        row = f" after row {seen}" if seen else ""
        out.add(name, None, None, None, f"unreadable Parquet data{row} (save text as UTF-8 strings): {exc}")
        return
    if not seen:
        out.add(name, None, None, None, "no data rows")


# ----------------------------------------------------------------------------- either


def table_chunks(
    folder: Path,
    name: str,
    columns: tuple[str, ...],
    file_format: str,
    out: Collector,
    chunk_rows: int,
    max_rows: int = MAX_ENTITY_ROWS,
) -> Iterator[Rows]:
    """The rows of ``folder/name`` in chunks of text columns; problems (missing file or columns ...) go to ``out``.

    Nothing is yielded when the file cannot be checked at all, when it has more than
    ``max_rows`` rows, or when a size check above refuses it.
    """
    path = folder / name
    try:
        kind = not_regular(path.stat().st_mode)
    except FileNotFoundError:
        kind = "missing"
    if kind is not None:
        why = "missing file" if kind == "missing" else f"{kind}, not a regular file"
        out.add(name, None, None, None, f"{why} (declared in dataset.yaml)")
        return
    if path.stat().st_size == 0:
        out.add(name, None, None, None, "empty file: expected a header line naming the columns")
        return
    try:
        handle = open_regular(path, name)
    except KdqError as exc:  # replaced by something else since it was looked at
        out.add(name, None, None, None, str(exc))
        return
    reader = _parquet_chunks if file_format == "parquet" else _csv_chunks
    with handle:
        yield from reader(handle, name, columns, out, chunk_rows, max_rows)


def read_table(
    folder: Path, name: str, columns: tuple[str, ...], file_format: str, out: Collector, max_rows: int = MAX_ENTITY_ROWS
) -> Rows | None:
    """A whole table as text columns, or ``None`` (with problems in ``out``) when it cannot be checked."""
    before = len(out.problems)
    frames = [rows.frame for rows in table_chunks(folder, name, columns, file_format, out, _WHOLE, max_rows)]
    if not frames or _fatal(out.problems[before:]):
        return None
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    return Rows(name, frame, 2 if file_format != "parquet" else 1)


def _fatal(problems: list[Problem]) -> bool:
    """Whether a file's problems stop its checks (unreadable rows), as opposed to cell problems."""
    return any(p.column is None for p in problems)
