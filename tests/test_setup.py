"""The set-up contract: one dependency set, one test command, CI and its workflow, the kernel, a self-documenting
Makefile."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_environment_yml_mirrors_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["dev"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    assert "python=3.11" in env["dependencies"] and "pip" in env["dependencies"]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-e .[dev]" in pip, "environment.yml must install the lab itself"
    assert sorted(p for p in pip if p != "-e .[dev]") == sorted(wanted)


def test_lightfm_comes_from_the_maintained_fork_only():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = [re.split(r"[<>=!~ \[]", d)[0].lower() for d in project["dependencies"]]
    assert "rectools-lightfm" in names and "lightfm" not in names


def _commands(path: Path) -> list[str]:
    """The top-level commands of a shell script (comments, set, cd and the install block aside)."""
    lines = [line.rstrip() for line in path.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line and not line.startswith(("#", "set ", "cd ", " ", "if ", "fi"))]


def test_ci_runs_the_readme_test_command_then_regenerates_and_checks_the_report():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = ROOT / ".ci" / "run"
    assert _commands(ci) == ["make test", "make report", "make check-report", "make diff-smoke"]
    assert "make test" in readme and "make report" in readme
    assert max(readme.index("make report"), readme.index("make test")) < readme.index("## "), "both before any section"
    text = ci.read_text(encoding="utf-8")
    assert text.index("apt-get install -y -qq chromium") < text.index("make test"), "the browser comes first"
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "$(KDQ) check-report $(REPORT) --browser" in makefile and "REPORT  := reports/kdq-default" in makefile


def test_workflow_does_what_ci_does_and_uploads_the_report():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "report.yml").read_text(encoding="utf-8"))
    assert workflow[True] == {"push": None}, "runs on push"  # YAML 1.1 reads the key `on` as True
    steps = workflow["jobs"]["report"]["steps"]
    runs = [step.get("run") for step in steps]
    assert "bash .ci/run" in runs and "make screenshots" in runs
    upload = next(step for step in steps if step.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["with"]["path"] == "reports/kdq-default/"
    python = next(step for step in steps if step.get("uses", "").startswith("actions/setup-python@"))
    assert python["with"]["python-version"] == "3.11"


def _actionlint(*paths: Path) -> subprocess.CompletedProcess:
    binary = Path(sys.executable).parent / "actionlint"
    assert binary.is_file(), "actionlint comes with the dev extras (make venv)"
    return subprocess.run([str(binary), "-no-color", *map(str, paths)], capture_output=True, text=True)


@pytest.mark.slow  # starts another Python process
def test_workflow_passes_actionlint():
    proc = _actionlint(ROOT / ".github" / "workflows" / "report.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow  # starts another Python process
def test_actionlint_fails_a_broken_workflow(tmp_path):
    text = (ROOT / ".github" / "workflows" / "report.yml").read_text(encoding="utf-8")
    broken = tmp_path / "report.yml"
    broken.write_text(text.replace("runs-on: ubuntu-latest", "runs-on: ${{ github.no_such_thing }}"), encoding="utf-8")
    proc = _actionlint(broken)
    assert proc.returncode == 1 and "no_such_thing" in proc.stdout


def test_the_lab_kernel_runs_this_environment():
    from jupyter_client.kernelspec import KernelSpecManager

    from kdq_lab.execution.kernel import KERNEL, kernel_problem

    spec = KernelSpecManager().get_kernel_spec(KERNEL)
    assert KERNEL == "kdq-lab" and Path(spec.argv[0]).resolve() == Path(sys.executable).resolve()
    assert kernel_problem() is None


@pytest.mark.slow  # starts another Python process
def test_make_help_lists_the_targets():
    out = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for target in ("report", "test", "lab", "bench", "help", "screenshots", "check-report"):
        assert re.search(rf"make {target}\s", out), out
