"""Whatever escapes a command ends as one line on stderr with exit 1 (the traceback only with KDQ_LAB_DEBUG=1)."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from kdq_lab import cli
from kdq_lab.cli import DEBUG_ENV, UNEXPECTED_SHOWN, main

ROOT = Path(__file__).resolve().parents[1]


def deep() -> None:
    deep()


def raise_(exc: BaseException):
    def command(args) -> int:
        raise exc

    return command


CASES = [
    (RecursionError("maximum recursion depth exceeded"), "input nested too deeply to read (RecursionError: maximum"),
    (MemoryError(), "out of memory (MemoryError): free memory or use a smaller input"),
    (MemoryError("Unable to allocate 800. GiB for an array"), "out of memory (MemoryError: Unable to allocate 800."),
    (TypeError("'NoneType' object is not subscriptable"), "TypeError: 'NoneType' object is not subscriptable"),
    (ValueError("first line\nsecond line\nthird"), "ValueError: first line ("),
    (KeyError("users"), "KeyError: 'users' ("),
    (AssertionError(), "AssertionError (an input kdq-lab does not refuse clearly yet, or a bug)"),
    (UnicodeEncodeError("ascii", "가", 0, 1, "ordinal not in range"), "UnicodeEncodeError: 'ascii' codec"),
]


@pytest.mark.parametrize("exc, expected", CASES, ids=[type(e).__name__ + str(i) for i, (e, _) in enumerate(CASES)])
def test_anything_else_is_one_line_exit_1(exc, expected, monkeypatch, capsys):
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    monkeypatch.setattr(cli, "_validate", raise_(exc))
    assert main(["validate", "somewhere"]) == 1
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and captured.err.startswith("error: "), captured.err
    assert expected in captured.err and f"rerun with {DEBUG_ENV}=1" in captured.err
    assert "Traceback" not in captured.err and "second line" not in captured.err


def test_a_real_recursion_is_one_line(monkeypatch, capsys):
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    monkeypatch.setattr(cli, "_validate", lambda args: deep())
    assert main(["validate", "x"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: input nested too deeply to read (RecursionError")


def test_a_long_message_is_cut(monkeypatch, capsys):
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    monkeypatch.setattr(cli, "_validate", raise_(RuntimeError("x" * 10_000)))
    assert main(["validate", "x"]) == 1
    err = capsys.readouterr().err
    assert "x" * (UNEXPECTED_SHOWN - 20) + "..." in err and "x" * UNEXPECTED_SHOWN not in err


@pytest.mark.parametrize("value, shown", [("1", True), ("yes", True), ("0", False), ("", False)])
def test_the_debug_variable_shows_the_traceback(value, shown, monkeypatch, capsys):
    monkeypatch.setenv(DEBUG_ENV, value)
    monkeypatch.setattr(cli, "_validate", raise_(TypeError("boom")))
    assert main(["validate", "x"]) == 1
    err = capsys.readouterr().err
    assert ("Traceback (most recent call last)" in err) is shown
    assert err.splitlines()[-1].startswith("error: TypeError: boom")


def test_known_errors_keep_their_codes(monkeypatch, capsys):
    from kdq_lab.errors import KdqError

    monkeypatch.setattr(cli, "_validate", raise_(KdqError("bad input")))
    assert main(["validate", "x"]) == 2
    monkeypatch.setattr(cli, "_validate", raise_(KeyboardInterrupt()))
    assert main(["validate", "x"]) == 130
    monkeypatch.setattr(cli, "_validate", raise_(PermissionError(13, "Permission denied", "/x")))
    assert main(["validate", "x"]) == 1
    assert capsys.readouterr().err.splitlines() == ["error: bad input", "interrupted", "error: /x: Permission denied"]


SCRIPT = """
import sys
from kdq_lab import cli
def command(args):
    raise {exc}
cli._validate = command
sys.exit(cli.main(["validate", "x"]))
"""


@pytest.mark.slow  # starts another Python process
@pytest.mark.parametrize(
    "exc, fragment",
    [
        ("TypeError('unhashable type: list')", "error: TypeError: unhashable type: list"),
        ("MemoryError()", "error: out of memory (MemoryError)"),
        (
            "RecursionError('maximum recursion depth exceeded while decoding a JSON array')",
            "error: input nested too deeply",
        ),
    ],
)
def test_in_a_process_stderr_is_one_line(exc, fragment):
    env = {k: v for k, v in os.environ.items() if k != DEBUG_ENV}
    proc = subprocess.run([sys.executable, "-c", SCRIPT.format(exc=exc)], capture_output=True, text=True, env=env)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and proc.stderr.startswith(fragment), proc.stderr


PRINT_OUT = """
import sys
from kdq_lab import cli
cli._generate = lambda args: print("wrote", args.out) or 0
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.slow  # starts another Python process
def test_undecodable_paths_are_printed_not_a_crash(tmp_path):
    """A path with bytes that are not UTF-8 reaches stdout (backslash-escaped), not a UnicodeEncodeError."""
    out = f"{tmp_path}/\udcff"  # the byte 0xff, as Python decodes it from argv
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}  # strict, whatever the locale
    proc = subprocess.run(
        [sys.executable, "-c", PRINT_OUT, "generate", "kdq-catalog", "--out", out], capture_output=True, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"wrote {tmp_path}/\\udcff\n".encode()


def test_every_console_script_is_main():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert scripts == {"kdq-lab": "kdq_lab.cli:main"}
