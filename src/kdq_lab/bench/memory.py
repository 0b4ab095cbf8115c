"""Peak resident memory of a block of code (Linux ``/proc``; other systems report ``nan``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

STATUS = Path("/proc/self/status")


def _status_kb(key: str) -> float:
    for line in STATUS.read_text().splitlines():
        if line.startswith(key + ":"):
            return float(line.split()[1])
    return float("nan")


@contextlib.contextmanager
def peak_rss_mb() -> Iterator[dict[str, float]]:
    """Measure the peak resident set growth (MB) inside the block.

    Resets the kernel's high-water mark on entry (``/proc/self/clear_refs``), so the
    reading covers only the block. Run each measured side in a fresh process.
    """
    result = {"peak_mb": float("nan")}
    try:
        Path("/proc/self/clear_refs").write_text("5")
        before = _status_kb("VmRSS")
    except OSError:
        yield result
        return
    yield result
    result["peak_mb"] = (_status_kb("VmHWM") - before) / 1024
