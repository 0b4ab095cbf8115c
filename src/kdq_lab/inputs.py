"""Opening a file the lab was given: a regular file only, and never more bytes than a bound.

A FIFO, a device or a folder where a file is expected would make a plain ``open`` hang
(a FIFO waits for a writer) or read without end (``/dev/zero``). :func:`open_regular`
opens without blocking, then checks what it opened (so a file swapped for a FIFO between
a check and the open cannot hang it either).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

from kdq_lab.errors import KdqError

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a device"),
    (stat.S_ISBLK, "a device"),
)


def not_regular(mode: int) -> str | None:
    """What a file of ``mode`` is when it is not a regular file (``a FIFO (named pipe)``, ...), else ``None``."""
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def open_regular(path: Path, what: str = "file") -> BinaryIO:
    """``path`` opened for binary reading if it is a regular file (links followed), else :class:`KdqError`.

    A missing file raises :class:`FileNotFoundError`, for the caller to word.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:  # a socket cannot be opened at all
        kind = not_regular(os.stat(path).st_mode) if exc.errno == errno.ENXIO else None
        if kind is None:
            raise
        raise KdqError(f"{path} is {kind}, not a regular file ({what} expected)") from None
    try:
        kind = not_regular(os.fstat(fd).st_mode)
        if kind is not None:
            raise KdqError(f"{path} is {kind}, not a regular file ({what} expected)")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bounded(path: Path, what: str, limit: int) -> bytes:
    """The bytes of the regular file ``path``, refused (:class:`KdqError`) beyond ``limit`` bytes."""
    with open_regular(path, what) as handle:
        size = os.fstat(handle.fileno()).st_size
        data = handle.read(limit + 1) if size <= limit else b""  # it may grow meanwhile: one byte too many tells
    if size > limit or len(data) > limit:
        raise KdqError(f"{path}: {max(size, len(data)):,} bytes, more than the {limit:,} allowed ({what})")
    return data
