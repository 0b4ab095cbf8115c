"""``kdq-lab diff OLD NEW``: compare two reports of one experiment and write ``diff.html`` in the new one."""

from __future__ import annotations

from pathlib import Path

from kdq_lab.errors import KdqError
from kdq_lab.files import atomic_file, made_by_lab, record_in_marker
from kdq_lab.report.checks import DIFF_PAGE
from kdq_lab.report.diff import Diff, compute_diff
from kdq_lab.report.diff_html import diff_html


def diff_reports(old: Path, new: Path) -> tuple[Diff, Path]:
    """The diff of ``old`` and ``new`` and the page written for it (``NEW/diff.html``).

    The page goes into the new report only if the lab provably wrote that folder (its marker), and is
    recorded in the marker, so the folder stays the lab's.
    """
    old, new = Path(old), Path(new)
    diff = compute_diff(old, new)
    if not made_by_lab(new):
        raise KdqError(
            f"{new}: not a folder the lab wrote (no marker, or files it did not write); diff.html not written"
        )
    page = new / DIFF_PAGE
    with atomic_file(page) as handle:
        handle.write(diff_html(diff, str(old), str(new)))
    record_in_marker(new, [page])
    return diff, page


def diff_text(diff: Diff) -> list[str]:
    """What the command prints: the moved rows, the runs added and removed, the settings that differ."""
    lines = [f"{diff.experiment}: {len(diff.moved)} of {len(diff.rows)} rows moved beyond their resolution"]
    for row in diff.moved.itertuples():
        how = f"paired, Holm p = {row.p_holm:.3g}" if row.paired else "unpaired, intervals apart"
        lines.append(
            f"  moved: {row.run} · {row.split} · {row.segment} · {row.metric}: "
            f"{row.old:.4f} → {row.new:.4f} ({row.delta:+.4f}; {how})"
        )
    lines += [f"  added: {name}" for name in diff.added] + [f"  removed: {name}" for name in diff.removed]
    lines += [f"  parameter: {key}: {a} → {b}" for key, a, b in diff.parameters]
    lines += [f"  version: {key}: {a} → {b}" for key, a, b in diff.versions]
    return lines
