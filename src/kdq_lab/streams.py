"""The process's standard streams changed for the length of a block only, then restored as they were.

* :func:`silenced_fd`: a file descriptor (stderr's, 2) sent to ``/dev/null``; a child process started in
  the block keeps it (a notebook kernel's chatter stays out of the progress bars).
* :func:`text_errors`: text streams (``sys.stdout``, ``sys.stderr``) with another error handler (the
  command prints paths of undecodable bytes backslash-escaped instead of failing).
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any


@contextmanager
def silenced_fd(fd: int = 2) -> Iterator[None]:
    """File descriptor ``fd`` points at ``/dev/null`` inside the block, and at what it pointed to after it."""
    for stream in (sys.stdout, sys.stderr):  # what Python buffered goes where it was meant to
        stream.flush()
    saved = os.dup(fd)
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, fd)
        finally:
            os.close(devnull)
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os.dup2(saved, fd)
        os.close(saved)


@contextmanager
def text_errors(streams: Sequence[Any], errors: str) -> Iterator[None]:
    """Each text stream of ``streams`` (an ``io.TextIOWrapper``; others are left alone) encodes with the error
    handler ``errors`` inside the block, and with its own after it."""
    wrappers = [stream for stream in streams if isinstance(stream, io.TextIOWrapper)]
    before = [stream.errors for stream in wrappers]
    for stream in wrappers:
        stream.reconfigure(errors=errors)
    try:
        yield
    finally:
        for stream, handler in zip(wrappers, before):
            stream.reconfigure(errors=handler)
