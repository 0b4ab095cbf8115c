"""YAML read with ``safe_load`` plus the line of every key, for errors that point at the right line."""

from __future__ import annotations

from typing import Any

import yaml

from kdq_lab.errors import DataError, Problem


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
