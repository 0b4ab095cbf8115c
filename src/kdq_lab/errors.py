"""User-facing errors: precise, listable, and printed by the CLI without a traceback."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from kdq_lab.terminal import safe

#: At most this many problems are listed per file; the rest are counted.
PROBLEMS_SHOWN_PER_FILE = 20


class KdqError(Exception):
    """An error the user can fix. The CLI prints it and exits with code 2."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: where it is, what it holds, what was expected."""

    file: str
    line: int | None
    column: str | None
    value: str | None
    message: str
    #: what ``column`` names: a CSV column, or a YAML key path
    column_kind: str = "column"

    def __str__(self) -> str:
        """One line, control characters and bidi overrides shown escaped (:mod:`kdq_lab.terminal`)."""
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        parts = [where]
        if self.column is not None:
            parts.append(f"{self.column_kind} '{self.column}'")
        if self.value is not None:
            shown = self.value if len(self.value) <= 60 else self.value[:57] + "..."
            parts.append(f"value '{shown}'")
        return safe(", ".join(parts) + f": {self.message}")


class DataError(KdqError):
    """Invalid input data, carrying every problem found."""

    def __init__(self, problems: Iterable[Problem], heading: str = "invalid dataset"):
        self.problems = list(problems)
        self.heading = heading
        super().__init__(format_problems(self.problems, heading))


def format_problems(problems: list[Problem], heading: str, noun: str = "problem") -> str:
    """Render problems (or warnings: ``noun``) grouped by file, at most ``PROBLEMS_SHOWN_PER_FILE`` each, escaped."""
    per_file = Counter(p.file for p in problems)
    lines = [f"{safe(heading)}: {len(problems)} {noun}(s)"]
    shown: Counter[str] = Counter()
    for problem in problems:
        if shown[problem.file] < PROBLEMS_SHOWN_PER_FILE:
            lines.append(f"  {problem}")
        shown[problem.file] += 1
    for file, total in per_file.items():
        if total > PROBLEMS_SHOWN_PER_FILE:
            lines.append(f"  {safe(file)}: ... and {total - PROBLEMS_SHOWN_PER_FILE} more {noun}(s) not shown")
    return "\n".join(lines)
