"""Streams changed for a block only: a file descriptor sent to /dev/null and text streams' error handler come back."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys

import pytest

from kdq_lab.streams import silenced_fd, text_errors


def _target(fd: int) -> tuple[int, int, int]:
    info = os.fstat(fd)
    return info.st_dev, info.st_ino, info.st_rdev


@pytest.mark.parametrize("raises", [False, True], ids=["returns", "raises"])
def test_a_silenced_descriptor_points_at_dev_null_then_back(tmp_path, raises):
    with open(tmp_path / "err.txt", "wb") as handle:  # a descriptor of our own, so pytest's capture stays out
        fd = handle.fileno()
        before = _target(fd)
        outcome = pytest.raises(RuntimeError) if raises else contextlib.nullcontext()
        with outcome, silenced_fd(fd):
            assert _target(fd) == _target_of(os.devnull)
            os.write(fd, b"lost\n")
            if raises:
                raise RuntimeError("inside")
        assert _target(fd) == before
        os.write(fd, b"kept\n")
    assert (tmp_path / "err.txt").read_bytes() == b"kept\n"


@pytest.mark.slow  # starts another Python process
def test_a_child_started_inside_keeps_dev_null_and_the_parent_gets_its_stderr_back(capfd):
    with silenced_fd(2):
        subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write('child\\n')"], check=True)
    os.write(2, b"parent\n")
    assert capfd.readouterr().err == "parent\n"


@pytest.mark.parametrize("raises", [False, True], ids=["returns", "raises"])
def test_text_errors_apply_inside_and_the_stream_s_own_come_back(raises):
    stream = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    other = io.StringIO()  # not a TextIOWrapper: left alone
    outcome = pytest.raises(RuntimeError) if raises else contextlib.nullcontext()
    with outcome, text_errors((stream, other), "backslashreplace"):
        assert stream.errors == "backslashreplace"
        stream.write("\udcff")  # an undecodable byte as os.fsdecode leaves it: escaped, no error
        if raises:
            raise RuntimeError("inside")
    assert stream.errors == "strict"
    with pytest.raises(UnicodeEncodeError):
        stream.write("\udcff")
        stream.flush()


def _target_of(path: str) -> tuple[int, int, int]:
    info = os.stat(path)
    return info.st_dev, info.st_ino, info.st_rdev
