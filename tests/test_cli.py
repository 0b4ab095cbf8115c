"""The kdq-lab command end to end: train, recommend (plain and JSON), and clean failures with exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kdq_lab.config import DATA_ENV

ROOT = Path(__file__).resolve().parents[1]
ARTIST = ROOT / "notebooks" / "personas" / "njob_artist.yaml"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kdq_lab.cli", *args], capture_output=True, text=True, cwd=ROOT)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("models") / "tiny"
    proc = cli(
        "train",
        "kdq-catalog-tiny",
        "--split",
        "cold_users",
        "--set",
        "no_components=8",
        "--set",
        "epochs=3",
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    assert "ndcg@10" in proc.stdout and str(out / "model") in proc.stdout
    return out


@pytest.mark.slow  # starts another Python process
def test_recommend_plain(trained):
    proc = cli("recommend", "--model", str(trained), "--profile", str(ARTIST), "--k", "4")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.strip()[:2] for line in lines if line.strip()[:2] in ("1.", "2.", "3.", "4.")] == [
        "1.",
        "2.",
        "3.",
        "4.",
    ]
    assert sum("why:" in line for line in lines) == 4 and "주제" in proc.stdout


@pytest.mark.slow  # starts another Python process
def test_recommend_json_terms_sum_to_scores(trained):
    proc = cli(
        "recommend",
        "--model",
        str(trained / "model"),
        "--profile",
        str(ARTIST),
        "--k",
        "5",
        "--json",
        "--diversify",
        "0.4",
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert len(data["items"]) == 5 and data["diversity_after"] >= data["diversity_before"]
    for item in data["items"]:
        assert item["terms"] and abs(sum(t["value"] for t in item["terms"]) - item["score"]) < 1e-5
        assert item["terms_total"] == pytest.approx(sum(t["value"] for t in item["terms"]))


@pytest.mark.slow  # starts another Python process
def test_unknown_value_exit_2_and_lenient(trained, tmp_path):
    profile = tmp_path / "profile.json"
    profile.write_text(
        json.dumps({"occupations": ["배우님"], "interests": ["AI 영상"]}, ensure_ascii=False), encoding="utf-8"
    )
    strict = cli("recommend", "--model", str(trained), "--profile", str(profile))
    assert strict.returncode == 2 and "Traceback" not in strict.stderr
    assert "did you mean 배우" in strict.stderr and "allowed:" in strict.stderr
    lenient = cli("recommend", "--model", str(trained), "--profile", str(profile), "--lenient", "--k", "2")
    assert lenient.returncode == 0 and "warning: ignored unknown profile values" in lenient.stderr


@pytest.mark.slow  # starts another Python process
@pytest.mark.parametrize(
    "args, fragment",
    [
        (["recommend", "--model", "/no/such/model", "--profile", str(ARTIST)], "no model.json"),
        (["import", "movielens", "/no/such/folder", "--out", "/tmp/kdq-never"], "missing file"),
        (["prepare", "no-such-dataset"], "no dataset 'no-such-dataset'"),
        (["run", "/no/such/experiment.yaml"], "no experiment file"),
        (["train", "kdq-catalog-tiny", "--set", "loss=["], "not valid YAML"),
        (["train", "kdq-catalog-tiny", "--set", "learning_rate=fast"], "must be a number > 0"),
        (["prepare", "kdq-catalog-tiny", "--split", "global_temporal", "--cutoff", "someday"], "not a date-time"),
        (["prepare", "kdq-catalog-tiny", "--split", "user_temporal", "--cutoff", "2026-06-01"], "takes no 'cutoff'"),
        (["train", "kdq-catalog-tiny", "--split", "cold_items", "--predefined", "ua"], "takes no 'predefined'"),
        (["train", "kdq-catalog-tiny", "--split", "predefined"], "needs 'predefined: <name>'"),
        (["recommend", "--model", "/x", "--profile", str(ARTIST), "--k", "0"], "expected an integer >= 1"),
    ],
)
def test_errors_exit_2_without_traceback(args, fragment):
    proc = cli(*args)
    assert proc.returncode == 2, proc.stderr
    assert fragment in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow  # starts another Python process
def test_corrupt_model_is_refused(trained, tmp_path):
    import shutil

    broken = Path(shutil.copytree(trained / "model", tmp_path / "model"))
    blob = (broken / "model.npz").read_bytes()
    (broken / "model.npz").write_bytes(blob[:100])
    proc = cli("recommend", "--model", str(broken), "--profile", str(ARTIST))
    assert proc.returncode == 2 and "truncated or corrupt" in proc.stderr


@pytest.mark.slow  # starts another Python process
def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path):
    out = tmp_path / "report"
    workspace = {**os.environ, DATA_ENV: str(tmp_path / "workspace")}  # nothing prepared there: nothing cached
    smoke = ROOT / "notebooks" / "experiments" / "smoke.yaml"
    proc = subprocess.run(
        [sys.executable, "-m", "kdq_lab.cli", "run", str(smoke), "--out", str(out), "--dry-run"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=workspace,
    )
    assert proc.returncode == 0, proc.stderr
    assert "experiment smoke:" in proc.stdout and "03_train_evaluate -> runs/lightfm_hybrid__global/" in proc.stdout
    assert "split global seed 42" in proc.stdout and "to prepare" in proc.stdout and "cached" not in proc.stdout
    assert not out.exists()


@pytest.mark.slow  # starts another Python process
def test_grid_cap_is_a_clear_error(tmp_path):
    proc = cli("run", str(ROOT / "notebooks" / "experiments" / "smoke.yaml"), "--max-runs", "2", "--dry-run")
    assert proc.returncode == 2 and "more than the cap of 2" in proc.stderr and "--max-runs" in proc.stderr
    assert "not a run of this experiment" not in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow  # starts another Python process
@pytest.mark.parametrize(
    "args", [["--help"], ["check-report", "--help"], ["recommend", "--help"], ["validate", "/no/such/dataset"]]
)
def test_commands_without_splits_do_not_import_them(args):
    """The split kinds' flags are added when `prepare` or `train` is parsed: their import costs the others ~0.5 s."""
    probe = (
        "import sys\nfrom kdq_lab.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "print('imported' if 'kdq_lab.data.splits' in sys.modules else 'not imported', file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, cwd=ROOT)
    assert proc.stderr.splitlines()[-1] == "not imported", proc.stderr
    prepare = subprocess.run([sys.executable, "-c", probe, "prepare", "--help"], capture_output=True, text=True)
    assert prepare.stderr.splitlines()[-1] == "imported" and "leave_last_out" in prepare.stdout


@pytest.mark.parametrize("command", ["prepare", "train"])
def test_ctrl_c_while_a_command_is_parsed_is_one_line(command, monkeypatch, capsys):
    from kdq_lab import cli as module

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(module, "_split_arguments", interrupted)
    assert module.main([command, "kdq-catalog-tiny"]) == 130
    assert capsys.readouterr().err == "interrupted\n"
