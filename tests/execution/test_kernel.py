"""Notebooks run only on a ``kdq-lab`` kernel of this interpreter; otherwise one line says what to run (exit 2).

In-process checks point ``JUPYTER_PATH`` at a temporary folder (found before this environment's
own kernel). A bare environment — what a plain ``pip install -e .`` gives: the lab importable,
no kernel registered — is a virtual environment of its own whose site folder adds this one's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from kdq_lab.errors import KdqError
from kdq_lab.execution.kernel import KERNEL, install_command, kernel_problem, require_kernel, runs_this_python

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "notebooks" / "experiments" / "smoke.yaml"


def register(folder: Path, program: str) -> Path:
    """A ``kdq-lab`` kernel under ``folder/kernels`` that starts ``program``."""
    spec = folder / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [program, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": KERNEL, "language": "python"}))
    return spec


def foreign_python(tmp_path: Path) -> str:
    """Another environment's python: a link to the very same base interpreter, in a folder of its own."""
    bin_dir = tmp_path / "other-env" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").symlink_to(os.path.realpath(sys.executable))
    return str(bin_dir / "python")


@pytest.mark.parametrize(
    "program",
    [
        sys.executable,
        "python",  # jupyter_client starts sys.executable for these names
        f"python{sys.version_info[0]}",
        str(Path(sys.executable).parent / "python3"),  # a sibling in the same environment
    ],
)
def test_a_kernel_of_this_environment_is_accepted(program, tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    register(tmp_path, program)
    assert kernel_problem() is None


def test_this_environment_reached_through_a_linked_folder_is_accepted(tmp_path):
    linked = tmp_path / "linked-bin"
    linked.symlink_to(Path(sys.executable).parent, target_is_directory=True)
    assert runs_this_python([str(linked / Path(sys.executable).name)])


@pytest.mark.parametrize(
    "program",
    [
        "foreign",  # another environment whose python links to the same base interpreter
        "/opt/elsewhere/bin/python",
        "python2.7",  # a bare name jupyter_client does not replace: whatever PATH finds (here nothing)
        "",
    ],
)
def test_a_kernel_of_another_interpreter_is_refused_with_the_command_to_run(program, tmp_path, monkeypatch):
    program = foreign_python(tmp_path) if program == "foreign" else program
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    spec = register(tmp_path, program)
    before = dict(os.environ)
    with pytest.raises(KdqError) as caught:
        require_kernel()
    assert dict(os.environ) == before, "the check changed the environment"
    message = str(caught.value)
    assert "\n" not in message and str(spec) in message and sys.executable in message
    own = Path(sys.prefix, "share", "jupyter", "kernels", KERNEL)
    if (own / "kernel.json").is_file():  # this environment has its own, hidden by the temporary one
        assert "hides this environment's own" in message and str(own) in message
    else:
        assert install_command() in message


def test_an_unreadable_kernel_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    spec = register(tmp_path, sys.executable)
    (spec / "kernel.json").write_text("{not json")
    with pytest.raises(KdqError, match="cannot be read"):
        require_kernel()


# ----------------------------------------------------------------------------- a bare environment, end to end


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory) -> Path:
    """A virtual environment with the lab importable (through this one's site folder) and no kernel of its own."""
    folder = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]
    Path(site, "kdq-lab-tests.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    return python


def bare_run(python: Path, tmp_path: Path, *args: str, jupyter_path: Path | None = None) -> subprocess.CompletedProcess:
    empty = tmp_path / "jupyter-empty"
    empty.mkdir(exist_ok=True)
    env = os.environ | {
        "JUPYTER_PATH": str(jupyter_path or empty),
        "JUPYTER_DATA_DIR": str(empty),
        "KDQ_LAB_DATA": str(tmp_path / "workspace"),
    }
    return subprocess.run(
        [str(python), "-m", "kdq_lab.cli", "run", str(SMOKE), "--out", str(tmp_path / "report"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )


@pytest.mark.slow  # starts another Python process
def test_run_without_a_kernel_says_what_to_run_and_touches_nothing(bare_python, tmp_path):
    proc = bare_run(bare_python, tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no Jupyter kernel named kdq-lab"), proc.stderr
    assert f"{bare_python} -m ipykernel install --sys-prefix --name kdq-lab" in lines[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not (tmp_path / "report").exists() and not (tmp_path / "workspace").exists(), "nothing generated"


@pytest.mark.slow  # starts another Python process
def test_run_with_another_environments_kernel_is_refused(bare_python, tmp_path):
    registered = tmp_path / "registered"
    spec = register(registered, sys.executable)  # the kernel of the environment running the tests, not the bare one
    proc = bare_run(bare_python, tmp_path, jupyter_path=registered)
    assert proc.returncode == 2, proc.stderr
    assert f"{spec} runs {sys.executable}, not this Python ({bare_python})" in proc.stderr
    assert f"run `{bare_python} -m ipykernel install --sys-prefix --name kdq-lab`" in proc.stderr
    assert not (tmp_path / "report").exists() and not (tmp_path / "workspace").exists()


@pytest.mark.slow  # starts another Python process
def test_a_dry_run_needs_no_kernel(bare_python, tmp_path):
    proc = bare_run(bare_python, tmp_path, "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "02_prepare_data" in proc.stdout and not (tmp_path / "report").exists()
