"""Raw tables that expand are refused from their header or metadata, before pandas or Arrow decode them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import kdq_lab.data.rawfiles as rawfiles
from kdq_lab.data.rawfiles import Collector, read_table, table_chunks
from kdq_lab.data.validate import check_dataset
from kdq_lab.errors import DataError
from kdq_lab.limits import MAX_LINE_BYTES


def problems_of(path: Path, columns: tuple[str, ...] = ("a",), max_rows: int = 10**6, fmt: str = "csv") -> list:
    out = Collector()
    frames = [rows.frame for rows in table_chunks(path.parent, path.name, columns, fmt, out, 1000, max_rows)]
    return out.problems if out.problems else frames


@pytest.fixture
def never_parsed(monkeypatch):
    """pandas may not read the file: a refusal must come from the bounded reads before it."""

    def refuse(*args, **kwargs):
        raise AssertionError("pandas read the file")

    monkeypatch.setattr(rawfiles.pd, "read_csv", refuse)


# ----------------------------------------------------------------------------- CSV


def test_a_header_of_too_many_columns_is_refused_unparsed(tmp_path, never_parsed):
    path = tmp_path / "users.csv"
    path.write_text(",".join(f"c{i}" for i in range(10**5)) + "\nx\n", encoding="utf-8")
    (problem,) = problems_of(path)
    assert (problem.line, problem.message) == (1, "100,000 columns in the header: at most 1,000 are allowed")


def test_a_header_longer_than_a_line_may_be_is_refused_unparsed(tmp_path, never_parsed):
    path = tmp_path / "users.csv"
    path.write_bytes(b"a" * (MAX_LINE_BYTES + 10))
    (problem,) = problems_of(path)
    assert problem.line == 1 and f"a header line longer than {MAX_LINE_BYTES:,} bytes" in problem.message


LONG = "x" * (MAX_LINE_BYTES + 1)
FIELDS = [  # (the data lines, line and column named)
    pytest.param([f"{LONG},b,c"], 2, "a", id="first-column"),
    pytest.param(["1,2,3", "4,5,6", f"7,8,{LONG}"], 4, "c", id="last-column-line-4"),
    pytest.param(["1,2,3", f'4,"{LONG[:400_000]},{LONG[:400_000]}\n{LONG[:400_000]}",6'], 3, "b", id="quoted-commas"),
    pytest.param([f'"{LONG[:10]}\n{LONG[:10]}",2,3', f"4,{LONG},6"], 4, "b", id="after-a-multiline-cell"),
    pytest.param(["1,2,3,4,5,6", "," * (MAX_LINE_BYTES + 1)], 3, f"field {MAX_LINE_BYTES + 1}", id="endless-fields"),
]


@pytest.mark.parametrize("lines, line, column", FIELDS)
def test_a_line_longer_than_the_bound_is_refused_with_line_and_column(tmp_path, lines, line, column):
    path = tmp_path / "items.csv"
    path.write_text("a,b,c\n" + "\n".join(lines) + "\n", encoding="utf-8")
    (problem,) = problems_of(path, ("a", "b", "c"))
    assert (problem.file, problem.line, problem.column) == ("items.csv", line, column), problem
    assert f"line longer than {MAX_LINE_BYTES:,} bytes" in problem.message


@pytest.mark.parametrize("block", [5, 64, 4096])
@pytest.mark.parametrize(
    "text, expected",
    [
        ("a,b\n1,2\n" + "y" * 30 + ",3\n4,5\n", (8, 3)),  # offset and line of the long line
        ('a,b\n"1\n\n,' + "z" * 30 + '",2\n', (4, 2)),  # quoted newlines and commas: one line, from line 2
        ('a,b\n"1,""\n' + '"' * 40 + '"\n', (4, 2)),  # doubled quotes keep the field open
        ("a,b\n" + "w" * 40, (4, 2)),  # the last line, without a newline
        ("a,b\n1,2\n3,4\n", None),
        ('a,b\n"' + "v" * 10 + "\n" * 3 + '",1\n', None),  # long over several lines, but short lines
    ],
)
def test_the_scan_does_not_depend_on_block_boundaries(tmp_path, monkeypatch, block, text, expected):
    monkeypatch.setattr(rawfiles, "_BLOCK", block)
    monkeypatch.setattr(rawfiles, "MAX_LINE_BYTES", 20)
    path = tmp_path / "t.csv"
    path.write_bytes(text.encode())
    with open(path, "rb") as handle:
        scan = rawfiles._scan(handle, 100)
    assert scan.long_line == expected


@pytest.mark.parametrize("block", [3, 64, 1 << 20])
def test_the_scan_counts_lines_outside_quotes(tmp_path, monkeypatch, block):
    monkeypatch.setattr(rawfiles, "_BLOCK", block)
    path = tmp_path / "t.csv"
    path.write_text('a,b\n1,"x\ny"\n2,3\n"q\n\n",4', encoding="utf-8")
    with open(path, "rb") as handle:
        assert rawfiles._scan(handle, 100).lines == 4
    with open(path, "rb") as handle:
        assert rawfiles._scan(handle, 2).lines == 3, "stops once there are more than the bound"


@pytest.mark.parametrize("rows, bound, refused", [(5, 5, False), (6, 5, True), (1000, 5, True)])
def test_rows_beyond_the_bound_are_refused_before_reading(tmp_path, rows, bound, refused):
    path = tmp_path / "users.csv"
    path.write_text("a\n" + "".join(f"{i}\n" for i in range(rows)), encoding="utf-8")
    found = problems_of(path, max_rows=bound)
    if refused:
        assert found[0].message == f"more than {bound} rows below the header: at most {bound} are read"
    else:
        assert len(found[0]) == rows


def test_quoted_cells_with_commas_and_newlines_still_read(tmp_path):
    path = tmp_path / "items.csv"
    path.write_text('a,b\n"x, y",1\n"two\nlines",2\n', encoding="utf-8")
    (frame,) = problems_of(path, ("a", "b"))
    assert frame["a"].tolist() == ["x, y", "two\nlines"]


@pytest.mark.slow  # starts another Python process
@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_a_table_that_is_not_a_regular_file_is_a_problem(catalog_copy, kind):
    """In a subprocess with a deadline: pandas would wait forever on a FIFO."""
    path = catalog_copy / "users.csv"
    path.unlink()
    os.mkfifo(path) if kind == "fifo" else path.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "kdq_lab.cli", "validate", str(catalog_copy)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    expected = "a FIFO (named pipe)" if kind == "fifo" else "a folder"
    assert proc.returncode == 2 and f"users.csv: {expected}, not a regular file" in proc.stderr


def test_a_long_line_in_a_dataset_is_named(catalog_copy):
    events = catalog_copy / "interactions.csv"
    lines = events.read_text(encoding="utf-8").splitlines(keepends=True)
    header = lines[0].rstrip("\n").split(",")
    fields = lines[5].rstrip("\n").split(",")
    fields[2] = "9" * (MAX_LINE_BYTES + 5)
    lines[5] = ",".join(fields) + "\n"
    events.write_text("".join(lines), encoding="utf-8")
    problems, _ = check_dataset(catalog_copy)
    (problem,) = [p for p in problems if p.file == "interactions.csv"]
    assert (problem.line, problem.column) == (6, header[2]) and "line longer than" in problem.message


# ----------------------------------------------------------------------------- Parquet


def dictionary_column(rows: int, value: str) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, np.int8)), pa.array([value]))


def test_sixty_million_rows_from_a_small_file_are_refused_from_the_metadata(tmp_path, monkeypatch):
    path = tmp_path / "interactions.parquet"
    chunk = pa.table({"a": dictionary_column(6_000_000, "u1")})
    with pq.ParquetWriter(path, chunk.schema) as writer:
        for _ in range(10):
            writer.write_table(chunk)
    assert path.stat().st_size < 1_000_000

    def never(*args, **kwargs):
        raise AssertionError("a row group was decoded")

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", never)
    (problem,) = problems_of(path, max_rows=50_000_000, fmt="parquet")
    assert problem.message == "60,000,000 rows: at most 50,000,000 are allowed"


def test_a_decompression_bomb_is_refused_from_the_metadata(tmp_path, monkeypatch):
    import kdq_lab.parquetfile as parquetfile

    monkeypatch.setattr(parquetfile, "EXPANSION_FLOOR", 100_000)  # the real floor is 64 MB: the rule, on small data
    path = tmp_path / "users.parquet"
    pq.write_table(pa.table({"a": ["x" * 2_000_000]}), path, compression="zstd", use_dictionary=False)
    (problem,) = problems_of(path, fmt="parquet")
    assert "decodes to" in problem.message and "a decompression bomb" in problem.message
    pq.write_table(pa.table({"a": [str(i) for i in range(50_000)]}), path, compression="zstd")
    assert sum(len(frame) for frame in problems_of(path, fmt="parquet")) == 50_000


def test_too_many_columns_and_oversized_footers_are_refused(tmp_path, monkeypatch):
    import kdq_lab.parquetfile as parquetfile

    path = tmp_path / "items.parquet"
    pq.write_table(pa.table({f"c{i}": [1] for i in range(1001)}), path)
    assert problems_of(path, fmt="parquet")[0].message == "1,001 columns: at most 1,000 are allowed"
    pq.write_table(pa.table({f"c{i}": [1] for i in range(10)}), path)
    footer = int.from_bytes(path.read_bytes()[-8:-4], "little")
    monkeypatch.setattr(parquetfile, "MAX_PARQUET_FOOTER_BYTES", footer - 1)
    assert f"a Parquet metadata footer of {footer:,} bytes" in problems_of(path, fmt="parquet")[0].message


@pytest.mark.parametrize("content", [b"not parquet at all", b"PAR1", os.urandom(4000) + b"PAR1"])
def test_garbage_parquet_is_a_problem(tmp_path, content):
    path = tmp_path / "users.parquet"
    path.write_bytes(content)
    (problem,) = problems_of(path, fmt="parquet")
    assert "Parquet" in problem.message


def test_whole_tables_obey_their_row_bound(tmp_path):
    path = tmp_path / "users.parquet"
    pq.write_table(pa.table({"a": [str(i) for i in range(11)]}), path)
    out = Collector()
    assert read_table(tmp_path, "users.parquet", ("a",), "parquet", out, 10) is None
    assert out.problems[0].message == "11 rows: at most 10 are allowed"


def test_a_saved_item_table_is_checked_before_it_is_read(tmp_path, monkeypatch):
    from kdq_lab.parquetfile import read_parquet

    path = tmp_path / "items.parquet"
    pq.write_table(pa.table({"item_id": ["a", "b", "c"]}), path)
    assert read_parquet(path, 3)["item_id"].tolist() == ["a", "b", "c"]
    with pytest.raises(DataError, match="3 rows: at most 2 are allowed"):
        read_parquet(path, 2, "saved item table")


@pytest.mark.parametrize("link", [False, True], ids=["fifo", "link-to-fifo"])
def test_a_fifo_inside_ground_truth_is_refused_before_it_is_copied(catalog_copy, link):
    from kdq_lab.data.validate import validate_dataset

    fifo = catalog_copy / "ground_truth" / ("pipe" if not link else "real-pipe")
    os.mkfifo(fifo)
    if link:
        os.symlink(fifo, catalog_copy / "ground_truth" / "pipe")
    problems = [p for p in validate_dataset(catalog_copy) if p.column == "ground_truth"]
    assert any(
        p.value == "ground_truth/pipe" and "a FIFO (named pipe), not a regular file" in p.message for p in problems
    )
