"""The raw-dataset contract: ``dataset.yaml`` parsed into frozen specs with precise errors.

A dataset is a folder with ``users.csv``, ``items.csv``, ``interactions.csv`` (or the same
tables as Parquet: ``file_format: parquet``) and a ``dataset.yaml`` describing them. See
the README ("The data contract") for the layout.
"""

from __future__ import annotations

import difflib
import itertools
import math
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Literal
from zoneinfo import available_timezones

import yaml

from kdq_lab.checks import is_finite, is_int, is_number
from kdq_lab.errors import DataError, Problem
from kdq_lab.limits import MAX_BINS, MAX_EDGES, MAX_FEATURE_COLUMNS, too_many
from kdq_lab.names import name_problem
from kdq_lab.yamlfile import YamlChecker, YamlDocument, describe_type

SPEC_FILE = "dataset.yaml"
FORMAT_VERSION = 1
MAX_EVENT_TYPES = 127  # event codes are int8
TimestampFormat = Literal["iso", "unix"]
FileFormat = Literal["csv", "parquet"]
FILE_FORMATS: tuple[str, ...] = ("csv", "parquet")


@dataclass(frozen=True)
class NumericFeature:
    """A numeric column turned into one-hot bins: explicit ``edges`` or ``bins`` quantiles."""

    column: str
    edges: tuple[float, ...] | None = None
    bins: int | None = None


