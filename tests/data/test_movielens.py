"""MovieLens-100k import into the data contract."""

from __future__ import annotations

import pandas as pd
import pytest

from kdq_lab.data.movielens import import_movielens
from kdq_lab.data.validate import load_dataset
from kdq_lab.errors import DataError


def test_import_keeps_what_the_contract_needs(ml100k_source, tmp_path):
    raw = load_dataset(import_movielens(ml100k_source, tmp_path / "ml-100k"))
    users, items, events = raw.users, raw.items, raw.interactions
    assert {"age", "age_band", "gender", "occupation", "zip_prefix"} <= set(users.columns)
    assert users.loc[users["user_id"] == "3", "zip_prefix"].item() == "T8H"
    assert set(users["age_band"]) <= {"Under 18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+"}
    assert items.loc[items["item_id"] == "3", "title"].item() == "Café Étoile (1995)"
    assert items.loc[items["item_id"] == "5", "release_year"].item() == ""
    assert items["genres"].str.len().gt(0).all() and "unknown" not in set(items["genres"].str.split("|").explode())
    source = pd.read_csv(ml100k_source / "u.data", sep="\t", names=["u", "i", "r", "t"])
    assert len(events) == len(source)
    assert events["weight"].tolist() == source["r"].astype(float).tolist()
    assert (events["positive"] == (source["r"] >= 4)).all()
    assert set(raw.spec.predefined_splits) == {"ua", "ub"}
    ua = pd.read_csv(raw.folder / "splits" / "ua.csv", dtype=str)
    assert (ua[ua["part"] == "test"].groupby("user_id").size() == 10).all()


def test_missing_and_broken_source_files(ml100k_source, tmp_path):
    import shutil

    broken = shutil.copytree(ml100k_source, tmp_path / "broken")
    (broken / "u.user").unlink()
    with pytest.raises(DataError, match=r"u\.user.*missing file"):
        import_movielens(broken, tmp_path / "out")
    shutil.copy(ml100k_source / "u.user", broken / "u.user")
    lines = (broken / "u.data").read_text().split("\n")
    lines[4] = lines[4].rsplit("\t", 2)[0] + "\t9\t" + lines[4].rsplit("\t", 1)[1]
    (broken / "u.data").write_text("\n".join(lines))
    with pytest.raises(DataError) as caught:
        import_movielens(broken, tmp_path / "out")
    problem = caught.value.problems[0]
    assert (problem.file, problem.line, problem.column, problem.value) == ("u.data", 5, "rating", "9")
    assert not (tmp_path / "out").exists()
