"""Validate a raw dataset against its own ``dataset.yaml``, then load it.

Every problem names the file, the line (header = line 1), the column and the
offending value, and says what was expected. Checks are vectorised; at most
``DETAILS_PER_CHECK`` rows are itemised per check, followed by a count.

Timestamps: ISO stamps carry their offset (``+09:00``, ``Z``); stamps written without
one are read in the dataset's declared ``timezone:`` and refused without it, and one
dataset may not mix the two forms. Unix seconds need neither. Stamps later than the
moment validation runs are reported as warnings (the data may come from a clock or
zone error), not as errors.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from kdq_lab.data.schema import SPEC_FILE, DatasetSpec, EntitySpec, read_spec
from kdq_lab.errors import DataError, Problem
from kdq_lab.files import sha256_file

DETAILS_PER_CHECK = 10
MISSING_ID_TEXT = frozenset({"", "nan", "null", "none", "na", "n/a", "<na>"})
#: How an undecodable byte reads once decoded with ``backslashreplace`` (bytes 0x80-0xff).
_ESCAPED_BYTE = r"\\x[89a-f][0-9a-f]"
#: An ISO 8601 date-time ending in a zone: ``Z`` or an offset such as ``+09:00``, ``-0500``, ``+09``.
_ZONED = r"[Tt ]\d.*(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$"

#: Canonical interaction columns after loading.
USER, ITEM, TIME, EVENT, WEIGHT, POSITIVE = "user_id", "item_id", "timestamp", "event", "weight", "positive"


@dataclass(frozen=True)
class RawDataset:
    """A validated dataset: tables with parsed types, plus the hashes of its files.

    ``interactions`` has the canonical columns ``user_id``, ``item_id``,
    ``timestamp`` (UTC), ``event``, ``weight`` (event weight times the weight column,
    if any) and ``positive`` (the dataset's positive rule). ``users`` and ``items``
    keep their own columns, with ids as text and their timestamp column parsed.
    """

    folder: Path
    spec: DatasetSpec
    users: pd.DataFrame
    items: pd.DataFrame
    interactions: pd.DataFrame
    hashes: dict[str, str]

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class _StampColumn:
    """A timestamp column as read, kept for the checks across files (zone forms)."""

    file: str
    column: str
    frame: pd.DataFrame
    naive: np.ndarray  # parsable ISO stamps written without a zone
    zoned: np.ndarray  # parsable ISO stamps with a zone


@dataclass
class _Collector:
    """Collects problems and warnings, itemising a few rows per check and counting the rest."""

    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    stamps: list[_StampColumn] = field(default_factory=list)

    def add(
        self, file: str, line: int | None, column: str | None, value: str | None, message: str, warning: bool = False
    ) -> None:
        (self.warnings if warning else self.problems).append(Problem(file, line, column, value, message))

    def rows(
        self,
        file: str,
        frame: pd.DataFrame,
        mask: np.ndarray | pd.Series,
        column: str,
        message: str,
        values: pd.Series | None = None,
        warning: bool = False,
    ) -> None:
        """One problem per flagged row of ``frame[column]`` (data row i is line i + 2)."""
        flagged = np.flatnonzero(np.asarray(mask, dtype=bool))
        shown = values if values is not None else frame[column]
        for row in flagged[:DETAILS_PER_CHECK]:
            self.add(file, int(row) + 2, column, str(shown.iloc[row]), message, warning)
        if len(flagged) > DETAILS_PER_CHECK:
            self.add(file, None, column, None, f"{len(flagged)} rows in all: {message}", warning)


def _is_utf8(path: Path, block: int = 1 << 24) -> bool:
    """Whether the file decodes as UTF-8 (checked in blocks, without loading it whole)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with open(path, "rb") as handle:
        try:
            while chunk := handle.read(block):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
    return True


def _read_csv(folder: Path, name: str, columns: tuple[str, ...], out: _Collector) -> pd.DataFrame | None:
    """Read a CSV as text columns; report missing/empty files, bad rows, missing columns, bad bytes."""
    path = folder / name
    if not path.is_file():
        out.add(name, None, None, None, "missing file (declared in dataset.yaml)")
        return None
    if path.stat().st_size == 0:
        out.add(name, None, None, None, "empty file: expected a header line naming the columns")
        return None
    utf8 = _is_utf8(path)
    options = {
        "keep_default_na": False,
        "na_filter": False,
        "encoding": "utf-8",
        "encoding_errors": "strict" if utf8 else "backslashreplace",
        "dtype": pd.StringDtype("pyarrow"),
    }
    try:
        header = pd.read_csv(path, header=None, nrows=1, **options).iloc[0]
        frame = pd.read_csv(path, **options)
    except pd.errors.ParserError as exc:
        match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if match:
            out.add(
                name,
                int(match.group(2)),
                None,
                None,
                f"expected {match.group(1)} comma-separated fields, found {match.group(3)}",
            )
        else:
            out.add(name, None, None, None, f"unreadable CSV: {exc}")
        return None
    except pd.errors.EmptyDataError:
        out.add(name, None, None, None, "empty file: expected a header line naming the columns")
        return None
    if not utf8:
        _bad_bytes(name, frame, out)
    repeated = _repeated_header(name, header, out)
    missing = [c for c in columns if c not in frame.columns]
    for column in missing:
        out.add(name, 1, column, None, f"missing column; the header has: {', '.join(map(str, frame.columns))}")
    if frame.empty:
        out.add(name, None, None, None, "no data rows below the header")
    return None if missing or repeated or frame.empty else frame


def _repeated_header(name: str, header: pd.Series, out: _Collector) -> bool:
    """Report header names given twice (pandas would rename the copy ``x.1`` and the lab ignore it)."""
    repeated = (header.duplicated() & (header != "")).to_numpy()
    for position in np.flatnonzero(repeated):
        column = header.iloc[position]
        first = int(np.flatnonzero(header.to_numpy() == column)[0])
        out.add(
            name,
            1,
            column,
            column,
            f"column named twice in the header (fields {first + 1} and {position + 1}); "
            "one of the two would be silently ignored: rename or remove one",
        )
    return bool(repeated.any())


def _bad_bytes(name: str, frame: pd.DataFrame, out: _Collector) -> None:
    """Report the header names and cells of a non-UTF-8 file that hold undecodable bytes.

    Such a file is read with every undecodable byte shown as ``\\xNN`` text, so every other
    check still runs on ordinary text, in every kind of column.
    """
    for column in frame.columns:
        if re.search(_ESCAPED_BYTE, str(column)):
            out.add(name, 1, column, None, "not valid UTF-8 in the header; save the file as UTF-8")
        bad = frame[column].str.contains(_ESCAPED_BYTE).to_numpy(dtype=bool)
        out.rows(name, frame, bad, column, "not valid UTF-8; save the file as UTF-8")


def _parse_times(values: pd.Series, fmt: str) -> pd.Series:
    """UTC times (``NaT`` where unparsable); ISO stamps without a zone are read as UTC here."""
    if fmt == "unix":
        numbers = pd.to_numeric(values, errors="coerce").astype(float)
        numbers[(numbers.abs() > 1e11) | ~np.isfinite(numbers)] = np.nan  # beyond year 5000: not a Unix time
        return pd.to_datetime(numbers, unit="s", utc=True)
    return pd.to_datetime(values, format="ISO8601", utc=True, errors="coerce")


def _localise(times: pd.Series, naive: np.ndarray, zone: str) -> pd.Series:
    """Re-read the naive stamps (parsed as UTC wall times) as wall times in ``zone``.

    A wall time that a daylight-saving change skips or repeats becomes ``NaT``.
    """
    local = times[naive].dt.tz_localize(None).dt.tz_localize(ZoneInfo(zone), ambiguous="NaT", nonexistent="NaT")
    out = times.copy()
    out[naive] = local.dt.tz_convert("UTC")
    return out


def _check_times(name: str, frame: pd.DataFrame, column: str, spec: DatasetSpec, out: _Collector) -> pd.Series:
    fmt, text = spec.timestamp_format, frame[column].str.strip()
    parsed = _parse_times(text, fmt)
    expected = "ISO 8601 date-time (e.g. 2025-03-01T09:30:00+09:00)" if fmt == "iso" else "Unix seconds"
    out.rows(name, frame, parsed.isna().to_numpy(), column, f"unparsable timestamp; expected {expected}")
    naive = zoned = np.zeros(len(frame), dtype=bool)
    if fmt == "iso":
        readable, marked = parsed.notna().to_numpy(), text.str.contains(_ZONED).to_numpy(dtype=bool)
        naive, zoned = readable & ~marked, readable & marked
    if spec.timezone and naive.any():
        parsed = _localise(parsed, naive, spec.timezone)
        out.rows(
            name,
            frame,
            naive & parsed.isna().to_numpy(),
            column,
            f"this local time is skipped or repeated in {spec.timezone} by a daylight-saving change; "
            "write it with its offset",
        )
    out.stamps.append(_StampColumn(name, column, frame, naive, zoned))
    _check_future(name, frame, column, parsed, out)
    return parsed


def _check_future(name: str, frame: pd.DataFrame, column: str, parsed: pd.Series, out: _Collector) -> None:
    """Warn about stamps later than now: the dataset declares no end, and the future has not happened yet."""
    now = pd.Timestamp.now(tz="UTC")
    out.rows(
        name,
        frame,
        (parsed > now).to_numpy(),
        column,
        f"timestamp in the future (after {now:%Y-%m-%d %H:%M} UTC, when this check ran); "
        "check the source's clock and time zone",
        warning=True,
    )


def _check_zones(spec: DatasetSpec, out: _Collector) -> None:
    """ISO stamps without a zone need ``timezone:``, and one dataset may not mix both forms."""
    zoned = next((c for c in out.stamps if c.zoned.any()), None)
    for stamps in out.stamps:
        if not stamps.naive.any():
            continue
        if zoned is not None:
            row = int(np.flatnonzero(zoned.zoned)[0])
            example = f"{zoned.file}:{row + 2} '{zoned.frame[zoned.column].iloc[row]}'"
            message = (
                f"timestamp without a time zone, while other timestamps of this dataset carry one "
                f"(e.g. {example}); write every timestamp with its offset"
            )
        elif spec.timezone is None:
            message = (
                "timestamp without a time zone; add the offset (e.g. 2025-03-01T09:30:00+09:00) or declare "
                "the zone in dataset.yaml (timezone: an IANA name like Asia/Seoul)"
            )
        else:
            continue
        out.rows(stamps.file, stamps.frame, stamps.naive, stamps.column, message)


def _check_ids(name: str, frame: pd.DataFrame, column: str, kind: str, out: _Collector) -> None:
    ids = frame[column]
    missing = ids.str.strip().str.lower().isin(MISSING_ID_TEXT).to_numpy()
    out.rows(name, frame, missing, column, f"empty or NaN {kind} id; every row needs an id")
    duplicated = ids.duplicated(keep="first").to_numpy() & ~missing
    if duplicated.any():
        first_line = pd.Series(np.arange(len(ids)) + 2, index=ids.to_numpy()).groupby(level=0).min()
        firsts = first_line.reindex(ids[duplicated].to_numpy()).to_numpy()
        for row, first in list(zip(np.flatnonzero(duplicated), firsts))[:DETAILS_PER_CHECK]:
            out.add(name, int(row) + 2, column, ids.iloc[row], f"duplicate {kind} id (first on line {first})")
        if duplicated.sum() > DETAILS_PER_CHECK:
            out.add(name, None, column, None, f"{int(duplicated.sum())} rows in all: duplicate {kind} id")


def _check_features(name: str, frame: pd.DataFrame, entity: EntitySpec, separator: str, out: _Collector) -> None:
    for column in entity.multi_valued:
        values = frame[column]
        parts = values[values != ""].str.split(separator, regex=False).explode()
        empty = parts.str.strip() == ""
        rows = np.zeros(len(frame), dtype=bool)
        rows[np.unique(parts.index[empty.to_numpy()])] = True
        out.rows(name, frame, rows, column, f"empty value between '{separator}' separators")
        repeated = pd.DataFrame({"row": parts.index, "value": parts.to_numpy()}).duplicated()
        rows = np.zeros(len(frame), dtype=bool)
        rows[np.unique(parts.index[repeated.to_numpy()])] = True
        out.rows(name, frame, rows, column, "the same value is listed twice in one cell")
    for feature in entity.numeric:
        values = frame[feature.column]
        parsed = pd.to_numeric(values, errors="coerce")
        bad = (values.str.strip() != "") & ~np.isfinite(parsed.astype(float))
        out.rows(name, frame, bad.to_numpy(), feature.column, "expected a number (or an empty cell)")


Checked = tuple[pd.DataFrame, pd.Series | None]


def _check_entity(
    folder: Path, spec: DatasetSpec, entity: EntitySpec, kind: str, out: _Collector
) -> tuple[pd.DataFrame | None, pd.Series | None]:
    frame = _read_csv(folder, entity.file, entity.columns, out)
    if frame is None:
        return None, None
    _check_ids(entity.file, frame, entity.id, kind, out)
    times = None
    if entity.timestamp:
        times = _check_times(entity.file, frame, entity.timestamp, spec, out)
    _check_features(entity.file, frame, entity, spec.separator, out)
    return frame, times


def _check_interactions(
    folder: Path, spec: DatasetSpec, users: Checked | None, items: Checked | None, out: _Collector
) -> Checked | None:
    ispec = spec.interactions
    name = ispec.file
    frame = _read_csv(folder, name, ispec.columns, out)
    if frame is None:
        return None
    for column, kind in ((ispec.user, "user"), (ispec.item, "item")):
        ids = frame[column]
        missing = ids.str.strip().str.lower().isin(MISSING_ID_TEXT).to_numpy()
        out.rows(name, frame, missing, column, f"empty or NaN {kind} id")
        table = users if kind == "user" else items
        if table is not None:
            known = table[0][(spec.users if kind == "user" else spec.items).id]
            unknown = ~ids.isin(known).to_numpy() & ~missing
            source = (spec.users if kind == "user" else spec.items).file
            out.rows(name, frame, unknown, column, f"{kind} id not found in {source}")
    times = _check_times(name, frame, ispec.timestamp, spec, out)
    events = frame[ispec.event]
    unknown_event = ~events.isin(list(ispec.event_weights)).to_numpy()
    out.rows(
        name,
        frame,
        unknown_event,
        ispec.event,
        f"unknown event type; dataset.yaml knows: {', '.join(ispec.event_weights)}",
    )
    if ispec.weight:
        weight = pd.to_numeric(frame[ispec.weight], errors="coerce").astype(float)
        out.rows(name, frame, ~np.isfinite(weight.to_numpy()), ispec.weight, "expected a non-negative number")
        out.rows(name, frame, (weight < 0).to_numpy(), ispec.weight, "negative weight; expected a number >= 0")
    for flag, table, entity, column, what in (
        (ispec.not_before_item_timestamp, items, spec.items, ispec.item, "the item's publication"),
        (ispec.not_before_user_timestamp, users, spec.users, ispec.user, "the user's sign-up"),
    ):
        if not flag or table is None or table[1] is None:
            continue
        first = ~table[0][entity.id].duplicated().to_numpy()
        ids, stamps = table[0][entity.id][first], table[1][first]
        texts = table[0][entity.timestamp][first].to_numpy()
        position = pd.Index(ids).get_indexer(frame[column])
        found = position >= 0
        reference = pd.Series(pd.NaT, index=frame.index, dtype=stamps.dtype)
        reference[found] = stamps.to_numpy()[position[found]]
        early = (times < reference).to_numpy()
        if early.any():
            rows = np.flatnonzero(early)
            shown = pd.Series("", index=frame.index, dtype=object)
            shown.iloc[rows] = (
                frame[ispec.timestamp].iloc[rows].astype(str) + " < " + texts[position[rows]].astype(str)
            ).to_numpy()
            out.rows(
                name,
                frame,
                early,
                ispec.timestamp,
                f"interaction dated before {what} ({entity.file} column '{entity.timestamp}')",
                values=shown,
            )
    return frame, times


def _check_splits(folder: Path, spec: DatasetSpec, interactions: pd.DataFrame | None, out: _Collector) -> None:
    ispec = spec.interactions
    for split, file in spec.predefined_splits.items():
        frame = _read_csv(folder, file, (ispec.user, ispec.item, "part"), out)
        if frame is None:
            continue
        bad_part = ~frame["part"].isin(["train", "validation", "test"]).to_numpy()
        out.rows(file, frame, bad_part, "part", f"split '{split}': expected train, validation or test")
        if interactions is not None:
            known = pd.MultiIndex.from_frame(interactions[[ispec.user, ispec.item]])
            pairs = pd.MultiIndex.from_frame(frame[[ispec.user, ispec.item]])
            out.rows(
                file,
                frame,
                ~pairs.isin(known),
                ispec.item,
                f"split '{split}': this user-item pair is not in {ispec.file}",
                values=frame[ispec.user] + " / " + frame[ispec.item],
            )


def _check_ground_truth(folder: Path, declared: str, out: _Collector) -> None:
    """The ground truth is a folder inside the dataset, and no link in it leads out (it is copied whole)."""
    truth = folder / declared
    if not truth.is_dir():
        found = "is a file" if truth.exists() else "not found"
        out.add(
            SPEC_FILE, None, "ground_truth", declared, f"declared ground truth folder {found} in the dataset folder"
        )
        return
    base = folder.resolve()
    for path in truth.rglob("*"):
        if path.is_symlink() and not path.resolve().is_relative_to(base):
            out.add(
                SPEC_FILE,
                None,
                "ground_truth",
                str(path.relative_to(folder)),
                f"a symbolic link leading out of the dataset folder (to {path.resolve()})",
            )


def _inspect(folder: Path) -> tuple[_Collector, RawDataset | None]:
    folder = Path(folder)
    spec = read_spec(folder)
    out = _Collector()
    users = _check_entity(folder, spec, spec.users, "user", out)
    items = _check_entity(folder, spec, spec.items, "item", out)
    checked = _check_interactions(
        folder, spec, users if users[0] is not None else None, items if items[0] is not None else None, out
    )
    _check_zones(spec, out)
    _check_splits(folder, spec, checked[0] if checked else None, out)
    if spec.ground_truth:
        _check_ground_truth(folder, spec.ground_truth, out)
    if out.problems:
        return out, None
    assert users[0] is not None and items[0] is not None and checked is not None
    return out, _assemble(folder, spec, users, items, checked)


def _assemble(folder: Path, spec: DatasetSpec, users: Checked, items: Checked, checked: Checked) -> RawDataset:
    ispec = spec.interactions
    frame, times = checked
    weight = frame[ispec.event].map(ispec.event_weights).astype(float)
    if ispec.weight:
        weight = weight * pd.to_numeric(frame[ispec.weight]).astype(float)
    positive = frame[ispec.event].isin(list(ispec.positive_events))
    if ispec.positive_min_weight is not None:
        positive &= weight >= ispec.positive_min_weight
    interactions = pd.DataFrame(
        {
            USER: frame[ispec.user].astype(str),
            ITEM: frame[ispec.item].astype(str),
            TIME: times,
            EVENT: frame[ispec.event].astype("category"),
            WEIGHT: weight.to_numpy(),
            POSITIVE: positive.to_numpy(),
        }
    )
    tables = []
    for (table, stamps), entity in ((users, spec.users), (items, spec.items)):
        table = table.copy()
        table[entity.id] = table[entity.id].astype(str)
        if entity.timestamp:
            table[entity.timestamp] = stamps
        tables.append(table)
    return RawDataset(folder, spec, tables[0], tables[1], interactions, raw_hashes(folder, spec))


def raw_hashes(folder: Path, spec: DatasetSpec | None = None) -> dict[str, str]:
    """SHA-256 of ``dataset.yaml`` and of every file it declares (those that exist)."""
    folder = Path(folder)
    spec = spec or read_spec(folder)
    files = [SPEC_FILE, spec.users.file, spec.items.file, spec.interactions.file, *spec.predefined_splits.values()]
    return {name: sha256_file(folder / name) for name in files if (folder / name).is_file()}


def check_dataset(folder: Path) -> tuple[list[Problem], list[Problem]]:
    """(problems, warnings) of the dataset at ``folder``: it is valid when there are no problems.

    Warnings (e.g. timestamps in the future) do not make a dataset invalid.
    """
    try:
        out, _ = _inspect(folder)
    except DataError as exc:
        return exc.problems, []
    return out.problems, out.warnings


def validate_dataset(folder: Path) -> list[Problem]:
    """Every problem in the dataset at ``folder`` (empty when it is valid)."""
    return check_dataset(folder)[0]


def load_dataset(folder: Path) -> RawDataset:
    """Validate, then load the dataset at ``folder``; raise :class:`DataError` if invalid."""
    out, dataset = _inspect(folder)
    if out.problems:
        raise DataError(out.problems, heading=f"invalid dataset {folder}")
    assert dataset is not None
    return dataset
