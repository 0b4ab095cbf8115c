"""Profiles: repeated values refused like in datasets, ids read as written, an empty profile says what it gets."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from kdq_lab.curate import EMPTY_PROFILE_NOTE, profile_from_dict, read_profile, recommend
from kdq_lab.errors import DataError
from kdq_lab.models import LightFMConfig, LightFMHybrid, TrainData

ROOT = Path(__file__).resolve().parents[2]
ARTIST = {"occupations": ["예술인", "배우"], "interests": ["AI 영상", "AI 음악"], "coding_experience": "없음"}


@pytest.fixture(scope="module")
def model(tiny_split):
    return LightFMHybrid(LightFMConfig(no_components=8, epochs=3)).fit(TrainData.from_split(tiny_split, refit=True))


@pytest.mark.parametrize(
    "change, column, repeated",
    [
        ({"interests": ["AI 영상", "AI 영상"]}, "interests", "AI 영상"),
        ({"interests": "AI 영상|AI 음악|AI 영상"}, "interests", "AI 영상"),
        ({"interests": ["AI 영상|AI 음악", "AI 음악"]}, "interests", "AI 음악"),
        ({"occupations": ["배우", "예술인", "배우", "예술인"]}, "occupations", "배우, 예술인"),
        ({"coding_experience": ["없음", "없음"]}, "coding_experience", "없음"),
    ],
)
def test_a_repeated_value_is_refused(model, tiny_split, change, column, repeated):
    with pytest.raises(DataError) as caught:
        recommend(model, profile_from_dict(ARTIST | change), items=tiny_split.items)
    problem = caught.value.problems[0]
    assert (problem.column, problem.value) == (column, repeated) and "listed twice" in problem.message


def test_a_repeat_in_a_profile_file_names_the_line(model, tiny_split, tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("occupations: [배우]\ninterests: [AI 영상, AI 음악, AI 영상]\n", encoding="utf-8")
    with pytest.raises(DataError) as caught:
        recommend(model, read_profile(path), items=tiny_split.items)
    problem = caught.value.problems[0]
    assert (problem.file, problem.line, problem.column) == (str(path), 2, "interests")


@pytest.mark.parametrize(
    "text, seen",
    [
        ("seen: [007, 010, 0x1F]", ("007", "010", "0x1F")),
        ("seen: [1e3, 1_000, 0o17, +5]", ("1e3", "1_000", "0o17", "+5")),
        ("seen: ['08', \"09\", i000001]", ("08", "09", "i000001")),
        ("seen:\n  - 2025-01-01\n  - yes\n  - 12:30", ("2025-01-01", "yes", "12:30")),
        ('{"seen": ["007", 7, 7.50]}', ("007", "7", "7.50")),
    ],
)
def test_ids_are_read_exactly_as_written(text, seen, tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(text + "\n", encoding="utf-8")
    assert read_profile(path).seen == seen


@pytest.mark.parametrize(
    "text, column, values",
    [
        ("age_band: 007", "age_band", ["007"]),
        ("interests: [0x1F, on, 3.10]", "interests", ["0x1F", "on", "3.10"]),
        ("goals: ~", "goals", []),
    ],
)
def test_feature_values_are_read_exactly_as_written(text, column, values, tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(text + "\n", encoding="utf-8")
    assert read_profile(path).values[column] == values


def test_nested_values_are_still_refused(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("interests: [[AI 영상]]\n", encoding="utf-8")
    with pytest.raises(DataError, match="expected a value or a list of values"):
        read_profile(path)


@pytest.mark.parametrize("text", ["", "{}\n", "seen: []\n", "interests: []\n", "occupations:\ninterests: []\n"])
def test_an_empty_profile_gets_popularity_and_says_so(model, tiny_split, tmp_path, text):
    path = tmp_path / "empty.yaml"
    path.write_text(text, encoding="utf-8")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        curation = recommend(model, read_profile(path), k=5, items=tiny_split.items)
    assert curation.notes == [EMPTY_PROFILE_NOTE]
    assert any("popularity alone" in str(w.message) for w in caught)
    _, _, biases, _ = model.representations()
    assert list(curation.items["item_id"]) == list(model.item_ids_[np.argsort(-biases, kind="stable")[:5]])


def test_a_profile_of_only_unknown_values_is_empty_too(model, tiny_split):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        curation = recommend(
            model, profile_from_dict({"interests": ["없는 관심사"]}), lenient=True, items=tiny_split.items
        )
    assert curation.notes == [EMPTY_PROFILE_NOTE]


def test_a_real_profile_has_no_note(model, tiny_split):
    assert recommend(model, profile_from_dict(ARTIST), items=tiny_split.items).notes == []


@pytest.mark.slow  # starts another Python process
def test_the_command_prints_the_note(model, tiny_split, tmp_path):
    folder = model.save(
        tmp_path / "model", items=tiny_split.items, extra={"item_id_column": tiny_split.manifest["item_id_column"]}
    )
    profile = tmp_path / "empty.yaml"
    profile.write_text("seen: []\n", encoding="utf-8")
    run = [sys.executable, "-m", "kdq_lab.cli", "recommend", "--model", str(folder), "--profile", str(profile)]
    plain = subprocess.run(run, capture_output=True, text=True, cwd=ROOT)
    assert plain.returncode == 0 and "warning: the profile gives no feature value" in plain.stderr
    as_json = subprocess.run([*run, "--json"], capture_output=True, text=True, cwd=ROOT)
    assert json.loads(as_json.stdout)["notes"] == [EMPTY_PROFILE_NOTE]


@pytest.mark.parametrize(
    ("change", "column", "fragment"),
    [
        ({"hobbies": ["등산"]}, "hobbies", "not a user feature column"),
        ({"interests": ["AI 영상", "AI 영상"]}, "interests", "listed twice"),
        ({"coding_experience": ["없음", "조금"]}, "coding_experience", "takes one value"),
    ],
)
def test_lenient_drops_unknown_values_only_every_other_problem_stays(model, tiny_split, change, column, fragment):
    profile = profile_from_dict(ARTIST | {"occupations": ["배우", "없는 직업"]} | change)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError) as caught:
            recommend(model, profile, lenient=True, items=tiny_split.items)
    assert [(p.column, fragment in p.message) for p in caught.value.problems] == [(column, True)]
    with pytest.raises(DataError) as strict:
        recommend(model, profile, items=tiny_split.items)
    assert {p.column for p in strict.value.problems} == {"occupations", column}, "without lenient, both are errors"
