"""Names and paths from dataset.yaml or the command line never lead out of their folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kdq_lab.config import Paths
from kdq_lab.data.registry import dataset_exists, dataset_spec, resolve_dataset
from kdq_lab.data.schema import SPEC_FILE, parse_spec, read_spec
from kdq_lab.errors import DataError, KdqError

MINIMAL = (
    "name: {name}\nusers: {{id: u, file: {users}}}\nitems: {{id: i, file: {items}}}\n"
    "interactions: {{file: {events}, user: a, item: b, timestamp: t, event: e, event_weights: {{view: 1}}, "
    "positive_events: [view]}}\npredefined_splits: {{ua: {split}}}\nground_truth: {truth}\n"
)
SAFE = {
    "name": "ok",
    "users": "users.csv",
    "items": "items.csv",
    "events": "interactions.csv",
    "split": "splits/ua.csv",
    "truth": "ground_truth",
}
LINES = {"name": 1, "users": 2, "items": 3, "events": 4, "split": 5, "truth": 6}
KEYS = {
    "name": "name",
    "users": "users.file",
    "items": "items.file",
    "events": "interactions.file",
    "split": "predefined_splits.ua",
    "truth": "ground_truth",
}


def spec_text(**changes: str) -> str:
    return MINIMAL.format(**(SAFE | changes))


def problem_at(excinfo, key: str):
    found = [p for p in excinfo.value.problems if p.column == key]
    assert found, "\n".join(map(str, excinfo.value.problems))
    return found[0]


@pytest.mark.parametrize(
    "name",
    ["../../etc", "..", "a/b", "/tmp/x", ".hidden", "x..y", "'a b'", "'kdq\\x'", "'가나다'", "'" + "n" * 200 + "'"],
)
def test_unsafe_dataset_name_is_refused_at_load(name):
    with pytest.raises(DataError) as caught:
        parse_spec(spec_text(name=name), "dataset.yaml")
    problem = problem_at(caught, "name")
    assert problem.file == "dataset.yaml" and problem.line == 1
    assert "not a safe name" in problem.message and "data/processed" in problem.message


def test_safe_dataset_name_loads():
    assert parse_spec(spec_text(name="ml-100k_v2.1"), "dataset.yaml").name == "ml-100k_v2.1"


@pytest.mark.parametrize("key", ["users", "items", "events", "split", "truth"])
@pytest.mark.parametrize(
    "value, fragment",
    [
        ("/etc", "absolute path"),
        ("/etc/passwd", "absolute path"),
        ("../outside.csv", "'..' is not allowed"),
        ("sub/../../outside.csv", "'..' is not allowed"),
        ("'C:\\data\\users.csv'", "absolute path"),
        ("'..\\outside.csv'", "'..' is not allowed"),
        ("'\\\\server\\share\\x.csv'", "absolute path"),
    ],
)
def test_declared_paths_must_stay_inside(key, value, fragment):
    with pytest.raises(DataError) as caught:
        parse_spec(spec_text(**{key: value}), "dataset.yaml")
    problem = problem_at(caught, KEYS[key])
    assert problem.line == LINES[key] and fragment in problem.message
    assert problem.value == value.strip("'")


@pytest.mark.parametrize("key", ["users", "items", "events", "split", "truth"])
def test_symlink_leading_out_is_refused(key, tmp_path):
    dataset = tmp_path / "ds"
    (dataset / "splits").mkdir(parents=True)
    outside = tmp_path / "secret"
    outside.mkdir()
    target = {"split": "splits/ua.csv"}.get(key, SAFE[key])
    os.symlink(outside, dataset / target)
    (dataset / SPEC_FILE).write_text(spec_text(), encoding="utf-8")
    with pytest.raises(DataError) as caught:
        read_spec(dataset)
    problem = problem_at(caught, KEYS[key])
    assert "outside the dataset folder" in problem.message and str(outside) in problem.message


def test_symlink_inside_the_folder_is_fine(tmp_path):
    dataset = tmp_path / "ds"
    dataset.mkdir()
    (dataset / "real.csv").write_text("u\n", encoding="utf-8")
    os.symlink(dataset / "real.csv", dataset / "users.csv")
    (dataset / SPEC_FILE).write_text(spec_text(), encoding="utf-8")
    assert read_spec(dataset).users.file == "users.csv"


@pytest.mark.parametrize("truth", ["/etc", "../secret"])
def test_ground_truth_outside_is_never_copied(truth, catalog_copy, tmp_path):
    from kdq_lab.data.splits import SplitConfig
    from kdq_lab.data.store import prepare

    (tmp_path / "secret").mkdir()
    spec = catalog_copy / SPEC_FILE
    spec.write_text(
        spec.read_text(encoding="utf-8").replace("ground_truth: ground_truth", f"ground_truth: {truth}"),
        encoding="utf-8",
    )
    processed = tmp_path / "processed"
    with pytest.raises(DataError, match="ground_truth"):
        prepare(catalog_copy, SplitConfig(kind="random"), processed)
    assert not processed.exists() or not list(processed.rglob("passwd"))


def test_link_inside_ground_truth_leading_out_is_refused(catalog_copy, tmp_path):
    from kdq_lab.data.validate import validate_dataset

    secret = tmp_path / "secret.txt"
    secret.write_text("secret", encoding="utf-8")
    os.symlink(secret, catalog_copy / "ground_truth" / "leak.txt")
    problems = validate_dataset(catalog_copy)
    assert any(p.column == "ground_truth" and "symbolic link leading out" in p.message for p in problems)


@pytest.mark.parametrize("name", ["../../etc", "..", "../raw2", "a/../../b", "/etc", ".", "x y", "kdq\0x"])
def test_unsafe_names_on_the_command_line_are_never_joined_onto_data_raw(name, tmp_path):
    paths = Paths(tmp_path / "root")
    paths.raw.mkdir(parents=True)
    # a dataset one level above data/raw that an unchecked join would reach
    escaped = tmp_path / "root" / "data" / "raw2"
    escaped.mkdir()
    (escaped / SPEC_FILE).write_text(spec_text(name="raw2"), encoding="utf-8")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with pytest.raises(KdqError, match="no dataset"):
            resolve_dataset(name, paths, progress=False)
        assert not dataset_exists(name, paths)
        assert dataset_spec(name, paths) is None
    finally:
        os.chdir(cwd)


def test_existing_folder_paths_still_work(tiny_catalog, tmp_path):
    paths = Paths(tmp_path)
    assert resolve_dataset(str(tiny_catalog), paths) == tiny_catalog
    relative = os.path.relpath(tiny_catalog)
    assert resolve_dataset(relative, paths) == Path(relative)
    assert dataset_exists(str(tiny_catalog), paths) and dataset_spec(str(tiny_catalog), paths) is not None


@pytest.mark.parametrize("out", ["my data", "가나", ".hidden"])
def test_generate_and_import_refuse_an_unsafe_folder_name(out, tmp_path, ml100k_source):
    from kdq_lab.data.catalog import generate_catalog
    from kdq_lab.data.movielens import import_movielens

    with pytest.raises(KdqError, match="dataset name"):
        generate_catalog(tmp_path / out, scale="tiny", progress=False)
    with pytest.raises(KdqError, match="dataset name"):
        import_movielens(ml100k_source, tmp_path / out)
    assert not (tmp_path / out).exists()
