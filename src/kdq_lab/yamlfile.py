"""YAML read with ``safe_load`` plus the line of every key, for errors that point at the right line.

Every YAML the lab reads (``dataset.yaml``, experiment files, profiles, ``--set`` values) goes
through :func:`compose`, which refuses what PyYAML accepts silently:

* aliases (``*name``): an alias bomb ("billion laughs") expands exponentially in whatever walks
  the data afterwards, and the lab's files never need them, so every alias is refused;
* duplicate mapping keys: PyYAML keeps the last one, so an edit near the top of a file could be
  overridden without notice;
* nesting deeper than :data:`~kdq_lab.limits.MAX_YAML_DEPTH` (PyYAML composes recursively: a file of
  ``[[[[...`` would exhaust Python's recursion), counted while composing.

Files are read whole only up to :data:`~kdq_lab.limits.MAX_YAML_BYTES`, and any error Python raises
while a crafted file is parsed (a date like ``2025-13-45``, an integer of 5,000 digits) names the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from kdq_lab.checks import first_repeat
from kdq_lab.errors import DataError, KdqError, Problem
from kdq_lab.inputs import read_bounded
from kdq_lab.limits import MAX_YAML_BYTES, MAX_YAML_DEPTH

NULL_TAG = "tag:yaml.org,2002:null"


class _Refused(yaml.YAMLError):
    """A YAML construct the lab does not accept, with the line it is on."""

    def __init__(self, line: int, key: str | None, value: str | None, message: str):
        super().__init__(message)
        self.line, self.key, self.value, self.message = line, key, value, message


class _StrictLoader(yaml.SafeLoader):
    """``SafeLoader`` that refuses aliases and deep nesting while composing (before anything expands)."""

    depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _Refused(
                event.start_mark.line + 1,
                None,
                f"*{event.anchor}",
                "YAML aliases are not allowed in kdq-lab files (they can expand without bound): "
                "write the value out in full",
            )
        if not self.check_event(yaml.SequenceStartEvent, yaml.MappingStartEvent):
            return super().compose_node(parent, index)
        if self.depth == MAX_YAML_DEPTH:
            raise _Refused(
                self.peek_event().start_mark.line + 1,
                None,
                None,
                f"nested more than {MAX_YAML_DEPTH} levels deep (lists and mappings inside each other); "
                "kdq-lab files need a few",
            )
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except Exception as exc:  # PyYAML's constructors trust the text: whatever they raise, the value is unreadable
            raise _unreadable(node, exc) from None


def _unreadable(node: yaml.Node, exc: Exception) -> _Refused:
    """A value Python cannot build (a date like ``2025-13-45``, an integer of 5,000 digits), at its line."""
    value = node.value if isinstance(node, yaml.ScalarNode) else None
    shown = value if value is None or len(value) <= 40 else value[:37] + "..."
    return _Refused(node.start_mark.line + 1, None, shown, f"not a readable value ({type(exc).__name__}: {exc})")


def _duplicate_keys(node: yaml.Node | None) -> None:
    """Raise :class:`_Refused` at the second occurrence of a key in any mapping of the tree.

    Keys are compared as YAML reads them, so ``1`` and ``01`` (both the integer 1) are the same key.
    """
    constructor = yaml.constructor.SafeConstructor()
    stack = [node] if node is not None else []
    while stack:
        current = stack.pop()
        if isinstance(current, yaml.MappingNode):
            first: dict[Any, int] = {}
            for key, value in current.value:
                if isinstance(key, yaml.ScalarNode):
                    try:
                        read = constructor.construct_object(key)
                    except yaml.YAMLError:
                        raise
                    except Exception as exc:
                        raise _unreadable(key, exc) from None
                    identity, line = (type(read), read), key.start_mark.line + 1
                    if identity in first:
                        raise _Refused(
                            line,
                            key.value,
                            None,
                            f"duplicate key (first on line {first[identity]}); "
                            "YAML would silently keep only the last one",
                        )
                    first[identity] = line
                stack += [key, value]
        elif isinstance(current, yaml.SequenceNode):
            stack += current.value


def compose(text: str, filename: str) -> tuple[yaml.Node | None, Any]:
    """Parse ``text`` safely: (node tree, data). Aliases and duplicate keys are a :class:`DataError`."""
    loader = _StrictLoader(text)
    try:
        root = loader.get_single_node()
        _duplicate_keys(root)
        data = loader.construct_document(root) if root is not None else None
    except _Refused as exc:
        raise DataError(
            [Problem(filename, exc.line, exc.key, exc.value, exc.message, "key")], heading=f"invalid {filename}"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        raise DataError(
            [Problem(filename, line, None, None, f"malformed YAML: {reason}")], heading=f"invalid {filename}"
        ) from None
    except (RecursionError, MemoryError, TypeError, ValueError, OverflowError) as exc:  # a crafted value
        reason = "too deep or too large to read" if isinstance(exc, (RecursionError, MemoryError)) else exc
        raise DataError(
            [Problem(filename, None, None, None, f"malformed YAML: {type(exc).__name__}: {reason}")],
            heading=f"invalid {filename}",
        ) from None
    finally:
        loader.dispose()
    return root, data


def describe_type(value: Any) -> str:
    """The YAML kind of ``value`` for messages: 'a string', 'an integer', 'a list', ..."""
    if value is None:
        return "null (no value)"
    kinds = (
        (bool, "true/false"),
        (int, "an integer"),
        (float, "a decimal number"),
        (str, "a string"),
        (list, "a list"),
        (dict, "a mapping"),
    )
    return next((name for kind, name in kinds if isinstance(value, kind)), type(value).__name__)


class YamlDocument:
    """Parsed YAML data and a lookup from key paths to line numbers."""

    def __init__(self, text: str, filename: str):
        self.filename = filename
        self.root, self.data = compose(text, filename)

    @classmethod
    def from_path(cls, path: Path, what: str = "file") -> YamlDocument:
        """Read and parse a UTF-8 YAML (or JSON) file; a missing file or bad bytes are clear errors."""
        path = Path(path)
        try:
            data = read_bounded(path, what, MAX_YAML_BYTES)
        except FileNotFoundError:
            raise KdqError(f"no {what} {path}") from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise DataError(
                [
                    Problem(
                        str(path),
                        line,
                        None,
                        None,
                        f"not valid UTF-8 (byte 0x{exc.object[exc.start]:02x}); save the file as UTF-8",
                    )
                ],
                heading=f"invalid {what} {path}",
            ) from None
        return cls(text, str(path))

    def node(self, path: tuple[str, ...]) -> yaml.Node | None:
        """The value node at ``path`` (``None`` if a key is missing)."""
        node = self.root
        for key in path:
            if not isinstance(node, yaml.MappingNode):
                return None
            node = next((value for key_node, value in node.value if key_node.value == key), None)
        return node

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

    def item_line(self, path: tuple[str, ...], index: int, length: int) -> int | None:
        """Line of item ``index`` of the list at ``path``, if the document holds that list (of ``length`` items)."""
        node = self.node(path)
        if isinstance(node, yaml.SequenceNode) and len(node.value) == length:
            return node.value[index].start_mark.line + 1
        return None

    def problem(self, path: tuple[str, ...], value: Any, message: str, line: int | None = None) -> Problem:
        """A problem at ``path`` (on ``line``, by default the line of its deepest key)."""
        shown = None if value is None else str(value)
        return Problem(self.filename, line or self.line(path), ".".join(path) or None, shown, message, "key")


def scalar_texts(node: yaml.Node | None) -> list[str] | None:
    """The source text of a scalar, or of each scalar of a flat list (nulls skipped); ``None`` otherwise.

    Plain scalars keep their spelling: ``007`` stays ``'007'`` and ``0x1F`` stays ``'0x1F'``,
    where YAML would turn them into the integers 7 and 31.
    """
    nodes = node.value if isinstance(node, yaml.SequenceNode) else [node]
    if not all(isinstance(n, yaml.ScalarNode) for n in nodes):
        return None
    return [str(n.value) for n in nodes if n is not None and n.tag != NULL_TAG]


class YamlChecker:
    """Collects problems about a YAML document, each pointing at the offending key's line."""

    def __init__(self, document: YamlDocument):
        self.document = document
        self.problems: list[Problem] = []

    def add(self, path: tuple[str, ...], value: Any, message: str, line: int | None = None) -> None:
        self.problems.append(self.document.problem(path, value, message, line))

    def repeated(self, path: tuple[str, ...], values: list[Any]) -> bool:
        """Whether a list holds a value twice as YAML reads it (``1``, ``01``, ``0x1``); adds a problem at the copy."""
        repeat = first_repeat(values)
        if repeat is None:
            return False
        first, again = repeat
        self.add(
            path,
            values[again],
            f"the same value as item {first + 1} (YAML reads both alike, e.g. 1, 01 and 0x1, or l1 and 'l1'); "
            "each value may be listed once",
            self.document.item_line(path, again, len(values)),
        )
        return True

    def mapping(
        self, data: Any, path: tuple[str, ...], allowed: set[str], required: frozenset[str] | set[str] = frozenset()
    ) -> dict[Any, Any]:
        """``data`` if it is a mapping (else ``{}``), reporting unknown and missing keys."""
        if not isinstance(data, dict):
            self.add(path, data, f"expected a mapping (key: value lines), found {describe_type(data)}")
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
        return key.strip(), compose(text, f"{flag} {key.strip()}")[1]
    except DataError as exc:
        reason = exc.problems[0].message
        if reason.startswith("malformed YAML"):
            reason = "the value is not valid YAML"
        raise KdqError(f"{flag} {item!r}: {reason}") from None
