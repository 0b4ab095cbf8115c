"""JSON the lab reads back is bounded, and a crafted file is a clear error naming it, never a traceback or a hang."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from kdq_lab.errors import KdqError
from kdq_lab.jsonfile import read_json

CRAFTED = [
    pytest.param("[" * 100_000 + "]" * 100_000, "nested too deeply to read", id="deep-list"),
    pytest.param('{"a":' * 50_000 + "1" + "}" * 50_000, "nested too deeply to read", id="deep-object"),
    pytest.param('{"a": 1,,}', ":1:9: not a readable model.json: malformed JSON: Expecting property name", id="syntax"),
    pytest.param('{\n  "a": [1,\n   2,\n  }', ":4:3: not a readable model.json: malformed JSON", id="line-column"),
    pytest.param("9" * 5000, "unreadable JSON (Exceeds the limit (4300 digits)", id="huge-integer"),
    pytest.param("", ":1:1: not a readable model.json: malformed JSON: Expecting value", id="empty"),
]


@pytest.mark.parametrize("text, fragment", CRAFTED)
def test_crafted_json_names_the_file(tmp_path, text, fragment):
    path = tmp_path / "model.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(KdqError) as caught:
        read_json(path, "model.json")
    assert str(caught.value).startswith(str(path)) and fragment in str(caught.value)


def test_bytes_that_are_not_utf8_name_their_line(tmp_path):
    path = tmp_path / "summary.json"
    path.write_bytes(b'{\n"a":\n"\xff"}')
    with pytest.raises(KdqError, match=r"summary\.json:3: not a readable record: not valid UTF-8 \(byte 0xff\)"):
        read_json(path, "record")


def test_size_is_bounded_before_reading(tmp_path):
    path = tmp_path / "big.json"
    path.write_text("[" + "1," * 60 + "1]", encoding="utf-8")
    assert len(read_json(path, limit=path.stat().st_size)) == 61
    with pytest.raises(KdqError, match=rf"big\.json: {path.stat().st_size} bytes, more than the 100 allowed"):
        read_json(path, "record", limit=100)


@pytest.mark.parametrize("kind", ["fifo", "folder", "socket"])
def test_only_regular_files_are_read(tmp_path, kind):
    import socket

    path = tmp_path / "manifest.json"
    if kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
    else:
        os.mkfifo(path) if kind == "fifo" else path.mkdir()
    expected = {"fifo": "a FIFO (named pipe)", "folder": "a folder", "socket": "a socket"}[kind]
    with pytest.raises(KdqError, match=rf"is {re.escape(expected)}, not a regular file"):  # never waits for a writer
        read_json(path)
    if kind == "socket":
        server.close()


def test_a_deeply_nested_run_record_is_a_clear_error(tmp_path):
    from kdq_lab.runs.records import RunSummary

    path = tmp_path / "summary.json"
    path.write_text('{"format": 1, "run": ' + "[" * 100_000 + "]" * 100_000 + "}", encoding="utf-8")
    with pytest.raises(KdqError, match=f"{path}: not a readable RunSummary: nested too deeply"):
        RunSummary.read(path)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('["lightfm"]', "expected a JSON object, found list"),
        ('{"kind": "lightfm", "x": 1e999999}', "format None kind 'lightfm'"),
    ],
)
def test_a_crafted_model_json_is_a_clear_error(tmp_path, text, fragment):
    from kdq_lab.models import load_model

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.json").write_text(text, encoding="utf-8")
    with pytest.raises(KdqError, match=fragment) as caught:
        load_model(folder)
    assert str(Path(folder / "model.json")) in str(caught.value)
