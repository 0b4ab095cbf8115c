"""The raw-dataset contract: every kind of bad input is named by file, line, column and value."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kdq_lab.data.schema import parse_spec
from kdq_lab.data.validate import load_dataset, validate_dataset
from kdq_lab.errors import DataError


def edit_line(path: Path, line: int, old: str, new: str) -> str:
    """Replace ``old`` by ``new`` on 1-based ``line`` of a CSV; return the new line."""
    lines = path.read_text(encoding="utf-8").split("\n")
    assert old in lines[line - 1], (old, lines[line - 1])
    lines[line - 1] = lines[line - 1].replace(old, new, 1)
    path.write_text("\n".join(lines), encoding="utf-8")
    return lines[line - 1]


def field(path: Path, line: int, index: int) -> str:
    return path.read_text(encoding="utf-8").split("\n")[line - 1].split(",")[index]


def only(problems, **where):
    found = [p for p in problems if all(getattr(p, k) == v for k, v in where.items())]
    assert found, f"no problem with {where} in:\n" + "\n".join(map(str, problems))
    return found[0]


def test_generated_catalog_is_valid(tiny_catalog):
    assert validate_dataset(tiny_catalog) == []


def test_missing_file_and_column_and_empty_file(catalog_copy):
    (catalog_copy / "items.csv").unlink()
    (catalog_copy / "interactions.csv").write_text("", encoding="utf-8")
    text = (catalog_copy / "users.csv").read_text(encoding="utf-8").replace("region", "area", 1)
    (catalog_copy / "users.csv").write_text(text, encoding="utf-8")
    problems = validate_dataset(catalog_copy)
    assert "missing file" in only(problems, file="items.csv").message
    assert "empty file" in only(problems, file="interactions.csv").message
    assert "missing column" in only(problems, file="users.csv", column="region", line=1).message


def test_header_only_file(catalog_copy):
    header = (catalog_copy / "items.csv").read_text(encoding="utf-8").split("\n")[0]
    (catalog_copy / "items.csv").write_text(header + "\n", encoding="utf-8")
    assert "no data rows" in only(validate_dataset(catalog_copy), file="items.csv").message


def test_duplicate_empty_and_nan_ids(catalog_copy):
    users = catalog_copy / "users.csv"
    first = field(users, 2, 0)
    edit_line(users, 5, field(users, 5, 0), first)
    edit_line(users, 6, field(users, 6, 0) + ",", ",")
    edit_line(users, 7, field(users, 7, 0) + ",", "NaN,")
    problems = validate_dataset(catalog_copy)
    dup = only(problems, file="users.csv", line=5, column="user_id", value=first)
    assert "duplicate user id (first on line 2)" in dup.message
    assert "empty or NaN" in only(problems, file="users.csv", line=6, column="user_id", value="").message
    assert "empty or NaN" in only(problems, file="users.csv", line=7, column="user_id", value="NaN").message


def test_unknown_user_and_item_in_interactions(catalog_copy):
    events = catalog_copy / "interactions.csv"
    edit_line(events, 3, field(events, 3, 0), "u9999999")
    edit_line(events, 4, field(events, 4, 1), "i999999")
    problems = validate_dataset(catalog_copy)
    assert "not found in users.csv" in only(problems, file="interactions.csv", line=3, value="u9999999").message
    assert "not found in items.csv" in only(problems, file="interactions.csv", line=4, value="i999999").message


def test_bad_timestamp_unknown_event_and_dates_before_publication(catalog_copy):
    events = catalog_copy / "interactions.csv"
    edit_line(events, 2, field(events, 2, 3), "31/02/2025 9am")
    edit_line(events, 3, "," + field(events, 3, 2) + ",", ",watch,")
    early = field(events, 5, 3)
    edit_line(events, 5, early, "2020" + early[4:])
    problems = validate_dataset(catalog_copy)
    assert "unparsable timestamp" in only(problems, line=2, column="occurred_at", value="31/02/2025 9am").message
    bad_event = only(problems, line=3, column="event", value="watch")
    assert "unknown event type" in bad_event.message and "view" in bad_event.message
    before = [p for p in problems if p.line == 5 and "before" in p.message]
    assert {"publication" in p.message or "sign-up" in p.message for p in before} == {True}
    assert before[0].value.startswith("2020")


def test_negative_and_non_numeric_weights(ml100k_source, tmp_path):
    from kdq_lab.data.movielens import import_movielens

    folder = import_movielens(ml100k_source, tmp_path / "ml")
    events = folder / "interactions.csv"
    edit_line(events, 2, "," + field(events, 2, 3) + ",", ",-3,")
    edit_line(events, 3, "," + field(events, 3, 3) + ",", ",five,")
    problems = validate_dataset(folder)
    assert "negative weight" in only(problems, line=2, column="rating", value="-3").message
    assert "expected a non-negative number" in only(problems, line=3, column="rating", value="five").message


def test_out_of_range_unix_time_is_a_problem_not_a_crash(ml100k_source, tmp_path):
    from kdq_lab.data.movielens import import_movielens

    folder = import_movielens(ml100k_source, tmp_path / "ml")
    events = folder / "interactions.csv"
    edit_line(events, 2, "," + field(events, 2, 4), ",1e20")
    problem = only(validate_dataset(folder), line=2, column="timestamp", value="1e20")
    assert "unparsable timestamp" in problem.message and "Unix seconds" in problem.message


def test_non_utf8_byte_is_located(catalog_copy):
    users = catalog_copy / "users.csv"
    raw = users.read_bytes().split(b"\n")
    region = raw[3].rsplit(b",", 1)[1]
    raw[3] = raw[3][: -len(region)] + b"\xb0\xa1"
    users.write_bytes(b"\n".join(raw))
    problem = only(validate_dataset(catalog_copy), file="users.csv", line=4, column="region")
    assert "not valid UTF-8" in problem.message and "\\xb0" in problem.value


def test_repeated_and_empty_multi_values(catalog_copy):
    items = catalog_copy / "items.csv"
    topic = field(items, 2, 4).split("|")[0]
    edit_line(items, 2, "," + field(items, 2, 4) + ",", f",{topic}|{topic},")
    edit_line(items, 3, "," + field(items, 3, 4) + ",", f",{topic}||디자인,")
    problems = validate_dataset(catalog_copy)
    assert "listed twice" in only(problems, file="items.csv", line=2, column="topics").message
    assert "empty value" in only(problems, file="items.csv", line=3, column="topics").message


def test_problems_are_capped_per_check_with_a_count(catalog_copy):
    events = catalog_copy / "interactions.csv"
    lines = events.read_text(encoding="utf-8").split("\n")
    lines = [lines[0]] + [line.replace(",view,", ",watch,") for line in lines[1:]]
    events.write_text("\n".join(lines), encoding="utf-8")
    problems = [p for p in validate_dataset(catalog_copy) if p.column == "event"]
    assert len(problems) == 11
    assert problems[-1].line is None and "rows in all" in problems[-1].message


@pytest.mark.parametrize(
    "text, line, fragment",
    [
        ("name: x\nusers: [1, 2\n", 3, "malformed YAML"),
        ("name: x\nusers: {id: u}\nitems: {id: i}\ninteractions: {user: a}\nsurprise: 1\n", 5, "unknown key"),
        (
            "name: x\nusers: {id: u, features: {categorical: age}}\nitems: {id: i}\n"
            "interactions: {user: a, item: b, timestamp: t, event: e, event_weights: {view: 1},\n"
            "  positive_events: [view]}\n",
            2,
            "expected a list of column names",
        ),
        (
            "name: x\nusers: {id: u}\nitems: {id: i}\n"
            "interactions: {user: a, item: b, timestamp: t, event: e, event_weights: {view: -1},\n"
            "  positive_events: [view]}\n",
            4,
            "non-negative number",
        ),
        (
            "name: x\nusers: {id: u}\nitems: {id: i}\n"
            "interactions: {user: a, item: b, timestamp: t, event: e, event_weights: {view: 1},\n"
            "  positive_events: [like]}\n",
            5,
            "not an event type",
        ),
        (
            "name: x\ntimestamp_format: excel\nusers: {id: u}\nitems: {id: i}\n"
            "interactions: {user: a, item: b, timestamp: t, event: e, event_weights: {view: 1},\n"
            "  positive_events: [view]}\n",
            2,
            "expected 'iso'",
        ),
    ],
)
def test_malformed_dataset_yaml(text, line, fragment):
    with pytest.raises(DataError) as caught:
        parse_spec(text, "dataset.yaml")
    problem = only(caught.value.problems, file="dataset.yaml")
    assert fragment in problem.message and problem.line == line


def test_load_raises_with_every_problem(catalog_copy):
    events = catalog_copy / "interactions.csv"
    edit_line(events, 2, field(events, 2, 3), "never")
    edit_line(events, 3, field(events, 3, 0), "u9999999")
    with pytest.raises(DataError) as caught:
        load_dataset(catalog_copy)
    assert {p.line for p in caught.value.problems} >= {2, 3}


@pytest.mark.slow  # starts another Python process
def test_cli_validate_exit_codes_and_no_traceback(tiny_catalog, catalog_copy):
    cli = [sys.executable, "-m", "kdq_lab.cli", "validate"]
    ok = subprocess.run([*cli, str(tiny_catalog)], capture_output=True, text=True)
    assert ok.returncode == 0 and "valid" in ok.stdout
    events = catalog_copy / "interactions.csv"
    edit_line(events, 2, field(events, 2, 3), "never")
    bad = subprocess.run([*cli, str(catalog_copy)], capture_output=True, text=True)
    assert bad.returncode == 2
    assert "interactions.csv:2, column 'occurred_at', value 'never'" in bad.stderr
    assert "Traceback" not in bad.stderr + bad.stdout


SPEC_BASE = (
    "format_version: 1\nname: x\nusers: {id: u, features: {categorical: [c]}}\nitems: {id: i}\n"
    "interactions: {user: a, item: b, timestamp: t, event: e, event_weights: {view: 1}, "
    "positive_events: [view]}\n"
)


@pytest.mark.parametrize(
    "old, new, key, fragment",
    [
        ("format_version: 1", "format_version: '1'", "format_version", "expected the integer 1, found a string"),
        ("format_version: 1", "format_version: 1.0", "format_version", "found a decimal number"),
        ("format_version: 1", "format_version: 2", "format_version", "unsupported format version"),
        ("name: x", "name: 5", "name", "expected a non-empty text value, found an integer"),
        ("name: x", "name: ''", "name", "found an empty string"),
        ("name: x", "name:", "name", "expected a name"),
        (
            "event_weights: {view: 1}",
            "event_weights: {" + ", ".join(f"e{i}: 1" for i in range(128)) + ", view: 1}",
            "interactions.event_weights",
            "at most 127 event types",
        ),
        (
            "categorical: [c]",
            "categorical: c",
            "users.features.categorical",
            "expected a list of column names, found a string",
        ),
        ("categorical: [c]", "categorical: [c, 3]", "users.features.categorical", "found an integer 3 in it"),
        (
            "{view: 1}",
            "{view: high}",
            "interactions.event_weights.view",
            "expected a non-negative number, found a string",
        ),
        ("{view: 1}", "{view: true}", "interactions.event_weights.view", "found true/false"),
        (
            "positive_events: [view]}",
            "positive_events: [view], not_before_item_timestamp: 'yes'}",
            "interactions.not_before_item_timestamp",
            "expected true or false, found a string",
        ),
        (
            "positive_events: [view]}",
            "positive_events: [view], positive_min_weight: four}",
            "interactions.positive_min_weight",
            "expected a number or null, found a string",
        ),
        (
            "name: x",
            "name: x\nmulti_value_separator: 1",
            "multi_value_separator",
            "expected a single character, found an integer",
        ),
        ("name: x", "name: x\ntimestamp_format: 1", "timestamp_format", "found an integer"),
        ("name: x", "name: x\npredefined_splits: {ua: 1}", "predefined_splits", "found an integer"),
        ("name: x", "name: x\npredefined_splits: [ua.csv]", "predefined_splits", "found a list"),
        ("items: {id: i}", "items: [i]", "items", "expected a mapping (key: value lines), found a list"),
        ("items: {id: i}", "items: {id: i, labels: {a: 1}}", "items.labels", "found an integer"),
        (
            "items: {id: i}",
            "items: {id: i, features: {numeric: {d: {edges: [0, '10']}}}}",
            "items.features.numeric.d.edges",
            "found a string '10'",
        ),
        (
            "items: {id: i}",
            "items: {id: i, features: {numeric: {d: {bins: '4'}}}}",
            "items.features.numeric.d.bins",
            "expected an integer >= 2 (at most 1,000), found a string",
        ),
    ],
)
def test_wrong_types_say_what_was_found_and_expected(old, new, key, fragment):
    text = SPEC_BASE.replace(old, new, 1)
    assert text != SPEC_BASE
    with pytest.raises(DataError) as caught:
        parse_spec(text, "dataset.yaml")
    problem = only(caught.value.problems, column=key)
    assert fragment in problem.message, problem
    assert problem.line == next(i for i, line in enumerate(text.split("\n"), 1) if key.split(".")[0] in line)


@pytest.mark.parametrize("spelling", [".nan", ".NaN", ".inf", ".Inf", "-.inf", "-.Inf", "+.inf"])
@pytest.mark.parametrize(
    "old, new, key",
    [
        ("{view: 1}", "{view: X}", "interactions.event_weights.view"),
        ("[view]}", "[view], positive_min_weight: X}", "interactions.positive_min_weight"),
        (
            "items: {id: i}",
            "items: {id: i, features: {numeric: {d: {edges: [0, X]}}}}",
            "items.features.numeric.d.edges",
        ),
    ],
)
def test_nan_and_infinite_numbers_are_refused_on_their_line(spelling, old, new, key):
    text = SPEC_BASE.replace(old, new.replace("X", spelling), 1)
    with pytest.raises(DataError) as caught:
        parse_spec(text, "dataset.yaml")
    problem = only(caught.value.problems, column=key)
    assert ("found NaN" if "nan" in spelling.lower() else "found an infinite number") in problem.message, problem
    assert problem.line == next(i for i, line in enumerate(text.split("\n"), 1) if key.split(".")[0] in line)


@pytest.mark.parametrize(
    "old, new, key, fragment",
    [
        ("items: {id: i}", "items: {id: i, features: {numeric: {d: {bins: 1001}}}}", "items.features.numeric.d.bins",
         "expected an integer >= 2 (at most 1,000)"),
        ("items: {id: i}", "items: {id: i, features: {numeric: {d: {bins: 100000000000000000000}}}}",
         "items.features.numeric.d.bins", "(at most 1,000)"),
        ("items: {id: i}", "items: {id: i, features: {numeric: {d: {edges: [" + ", ".join(map(str, range(1001)))
         + "]}}}}", "items.features.numeric.d.edges", "1,001 edges: at most 1,000 are allowed"),
        ("categorical: [c]", "categorical: [" + ", ".join(f"c{i}" for i in range(101)) + "]", "users.features",
         "101 feature columns: at most 100 are allowed"),
        ("categorical: [c]", "categorical: [" + ", ".join(f"c{i}" for i in range(60)) + "], multi_valued: ["
         + ", ".join(f"m{i}" for i in range(41)) + "]", "users.features", "101 feature columns: at most 100"),
    ],
)  # fmt: skip
def test_sizes_a_dataset_yaml_asks_for_are_bounded(old, new, key, fragment):
    text = SPEC_BASE.replace(old, new, 1)
    with pytest.raises(DataError) as caught:
        parse_spec(text, "dataset.yaml")
    problem = only(caught.value.problems, column=key)
    assert fragment in problem.message and problem.line is not None, problem


def test_a_hundred_feature_columns_and_a_thousand_bins_are_fine():
    columns = ", ".join(f"c{i}" for i in range(100))
    spec = parse_spec(SPEC_BASE.replace("categorical: [c]", f"categorical: [{columns}]").replace(
        "items: {id: i}", "items: {id: i, features: {numeric: {d: {bins: 1000}}}}"), "dataset.yaml")  # fmt: skip
    assert len(spec.users.feature_columns) == 100 and spec.items.numeric[0].bins == 1000
