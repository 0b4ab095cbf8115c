"""Benchmark: the Dask cluster backend's overhead over the local process pool, on this machine.

Both sides run the runs of the smoke experiment (every run × split × seed, no cache)
with two workers: two local processes, or a Dask scheduler with two single-threaded
worker processes on 127.0.0.1. The cluster side pays for the client connection, the
environment check, shipping the prepared splits and returning every output as bytes.
Splits are prepared once beforehand, so both sides time the same notebook executions.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from kdq_lab.config import Paths

SMOKE = Path("notebooks") / "experiments" / "smoke.yaml"


def _seconds(out: Path, cluster: str | None, experiment: Path) -> float:
    from kdq_lab.app.run import run_experiment
    from kdq_lab.execution.runner import ExecOptions
    from kdq_lab.experiment.plan import PlanOptions

    start = time.perf_counter()
    outcome = run_experiment(
        experiment,
        PlanOptions(jobs=2, out=out, compare=False),
        ExecOptions(progress=False, fresh=True, cluster=cluster),
    )
    if not outcome.ok:
        raise RuntimeError(f"the smoke experiment failed: {outcome.failed}")
    return time.perf_counter() - start


def run(repeats: int = 3) -> dict[str, float]:
    """Alternate local and cluster runs ``repeats`` times; return median seconds and the overhead."""
    from distributed import LocalCluster

    experiment = Paths.default().root / SMOKE
    times: dict[str, list[float]] = {"local": [], "cluster": []}
    with (
        tempfile.TemporaryDirectory(prefix="kdq-bench-") as folder,
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
    ):
        _seconds(Path(folder) / "warm-up", None, experiment)  # prepares the splits, starts the kernels once
        for i in range(repeats):
            times["local"].append(_seconds(Path(folder) / f"local-{i}", None, experiment))
            times["cluster"].append(_seconds(Path(folder) / f"cluster-{i}", cluster.scheduler_address, experiment))
    local_s, cluster_s = float(np.median(times["local"])), float(np.median(times["cluster"]))
    overhead = cluster_s / local_s - 1
    print("cluster: the smoke experiment's runs, 2 workers, no run cache")
    print(f"  local processes      : {local_s:6.2f} s")
    print(f"  Dask, 2 workers      : {cluster_s:6.2f} s")
    print(f"  cluster overhead {overhead:+.1%} (target <= 15%)")
    return {"local_seconds": local_s, "cluster_seconds": cluster_s, "overhead": overhead}
