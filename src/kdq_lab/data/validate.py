"""Validate a raw dataset against its own ``dataset.yaml``, then load it.

Every problem names the file, the line (header = line 1; in a Parquet file, the row,
1 = first row), the column and the offending value, and says what was expected. Checks
are vectorised; at most ``DETAILS_PER_CHECK`` rows are itemised per check, followed by a
count.

Memory stays bounded: users and items are read whole, interactions in chunks of
``chunk_rows`` rows; each chunk is checked and, while the dataset is still valid, reduced
to compact columns (row positions, times, event codes, weights) before the next is read.

Timestamps: ISO stamps carry their offset (``+09:00``, ``Z``); stamps written without
one are read in the dataset's declared ``timezone:`` and refused without it, and one
dataset may not mix the two forms. Unix seconds need neither. Stamps later than the
moment validation runs are reported as warnings (the data may come from a clock or
zone error), not as errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kdq_lab.data.rawfiles import DETAILS_PER_CHECK, Collector, Rows, arrow_text, read_table, table_chunks
from kdq_lab.data.schema import SPEC_FILE, DatasetSpec, EntitySpec, read_spec
from kdq_lab.errors import DataError, Problem
from kdq_lab.files import sha256_file
from kdq_lab.inputs import not_regular
from kdq_lab.limits import MAX_INTERACTION_ROWS

MISSING_ID_TEXT = frozenset({"", "nan", "null", "none", "na", "n/a", "<na>"})
#: An ISO 8601 date-time ending in a zone: ``Z`` or an offset such as ``+09:00``, ``-0500``, ``+09``.
_ZONED = r"[Tt ]\d.*(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$"
#: Interaction rows read, checked and compacted at a time.
CHUNK_ROWS = 1_000_000
_NAT = np.iinfo(np.int64).min

#: Canonical interaction columns after loading.
USER, ITEM, TIME, EVENT, WEIGHT, POSITIVE = "user_id", "item_id", "timestamp", "event", "weight", "positive"

__all__ = [
    "CHUNK_ROWS",
    "DETAILS_PER_CHECK",
    "EVENT",
    "ITEM",
    "POSITIVE",
    "TIME",
    "USER",
    "WEIGHT",
    "RawDataset",
    "check_dataset",
    "load_dataset",
    "raw_hashes",
    "validate_dataset",
]


@dataclass(frozen=True)
class RawDataset:
    """A validated dataset: tables with parsed types, plus the hashes of its files.

    ``interactions`` has the canonical columns ``user_id`` and ``item_id`` (categoricals
    whose codes are row positions in ``users`` and ``items``), ``timestamp`` (UTC),
    ``event`` (categorical), ``weight`` (event weight times the weight column, if any) and
    ``positive`` (the dataset's positive rule). ``users`` and ``items`` keep their own
    columns, with ids as text and their timestamp column parsed.
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


# ----------------------------------------------------------------------------- timestamps


@dataclass
class _Stamps:
    """A timestamp column's zone forms, over all its chunks (for the checks across files)."""

    file: str
    column: str
    naive: list[tuple[int, str]] = field(default_factory=list)  # first few (line, text) without a zone
    naive_total: int = 0
    zoned: tuple[int, str] | None = None  # the first (line, text) with a zone


def _parse_times(values: pd.Series, fmt: str) -> pd.Series:
    """UTC times (``NaT`` where unparsable); ISO stamps without a zone are read as UTC here."""
    if fmt == "unix":
        numbers = np.array(pd.to_numeric(values, errors="coerce"), dtype=float)
        numbers[(np.abs(numbers) > 1e11) | ~np.isfinite(numbers)] = np.nan  # beyond year 5000: not a Unix time
        return pd.Series(pd.to_datetime(numbers, unit="s", utc=True), index=values.index)
    return pd.to_datetime(values, format="ISO8601", utc=True, errors="coerce")


#: The span a timestamp may take: what int64 nanoseconds (pandas' and the stored splits' unit) can hold, whole days.
STAMP_RANGE = (pd.Timestamp("1677-09-22", tz="UTC"), pd.Timestamp("2262-04-10", tz="UTC"))


def _nanoseconds(times: pd.Series) -> np.ndarray:
    """UTC times as int64 nanoseconds (``NaT`` = the smallest int64)."""
    return times.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[ns]").view(np.int64)


def _from_nanoseconds(values: np.ndarray, index: pd.Index) -> pd.Series:
    return pd.Series(pd.DatetimeIndex(values.view("datetime64[ns]")).tz_localize("UTC"), index=index)


def _localise(times: pd.Series, naive: np.ndarray, zone: str) -> pd.Series:
    """Re-read the naive stamps (parsed as UTC wall times) as wall times in ``zone``.

    A wall time that a daylight-saving change skips or repeats becomes ``NaT``.
    """
    wall = pd.DatetimeIndex(times[naive].dt.tz_localize(None))
    local = wall.tz_localize(ZoneInfo(zone), ambiguous="NaT", nonexistent="NaT").tz_convert("UTC")
    values = _nanoseconds(times)
    values[naive] = local.tz_localize(None).to_numpy().astype("datetime64[ns]").view(np.int64)
    return _from_nanoseconds(values, times.index)


def _check_times(rows: Rows, column: str, spec: DatasetSpec, out: Collector) -> pd.Series:
    fmt, text = spec.timestamp_format, rows.frame[column].str.strip()
    parsed = _parse_times(text, fmt)
    expected = "ISO 8601 date-time (e.g. 2025-03-01T09:30:00+09:00)" if fmt == "iso" else "Unix seconds"
    out.rows(rows, parsed.isna().to_numpy(), column, f"unparsable timestamp; expected {expected}")
    first, last = STAMP_RANGE
    outside = (parsed.notna() & ((parsed < first) | (parsed > last))).to_numpy()
    out.rows(
        rows, outside, column, f"timestamp outside {first:%Y-%m-%d} … {last:%Y-%m-%d} UTC, the span the lab stores"
    )
    parsed = parsed.mask(outside)  # never converted to nanoseconds, where it would wrap around
    naive = zoned = np.zeros(len(text), dtype=bool)
    if fmt == "iso":
        readable, marked = parsed.notna().to_numpy(), text.str.contains(_ZONED).to_numpy(dtype=bool)
        naive, zoned = readable & ~marked, readable & marked
    if spec.timezone and naive.any():
        parsed = _localise(parsed, naive, spec.timezone)
        out.rows(
            rows,
            naive & parsed.isna().to_numpy(),
            column,
            f"this local time is skipped or repeated in {spec.timezone} by a daylight-saving change; "
            "write it with its offset",
        )
    stamps = out.stamps.setdefault((rows.file, column), _Stamps(rows.file, column))
    flagged = np.flatnonzero(naive)
    stamps.naive += [(rows.line(r), str(text.iloc[r])) for r in flagged[: DETAILS_PER_CHECK - len(stamps.naive)]]
    stamps.naive_total += len(flagged)
    if stamps.zoned is None and zoned.any():
        first = int(np.flatnonzero(zoned)[0])
        stamps.zoned = (rows.line(first), str(rows.frame[column].iloc[first]))
    out.rows(
        rows,
        (parsed > out.now).to_numpy(),
        column,
        f"timestamp in the future (after {out.now:%Y-%m-%d %H:%M} UTC, when this check ran); "
        "check the source's clock and time zone",
        warning=True,
    )
    return parsed


def _check_zones(spec: DatasetSpec, out: Collector) -> None:
    """ISO stamps without a zone need ``timezone:``, and one dataset may not mix both forms."""
    zoned = next((s for s in out.stamps.values() if s.zoned is not None), None)
    for stamps in out.stamps.values():
        if not stamps.naive_total:
            continue
        if zoned is not None and zoned.zoned is not None:
            line, text = zoned.zoned
            message = (
                f"timestamp without a time zone, while other timestamps of this dataset carry one "
                f"(e.g. {zoned.file}:{line} '{text}'); write every timestamp with its offset"
            )
        elif spec.timezone is None:
            message = (
                "timestamp without a time zone; add the offset (e.g. 2025-03-01T09:30:00+09:00) or declare "
                "the zone in dataset.yaml (timezone: an IANA name like Asia/Seoul)"
            )
        else:
            continue
        out.tally(stamps.file, stamps.column, message, stamps.naive, stamps.naive_total)


# ----------------------------------------------------------------------------- users and items


def _missing_ids(ids: pd.Series) -> np.ndarray:
    """Ids that are empty or spell a missing value (``NaN``, ``null`` ...), whatever the case and spaces."""
    text = pc.utf8_lower(pc.utf8_trim_whitespace(arrow_text(ids)))
    return pc.fill_null(pc.is_in(text, value_set=pa.array(sorted(MISSING_ID_TEXT))), True).to_numpy(
        zero_copy_only=False
    )


def _check_ids(rows: Rows, column: str, kind: str, out: Collector) -> None:
    ids = rows.frame[column]
    missing = _missing_ids(ids)
    out.rows(rows, missing, column, f"empty or NaN {kind} id; every row needs an id")
    duplicated = ids.duplicated(keep="first").to_numpy() & ~missing
    if duplicated.any():
        first_line = pd.Series(np.arange(len(ids)) + rows.first_line, index=ids.to_numpy()).groupby(level=0).min()
        firsts = first_line.reindex(ids[duplicated].to_numpy()).to_numpy()
        for row, first in list(zip(np.flatnonzero(duplicated), firsts))[:DETAILS_PER_CHECK]:
            out.add(rows.file, rows.line(row), column, ids.iloc[row], f"duplicate {kind} id (first on line {first})")
        if duplicated.sum() > DETAILS_PER_CHECK:
            out.add(rows.file, None, column, None, f"{int(duplicated.sum())} rows in all: duplicate {kind} id")


def _check_features(rows: Rows, entity: EntitySpec, separator: str, out: Collector) -> None:
    frame = rows.frame
    for column in entity.multi_valued:
        text = arrow_text(frame[column])
        filled = np.flatnonzero(pc.fill_null(pc.not_equal(text, ""), False).to_numpy(zero_copy_only=False))
        lists = pc.split_pattern(text.take(pa.array(filled)), separator)
        owner = filled[pc.list_parent_indices(lists).to_numpy()]
        parts = pc.list_flatten(lists)
        empty = np.zeros(len(frame), dtype=bool)
        empty[owner[pc.equal(pc.utf8_trim_whitespace(parts), "").to_numpy(zero_copy_only=False)]] = True
        out.rows(rows, empty, column, f"empty value between '{separator}' separators")
        codes = pc.dictionary_encode(parts).indices.to_numpy(zero_copy_only=False).astype(np.int64)
        keys = owner.astype(np.int64) * (int(codes.max(initial=0)) + 1) + codes
        order = np.argsort(keys, kind="stable")
        again = np.zeros(len(keys), dtype=bool)
        again[order[1:]] = keys[order[1:]] == keys[order[:-1]]  # a (row, value) pair seen before
        repeated = np.zeros(len(frame), dtype=bool)
        repeated[owner[again]] = True
        out.rows(rows, repeated, column, "the same value is listed twice in one cell")
    for feature in entity.numeric:
        values = frame[feature.column]
        parsed = pd.to_numeric(values, errors="coerce")
        bad = (values.str.strip() != "") & ~np.isfinite(parsed.astype(float))
        out.rows(rows, bad.to_numpy(), feature.column, "expected a number (or an empty cell)")


@dataclass(frozen=True)
class _Entity:
    """A checked users or items table, with its ids' positions for lookups."""

    frame: pd.DataFrame
    times: pd.Series | None
    ids: pa.Array  # distinct ids (first occurrences)
    rows: np.ndarray  # their row positions in ``frame``

    def positions(self, ids: pd.Series) -> np.ndarray:
        """Row position of each id (its first occurrence), -1 for unknown ids.

        The table's ids are looked up among the chunk's distinct ids: hashing those few per
        chunk is cheaper than hashing the whole table (1.2M users) for every chunk.
        """
        encoded = pc.dictionary_encode(arrow_text(ids))
        where = pc.index_in(self.ids, value_set=encoded.dictionary)  # per table id: which distinct chunk id
        known = where.is_valid().to_numpy(zero_copy_only=False)
        position_of = np.full(len(encoded.dictionary), -1, dtype=np.int64)
        position_of[where.to_numpy(zero_copy_only=False)[known].astype(np.int64)] = self.rows[known]
        codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
        return np.where(codes >= 0, position_of[np.maximum(codes, 0)], -1)


def _check_entity(folder: Path, spec: DatasetSpec, entity: EntitySpec, kind: str, out: Collector) -> _Entity | None:
    rows = read_table(folder, entity.file, entity.columns, spec.file_format, out)
    if rows is None:
        return None
    _check_ids(rows, entity.id, kind, out)
    times = _check_times(rows, entity.timestamp, spec, out) if entity.timestamp else None
    _check_features(rows, entity, spec.separator, out)
    ids = rows.frame[entity.id]
    first = np.flatnonzero(~ids.duplicated().to_numpy())
    return _Entity(rows.frame, times, arrow_text(ids).take(pa.array(first)), first)


# ----------------------------------------------------------------------------- interactions


@dataclass
class _Compact:
    """Interaction chunks reduced to compact columns, while the dataset is still valid (and is to be loaded)."""

    load: bool = True
    user: list[np.ndarray] = field(default_factory=list)
    item: list[np.ndarray] = field(default_factory=list)
    time: list[np.ndarray] = field(default_factory=list)
    event: list[np.ndarray] = field(default_factory=list)
    weight: list[np.ndarray] = field(default_factory=list)
    pairs: list[np.ndarray] = field(default_factory=list)  # pair keys, when predefined splits need them


def _check_chunk(
    rows: Rows, spec: DatasetSpec, users: _Entity | None, items: _Entity | None, out: Collector, kept: _Compact
) -> None:
    ispec = spec.interactions
    frame = rows.frame
    positions = {}
    for column, kind, table, entity in (
        (ispec.user, "user", users, spec.users),
        (ispec.item, "item", items, spec.items),
    ):
        ids = frame[column]
        missing = _missing_ids(ids)
        out.rows(rows, missing, column, f"empty or NaN {kind} id")
        if table is not None:
            positions[kind] = table.positions(ids)
            out.rows(rows, (positions[kind] < 0) & ~missing, column, f"{kind} id not found in {entity.file}")
    times = _check_times(rows, ispec.timestamp, spec, out)
    event = pd.Index(list(ispec.event_weights)).get_indexer(frame[ispec.event])
    out.rows(
        rows,
        event < 0,
        ispec.event,
        f"unknown event type; dataset.yaml knows: {', '.join(ispec.event_weights)}",
    )
    weight = None
    if ispec.weight:
        weight = pd.to_numeric(frame[ispec.weight], errors="coerce").astype(float).to_numpy()
        out.rows(rows, ~np.isfinite(weight), ispec.weight, "expected a non-negative number")
        out.rows(rows, weight < 0, ispec.weight, "negative weight; expected a number >= 0")
    stamps = _nanoseconds(times)
    for flag, kind, table, entity, what in (
        (ispec.not_before_item_timestamp, "item", items, spec.items, "the item's publication"),
        (ispec.not_before_user_timestamp, "user", users, spec.users, "the user's sign-up"),
    ):
        if not flag or table is None or table.times is None:
            continue
        position = positions[kind]
        reference = np.where(position >= 0, _nanoseconds(table.times)[np.maximum(position, 0)], _NAT)
        early = (stamps != _NAT) & (reference != _NAT) & (stamps < reference)
        if early.any():
            flagged = np.flatnonzero(early)
            shown = pd.Series("", index=frame.index, dtype=object)
            texts = table.frame[entity.timestamp].to_numpy()
            shown.iloc[flagged] = (
                frame[ispec.timestamp].iloc[flagged].astype(str).to_numpy() + " < " + texts[position[flagged]]
            )
            out.rows(
                rows,
                early,
                ispec.timestamp,
                f"interaction dated before {what} ({entity.file} column '{entity.timestamp}')",
                values=shown,
            )
    if spec.predefined_splits and users is not None and items is not None:
        known = (positions["user"] >= 0) & (positions["item"] >= 0)
        kept.pairs.append(positions["user"][known].astype(np.int64) * len(items.frame) + positions["item"][known])
    if not kept.load or out.problems or users is None or items is None:
        return
    event_weight = np.asarray(list(ispec.event_weights.values()), dtype=float)[event]
    kept.user.append(positions["user"].astype(np.int32))
    kept.item.append(positions["item"].astype(np.int32))
    kept.time.append(stamps)
    kept.event.append(event.astype(np.int8))
    kept.weight.append(event_weight if weight is None else event_weight * weight)


def _check_splits(
    folder: Path, spec: DatasetSpec, items: _Entity | None, users: _Entity | None, kept: _Compact, out: Collector
) -> None:
    ispec = spec.interactions
    known = np.unique(np.concatenate(kept.pairs)) if kept.pairs else None
    for split, file in spec.predefined_splits.items():
        rows = read_table(folder, file, (ispec.user, ispec.item, "part"), "csv", out, MAX_INTERACTION_ROWS)
        if rows is None:
            continue
        frame = rows.frame
        bad_part = ~frame["part"].isin(["train", "validation", "test"]).to_numpy()
        out.rows(rows, bad_part, "part", f"split '{split}': expected train, validation or test")
        if known is not None and users is not None and items is not None:
            user, item = users.positions(frame[ispec.user]), items.positions(frame[ispec.item])
            keys = user.astype(np.int64) * len(items.frame) + item
            absent = (user < 0) | (item < 0) | ~np.isin(keys, known)
            out.rows(
                rows,
                absent,
                ispec.item,
                f"split '{split}': this user-item pair is not in {ispec.file}",
                values=frame[ispec.user] + " / " + frame[ispec.item],
            )


def _check_ground_truth(folder: Path, declared: str, out: Collector) -> None:
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
        where = str(path.relative_to(folder))
        if not path.is_symlink():
            kind = not_regular(path.lstat().st_mode)
            if kind not in (None, "a folder"):
                out.add(SPEC_FILE, None, "ground_truth", where,
                        f"{kind}, not a regular file (the folder is copied whole: it could wait forever)")  # fmt: skip
            continue
        try:
            target = path.resolve(strict=True)
        except (RuntimeError, OSError):  # a link loop or a dangling link leads nowhere (the copy skips every link)
            continue
        if not target.is_relative_to(base):
            out.add(SPEC_FILE, None, "ground_truth", where,
                    f"a symbolic link leading out of the dataset folder (to {target})")  # fmt: skip
        elif (kind := not_regular(target.stat().st_mode)) not in (None, "a folder"):
            out.add(SPEC_FILE, None, "ground_truth", where,
                    f"{kind}, not a regular file (the folder is copied whole: it could wait forever)")  # fmt: skip


# ----------------------------------------------------------------------------- the whole dataset


def _inspect(
    folder: Path, chunk_rows: int = CHUNK_ROWS, hashes: dict[str, str] | None = None, load: bool = True
) -> tuple[Collector, RawDataset | None]:
    """Check the dataset at ``folder``; with ``load``, also return it when valid."""
    folder = Path(folder)
    spec = read_spec(folder)
    out = Collector()
    users = _check_entity(folder, spec, spec.users, "user", out)
    items = _check_entity(folder, spec, spec.items, "item", out)
    ispec = spec.interactions
    kept = _Compact(load)
    chunks: Iterator[Rows] = table_chunks(
        folder, ispec.file, ispec.columns, spec.file_format, out, chunk_rows, MAX_INTERACTION_ROWS
    )
    for rows in chunks:
        _check_chunk(rows, spec, users, items, out, kept)
    _check_zones(spec, out)
    if spec.predefined_splits:
        _check_splits(folder, spec, items, users, kept, out)
    if spec.ground_truth:
        _check_ground_truth(folder, spec.ground_truth, out)
    if out.problems or not load:
        return out, None
    assert users is not None and items is not None
    return out, _assemble(folder, spec, users, items, kept, hashes)


def _assemble(
    folder: Path, spec: DatasetSpec, users: _Entity, items: _Entity, kept: _Compact, hashes: dict[str, str] | None
) -> RawDataset:
    ispec = spec.interactions
    tables = []
    for table, entity in ((users, spec.users), (items, spec.items)):
        frame = table.frame  # read by this inspection alone: changed in place
        frame[entity.id] = frame[entity.id].astype(str)
        if entity.timestamp and table.times is not None:
            frame[entity.timestamp] = table.times
        tables.append(frame)

    def column(name: str) -> np.ndarray:  # one column at a time, its chunks freed as it is joined
        chunks = getattr(kept, name)
        joined = np.concatenate(chunks)
        chunks.clear()
        return joined

    weight, event = column("weight"), column("event")
    positive = np.isin(event, [list(ispec.event_weights).index(e) for e in ispec.positive_events])
    if ispec.positive_min_weight is not None:
        positive &= weight >= ispec.positive_min_weight
    interactions = pd.DataFrame(
        {
            USER: pd.Categorical.from_codes(column("user"), categories=pd.Index(tables[0][spec.users.id])),
            ITEM: pd.Categorical.from_codes(column("item"), categories=pd.Index(tables[1][spec.items.id])),
            TIME: _from_nanoseconds(column("time"), pd.RangeIndex(len(weight))),
            EVENT: pd.Categorical.from_codes(event, categories=list(ispec.event_weights)),
            WEIGHT: weight,
            POSITIVE: positive,
        },
        copy=False,
    )
    return RawDataset(folder, spec, tables[0], tables[1], interactions, hashes or raw_hashes(folder, spec))


def raw_hashes(folder: Path, spec: DatasetSpec | None = None) -> dict[str, str]:
    """SHA-256 of ``dataset.yaml`` and of every file it declares (those that exist)."""
    folder = Path(folder)
    spec = spec or read_spec(folder)
    files = [SPEC_FILE, spec.users.file, spec.items.file, spec.interactions.file, *spec.predefined_splits.values()]
    return {name: sha256_file(folder / name) for name in files if (folder / name).is_file()}


def check_dataset(folder: Path, chunk_rows: int = CHUNK_ROWS) -> tuple[list[Problem], list[Problem]]:
    """(problems, warnings) of the dataset at ``folder``: it is valid when there are no problems.

    Warnings (e.g. timestamps in the future) do not make a dataset invalid.
    """
    try:
        out, _ = _inspect(folder, chunk_rows, load=False)
    except DataError as exc:
        return exc.problems, []
    return out.problems, out.warnings


def validate_dataset(folder: Path, chunk_rows: int = CHUNK_ROWS) -> list[Problem]:
    """Every problem in the dataset at ``folder`` (empty when it is valid)."""
    return check_dataset(folder, chunk_rows)[0]


def load_dataset(folder: Path, chunk_rows: int = CHUNK_ROWS, hashes: dict[str, str] | None = None) -> RawDataset:
    """Validate, then load the dataset at ``folder``; raise :class:`DataError` if invalid.

    ``hashes`` (the raw files' SHA-256, when the caller has them) spares hashing the files again.
    """
    out, dataset = _inspect(folder, chunk_rows, hashes)
    if out.problems:
        raise DataError(out.problems, heading=f"invalid dataset {folder}")
    assert dataset is not None
    return dataset
