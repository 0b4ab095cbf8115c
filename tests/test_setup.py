"""The set-up contract: one dependency set, one test command, the kernel, a self-documenting Makefile."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

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


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    commands = [line.strip() for line in ci.splitlines() if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert commands == ["make test"]
    assert "make test" in readme and "make report" in readme
    assert readme.index("make report") < readme.index("## ") or readme.index("make test") < readme.index("## ")


def test_the_lab_kernel_runs_this_environment():
    from jupyter_client.kernelspec import KernelSpecManager

    from kdq_lab.pipeline.runner import KERNEL

    spec = KernelSpecManager().get_kernel_spec(KERNEL)
    assert KERNEL == "kdq-lab" and Path(spec.argv[0]).resolve() == Path(sys.executable).resolve()


def test_make_help_lists_the_targets():
    out = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for target in ("report", "test", "lab", "bench", "help"):
        assert re.search(rf"make {target}\s", out), out
