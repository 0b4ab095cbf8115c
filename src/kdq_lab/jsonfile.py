"""JSON the lab reads back (saved models, run records, manifests): bounded, and every failure names the file.

A crafted file is refused with a :class:`KdqError` naming it, never a traceback: a FIFO or
a folder (never opened as a stream), a file beyond its size bound, bytes that are not UTF-8,
malformed JSON (with its line and column), and nesting deep enough to exhaust Python's
recursion (``RecursionError``) or values too large for memory (``MemoryError``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kdq_lab.errors import KdqError
from kdq_lab.inputs import read_bounded
from kdq_lab.limits import MAX_JSON_BYTES


def read_json(path: Path, what: str = "JSON file", limit: int = MAX_JSON_BYTES) -> Any:
    """The parsed content of ``path`` (at most ``limit`` bytes); a missing file raises :class:`FileNotFoundError`."""
    data = read_bounded(Path(path), what, limit)
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        where, reason = f"{path}:{line}", f"not valid UTF-8 (byte 0x{data[exc.start]:02x})"
    except json.JSONDecodeError as exc:
        where, reason = f"{path}:{exc.lineno}:{exc.colno}", f"malformed JSON: {exc.msg}"
    except RecursionError:
        where, reason = str(path), "nested too deeply to read"
    except MemoryError:
        where, reason = str(path), "too large to read into memory"
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        where, reason = str(path), f"unreadable JSON ({exc})"
    raise KdqError(f"{where}: not a readable {what}: {reason}")
