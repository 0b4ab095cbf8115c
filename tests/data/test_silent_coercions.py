"""Inputs pandas or YAML would accept silently, changing results: duplicate headers, naive timestamps, bad bytes."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from kdq_lab.data.schema import SPEC_FILE
from kdq_lab.data.validate import check_dataset, load_dataset, validate_dataset
from kdq_lab.errors import DataError


def lines_of(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")


def write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines), encoding="utf-8")


def set_spec(folder: Path, old: str, new: str) -> None:
    spec = folder / SPEC_FILE
    text = spec.read_text(encoding="utf-8")
    assert old in text
    spec.write_text(text.replace(old, new, 1), encoding="utf-8")


def matching(problems, **where):
    return [p for p in problems if all(getattr(p, k) == v for k, v in where.items())]


# ----------------------------------------------------------------------------- duplicate header columns


@pytest.mark.parametrize(
    "file, column",
    [
        ("users.csv", "region"),  # a declared feature column
        ("users.csv", "user_id"),  # the id column
        ("items.csv", "title"),  # a text column
        ("interactions.csv", "event"),  # the event column
    ],
)
def test_a_column_named_twice_is_refused(catalog_copy, file, column):
    path = catalog_copy / file
    lines = lines_of(path)
    lines[0] += f",{column}"
    lines[1:] = [line + ",x" if line else line for line in lines[1:]]
    write_lines(path, lines)
    problems = validate_dataset(catalog_copy)
    found = matching(problems, file=file, line=1, column=column)
    assert found and "named twice in the header" in found[0].message, problems
    with pytest.raises(DataError):
        load_dataset(catalog_copy)


def test_an_undeclared_column_named_twice_is_refused_too(catalog_copy):
    path = catalog_copy / "items.csv"
    lines = lines_of(path)
    lines[0] += ",notes,notes"
    lines[1:] = [line + ",a,b" if line else line for line in lines[1:]]
    write_lines(path, lines)
    found = matching(validate_dataset(catalog_copy), file="items.csv", line=1, column="notes")
    assert len(found) == 1 and "fields 13 and 14" in found[0].message


def test_names_that_only_look_like_copies_are_fine(catalog_copy):
    path = catalog_copy / "items.csv"
    lines = lines_of(path)
    lines[0] += ",title.1,Title"
    lines[1:] = [line + ",a,b" if line else line for line in lines[1:]]
    write_lines(path, lines)
    assert validate_dataset(catalog_copy) == []


# ----------------------------------------------------------------------------- time zones

STAMP = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\+09:00")


def strip_zones(path: Path, rows: slice | None = None) -> None:
    """Drop the +09:00 of the stamps of ``rows`` (data rows; all when None)."""
    lines = lines_of(path)
    chosen = range(1, len(lines)) if rows is None else range(len(lines))[1:][rows]
    for i in chosen:
        lines[i] = STAMP.sub(r"\1", lines[i])
    write_lines(path, lines)


@pytest.mark.parametrize("file", ["users.csv", "items.csv", "interactions.csv"])
@pytest.mark.parametrize("timezone", [None, "Asia/Seoul"])
def test_mixing_naive_and_zoned_stamps_is_an_error(catalog_copy, file, timezone):
    if timezone:
        set_spec(catalog_copy, "timestamp_format: iso", f"timestamp_format: iso\ntimezone: {timezone}")
    strip_zones(catalog_copy / file, slice(2, 3))  # data row 3 = line 4
    problems = validate_dataset(catalog_copy)
    found = matching(problems, file=file, line=4)
    assert found and "without a time zone, while other timestamps of this dataset carry one" in found[0].message
    assert "+09:00" in found[0].message  # the example of a zoned stamp


def test_naive_stamps_without_a_declared_zone_are_an_error(catalog_copy):
    for file in ("users.csv", "items.csv", "interactions.csv"):
        strip_zones(catalog_copy / file)
    problems = validate_dataset(catalog_copy)
    first = matching(problems, file="interactions.csv", line=2, column="occurred_at")
    assert first and "declare the zone in dataset.yaml (timezone:" in first[0].message
    assert first[0].value and "+" not in first[0].value
    assert matching(problems, file="users.csv", line=None, column="signed_up_at")  # counted beyond the first 10


def test_naive_stamps_are_read_in_the_declared_zone(tiny_catalog, catalog_copy):
    for file in ("users.csv", "items.csv", "interactions.csv"):
        strip_zones(catalog_copy / file)
    set_spec(catalog_copy, "timestamp_format: iso", "timestamp_format: iso\ntimezone: Asia/Seoul")
    zoned, naive = load_dataset(tiny_catalog), load_dataset(catalog_copy)
    assert (naive.interactions["timestamp"] == zoned.interactions["timestamp"]).all()
    assert (naive.users["signed_up_at"] == zoned.users["signed_up_at"]).all()
    assert str(naive.interactions["timestamp"].dt.tz) == "UTC"


@pytest.mark.parametrize(
    "zone, fragment",
    [
        ("Asia/Seul", "did you mean Asia/Seoul?"),
        ("asia/seoul", "did you mean Asia/Seoul?"),
        ("'+09:00'", "expected an IANA name"),
        ("KST", "expected an IANA name"),
        ("../../etc/passwd", "expected an IANA name"),
        ("9", "found an integer"),
    ],
)
def test_a_bad_timezone_is_refused_with_its_line(catalog_copy, zone, fragment):
    set_spec(catalog_copy, "timestamp_format: iso", f"timestamp_format: iso\ntimezone: {zone}")
    problems = validate_dataset(catalog_copy)
    found = matching(problems, column="timezone")
    assert found and fragment in found[0].message and found[0].line == 5, problems


def test_a_wall_time_skipped_by_daylight_saving_is_named(catalog_copy):
    for file in ("users.csv", "items.csv", "interactions.csv"):
        strip_zones(catalog_copy / file)
    set_spec(catalog_copy, "timestamp_format: iso", "timestamp_format: iso\ntimezone: Europe/Berlin")
    path = catalog_copy / "interactions.csv"
    lines = lines_of(path)
    lines[1] = re.sub(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$", "2026-03-29T02:30:00", lines[1])
    write_lines(path, lines)
    found = matching(validate_dataset(catalog_copy), file="interactions.csv", line=2)
    assert found and "skipped or repeated in Europe/Berlin" in found[0].message


@pytest.mark.parametrize(
    "stamp",
    [
        "2025-03-01T09:30:00Z",
        "2025-03-01T00:30:00-0900",
        "2025-03-01 09:30:00+00:00",
        "2025-03-01t09:30:00z",
        "2025-03-01T09:30:00.250+09",
    ],
)
def test_other_zone_spellings_count_as_zoned(catalog_copy, stamp):
    path = catalog_copy / "interactions.csv"
    lines = lines_of(path)
    lines[1] = re.sub(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+09:00$", stamp, lines[1])
    write_lines(path, lines)
    assert not any("time zone" in p.message for p in validate_dataset(catalog_copy))


def test_unix_stamps_ignore_the_timezone(ml100k_source, tmp_path):
    from kdq_lab.data.movielens import import_movielens

    plain = import_movielens(ml100k_source, tmp_path / "ml")
    zoned = Path(shutil.copytree(plain, tmp_path / "ml-zoned"))
    set_spec(zoned, "timestamp_format: unix", "timestamp_format: unix\ntimezone: America/New_York")
    a, b = load_dataset(plain), load_dataset(zoned)
    assert (a.interactions["timestamp"] == b.interactions["timestamp"]).all()


# ----------------------------------------------------------------------------- timestamps in the future


@pytest.mark.slow  # starts another Python process
@pytest.mark.parametrize(
    "file, pattern, stamp",
    [
        ("interactions.csv", r"\d{4}-\d{2}-\d{2}T[\d:]+\+09:00$", "2199-01-01T00:00:00+09:00"),
        ("users.csv", r"(?<=,)\d{4}-\d{2}-\d{2}T[\d:]+\+09:00(?=,)", "2198-05-05T10:00:00+09:00"),
    ],
)
def test_future_stamps_are_warnings_not_errors(catalog_copy, file, pattern, stamp):
    path = catalog_copy / file
    lines = lines_of(path)
    lines[1] = re.sub(pattern, stamp, lines[1], count=1)
    write_lines(path, lines)
    problems, warnings = check_dataset(catalog_copy)
    assert problems == []
    found = matching(warnings, file=file, line=2, value=stamp)
    assert found and "in the future" in found[0].message
    proc = subprocess.run(
        [sys.executable, "-m", "kdq_lab.cli", "validate", str(catalog_copy)], capture_output=True, text=True
    )
    assert "warning" in proc.stderr and stamp in proc.stderr and "Traceback" not in proc.stderr
    assert proc.returncode == 0


@pytest.mark.parametrize(
    "file, pattern, stamp",
    [
        ("interactions.csv", r"\d{4}-\d{2}-\d{2}T[\d:]+\+09:00$", "2999-01-01T00:00:00+09:00"),
        ("users.csv", r"(?<=,)\d{4}-\d{2}-\d{2}T[\d:]+\+09:00(?=,)", "2998-05-05T10:00:00+09:00"),
        ("interactions.csv", r"\d{4}-\d{2}-\d{2}T[\d:]+\+09:00$", "1601-01-01T00:00:00+09:00"),
    ],
)
def test_stamps_beyond_the_stored_span_are_errors_never_wrapped_around(catalog_copy, file, pattern, stamp):
    """Nanoseconds since 1970 in int64 end in 2262: a stamp beyond would wrap around and be compared as another."""
    path = catalog_copy / file
    lines = lines_of(path)
    lines[1] = re.sub(pattern, stamp, lines[1], count=1)
    write_lines(path, lines)
    problems, _ = check_dataset(catalog_copy)
    assert [(p.file, p.line, p.value) for p in problems] == [(file, 2, stamp)]
    assert "outside 1677-09-22 … 2262-04-10 UTC" in problems[0].message


def test_future_unix_stamps_warn_too(ml100k_source, tmp_path):
    from kdq_lab.data.movielens import import_movielens

    folder = import_movielens(ml100k_source, tmp_path / "ml")
    events = pd.read_csv(folder / "interactions.csv", dtype=str)
    events.loc[0, "timestamp"] = "7258118400"  # the year 2200
    events.to_csv(folder / "interactions.csv", index=False)
    problems, warnings = check_dataset(folder)
    assert problems == [] and matching(warnings, file="interactions.csv", line=2, column="timestamp")
    events.loc[0, "timestamp"] = "32503680000"  # the year 3000: beyond the span, an error
    events.to_csv(folder / "interactions.csv", index=False)
    problems, _ = check_dataset(folder)
    assert [(p.line, p.value) for p in problems] == [(2, "32503680000")] and "outside" in problems[0].message


def test_the_generated_catalog_has_no_warning(tiny_catalog):
    assert check_dataset(tiny_catalog) == ([], [])


# ----------------------------------------------------------------------------- bytes that are not UTF-8


@pytest.mark.slow  # starts another Python process
@pytest.mark.parametrize(
    "file, column",
    [
        ("users.csv", "occupations"),  # multi-valued: this raised UnicodeEncodeError
        ("items.csv", "tags"),  # multi-valued
        ("items.csv", "duration_min"),  # numeric
        ("users.csv", "region"),  # categorical
        ("interactions.csv", "event"),  # event type
        ("interactions.csv", "occurred_at"),  # timestamp
        ("users.csv", "user_id"),  # id
    ],
)
def test_bad_bytes_in_any_column_are_a_clean_problem(catalog_copy, file, column):
    path = catalog_copy / file
    raw = path.read_bytes().split(b"\n")
    header = raw[0].decode("utf-8").split(",")
    cells = raw[2].split(b",")
    cells[header.index(column)] = b"ok|b\xffd" if column in ("occupations", "tags") else b"1\xfe2"
    raw[2] = b",".join(cells)
    path.write_bytes(b"\n".join(raw))
    problems = validate_dataset(catalog_copy)
    found = matching(problems, file=file, line=3, column=column)
    assert found and "not valid UTF-8" in found[0].message, problems
    assert "\\x" in found[0].value
    proc = subprocess.run(
        [sys.executable, "-m", "kdq_lab.cli", "validate", str(catalog_copy)], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "not valid UTF-8" in proc.stderr


def test_bad_bytes_in_the_header_are_named(catalog_copy):
    path = catalog_copy / "items.csv"
    raw = path.read_bytes().replace(b"creator", b"cre\xe9ator", 1)
    path.write_bytes(raw)
    problems = validate_dataset(catalog_copy)
    assert matching(problems, file="items.csv", line=1, column="cre\\xe9ator")
    assert matching(problems, file="items.csv", line=1, column="creator")  # and the declared column is missing
