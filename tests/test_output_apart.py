"""An output folder is never an input of the same command, never holds one and never lies inside one.

Every case passes ``--force``, so the refusal seen is this rule's and not the marker's: without the rule, the
command would replace the input. Inputs live in a temporary workspace; the lab's own notebooks and source
folders are those of a stand-in project root (``KDQ_LAB_ROOT``), never the work tree's.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from kdq_lab.cli import main
from kdq_lab.config import DATA_ENV, ROOT_ENV
from kdq_lab.data.splits import SplitConfig
from kdq_lab.data.store import split_folder

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "notebooks" / "experiments" / "smoke.yaml"


@dataclass(frozen=True)
class Workspace:
    root: Path  # the stand-in project root: notebooks/, src/
    home: Path  # KDQ_LAB_DATA: data/processed, reports
    experiment: Path
    dataset: Path
    movielens: Path

    @property
    def processed(self) -> Path:
        return self.home / "data" / "processed"


@pytest.fixture
def ws(tmp_path, monkeypatch, tiny_catalog, ml100k_source) -> Workspace:
    root = tmp_path / "project"
    (root / "notebooks" / "experiments").mkdir(parents=True)
    (root / "notebooks" / "03_train_evaluate.ipynb").write_text("{}", encoding="utf-8")
    (root / "src" / "kdq_lab").mkdir(parents=True)
    (root / "src" / "kdq_lab" / "cli.py").write_text("# the lab's code", encoding="utf-8")
    home = tmp_path / "home"
    (home / "data" / "processed").mkdir(parents=True)
    (home / "data" / "processed" / "kept.txt").write_text("a prepared split", encoding="utf-8")
    experiment = tmp_path / "experiments" / "smoke.yaml"
    experiment.parent.mkdir()
    shutil.copy(SMOKE, experiment)
    dataset = Path(shutil.copytree(tiny_catalog, tmp_path / "datasets" / "kdq-tiny"))
    movielens = Path(shutil.copytree(ml100k_source, tmp_path / "sources" / "ml-100k"))
    monkeypatch.setenv(ROOT_ENV, str(root))
    monkeypatch.setenv(DATA_ENV, str(home))
    return Workspace(root, home, experiment, dataset, movielens)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def refused(capsys, args: list[str], label: str, *protected: Path) -> None:
    """``args`` exits 2 naming ``label``, and every protected folder is as it was."""
    before = [snapshot(p) for p in protected]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert label in err and "Choose an output folder apart from every input" in err and "Traceback" not in err
    assert [snapshot(p) for p in protected] == before


# where the output goes, relative to the input: is it, lies inside it, holds it (and is it through a link)
PLACES = ["is", "inside", "holds", "link to it"]


def place(input_path: Path, where: str, tmp_path: Path) -> Path:
    if where == "is":
        return input_path
    if where == "inside":
        return input_path / "report"
    if where == "holds":
        return input_path.parent
    link = tmp_path / "link"
    link.symlink_to(input_path, target_is_directory=input_path.is_dir())
    return link


def run_inputs(ws: Workspace) -> dict[str, tuple[Path, str]]:
    return {
        "experiment": (ws.experiment, "the experiment file"),
        "dataset": (ws.dataset, "the dataset folder"),
        "notebooks": (ws.root / "notebooks", "the notebooks folder"),
        "processed": (ws.processed, "the processed data folder"),
    }


@pytest.mark.parametrize("command", ["run", "tune"])
@pytest.mark.parametrize("which", ["experiment", "dataset", "notebooks", "processed"])
@pytest.mark.parametrize("where", PLACES)
def test_run_and_tune_never_write_into_what_they_read(command, which, where, ws, tmp_path, capsys):
    input_path, label = run_inputs(ws)[which]
    out = place(input_path, where, tmp_path)
    extra = ["--dry-run"] if command == "run" else ["--trials", "1"]  # a dry run plans, and the plan refuses
    args = [command, str(ws.experiment), "--dataset", str(ws.dataset), "--only", "popularity", "--out", str(out)]
    refused(capsys, [*args, "--force", *extra], label, ws.root, ws.home, ws.dataset, ws.experiment.parent)


def test_run_refuses_before_writing_anything(ws, tmp_path, capsys):
    args = ["run", str(ws.experiment), "--dataset", str(ws.dataset), "--only", "popularity", "--force"]
    refused(capsys, [*args, "--out", str(ws.dataset)], "the dataset folder", ws.home, ws.dataset)
    assert snapshot(ws.processed) == {"kept.txt": b"a prepared split"}, "not even the validated copy was stored"


@pytest.mark.parametrize("command", ["run", "tune"])
@pytest.mark.parametrize("where", ["is", "inside", "holds"])
def test_a_study_file_is_an_input_unless_it_is_the_report_s_own(command, where, ws, tmp_path, capsys):
    studies = tmp_path / "studies"
    studies.mkdir()
    database = studies / "optuna.db"
    database.write_bytes(b"")
    out = {"is": database, "inside": database / "report", "holds": studies}[where]
    tuned = ["--tuned", "--dry-run"] if command == "run" else ["--trials", "1"]
    args = [command, str(ws.experiment), "--dataset", str(ws.dataset), "--only", "popularity", "--out", str(out)]
    refused(capsys, [*args, "--storage", f"sqlite:///{database}", "--force", *tuned], "the tuning storage", studies)


def test_the_report_s_own_study_file_is_not_an_input(ws, tmp_path, capsys):
    out = tmp_path / "report"
    own = f"sqlite:///{out / 'tuning' / 'optuna.db'}"
    args = ["run", str(ws.experiment), "--dataset", str(ws.dataset), "--only", "popularity", "--out", str(out)]
    assert main([*args, "--tuned", "--dry-run"]) == 2
    assert "no tuning study" in capsys.readouterr().err, "planned past the check: the studies are missing"
    assert main([*args, "--tuned", "--storage", own, "--dry-run"]) == 2
    assert "no tuning study" in capsys.readouterr().err


@pytest.mark.parametrize("which", ["dataset", "processed"])
@pytest.mark.parametrize("where", PLACES)
def test_train_never_writes_into_what_it_reads(which, where, ws, tmp_path, capsys):
    input_path, label = run_inputs(ws)[which]
    out = place(input_path, where, tmp_path)
    args = ["train", str(ws.dataset), "--set", "epochs=1", "--out", str(out), "--force"]
    refused(capsys, args, label, ws.dataset, ws.home)


@pytest.mark.parametrize(
    "which, label",
    [("notebooks", "the lab's notebooks folder"), ("src", "the lab's source folder")],
)
@pytest.mark.parametrize("where", PLACES)
def test_generate_never_writes_into_the_lab_itself(which, label, where, ws, tmp_path, capsys):
    out = place(ws.root / which, where, tmp_path)
    if where == "holds":
        label = "the lab's notebooks folder"  # the project root holds both: the first is named
    args = ["generate", "kdq-catalog", "--scale", "tiny", "--out", str(out), "--force"]
    refused(capsys, args, label, ws.root)


@pytest.mark.parametrize("where", PLACES)
def test_import_never_writes_into_its_source(where, ws, tmp_path, capsys):
    out = place(ws.movielens, where, tmp_path)
    args = ["import", "movielens", str(ws.movielens), "--out", str(out), "--force"]
    refused(capsys, args, "the MovieLens folder (SRC)", ws.movielens)


@pytest.mark.parametrize("where", ["is", "inside", "holds"])
def test_prepare_never_writes_into_its_dataset(where, ws, tmp_path, capsys):
    """``prepare`` writes data/processed/<name>/<split id>/: the dataset may not be that folder, around or in it."""
    config = SplitConfig(kind="user_temporal")
    target = split_folder(ws.dataset, config, ws.processed)  # where the split would go (it depends on the content)
    dataset = {"is": target, "inside": target / "dataset", "holds": target.parent}[where]
    dataset.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(ws.dataset, dataset)
    refused(capsys, ["prepare", str(dataset), "--force"], "the dataset folder", dataset)
