"""Where units of work run: notebook executions and batches of tuning trials.

Two backends behind one small interface. The default runs everything in local processes,
with no server to start. With ``--cluster tcp://HOST:8786`` (or ``KDQ_LAB_CLUSTER`` in the
environment) the runs and the trials go to an existing Dask scheduler
(:mod:`kdq_lab.execution.cluster`); the progress display and the report are the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from kdq_lab.execution.cluster import DaskBackend, cluster_address
from kdq_lab.execution.notebooks import Job, OnDone, run_pool
from kdq_lab.tuning.study import StudyResult, StudyTask, run_studies


class Backend(Protocol):
    """Runs units of work and gives their results back in order."""

    def notebooks(
        self, jobs: list[Job], label: str, progress: bool, on_done: OnDone | None = None
    ) -> list[dict[str, Any]]:
        """Execute notebooks; each job's outputs land beside its output path, then ``on_done(job, result)`` runs."""
        ...

    def studies(self, tasks: list[StudyTask], progress: bool) -> list[StudyResult]:
        """Run the trials each study still lacks."""
        ...

    def describe(self) -> dict[str, Any]:
        """What ran the work, for the manifest."""
        ...

    def close(self) -> None: ...


@dataclass
class LocalBackend:
    """Local processes, ``workers`` at a time (the default: no server)."""

    workers: int

    def notebooks(
        self, jobs: list[Job], label: str, progress: bool, on_done: OnDone | None = None
    ) -> list[dict[str, Any]]:
        return run_pool(jobs, self.workers, progress, label, on_done)

    def studies(self, tasks: list[StudyTask], progress: bool) -> list[StudyResult]:
        return run_studies(tasks, jobs=self.workers, progress=progress)

    def describe(self) -> dict[str, Any]:
        return {"kind": "local", "processes": self.workers}

    def close(self) -> None:
        return None


def open_backend(cluster: str | None = None, jobs: int = 2, shared_dir: Path | None = None,
                 retries: int = 2) -> Backend:  # fmt: skip
    """The cluster backend when a scheduler is named (argument, else ``KDQ_LAB_CLUSTER``), else local processes."""
    address = cluster_address(cluster)
    if address:
        return DaskBackend(address, shared_dir=shared_dir, retries=retries)
    return LocalBackend(jobs)
