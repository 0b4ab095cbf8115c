"""What the command says: OS errors in one line (exit 1), argument errors that say what is expected."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from kdq_lab.cli import main

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kdq_lab.cli", *args], capture_output=True, text=True, cwd=ROOT)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


ERRORS = [
    (errno.ENOSPC, "No space left on device"),
    (errno.EACCES, "Permission denied"),
    (errno.EROFS, "Read-only file system"),
]


@pytest.mark.parametrize("code, cause", ERRORS)
@pytest.mark.parametrize("command", ["generate", "import"])
def test_os_errors_while_writing_are_one_line_and_leave_nothing(
    command, code, cause, tmp_path, monkeypatch, capsys, ml100k_source
):
    real = pd.DataFrame.to_csv

    def failing(self, path_or_buf=None, *args, **kwargs):
        real(self.head(3), path_or_buf, *args, **kwargs)  # part of the file is written, then the disk says no
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(pd.DataFrame, "to_csv", failing)
    out = tmp_path / "out"
    args = {
        "generate": ["generate", "kdq-catalog", "--scale", "tiny", "--out", str(out)],
        "import": ["import", "movielens", str(ml100k_source), "--out", str(out)],
    }[command]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0, err
    assert err.startswith(f"error: {out}: ") and cause in err
    assert leftovers(tmp_path) == [], "no partial output, no temporary folder"


@pytest.mark.slow  # starts another Python process
@pytest.mark.parametrize(
    "args",
    [
        ["generate", "kdq-catalog", "--scale", "tiny", "--out", "{file}/out"],
        ["import", "movielens", "{ml}", "--out", "{file}/out"],
    ],
)
def test_an_output_below_a_file_is_one_line_exit_1(args, tmp_path, ml100k_source):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    proc = cli(*(a.format(file=blocker, ml=ml100k_source) for a in args))
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
    assert proc.stderr == f"error: {blocker}: File exists\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads and writes regardless of permissions")
@pytest.mark.parametrize("what", ["read-only output folder", "unreadable input"])
def test_real_permission_errors(what, tmp_path, tiny_catalog):
    import shutil

    if what == "read-only output folder":
        parent = tmp_path / "ro"
        parent.mkdir()
        parent.chmod(0o555)
        proc = cli("generate", "kdq-catalog", "--scale", "tiny", "--out", str(parent / "out"))
        parent.chmod(0o755)
        assert leftovers(parent) == []
    else:
        data = Path(shutil.copytree(tiny_catalog, tmp_path / "ds"))
        (data / "users.csv").chmod(0)
        proc = cli("validate", str(data))
    assert proc.returncode == 1 and "Permission denied" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "args, expected",
    [
        (
            ["recommend", "--model", "m", "--profile", "p", "--k", "x"],
            "argument --k: expected an integer >= 1, not 'x'",
        ),
        (
            ["recommend", "--model", "m", "--profile", "p", "--k", "0"],
            "argument --k: expected an integer >= 1, not '0'",
        ),
        (["recommend", "--model", "m", "--profile", "p", "--k", "2.5"], "--k: expected an integer >= 1, not '2.5'"),
        (["run", "e.yaml", "--jobs", "-1"], "argument --jobs: expected an integer >= 1, not '-1'"),
        (["prepare", "d", "--seed", "-3"], "argument --seed: expected an integer >= 0, not '-3'"),
        (["generate", "kdq-catalog", "--out", "o", "--seed", "seven"], "--seed: expected an integer >= 0, not 'seven'"),
        (["bench", "--repeats", ""], "argument --repeats: expected an integer >= 1, not ''"),
        (["prepare", "d", "--test-fraction", "a fifth"], "argument --test-fraction: expected a number, not 'a fifth'"),
        (["train", "--validation-fraction", "nan"], "--validation-fraction: expected a number, not 'nan'"),
        (
            ["recommend", "--model", "m", "--profile", "p", "--diversify", "inf"],
            "--diversify: expected a number, not 'inf'",
        ),
    ],
)
def test_argument_errors_say_what_is_expected(args, expected, capsys):
    with pytest.raises(SystemExit) as caught:
        main(args)
    err = capsys.readouterr().err
    assert caught.value.code == 2 and expected in err
    assert "invalid" not in err and "_positive" not in err and "value:" not in err
