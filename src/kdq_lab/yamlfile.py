"""YAML read with ``safe_load`` plus the line of every key, for errors that point at the right line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from kdq_lab.errors import DataError, KdqError, Problem


class YamlDocument:
    """Parsed YAML data and a lookup from key paths to line numbers."""

    def __init__(self, text: str, filename: str):
        self.filename = filename
        try:
            self.root = yaml.compose(text, Loader=yaml.SafeLoader)
            self.data: Any = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            reason = getattr(exc, "problem", None) or str(exc)
            raise DataError([Problem(filename, line, None, None, f"malformed YAML: {reason}")],
                            heading=f"invalid {filename}") from None

    @classmethod
    def from_path(cls, path: Path, what: str = "file") -> "YamlDocument":
        """Read and parse a UTF-8 YAML (or JSON) file; a missing file or bad bytes are clear errors."""
        path = Path(path)
        if not path.is_file():
            raise KdqError(f"no {what} {path}")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            line = path.read_bytes()[: exc.start].count(b"\n") + 1
            raise DataError([Problem(str(path), line, None, None, f"not valid UTF-8 (byte 0x{exc.object[exc.start]:02x}); "
                                     "save the file as UTF-8")], heading=f"invalid {what} {path}") from None
        return cls(text, str(path))

    def line(self, path: tuple[str, ...]) -> int | None:
        """Line (1-based) of the deepest key of ``path`` found in the document."""
        node, line = self.root, None
        for key in path:
            if not isinstance(node, yaml.MappingNode):
                break
            for key_node, value_node in node.value:
                if key_node.value == key:
                    line, node = key_node.start_mark.line + 1, value_node
                    break
            else:
                break
        return line

    def problem(self, path: tuple[str, ...], value: Any, message: str) -> Problem:
        shown = None if value is None else str(value)
        return Problem(self.filename, self.line(path), ".".join(path) or None, shown, message, "key")


class YamlChecker:
    """Collects problems about a YAML document, each pointing at the offending key's line."""

    def __init__(self, document: YamlDocument):
        self.document = document
        self.problems: list[Problem] = []

    def add(self, path: tuple[str, ...], value: Any, message: str) -> None:
        self.problems.append(self.document.problem(path, value, message))

    def mapping(self, data: Any, path: tuple[str, ...], allowed: set[str], required: set[str] = frozenset()) -> dict:
        """``data`` if it is a mapping (else ``{}``), reporting unknown and missing keys."""
        if not isinstance(data, dict):
            self.add(path, data, "expected a mapping (key: value lines)")
            return {}
        for key in data:
            if key not in allowed:
                self.add((*path, str(key)), key, f"unknown key; allowed: {', '.join(sorted(allowed))}")
        for key in sorted(required - set(data)):
            self.add(path, None, f"missing required key '{key}'")
        return data


def parse_assignment(item: str, flag: str = "--set") -> tuple[str, Any]:
    """``key=value`` with the value parsed as YAML (``epochs=5`` → 5, ``k=[5,10]`` → [5, 10])."""
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise KdqError(f"{flag} {item!r}: expected key=value, e.g. {flag} epochs=5")
    try:
        return key.strip(), yaml.safe_load(text)
    except yaml.YAMLError:
        raise KdqError(f"{flag} {item!r}: the value is not valid YAML") from None
