"""The Jupyter kernel the runner executes notebooks with: named ``kdq-lab`` and running this Python.

``make venv`` registers it inside ``.venv``. A plain ``pip install -e .`` does not, and a kernel of
that name registered by another environment would run the notebooks on other packages; both are
refused before anything runs, with the one command that fixes them.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

from kdq_lab.errors import KdqError

KERNEL = "kdq-lab"  # every notebook declares it

#: argv[0] that jupyter_client replaces with the running interpreter (``sys.executable``)
_THIS_PYTHON = {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info[:2])}


def install_command() -> str:
    """The command that registers the ``kdq-lab`` kernel for this interpreter, in its own environment."""
    return f"{shlex.quote(sys.executable)} -m ipykernel install --sys-prefix --name {KERNEL}"


def _environment(program: str) -> Path | None:
    """The folder holding ``program`` (symbolic links of the folder resolved, not of the program)."""
    found = program if os.sep in program else shutil.which(program)
    return Path(os.path.realpath(Path(found).absolute().parent)) if found else None


def runs_this_python(argv: list[str]) -> bool:
    """Whether a kernel started with ``argv`` runs this interpreter's environment.

    The same environment is the same folder of executables (``.venv/bin``): a program's own
    symbolic link is not followed, since every virtual environment's ``python`` links to the
    same base interpreter.
    """
    if not argv:
        return False
    if argv[0] in _THIS_PYTHON:
        return True
    return _environment(argv[0]) == _environment(sys.executable)


def kernel_problem() -> str | None:
    """One line saying why notebooks cannot run on a ``kdq-lab`` kernel of this interpreter, and what to run."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    this = f"this Python ({sys.executable})"
    fix = f"run `{install_command()}` (or `make venv`)"
    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL)
    except NoSuchKernel:
        return f"no Jupyter kernel named {KERNEL} is registered for {this}, which the notebooks need: {fix}"
    except (OSError, ValueError) as exc:
        return f"the Jupyter kernel {KERNEL} cannot be read ({exc}): {fix}"
    if runs_this_python(spec.argv):
        return None
    found = f"the Jupyter kernel {KERNEL} in {spec.resource_dir} runs {spec.argv[0] if spec.argv else 'nothing'}"
    own = Path(sys.prefix, "share", "jupyter", "kernels", KERNEL)
    if (own / "kernel.json").is_file() and own.resolve() != Path(spec.resource_dir).resolve():
        return f"{found}, not {this}, and hides this environment's own ({own}): remove it or its JUPYTER_PATH entry"
    return f"{found}, not {this}: {fix}"


def require_kernel() -> None:
    """Refuse (exit 2) unless a ``kdq-lab`` kernel runs this interpreter (see :func:`kernel_problem`)."""
    problem = kernel_problem()
    if problem is not None:
        raise KdqError(problem)
