"""Notebooks executed by papermill, in a worker process's warm kernel, then exported to HTML.

Each worker process keeps one ``kdq-lab`` kernel (:class:`_Kernel`) and clears it before each
notebook; :func:`run_pool` runs jobs in such processes and exports each finished notebook to
HTML in the calling process while the workers go on. A kernel is started with its job's
environment (the lab's folders, the threads it may use) passed to it: the process that starts it
keeps its own.
"""

from __future__ import annotations

import contextlib
import multiprocessing.util
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from kdq_lab.execution.kernel import KERNEL
from kdq_lab.processes import map_in_processes
from kdq_lab.streams import silenced_fd

ERROR_EXCERPT = 600


#: Threads a kernel's numerical libraries may use: each is set to the job's ``threads``.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class Job:
    """One notebook execution with its absolute paths (what a worker process receives).

    ``env`` holds what the kernel's environment adds to the worker's, besides the threads (the lab's folders:
    :meth:`kdq_lab.config.Paths.environment`).
    """

    kind: str
    key: str
    notebook: Path
    output: Path
    parameters: dict[str, Any]
    threads: int
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)

    def kernel_env(self) -> dict[str, str]:
        """The environment the job's kernel starts with: this process's, the threads, then :attr:`env`."""
        return {**os.environ, **dict.fromkeys(THREAD_VARIABLES, str(self.threads)), **self.env}


#: Called in the driver as each unit finishes, with its job and result (the run cache uses it).
OnDone = Callable[[Job, dict[str, Any]], None]


def _export_html(notebook: Path) -> Path:
    """Write the executed ``notebook`` as a report page beside it (code hidden, no CDN)."""
    import nbformat

    from kdq_lab.report.html_export import report_exporter

    body, _ = report_exporter().from_notebook_node(nbformat.read(notebook, as_version=4))
    target = notebook.with_suffix(".html")
    target.write_text(body, encoding="utf-8")
    return target


#: Run in the warm kernel before each notebook: a fresh namespace, the job's folder, no figures left open.
_RESET = """get_ipython().run_line_magic("reset", "-f")
import os as _os, sys as _sys
_os.chdir({cwd!r})
if "matplotlib.pyplot" in _sys.modules:
    _sys.modules["matplotlib.pyplot"].close("all")
del _os, _sys
"""


class _Kernel:
    """A ``kdq-lab`` kernel started with its job's environment; a worker process keeps one for its next notebooks.

    A kernel start and the notebooks' imports cost seconds per notebook; a worker keeps one
    kernel instead and clears its namespace (``%reset -f``), working folder and figures before
    each notebook, so every notebook still starts from nothing of its own. Imported modules
    stay imported: that is the saving. A kernel that died, ran a failing notebook, or was
    started with another environment than the next job's is replaced. Kernels never outlive
    their worker.
    """

    def __init__(self) -> None:
        self.manager: Any = None
        self.env: dict[str, str] = {}  # what the running kernel was started with
        self.opened: list[Any] = []  # kernel clients opened on it (papermill leaves its own open)

    def for_job(self, job: Job) -> Any:
        """The kernel manager to run ``job`` in, reset for it."""
        from jupyter_client.manager import AsyncKernelManager
        from jupyter_core.utils import run_sync

        opened = self.opened

        class Manager(AsyncKernelManager):
            def client(self, **kwargs: Any) -> Any:
                client = super().client(**kwargs)
                opened.append(client)
                return client

        env = job.kernel_env()
        if self.manager is not None and (env != self.env or not run_sync(self.manager.is_alive)()):
            self.stop()
        if self.manager is None:
            self.manager = Manager(kernel_name=KERNEL)
            run_sync(self.manager.start_kernel)(cwd=str(job.cwd), env=env)
            self.env = env
        client = self.manager.client()
        client.start_channels()
        run_sync(client.wait_for_ready)(timeout=60)
        reply = run_sync(client.execute_interactive)(
            _RESET.format(cwd=str(job.cwd)), timeout=60, store_history=False, output_hook=lambda message: None
        )
        self.release()
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"could not reset the kernel: {reply['content'].get('evalue')}")
        return self.manager

    def release(self) -> None:
        """Close the kernel clients opened so far."""
        for client in self.opened:
            client.stop_channels()
        self.opened.clear()

    def stop(self) -> None:
        """Shut the kernel down (after a failure, and when the worker exits)."""
        from jupyter_core.utils import run_sync

        self.release()
        if self.manager is not None:
            run_sync(self.manager.shutdown_kernel)(now=True)
        self.manager = None


