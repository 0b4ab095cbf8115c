"""Import a MovieLens-100k folder (``u.data``, ``u.user``, ``u.item``, ...) into the data contract.

* users keep age, an age band, gender, occupation and a 3-character zip prefix;
* items keep title, release date and year (binned by decade) and their genres;
* every rating becomes a ``rating`` event whose weight is the rating (positive when
  the weight is at least 4, overridable per split as ``positive_min_weight``);
* the fixed ``ua`` / ``ub`` splits, when present, become predefined splits.

Nothing is downloaded: point it at a folder you already have.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kdq_lab.data.schema import DatasetSpec, EntitySpec, InteractionSpec, NumericFeature, write_spec
from kdq_lab.data.validate import validate_dataset
from kdq_lab.errors import DataError, Problem
from kdq_lab.files import atomic_dir, check_apart, check_replaceable
from kdq_lab.names import check_name

AGE_EDGES = (0, 18, 25, 35, 45, 50, 56, 200)
AGE_BANDS = ("Under 18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+")
PREDEFINED = ("ua", "ub")


def movielens_spec(name: str, splits: tuple[str, ...]) -> DatasetSpec:
    """The ``dataset.yaml`` of an imported MovieLens-100k folder."""
    return DatasetSpec(
        name=name,
        title="MovieLens 100k (GroupLens), imported",
        timestamp_format="unix",
        separator="|",
        users=EntitySpec(
            file="users.csv",
            id="user_id",
            categorical=("age_band", "gender", "occupation", "zip_prefix"),
            labels={
                "age_band": "연령대 (age band)",
                "gender": "성별 (gender)",
                "occupation": "직업 (occupation)",
                "zip_prefix": "우편번호 앞자리 (zip prefix)",
            },
        ),
        items=EntitySpec(
            file="items.csv",
            id="item_id",
            multi_valued=("genres",),
            numeric=(NumericFeature("release_year", edges=(1900, 1950, 1960, 1970, 1980, 1990, 1995, 2000)),),
            text=("title",),
            labels={"genres": "장르 (genre)", "release_year": "개봉 연도 (release year)"},
        ),
        interactions=InteractionSpec(
            file="interactions.csv",
            user="user_id",
            item="item_id",
            timestamp="timestamp",
            event="event",
            weight="rating",
            event_weights={"rating": 1.0},
            positive_events=("rating",),
            positive_min_weight=4.0,
        ),
        predefined_splits={name: f"splits/{name}.csv" for name in splits},
    )


def _read(src: Path, name: str, sep: str, names: list[str], encoding: str = "utf-8") -> pd.DataFrame:
    path = src / name
    if not path.is_file():
        raise DataError(
            [Problem(str(path), None, None, None, "missing file: a MovieLens-100k folder has it")],
            heading="not a MovieLens-100k folder",
        )
    try:
        return pd.read_csv(
            path,
            sep=sep,
            names=names,
            header=None,
            dtype=str,
            keep_default_na=False,
            encoding=encoding,
            index_col=False,
        )
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(
            [Problem(str(path), None, None, None, f"unreadable ({exc})")], heading="not a MovieLens-100k folder"
        ) from None


def _require_int(
    frame: pd.DataFrame,
    file: str,
    columns: list[str],
    problems: list[Problem],
    low: int | None = None,
    high: int | None = None,
) -> None:
    for column in columns:
        numbers = pd.to_numeric(frame[column], errors="coerce")
        bad = numbers.isna() | (numbers % 1 != 0)
        if low is not None:
            bad |= numbers < low
        if high is not None:
            bad |= numbers > high
        expected = "an integer" + (f" in {low}..{high}" if low is not None and high is not None else "")
        for row in np.flatnonzero(bad.to_numpy())[:10]:
            problems.append(Problem(file, int(row) + 1, column, frame[column].iloc[row], f"expected {expected}"))


def _ratings(src: Path, name: str, problems: list[Problem]) -> pd.DataFrame:
    frame = _read(src, name, "\t", ["user_id", "item_id", "rating", "timestamp"])
    _require_int(frame, name, ["user_id", "item_id", "timestamp"], problems)
    _require_int(frame, name, ["rating"], problems, 1, 5)
    return frame


def import_movielens(src: Path, out: Path, name: str | None = None, force: bool = False) -> Path:
    """Convert the ml-100k folder ``src`` into a contract dataset at ``out``.

    The result is validated before it replaces ``out``; on any problem nothing is written.
    An existing ``out`` is replaced only if the lab made it, unless ``force``; it may never
    be, hold or lie inside ``src``.
    """
    src, out = Path(src), Path(out)
    name = check_name(name or out.name, "dataset name (by default the output folder's name)")
    check_apart(out, {"the MovieLens folder (SRC)": src})
    check_replaceable(out, force)
    problems: list[Problem] = []
    ratings = _ratings(src, "u.data", problems)
    users = _read(src, "u.user", "|", ["user_id", "age", "gender", "occupation", "zip_code"])
    _require_int(users, "u.user", ["user_id"], problems)
    _require_int(users, "u.user", ["age"], problems, 0, 150)
    genres = _read(src, "u.genre", "|", ["genre", "index"])
    genres = genres[genres["genre"] != ""]
    _require_int(genres, "u.genre", ["index"], problems)
    item_columns = ["item_id", "title", "release_date", "video_release_date", "imdb_url"]
    items = _read(src, "u.item", "|", item_columns + [f"g{i}" for i in range(len(genres))], encoding="latin-1")
    _require_int(items, "u.item", ["item_id"], problems)
    dates = pd.to_datetime(items["release_date"], format="%d-%b-%Y", errors="coerce")
    for row in np.flatnonzero((dates.isna() & (items["release_date"] != "")).to_numpy())[:10]:
        problems.append(
            Problem(
                "u.item",
                int(row) + 1,
                "release_date",
                items["release_date"].iloc[row],
                "expected a date like 01-Jan-1995",
            )
        )
    splits = {}
    for split in PREDEFINED:
        if (src / f"{split}.base").is_file() and (src / f"{split}.test").is_file():
            parts = [
                _ratings(src, f"{split}.{file}", problems).assign(part=part)
                for file, part in (("base", "train"), ("test", "test"))
            ]
            splits[split] = pd.concat(parts, ignore_index=True)[["user_id", "item_id", "part"]]
    if problems:
        raise DataError(problems, heading=f"cannot import {src} as MovieLens-100k")

    order = genres.assign(index=genres["index"].astype(int)).sort_values("index")["genre"].tolist()
    flags = items[[f"g{i}" for i in range(len(genres))]].to_numpy() == "1"
    genre_text = pd.Series([""] * len(items), dtype=object)
    for column, genre in enumerate(order):
        has = flags[:, column]
        genre_text[has] = np.where(genre_text[has] == "", genre, genre_text[has] + "|" + genre)
    age = users["age"].astype(int)
    with atomic_dir(out, force) as tmp:
        pd.DataFrame(
            {
                "user_id": users["user_id"],
                "age": age,
                "age_band": np.array(AGE_BANDS)[np.searchsorted(AGE_EDGES, age.to_numpy(), side="right") - 1],
                "gender": users["gender"],
                "occupation": users["occupation"],
                "zip_prefix": users["zip_code"].str[:3],
            }
        ).to_csv(tmp / "users.csv", index=False)
        pd.DataFrame(
            {
                "item_id": items["item_id"],
                "title": items["title"],
                "release_date": dates.dt.strftime("%Y-%m-%d").fillna(""),
                "release_year": dates.dt.year.astype("Int64").astype(str).replace("<NA>", ""),
                "genres": genre_text.to_numpy(),
                "imdb_url": items["imdb_url"],
            }
        ).to_csv(tmp / "items.csv", index=False)
        ratings.assign(event="rating")[["user_id", "item_id", "event", "rating", "timestamp"]].to_csv(
            tmp / "interactions.csv", index=False
        )
        if splits:
            (tmp / "splits").mkdir()
            for split, frame in splits.items():
                frame.to_csv(tmp / "splits" / f"{split}.csv", index=False)
        write_spec(movielens_spec(name, tuple(splits)), tmp)
        problems = validate_dataset(tmp)  # checked without loading: nothing invalid is ever published
        if problems:
            raise DataError(problems, heading=f"the imported dataset {out} would be invalid")
    return out