@dataclass(frozen=True)
class EntitySpec:
    """Users or items: file, id and timestamp columns, feature columns by kind."""

    file: str
    id: str
    timestamp: str | None = None
    categorical: tuple[str, ...] = ()
    multi_valued: tuple[str, ...] = ()
    numeric: tuple[NumericFeature, ...] = ()
    text: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def feature_columns(self) -> tuple[str, ...]:
        """Feature columns in vocabulary order: categorical, multi-valued, numeric."""
        return self.categorical + self.multi_valued + tuple(n.column for n in self.numeric)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column the file must have."""
        stamp = (self.timestamp,) if self.timestamp else ()
        return (self.id, *stamp, *self.feature_columns, *self.text)

    def label(self, column: str) -> str:
        """Readable name of a feature column (falls back to the column name)."""
        return self.labels.get(column, column)


@dataclass(frozen=True)
class InteractionSpec:
    """Interaction events: columns, event weights and the positive rule."""

    file: str
    user: str
    item: str
    timestamp: str
    event: str
    event_weights: dict[str, float]
    positive_events: tuple[str, ...]
    weight: str | None = None
    positive_min_weight: float | None = None
    not_before_item_timestamp: bool = False
    not_before_user_timestamp: bool = False

    @property
    def columns(self) -> tuple[str, ...]:
        extra = (self.weight,) if self.weight else ()
        return (self.user, self.item, self.timestamp, self.event, *extra)


@dataclass(frozen=True)
class DatasetSpec:
    """Everything ``dataset.yaml`` declares."""

    name: str
    title: str
    timestamp_format: TimestampFormat
    separator: str
    users: EntitySpec
    items: EntitySpec
    interactions: InteractionSpec
    predefined_splits: dict[str, str] = field(default_factory=dict)
    ground_truth: str | None = None
    format_version: int = FORMAT_VERSION
    #: IANA zone of ISO timestamps written without an offset (``None``: every stamp must carry one)
    timezone: str | None = None
    #: how the users, items and interactions tables are stored (predefined split files are CSV)
    file_format: FileFormat = "csv"

    def to_dict(self) -> dict[str, Any]:
        """The YAML form (inverse of :func:`parse_spec`)."""

        def entity(e: EntitySpec) -> dict[str, Any]:
            return {
                "file": e.file,
                "id": e.id,
                "timestamp": e.timestamp,
                "features": {
                    "categorical": list(e.categorical),
                    "multi_valued": list(e.multi_valued),
                    "numeric": {
                        n.column: ({"edges": list(n.edges)} if n.edges is not None else {"bins": n.bins})
                        for n in e.numeric
                    },
                },
                "text": list(e.text),
                "labels": dict(e.labels),
            }

        i = self.interactions
        zone = {"timezone": self.timezone} if self.timezone else {}
        stored = {"file_format": self.file_format} if self.file_format != "csv" else {}
        return {
            "format_version": self.format_version,
            "name": self.name,
            "title": self.title,
            **stored,
            "timestamp_format": self.timestamp_format,
            **zone,
            "multi_value_separator": self.separator,
            "users": entity(self.users),
            "items": entity(self.items),
            "interactions": {
                "file": i.file,
                "user": i.user,
                "item": i.item,
                "timestamp": i.timestamp,
                "event": i.event,
                "weight": i.weight,
                "event_weights": dict(i.event_weights),
                "positive_events": list(i.positive_events),
                "positive_min_weight": i.positive_min_weight,
                "not_before_item_timestamp": i.not_before_item_timestamp,
                "not_before_user_timestamp": i.not_before_user_timestamp,
            },
            "predefined_splits": dict(self.predefined_splits),
            "ground_truth": self.ground_truth,
        }


def write_spec(spec: DatasetSpec, folder: Path) -> None:
    """Write ``dataset.yaml`` into ``folder`` (UTF-8, keys in contract order)."""
    text = yaml.safe_dump(spec.to_dict(), allow_unicode=True, sort_keys=False, width=100)
    (Path(folder) / SPEC_FILE).write_text(text, encoding="utf-8")


def read_spec(folder: Path) -> DatasetSpec:
    """Read and check ``folder/dataset.yaml``; raise :class:`DataError` listing every problem.

    Declared files must resolve inside ``folder`` (symbolic links included).
    """
    path = Path(folder) / SPEC_FILE
    if not path.exists():
        raise DataError([Problem(str(path), None, None, None, "missing file: every dataset needs a dataset.yaml")])
    document = YamlDocument.from_path(path, SPEC_FILE)
    return _parse(document, Path(folder))


def _parse(document: YamlDocument, folder: Path | None = None) -> DatasetSpec:
    reader = _SpecReader(document, folder)
    spec = reader.dataset(document.data)
    if reader.problems:
        raise DataError(reader.problems, heading=f"invalid {SPEC_FILE}")
    assert spec is not None
    return spec


def parse_spec(text: str, filename: str = SPEC_FILE) -> DatasetSpec:
    """Parse the text of a ``dataset.yaml``; raise :class:`DataError` listing every problem.

    Without a folder, declared paths are only checked as written (relative, no ``..``).
    """
    return _parse(YamlDocument(text, filename))


def path_problem(value: str, folder: Path | None = None) -> str | None:
    """Why ``value`` is not a path inside the dataset ``folder``, or ``None`` if it is."""
    if "\0" in value:
        return "a path may not contain a NUL character"
    posix, windows = PurePosixPath(value), PureWindowsPath(value)
    if posix.is_absolute() or windows.drive or windows.root:
        return "expected a path relative to the dataset folder, not an absolute path"
    if ".." in posix.parts or ".." in windows.parts:
        return "expected a path inside the dataset folder: '..' is not allowed"
    if folder is not None:
        base = Path(folder).resolve()
        target = (base / value).resolve()
        if not target.is_relative_to(base):
            return f"resolves outside the dataset folder (through a symbolic link) to {target}"
    return None


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def zone_problem(value: str) -> str | None:
    """Why ``value`` is not an IANA time zone name, or ``None`` if it is."""
    if value in _zones():
        return None
    close = difflib.get_close_matches(value, sorted(_zones()), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}? " if close else ""
    return f"not a time zone name; {hint}expected an IANA name like Asia/Seoul, Europe/Berlin or UTC"


_TOP_KEYS = {
    "format_version",
    "name",
    "title",
    "file_format",
    "timestamp_format",
    "timezone",
    "multi_value_separator",
    "users",
    "items",
    "interactions",
    "predefined_splits",
    "ground_truth",
}
_ENTITY_KEYS = {"file", "id", "timestamp", "features", "text", "labels"}
_FEATURE_KEYS = {"categorical", "multi_valued", "numeric"}
_INTERACTION_KEYS = {
    "file",
    "user",
    "item",
    "timestamp",
    "event",
    "weight",
    "event_weights",
    "positive_events",
    "positive_min_weight",
    "not_before_item_timestamp",
    "not_before_user_timestamp",
}


def _found(value: Any) -> str:
    """``found a string`` etc., for messages about a value of the wrong type."""
    return "found an empty string" if value == "" else f"found {describe_type(value)}"


def _is_number(value: Any) -> bool:
    """A finite number (YAML reads ``.nan``, ``.inf`` and ``-.Inf`` as floats: they are not numbers here)."""
    return is_finite(value)


def _not_number(value: Any) -> str:
    """Why a value is not a finite number: ``found NaN``, ``found an infinite number``, ``found a string`` ..."""
    if is_number(value):
        return "found NaN" if math.isnan(value) else "found an infinite number"
    return _found(value)


class _SpecReader(YamlChecker):
    """Walks the parsed ``dataset.yaml``, collecting problems that point at the offending line."""

    def __init__(self, document: YamlDocument, folder: Path | None = None):
        super().__init__(document)
        self.folder = folder

    def string(self, data: dict[str, Any], path: tuple[str, ...], default: str | None = None) -> str | None:
        if path[-1] not in data or data[path[-1]] is None:
            return default
        value = data[path[-1]]
        if not isinstance(value, str) or not value.strip():
            self.add(path, value, f"expected a non-empty text value, {_found(value)}")
            return default
        return value

    def relative_path(self, data: dict[str, Any], path: tuple[str, ...], default: str | None = None) -> str | None:
        """A declared file or folder: text that stays inside the dataset folder."""
        value = self.string(data, path, default)
        self.check_path(path, value)
        return value

    def check_path(self, path: tuple[str, ...], value: str | None) -> None:
        problem = path_problem(value, self.folder) if value else None
        if problem:
            self.add(path, value, problem)

    def string_list(self, data: dict[str, Any], path: tuple[str, ...]) -> tuple[str, ...]:
        value = data.get(path[-1]) or []
        if not isinstance(value, list):
            self.add(path, value, f"expected a list of column names, {_found(value)}")
            return ()
        wrong = [v for v in value if not isinstance(v, str) or not v]
        if wrong:
            self.add(
                path, value, f"expected a list of column names, found {describe_type(wrong[0])} {wrong[0]!r} in it"
            )
            return ()
        return tuple(value)

    def flag(self, data: dict[str, Any], path: tuple[str, ...]) -> bool:
        value = data.get(path[-1], False)
        if not isinstance(value, bool):
            self.add(path, value, f"expected true or false, {_found(value)}")
            return False
        return value

    def numeric(self, data: Any, path: tuple[str, ...]) -> tuple[NumericFeature, ...]:
        if not data:
            return ()
        if not isinstance(data, dict):
            self.add(path, data, "expected a mapping column: {edges: [...]} or column: {bins: N}")
            return ()
        out = []
        for column, rule in data.items():
            where = (*path, str(column))
            rule = self.mapping(rule, where, {"edges", "bins"}, set())
            edges, bins = rule.get("edges"), rule.get("bins")
            if (edges is None) == (bins is None):
                self.add(
                    where, rule, "give exactly one of 'edges' (a rising list of numbers) or 'bins' (an integer >= 2)"
                )
                continue
            if edges is not None:
                if isinstance(edges, list) and (problem := too_many(len(edges), MAX_EDGES, "edges")):
                    self.add((*where, "edges"), f"{len(edges):,} edges", problem)
                    continue
                wrong = [e for e in edges if not _is_number(e)] if isinstance(edges, list) else [edges]
                ok = not wrong and len(edges) >= 2 and all(a < b for a, b in itertools.pairwise(edges))
                if not ok:
                    found = f"; {_not_number(wrong[0])} {wrong[0]!r}" if wrong else ""
                    self.add(
                        (*where, "edges"), edges, f"expected a strictly rising list of at least two numbers{found}"
                    )
                    continue
                out.append(NumericFeature(str(column), edges=tuple(float(e) for e in edges)))
            else:
                if not isinstance(bins, int) or isinstance(bins, bool) or not 2 <= bins <= MAX_BINS:
                    found = "" if is_int(bins) else f", {_found(bins)}"
                    self.add((*where, "bins"), bins, f"expected an integer >= 2 (at most {MAX_BINS:,}){found}")
                    continue
                out.append(NumericFeature(str(column), bins=bins))
        return tuple(out)

    def entity(self, data: Any, key: str, default_file: str) -> EntitySpec:
        path = (key,)
        data = self.mapping(data, path, _ENTITY_KEYS, {"id"})
        features = self.mapping(data.get("features") or {}, (key, "features"), _FEATURE_KEYS, set())
        labels = data.get("labels") or {}
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            wrong = (
                labels if not isinstance(labels, dict) else next(v for v in labels.values() if not isinstance(v, str))
            )
            self.add((key, "labels"), labels, f"expected a mapping column: readable name, {_found(wrong)}")
            labels = {}
        spec = EntitySpec(
            file=self.relative_path(data, (key, "file"), default_file) or default_file,
            id=self.string(data, (key, "id")) or "",
            timestamp=self.string(data, (key, "timestamp")),
            categorical=self.string_list(features, (key, "features", "categorical")),
            multi_valued=self.string_list(features, (key, "features", "multi_valued")),
            numeric=self.numeric(features.get("numeric"), (key, "features", "numeric")),
            text=self.string_list(data, (key, "text")),
            labels={str(k): v for k, v in labels.items()},
        )
        if problem := too_many(len(spec.feature_columns), MAX_FEATURE_COLUMNS, "feature columns"):
            self.add((key, "features"), f"{len(spec.feature_columns):,} columns", problem)
        seen: set[str] = set()
        for column in spec.columns:
            if column in seen:
                self.add(path, column, "column declared twice")
            if ":" in column and column in spec.feature_columns:
                self.add(path, column, "feature column names may not contain ':' (features are named column:value)")
            seen.add(column)
        return spec

    def interactions(self, data: Any) -> InteractionSpec:
        path = ("interactions",)
        data = self.mapping(
            data, path, _INTERACTION_KEYS, {"user", "item", "timestamp", "event", "event_weights", "positive_events"}
        )
        weights = data.get("event_weights") or {}
        clean_weights: dict[str, float] = {}
        if not isinstance(weights, dict) or not weights:
            self.add(
                (*path, "event_weights"),
                weights,
                f"expected a mapping event type: non-negative weight, {_found(weights)}",
            )
        else:
            for event, weight in weights.items():
                if not _is_number(weight):
                    self.add(
                        (*path, "event_weights", str(event)),
                        weight,
                        f"expected a non-negative number, {_not_number(weight)}",
                    )
                elif weight < 0:
                    self.add((*path, "event_weights", str(event)), weight, "expected a non-negative number")
                else:
                    clean_weights[str(event)] = float(weight)
        if len(clean_weights) > MAX_EVENT_TYPES:
            self.add((*path, "event_weights"), f"{len(clean_weights)} event types",
                     f"expected at most {MAX_EVENT_TYPES} event types (events are stored as 8-bit codes)")  # fmt: skip
        positives = self.string_list(data, (*path, "positive_events"))
        for event in positives:
            if clean_weights and event not in clean_weights:
                self.add(
                    (*path, "positive_events"),
                    event,
                    f"not an event type in event_weights ({', '.join(clean_weights)})",
                )
        min_weight = data.get("positive_min_weight")
        if min_weight is not None and not _is_number(min_weight):
            self.add(
                (*path, "positive_min_weight"), min_weight, f"expected a number or null, {_not_number(min_weight)}"
            )
            min_weight = None
        return InteractionSpec(
            file=self.relative_path(data, (*path, "file"), "interactions.csv") or "interactions.csv",
            user=self.string(data, (*path, "user")) or "",
            item=self.string(data, (*path, "item")) or "",
            timestamp=self.string(data, (*path, "timestamp")) or "",
            event=self.string(data, (*path, "event")) or "",
            weight=self.string(data, (*path, "weight")),
            event_weights=clean_weights,
            positive_events=positives,
            positive_min_weight=None if min_weight is None else float(min_weight),
            not_before_item_timestamp=self.flag(data, (*path, "not_before_item_timestamp")),
            not_before_user_timestamp=self.flag(data, (*path, "not_before_user_timestamp")),
        )

    def dataset(self, data: Any) -> DatasetSpec | None:
        data = self.mapping(data, (), _TOP_KEYS, {"name", "users", "items", "interactions"})
        if not data:
            return None
        version = data.get("format_version", FORMAT_VERSION)
        if not isinstance(version, int) or isinstance(version, bool):
            self.add(
                ("format_version",),
                version,
                f"expected the integer {FORMAT_VERSION}, {_found(version)}"
                + (" (write it without quotes)" if isinstance(version, str) else ""),
            )
        elif version != FORMAT_VERSION:
            self.add(
                ("format_version",), version, f"unsupported format version; this lab reads version {FORMAT_VERSION}"
            )
        stamp_format = data.get("timestamp_format", "iso")
        if stamp_format not in ("iso", "unix"):
            found = "" if isinstance(stamp_format, str) else f", {_found(stamp_format)}"
            self.add(("timestamp_format",), stamp_format, f"expected 'iso' (ISO 8601 text) or 'unix' (seconds){found}")
            stamp_format = "iso"
        file_format = data.get("file_format", "csv")
        if file_format not in FILE_FORMATS:
            found = "" if isinstance(file_format, str) else f", {_found(file_format)}"
            self.add(("file_format",), file_format, f"expected 'csv' or 'parquet'{found}")
            file_format = "csv"
        timezone = self.string(data, ("timezone",))
        if timezone is not None and (problem := zone_problem(timezone)):
            self.add(("timezone",), timezone, problem)
        separator = data.get("multi_value_separator", "|")
        if not isinstance(separator, str) or len(separator) != 1:
            found = "" if isinstance(separator, str) else f", {_found(separator)}"
            self.add(("multi_value_separator",), separator, f"expected a single character{found}")
            separator = "|"
        splits = data.get("predefined_splits") or {}
        if not isinstance(splits, dict) or not all(isinstance(v, str) for v in splits.values()):
            wrong = (
                splits if not isinstance(splits, dict) else next(v for v in splits.values() if not isinstance(v, str))
            )
            self.add(("predefined_splits",), splits, f"expected a mapping split name: CSV file, {_found(wrong)}")
            splits = {}
        for split, file in splits.items():
            self.check_path(("predefined_splits", str(split)), file)
        name = self.string(data, ("name",)) or ""
        if "name" in data and data["name"] is None:
            self.add(("name",), None, "expected a name (the name becomes a folder under data/processed/)")
        if name and (problem := name_problem(name)):
            self.add(("name",), name, f"{problem} (the name becomes a folder under data/processed/)")
        users = self.entity(data.get("users"), "users", "users.csv")
        items = self.entity(data.get("items"), "items", "items.csv")
        interactions = self.interactions(data.get("interactions"))
        if users.timestamp is None and interactions.not_before_user_timestamp:
            self.add(("interactions", "not_before_user_timestamp"), True, "needs users.timestamp to be declared")
        if items.timestamp is None and interactions.not_before_item_timestamp:
            self.add(("interactions", "not_before_item_timestamp"), True, "needs items.timestamp to be declared")
        return DatasetSpec(
            name=name,
            title=self.string(data, ("title",), "") or "",
            timestamp_format=stamp_format,
            separator=separator,
            users=users,
            items=items,
            interactions=interactions,
            predefined_splits={str(k): v for k, v in splits.items()},
            ground_truth=self.relative_path(data, ("ground_truth",)),
            format_version=FORMAT_VERSION,
            timezone=timezone,
            file_format=file_format,
        )
