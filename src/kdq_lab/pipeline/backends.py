"""Where units of work run: notebook executions and batches of tuning trials.

Two backends behind one small interface. The default runs everything in local processes,
with no server to start. With ``--cluster tcp://HOST:8786`` (or ``KDQ_LAB_CLUSTER`` in the
environment) the runs and the trials go to an existing Dask scheduler
(:mod:`kdq_lab.pipeline.cluster`); the progress display and the report are the same.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from kdq_lab.pipeline.runner import Job
    from kdq_lab.tuning.study import StudyResult, StudyTask

#: Called in the driver as each unit finishes, with its job and result (the run cache uses it).
OnDone = Callable[["Job", dict[str, Any]], None]


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
        from kdq_lab.pipeline.runner import run_pool

        return run_pool(jobs, self.workers, progress, label, on_done)

    def studies(self, tasks: list[StudyTask], progress: bool) -> list[StudyResult]:
        from kdq_lab.tuning.study import run_studies

        return run_studies(tasks, jobs=self.workers, progress=progress)

    def describe(self) -> dict[str, Any]:
        return {"kind": "local", "processes": self.workers}

    def close(self) -> None:
        return None


def cluster_address(cluster: str | None = None) -> str | None:
    """The scheduler address (``cluster``, else ``KDQ_LAB_CLUSTER``), its syntax checked; ``None``: local processes."""
    from kdq_lab.pipeline.cluster import CLUSTER_ENV, check_address

    if cluster is not None:
        return check_address(cluster)
    address = os.environ.get(CLUSTER_ENV)
    return check_address(address, CLUSTER_ENV) if address else None


def open_backend(cluster: str | None = None, jobs: int = 2, shared_dir: Path | None = None,
                 retries: int = 2) -> Backend:  # fmt: skip
    """The cluster backend when a scheduler is named (argument, else ``KDQ_LAB_CLUSTER``), else local processes."""
    from kdq_lab.pipeline.cluster import DaskBackend

    address = cluster_address(cluster)
    if address:
        return DaskBackend(address, shared_dir=shared_dir, retries=retries)
    return LocalBackend(jobs)
