"""Every YAML reader refuses aliases (alias bombs) and duplicate keys, naming the file and the line."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kdq_lab.errors import DataError, KdqError
from kdq_lab.yamlfile import YamlDocument, parse_assignment, scalar_texts

BOMB = (
    "\n".join(
        ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
        + [f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]" for a, b in zip("abcdefgh", "bcdefghi")]
    )
    + "\n"
)

ALIASES = [
    pytest.param(BOMB, 2, "*a", id="billion-laughs"),
    pytest.param("base: &b {epochs: 3}\nother: *b\n", 2, "*b", id="mapping-alias"),
    pytest.param("x: &x 1\ny: [1, 2, *x]\n", 2, "*x", id="alias-in-list"),
    pytest.param("d: &d {a: 1}\ne:\n  <<: *d\n  b: 2\n", 3, "*d", id="merge-key"),
    pytest.param("name: *undefined\n", 1, "*undefined", id="undefined-alias"),
]


@pytest.mark.parametrize("text, line, value", ALIASES)
def test_aliases_are_refused_with_file_and_line(text, line, value):
    started = time.perf_counter()
    with pytest.raises(DataError) as caught:
        YamlDocument(text, "some.yaml")
    assert time.perf_counter() - started < 1.0
    problem = caught.value.problems[0]
    assert (problem.file, problem.line, problem.value) == ("some.yaml", line, value)
    assert "aliases are not allowed" in problem.message


def test_anchor_without_alias_is_harmless():
    assert YamlDocument("a: &x 1\nb: 2\n", "f.yaml").data == {"a": 1, "b": 2}


DUPLICATES = [
    pytest.param("name: a\ntitle: t\nname: b\n", 3, "name", 1, id="top-level"),
    pytest.param("users:\n  id: a\n  file: u.csv\n  id: b\n", 4, "id", 2, id="nested"),
    pytest.param("runs:\n  - {model: x, model: y}\n", 2, "model", 2, id="flow-in-list"),
    pytest.param("1: a\n01: b\n", 2, "01", 1, id="same-integer"),
    pytest.param("'k': 1\n\"k\": 2\n", 2, "k", 1, id="quoted-styles"),
]


@pytest.mark.parametrize("text, line, key, first", DUPLICATES)
def test_duplicate_keys_are_refused_at_the_second_key(text, line, key, first):
    with pytest.raises(DataError) as caught:
        YamlDocument(text, "dup.yaml")
    problem = caught.value.problems[0]
    assert (problem.file, problem.line, problem.column) == ("dup.yaml", line, key)
    assert f"duplicate key (first on line {first})" in problem.message
    assert "key '" in str(problem)


def test_same_key_in_different_mappings_is_fine():
    assert YamlDocument("x: {a: 1}\ny: {a: 2}\n", "f.yaml").data == {"x": {"a": 1}, "y": {"a": 2}}


READERS = ["dataset", "experiment", "profile", "set"]


def _read_with(reader: str, text: str, tmp_path: Path) -> None:
    from kdq_lab.curate import read_profile
    from kdq_lab.data.schema import read_spec
    from kdq_lab.experiment.schema import load_experiment

    if reader == "set":
        parse_assignment("runs=" + text.replace("\n", ", ").join("{}"))
        return
    path = tmp_path / ("dataset.yaml" if reader == "dataset" else f"{reader}.yaml")
    path.write_text(text, encoding="utf-8")
    {
        "dataset": lambda: read_spec(tmp_path),
        "experiment": lambda: load_experiment(path),
        "profile": lambda: read_profile(path),
    }[reader]()


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize(
    "text, fragment",
    [
        ("a: &a [1, 2]\nb: *a", "aliases are not allowed"),
        ("a: 1\nb: 2\na: 3", "duplicate key"),
        ("a: 1\nb: " + "[" * 70 + "]" * 70, "nested more than 64 levels deep"),
        ("a: 1\nb: 2025-13-45", "not a readable value .ValueError: month must be in 1..12"),
    ],
)
def test_every_reader_refuses(reader, text, fragment, tmp_path):
    with pytest.raises(KdqError, match=fragment) as caught:
        _read_with(reader, text, tmp_path)
    if reader != "set":
        assert caught.value.problems[0].line in (2, 3) and str(tmp_path) in str(caught.value)


def test_no_yaml_read_bypasses_yamlfile():
    root = Path(__file__).resolve().parents[1] / "src" / "kdq_lab"
    offenders = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if path.name != "yamlfile.py"
        for call in ("yaml.safe_load", "yaml.load(", "yaml.compose", "yaml.full_load", "yaml.unsafe_load")
        if call in path.read_text(encoding="utf-8")
    ]
    assert offenders == []


@pytest.mark.parametrize(
    "text, expected",
    [
        ("seen: [007, 010, 0x1F]", ["007", "010", "0x1F"]),
        ("seen: ['007', \"0x1F\", 1e3]", ["007", "0x1F", "1e3"]),
        ("seen: 1_000", ["1_000"]),
        ("seen: [yes, null, ~, 2025-01-01]", ["yes", "2025-01-01"]),
    ],
)
def test_scalar_texts_keep_the_spelling(text, expected):
    assert scalar_texts(YamlDocument(text, "p.yaml").node(("seen",))) == expected


def test_scalar_texts_refuse_nested_values():
    assert scalar_texts(YamlDocument("seen: [[1], 2]", "p.yaml").node(("seen",))) is None
    assert scalar_texts(YamlDocument("seen: {a: 1}", "p.yaml").node(("seen",))) is None


def nested(depth: int, block: bool) -> str:
    """YAML with ``depth`` mappings or lists inside each other."""
    if block:
        return "".join("  " * level + f"k{level}:\n" for level in range(depth - 1)) + "  " * (depth - 1) + "x: 1\n"
    return "a: " + "[" * (depth - 1) + "1" + "]" * (depth - 1) + "\n"


@pytest.mark.parametrize("block", [True, False], ids=["block", "flow"])
def test_nesting_is_bounded_while_composing(block):
    assert YamlDocument(nested(64, block), "ok.yaml").data is not None
    with pytest.raises(DataError) as caught:
        YamlDocument(nested(65, block), "deep.yaml")
    problem = caught.value.problems[0]
    assert problem.file == "deep.yaml" and "nested more than 64 levels deep" in problem.message
    assert problem.line == (65 if block else 1)


def test_nesting_deeper_than_python_recurses_is_refused():
    with pytest.raises(DataError, match="nested more than 64 levels deep"):
        YamlDocument("[" * 200_000 + "]" * 200_000, "bomb.yaml")


@pytest.mark.parametrize(
    "text, line, value, fragment",
    [
        ("a: 1\nb: 2025-13-45\n", 2, "2025-13-45", "ValueError: month must be in 1..12"),
        ("a:\n  - 1\n  - " + "9" * 5000 + "\n", 3, "9" * 37 + "...", "ValueError: Exceeds the limit"),
        ("2025-02-30: x\n", 1, "2025-02-30", "ValueError: day is out of range for month"),
        ("a: !!timestamp soon\n", 1, "soon", "AttributeError"),
        ("a: !!float fast\n", 1, "fast", "ValueError: could not convert string to float"),
        ("a: !!bool maybe\n", 1, "maybe", "KeyError"),
    ],
)
def test_values_python_cannot_build_name_the_file_and_line(text, line, value, fragment):
    with pytest.raises(DataError) as caught:
        YamlDocument(text, "crafted.yaml")
    problem = caught.value.problems[0]
    assert (problem.file, problem.line, problem.value) == ("crafted.yaml", line, value)
    assert "not a readable value" in problem.message and fragment in problem.message


def test_files_are_read_only_up_to_their_bound(tmp_path):
    from kdq_lab.limits import MAX_YAML_BYTES

    path = tmp_path / "big.yaml"
    path.write_text("a: '" + "x" * (MAX_YAML_BYTES - 8) + "'\n", encoding="utf-8")
    assert path.stat().st_size == MAX_YAML_BYTES - 2 and YamlDocument.from_path(path).data
    path.write_text("a: '" + "x" * MAX_YAML_BYTES + "'\n", encoding="utf-8")
    with pytest.raises(KdqError, match=f"big.yaml: {MAX_YAML_BYTES + 6:,} bytes, more than the {MAX_YAML_BYTES:,}"):
        YamlDocument.from_path(path, "experiment file")


@pytest.mark.slow  # starts another Python process
@pytest.mark.parametrize("kind", ["fifo", "folder", "device"])
def test_only_regular_files_are_opened(tmp_path, kind):
    """A FIFO would make ``open`` wait for a writer forever, ``/dev/zero`` never end: both are refused unread."""
    import os
    import subprocess
    import sys

    path = tmp_path / "experiment.yaml"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    else:
        path.symlink_to("/dev/zero")
    code = "from kdq_lab.experiment.schema import load_experiment; import sys; load_experiment(sys.argv[1])"
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    expected = {"fifo": "a FIFO (named pipe)", "folder": "a folder", "device": "a device"}[kind]
    assert f"is {expected}, not a regular file (experiment file expected)" in proc.stderr
