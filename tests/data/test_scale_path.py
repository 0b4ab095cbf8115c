"""The scale path on tiny data: Parquet raw tables, chunked validation, the validated copy."""

from __future__ import annotations

import shutil

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kdq_lab.data import validated as validated_module
from kdq_lab.data.schema import read_spec
from kdq_lab.data.splits import SplitConfig
from kdq_lab.data.store import load_split, prepare
from kdq_lab.data.validate import check_dataset, load_dataset, validate_dataset
from kdq_lab.data.validated import load_validated, validated_folder


def _same(a, b):
    for name in ("users", "items", "interactions"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_dtype=False, check_categorical=False)


def test_parquet_catalog_loads_like_the_csv_one(tiny_catalog, tiny_parquet_catalog):
    assert read_spec(tiny_parquet_catalog).file_format == "parquet"
    assert (tiny_parquet_catalog / "interactions.parquet").is_file()
    _same(load_dataset(tiny_catalog), load_dataset(tiny_parquet_catalog))


@pytest.mark.parametrize("chunk_rows", [97, 1000])
def test_chunked_loading_equals_whole_loading(tiny_parquet_catalog, tiny_catalog, chunk_rows):
    _same(load_dataset(tiny_catalog), load_dataset(tiny_catalog, chunk_rows=chunk_rows))
    _same(load_dataset(tiny_parquet_catalog), load_dataset(tiny_parquet_catalog, chunk_rows=chunk_rows))


def _break_interactions(path):
    lines = path.read_text(encoding="utf-8").split("\n")
    for number in range(2, 40, 3):  # unknown events on 13 lines spread over many chunks
        fields = lines[number - 1].split(",")
        lines[number - 1] = ",".join([*fields[:2], "watch", *fields[3:]])
    lines[50] = lines[50].replace("+09:00", "", 1)  # a stamp without its zone, while the others carry one
    lines[60] = "u9999999," + lines[60].split(",", 1)[1]
    path.write_text("\n".join(lines), encoding="utf-8")


@pytest.mark.parametrize("chunk_rows", [13, 50])
def test_chunked_validation_reports_what_whole_validation_reports(catalog_copy, chunk_rows):
    _break_interactions(catalog_copy / "interactions.csv")
    whole = check_dataset(catalog_copy)
    chunked = check_dataset(catalog_copy, chunk_rows=chunk_rows)
    assert sorted(map(str, whole[0])) == sorted(map(str, chunked[0]))  # the same problems, found in another order
    problems = chunked[0]
    events = [p for p in problems if p.column == "event"]
    assert len(events) == 11 and "13 rows in all" in events[-1].message  # capped across chunks, counted in full
    assert any(p.line == 61 and p.value == "u9999999" for p in problems)
    assert any(p.line == 51 and "without a time zone" in p.message for p in problems)


def test_parquet_problems_name_the_row(tiny_parquet_catalog, tmp_path):
    folder = shutil.copytree(tiny_parquet_catalog, tmp_path / "kdq-tiny")
    table = pq.read_table(folder / "interactions.parquet")
    events = table.column("event").to_pylist()
    events[4] = "watch"
    table = table.set_column(table.schema.get_field_index("event"), "event", pa.array(events))
    pq.write_table(table, folder / "interactions.parquet")
    (problem,) = validate_dataset(folder)
    assert (problem.file, problem.line, problem.column, problem.value) == ("interactions.parquet", 5, "event", "watch")


def test_parquet_missing_column_is_named(tiny_parquet_catalog, tmp_path):
    folder = shutil.copytree(tiny_parquet_catalog, tmp_path / "kdq-tiny")
    table = pq.read_table(folder / "users.parquet").drop_columns(["region"])
    pq.write_table(table, folder / "users.parquet")
    problems = validate_dataset(folder)
    assert any(p.file == "users.parquet" and p.column == "region" and "missing column" in p.message for p in problems)


def test_a_dataset_is_validated_once_per_version(tiny_parquet_catalog, tmp_path, monkeypatch):
    first = load_validated(tiny_parquet_catalog, tmp_path)
    hashes = first.hashes
    assert (validated_folder(tiny_parquet_catalog, tmp_path, hashes) / "manifest.json").is_file()

    def refuse(*args, **kwargs):
        raise AssertionError("validated again")

    monkeypatch.setattr(validated_module, "load_dataset", refuse)
    _same(first, load_validated(tiny_parquet_catalog, tmp_path, hashes))
    folder = prepare(tiny_parquet_catalog, SplitConfig(kind="cold_users"), tmp_path, hashes=hashes)
    split = load_split(folder)
    assert set(split.events["part"].astype(str)) == {"train", "validation", "test"}
