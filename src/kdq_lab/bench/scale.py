"""Benchmark (``make bench-scale``): the large catalog through the whole pipeline, stage by stage.

Generates ``kdq-catalog-large`` (1.2M users, 120k items, about 22M events, Parquet) unless it
is there already, then runs ``notebooks/experiments/kdq-large.yaml`` with ``--jobs 2`` in a
child process, after removing the dataset's processed data (its validated copy and splits:
derived, reproducible; only folders the lab made) so that every stage is measured, not found cached. A sampler reads
the resident memory of every process of the run (the runner, its workers and their
kernels) from ``/proc`` ten times a second; each stage's peak is the largest sum over
processes seen while the stage ran (stage times come from the report's ``manifest.json``).
Targets: the run within 30 minutes, every stage within 8 GB. Linux only.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from kdq_lab.config import Paths
from kdq_lab.files import made_by_lab
from kdq_lab.runs.records import RunSummary

EXPERIMENT = "kdq-large"
DATASET = "kdq-catalog-large"
TARGET_SECONDS, TARGET_MB = 30 * 60, 8 * 1024


def _process_table() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, resident MB) of every process readable in ``/proc``."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            status = (entry / "status").read_text()
        except OSError:  # the process ended meanwhile
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        rss = next((float(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmRSS:")), 0.0)
        table[int(entry.name)] = (parent, rss)
    return table


def _clear_derived(folder: Path) -> None:
    """Remove the folders the lab made under ``folder`` (validated copy, splits); anything else stays."""
    for child in folder.glob("*"):
        if child.is_dir() and made_by_lab(child):
            shutil.rmtree(child)


def tree_rss_mb(root: int) -> float:
    """Resident memory (MB) of ``root`` and all its descendants, summed."""
    table = _process_table()
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += table.get(pid, (0, 0.0))[1]
        todo += children.get(pid, [])
    return total


@dataclass
class Sampler:
    """Samples the summed resident memory of a process tree in a thread: (Unix time, MB) pairs."""

    root: int
    every: float = 0.1
    samples: list[tuple[float, float]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> Sampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), tree_rss_mb(self.root)))
            self._stop.wait(self.every)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def peak(self, start: float = 0.0, end: float = float("inf")) -> float:
        return max((mb for t, mb in self.samples if start <= t <= end), default=float("nan"))


def _run_measured(command: list[str]) -> tuple[float, Sampler]:
    start = time.time()
    process = subprocess.Popen(command)
    with Sampler(process.pid) as sampler:
        code = process.wait()
    if code:
        raise SystemExit(f"{' '.join(command)} failed with exit code {code}")
    return time.time() - start, sampler


def run(repeats: int = 1, jobs: int = 2) -> list[dict[str, float | str]]:
    """Generate (or reuse) the large catalog, run ``kdq-large``, print and return the stage table."""
    del repeats  # one run: it takes minutes
    paths = Paths.default()
    kdq = [sys.executable, "-m", "kdq_lab.cli"]
    rows: list[dict[str, float | str]] = []
    folder = paths.raw / DATASET
    if not (folder / "dataset.yaml").is_file():
        seconds, sampler = _run_measured([*kdq, "generate", "kdq-catalog", "--scale", "large", "--out", str(folder)])
        rows.append({"stage": "generate kdq-catalog-large", "seconds": seconds, "peak_mb": sampler.peak()})
    _clear_derived(paths.processed / DATASET)  # measure validation and prepare, not the cache
    experiment = paths.notebooks / "experiments" / f"{EXPERIMENT}.yaml"
    seconds, sampler = _run_measured([*kdq, "run", str(experiment), "--jobs", str(jobs), "--fresh"])
    manifest = json.loads((paths.reports / EXPERIMENT / "manifest.json").read_text(encoding="utf-8"))
    for stage in manifest["stages"]:
        rows.append(
            {
                "stage": stage["stage"],
                "seconds": stage["seconds"],
                "peak_mb": sampler.peak(stage["started"], stage["ended"]),
            }
        )
    rows.append({"stage": "kdq-lab run (total)", "seconds": seconds, "peak_mb": sampler.peak()})
    for step in manifest["steps"]:
        if step["kind"] != "run" or step["status"] != "ok":
            continue
        summary = RunSummary.read(paths.reports / EXPERIMENT / "runs" / step["key"] / "summary.json")
        for facts in summary.per_seed:
            name = f"  {step['key']} s{facts.seed}"
            rows += [{"stage": f"{name}: fit", "seconds": facts.fit_seconds}]
            rows += [{"stage": f"{name}: eval", "seconds": facts.eval_seconds}]
            if facts.validation_share is not None:
                rows.append({"stage": f"{name}: validation share", "share": facts.validation_share})
    print(
        f"\nbench-scale: {EXPERIMENT} on {DATASET}, --jobs {jobs} (targets: {TARGET_SECONDS / 60:.0f} min, "
        f"{TARGET_MB / 1024:.0f} GB summed over processes)"
    )
    print(f"  {'stage':<48} {'seconds':>9} {'peak RSS (MB)':>14}")
    for row in rows:
        if "share" in row:
            print(f"  {row['stage']:<48} {float(row['share']):>9.0%} {'':>14}")
            continue
        peak = f"{float(row['peak_mb']):14.0f}" if "peak_mb" in row else f"{'':>14}"
        print(f"  {row['stage']:<48} {float(row['seconds']):9.1f} {peak}")
    return rows
