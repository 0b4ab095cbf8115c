"""`--out` folders: the lab replaces only folders it made, unless --force; the error says how to proceed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kdq_lab.cli import main
from kdq_lab.files import MARKER

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "notebooks" / "experiments" / "smoke.yaml"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kdq_lab.cli", *args], capture_output=True, text=True, cwd=ROOT)


def user_folder(path: Path) -> Path:
    path.mkdir()
    (path / "thesis.tex").write_text("years of work", encoding="utf-8")
    return path


def command(kind: str, out: Path, ml100k_source: Path) -> list[str]:
    return {
        "generate": ["generate", "kdq-catalog", "--scale", "tiny", "--out", str(out)],
        "import": ["import", "movielens", str(ml100k_source), "--out", str(out)],
        "train": ["train", "kdq-catalog-tiny", "--set", "epochs=1", "--out", str(out)],
        "run": ["run", str(SMOKE), "--only", "popularity", "--out", str(out)],
    }[kind]


@pytest.mark.slow  # starts another Python process
@pytest.mark.parametrize("kind", ["generate", "import", "train", "run"])
def test_a_foreign_out_folder_is_refused_with_a_way_forward(kind, tmp_path, ml100k_source):
    out = user_folder(tmp_path / "mine")
    proc = cli(*command(kind, out, ml100k_source))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert str(out) in proc.stderr and "--force" in proc.stderr and "did not make" in proc.stderr
    assert [p.name for p in out.iterdir()] == ["thesis.tex"]
    assert not list(tmp_path.glob(".mine.*"))


@pytest.mark.slow  # starts another Python process
@pytest.mark.parametrize("kind", ["generate", "import"])
def test_force_replaces_and_the_result_is_marked(kind, tmp_path, ml100k_source):
    out = user_folder(tmp_path / "mine")
    proc = cli(*command(kind, out, ml100k_source), "--force")
    assert proc.returncode == 0, proc.stderr
    assert (out / "dataset.yaml").is_file() and (out / MARKER).is_file() and not (out / "thesis.tex").exists()
    again = cli(*command(kind, out, ml100k_source))
    assert again.returncode == 0, "a folder the lab made is replaced without --force"


@pytest.mark.slow  # starts another Python process
@pytest.mark.parametrize("marker", ["deleted", "text of older labs", "empty"])
def test_a_catalog_generated_before_the_file_list_needs_force_once(marker, tmp_path):
    out = tmp_path / "old-catalog"
    assert cli("generate", "kdq-catalog", "--scale", "tiny", "--out", str(out)).returncode == 0
    (out / MARKER).unlink()
    if marker != "deleted":
        (out / MARKER).write_text("" if marker == "empty" else "This folder was written by kdq-lab.\n")
    (out / "thesis.tex").write_text("years of work", encoding="utf-8")  # params.json still names the generator
    proc = cli("generate", "kdq-catalog", "--scale", "tiny", "--seed", "3", "--out", str(out))
    assert proc.returncode == 2 and "needs --force once" in proc.stderr and MARKER in proc.stderr
    assert (out / "thesis.tex").is_file()
    (out / "thesis.tex").unlink()
    regenerate = ("generate", "kdq-catalog", "--scale", "tiny", "--seed", "3", "--out", str(out))
    assert cli(*regenerate).returncode == 2
    assert cli(*regenerate, "--force").returncode == 0
    again = cli("generate", "kdq-catalog", "--scale", "tiny", "--out", str(out))
    assert again.returncode == 0, "once written with the file list, the lab replaces it unforced"


def test_train_and_run_pass_force_through(tmp_path, monkeypatch):
    from types import SimpleNamespace

    import kdq_lab.execution.runner as runner
    import kdq_lab.runs.run as runs
    from kdq_lab.evaluation.metrics import per_user_columns
    from kdq_lab.runs.results import frame

    rows = [
        {"run": "r", "split": "s", "seed": "42", "segment": "all", "metric": name, "k": int(k) if k else None,
         "value": 0.0, "lo": 0.0, "hi": 0.0, "n_users": 1}
        for name, _, k in (column.partition("@") for column in per_user_columns([10]))
    ]  # fmt: skip
    result = SimpleNamespace(results=frame(rows))

    monkeypatch.setattr(runs, "train_and_evaluate", lambda *a, **k: result)
    monkeypatch.setattr(runs, "save_run", lambda result, folder: (folder / "summary.json").write_text("{}"))
    out = user_folder(tmp_path / "model")
    assert main(["train", "kdq-catalog-tiny", "--out", str(out)]) == 2
    assert main(["train", "kdq-catalog-tiny", "--out", str(out), "--force"]) == 0
    assert (out / "summary.json").is_file() and not (out / "thesis.tex").exists()

    def build(plan, tmp, *args):
        (tmp / "index.html").write_text("<p>report</p>", encoding="utf-8")
        return runner.Outcome(tmp, tmp / "index.html")

    monkeypatch.setattr(runner, "_build", build)
    report = user_folder(tmp_path / "report")
    assert main(["run", str(SMOKE), "--only", "popularity", "--out", str(report)]) == 2
    assert main(["run", str(SMOKE), "--only", "popularity", "--out", str(report), "--force"]) == 0
    assert (report / "index.html").is_file() and (report / MARKER).is_file()