_KERNEL = _Kernel()
multiprocessing.util.Finalize(None, _KERNEL.stop, exitpriority=10)  # when the worker exits


def execute(job: Job, warm: bool = True) -> dict[str, Any]:
    """Execute one notebook with papermill (runs in a worker process); this process's environment and streams
    are left as they were.

    ``warm``: in this process's kept kernel, with stderr silenced (a local pool worker: the kernel inherits
    it, and its chatter would scramble the progress bar); otherwise in a kernel of its own, shut down after
    (a Dask worker may run several tasks at once, and its stderr is its log).
    """
    with silenced_fd(2) if warm else contextlib.nullcontext():
        return _execute(job, _KERNEL if warm else _Kernel())


def _execute(job: Job, kernel: _Kernel) -> dict[str, Any]:
    import papermill
    from papermill.exceptions import PapermillExecutionError

    job.output.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    status, error = "ok", None
    try:
        papermill.execute_notebook(
            str(job.notebook),
            str(job.output),
            parameters=job.parameters,
            kernel_name=KERNEL,
            progress_bar=False,
            cwd=str(job.cwd),
            km=kernel.for_job(job),
        )
    except PapermillExecutionError as exc:
        status, error = "failed", f"{exc.ename}: {exc.evalue}"[:ERROR_EXCERPT]
    except Exception as exc:  # a dead kernel, a timeout: the run fails, the experiment goes on
        status, error = "failed", f"{type(exc).__name__}: {exc}"[:ERROR_EXCERPT]
    finally:
        kernel.release()
    if kernel is not _KERNEL or status != "ok":
        kernel.stop()  # a kernel of its own is done; after a failure, the next notebook gets a new kernel
    seconds = time.perf_counter() - started
    if job.output.is_file() and job.output.stat().st_size == 0:
        job.output.unlink()  # papermill could not write the notebook: leave nothing empty behind
    return {"kind": job.kind, "key": job.key, "status": status, "error": error, "seconds": seconds}


def with_html(job: Job, result: dict[str, Any]) -> dict[str, Any]:
    """Export an executed notebook to HTML (in the main process, while the workers run the next notebooks)."""
    if job.output.is_file():
        try:
            _export_html(job.output)
        except Exception as exc:  # the notebook itself is the record; HTML is a convenience
            result["error"] = (result["error"] or "") + f" (HTML export failed: {exc})"
    return result


def run_pool(jobs: list[Job], workers: int, progress: bool, label: str,
             on_done: OnDone | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Execute jobs in ``workers`` processes with a progress bar; results in job order.

    Each finished notebook is exported to HTML here, while the workers run the next ones;
    then ``on_done(job, result)`` runs, in job order.
    """
    with tqdm(total=len(jobs), desc=label, disable=not progress, unit="nb", file=sys.stderr) as bar:

        def finished(i: int, result: dict[str, Any]) -> dict[str, Any]:
            result = with_html(jobs[i], result)
            if on_done is not None:
                on_done(jobs[i], result)
            bar.set_postfix_str(f"{result['key']}: {result['status']}", refresh=False)
            bar.update()
            return result

        return map_in_processes(execute, [(job,) for job in jobs], workers, finished)
