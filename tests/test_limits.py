"""The lab's bounds live in one module, the README lists each one, and every flag that asks for a size is bounded."""

from __future__ import annotations

from pathlib import Path

import pytest

from kdq_lab import limits
from kdq_lab.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
BOUNDS = sorted(name for name in vars(limits) if name.isupper())


def test_the_readme_lists_every_bound():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(BOUNDS) > 30
    assert [name for name in BOUNDS if f"`{name}`" not in readme] == []


FLAGS = [
    (["recommend", "--model", "m", "--profile", "p", "--k", "1001"], "--k", "at most 1,000 is allowed, not '1001'"),
    (["recommend", "--model", "m", "--profile", "p", "--k", "0"], "--k", "expected an integer >= 1"),
    (["train", "--k", "100000000000000000000000"], "--k", "at most 1,000"),
    (["train", "--seed", str(2**32)], "--seed", "at most 4,294,967,295"),
    (["prepare", "d", "--seed", "-1"], "--seed", "expected an integer >= 0"),
    (["generate", "kdq-catalog", "--out", "x", "--seed", str(10**29)], "--seed", "at most 4,294,967,295"),
    (["run", "e.yaml", "--jobs", "257"], "--jobs", "at most 256"),
    (["run", "e.yaml", "--max-runs", "100001"], "--max-runs", "at most 100,000"),
    (["run", "e.yaml", "--retries", "101"], "--retries", "at most 100"),
    (["tune", "e.yaml", "--trials", "10001"], "--trials", "at most 10,000"),
    (["tune", "e.yaml", "--timeout", "inf"], "--timeout", "expected a number"),
    (["tune", "e.yaml", "--timeout", "1e9"], "--timeout", "at most 604,800 seconds are allowed, not '1e9'"),
    (["tune", "e.yaml", "--jobs", "1000"], "--jobs", "at most 256"),
    (["bench", "--repeats", "1000"], "--repeats", "at most 100"),
]


@pytest.mark.parametrize("argv, flag, fragment", FLAGS, ids=[" ".join(a[:1] + a[-2:]) for a, _, _ in FLAGS])
def test_flags_asking_for_too_much_are_refused(argv, flag, fragment, capsys):
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args(argv)
    error = capsys.readouterr().err
    assert caught.value.code == 2 and f"argument {flag}" in error and fragment in error


@pytest.mark.parametrize(
    "argv",
    [
        ["recommend", "--model", "m", "--profile", "p", "--k", "1000"],
        ["train", "--seed", str(2**32 - 1), "--k", "1"],
        ["run", "e.yaml", "--jobs", "256", "--max-runs", "100000", "--retries", "0"],
        ["tune", "e.yaml", "--timeout", "604800"],
    ],
)
def test_flags_at_their_bound_are_accepted(argv):
    build_parser().parse_args(argv)
