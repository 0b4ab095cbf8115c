"""The cluster backend: run notebooks and tuning trials on an existing Dask scheduler.

Workers need no shared filesystem. Each prepared split is packed once, scattered to the
cluster, and unpacked by a worker into its own cache, keyed by the split id (a content
hash). A worker returns a run's outputs (executed notebook, HTML, metrics, summary,
models) as bytes; the client writes them into the report folder, which stays atomic.
With ``shared_dir`` (a path every worker sees) splits and outputs go through it instead.

Before any work is sent, every worker must run the same lab code (a fingerprint of its
source files), the same LightFM and the same Python minor version. A unit whose worker
dies is run again on another worker (the scheduler's rescheduling, then up to ``retries``
resubmissions); the manifest records how often. Losing the scheduler is a clear error; the
runs that finished are in the run cache, so the same command again continues.
"""

from __future__ import annotations

import io
import ipaddress
import logging
import math
import os
import platform
import re
import shutil
import sys
import tarfile
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any

from tqdm import tqdm

import kdq_lab
from kdq_lab.errors import KdqError
from kdq_lab.execution.cache import code_fingerprint
from kdq_lab.execution.kernel import KERNEL, kernel_problem
from kdq_lab.execution.notebooks import Job, OnDone, execute, with_html
from kdq_lab.files import copy_lab_folder, lab_entries, open_regular, warn_skipped
from kdq_lab.processes import signals_deferred
from kdq_lab.tuning.study import (
    StudyResult,
    StudyTask,
    counted,
    make_objective,
    open_storage,
    open_study,
    storage_failures,
    summarise,
    within_budget,
)

#: The scheduler address ``kdq-lab run`` and ``kdq-lab tune`` use when ``--cluster`` is not given.
CLUSTER_ENV = "KDQ_LAB_CLUSTER"
LOST = "lost the Dask scheduler"
#: Seconds the scheduler has to answer before ``--cluster`` is reported unreachable (one line, exit 2).
CONNECT_SECONDS = 10.0
_ADDRESS = re.compile(r"(?:(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://)?(?P<host>\[[^\]]*\]|[^:/\[\]]+):(?P<port>[0-9]+)")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def environment() -> dict[str, str]:
    """What must be equal on the client and on every worker (the notebook kernel included)."""
    python = platform.python_version_tuple()
    return {
        "kdq_lab": kdq_lab.__version__,
        "code": code_fingerprint(),
        "lightfm": metadata.version("rectools-lightfm"),
        "python": f"{python[0]}.{python[1]}",
        "kernel": kernel_problem() or KERNEL,
    }


def check_workers(client: Any) -> list[str]:
    """The workers' addresses, after checking each runs what this machine runs; a mismatch names it."""
    mine = environment()
    theirs: dict[str, dict[str, str]] = client.run(environment)
    if not theirs:
        raise KdqError("the Dask cluster has no worker; start some with `dask worker <scheduler address>`")
    mismatches = [f"worker {address}: {key} is {found.get(key)!r}, here {value!r}"
                  for address, found in sorted(theirs.items()) for key, value in mine.items()
                  if found.get(key) != value]  # fmt: skip
    if mismatches:
        raise KdqError("the cluster's workers differ from this machine; install the same lab and packages there "
                       "first:\n  " + "\n  ".join(mismatches))  # fmt: skip
    return sorted(theirs)


def check_address(address: str, source: str = "--cluster") -> str:
    """``address`` if it reads as a scheduler address (``[tcp:// or tls://]HOST:PORT``); else a :class:`KdqError`.

    ``source`` names where the address came from (``--cluster`` or ``KDQ_LAB_CLUSTER``).
    """
    match = _ADDRESS.fullmatch(address)
    if match is None:
        problem = "expected [tcp:// or tls://]HOST:PORT"
    elif match["scheme"] not in (None, "tcp", "tls"):
        problem = f"the scheme {match['scheme']}:// is not tcp:// or tls://"
    elif not _is_host(match["host"]):
        problem = f"{match['host']!r} is not a host name or an IP address"
    elif len(match["port"]) > 5 or not 1 <= int(match["port"]) <= 65535:
        problem = f"the port {match['port']} is not in 1-65535"
    else:
        return address
    raise KdqError(f"{source} {address!r}: not a Dask scheduler address: {problem}, e.g. tcp://10.0.0.5:8786")


def cluster_address(cluster: str | None = None) -> str | None:
    """The scheduler address (``cluster``, else ``KDQ_LAB_CLUSTER``), its syntax checked; ``None``: local processes."""
    if cluster is not None:
        return check_address(cluster)
    address = os.environ.get(CLUSTER_ENV)
    return check_address(address, CLUSTER_ENV) if address else None


def _is_host(host: str) -> bool:
    """An IPv6 address in brackets, an IPv4 address, or a DNS name (RFC 1123 labels, at most 253 characters)."""
    try:
        if host.startswith("["):
            ipaddress.IPv6Address(host[1:-1])
        elif all(part.isdigit() for part in host.split(".")):
            ipaddress.IPv4Address(host)
        elif len(host) > 253 or not all(_LABEL.fullmatch(label) for label in host.removesuffix(".").split(".")):
            return False
    except ValueError:
        return False
    return True


async def _identity(address: str, seconds: float) -> Any:
    """What the server at ``address`` says it is (a Dask scheduler answers a dict with ``type: Scheduler``)."""
    from distributed.comm import connect as open_comm
    from distributed.security import Security

    comm = await open_comm(address, timeout=seconds, deserialize=False, **Security().get_connection_args("client"))
    try:
        await comm.write({"op": "identity"})
        return await comm.read()
    finally:
        comm.abort()


def probe(address: str, seconds: float = CONNECT_SECONDS) -> None:
    """Ask the server at ``address`` what it is, within ``seconds``; anything but a Dask scheduler is a KdqError.

    Done before a ``distributed.Client`` is made: a client that fails to start waits twice its
    timeout when it is collected, then prints a traceback; a server that is not a scheduler
    (a web server, a proxy) can make it raise anything, ``MemoryError`` included.
    """
    import asyncio

    try:
        with ThreadPoolExecutor(1) as thread:  # its own event loop, even if the caller runs one (Jupyter)
            answer = thread.submit(asyncio.run, asyncio.wait_for(_identity(address, seconds), seconds)).result()
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        cause = f"{type(exc).__name__}: {first}".removesuffix(": ")[:200]
        raise KdqError(
            f"no Dask scheduler answers at {address} within {seconds:g} s ({cause}); start one with `dask scheduler`"
        ) from None
    if not (isinstance(answer, dict) and answer.get("type") == "Scheduler"):
        raise KdqError(f"{address} answers, but not as a Dask scheduler; give the scheduler's address (port 8786)")


def connect(address: str, timeout: float = CONNECT_SECONDS) -> Any:
    """A Dask client of the scheduler at ``address`` (e.g. ``tcp://10.0.0.5:8786``), its workers checked.

    ``address`` is checked (:func:`check_address`), then the scheduler must answer within ``timeout`` seconds.
    """
    from distributed import Client

    check_address(address)
    for handler in logging.getLogger("distributed").handlers:  # the lab reports a lost scheduler itself, in one line
        handler.setLevel(logging.CRITICAL)
    probe(address, timeout)
    try:
        client = Client(address, timeout=f"{timeout}s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise KdqError(f"no Dask scheduler answers at {address} ({exc}); start one with `dask scheduler`") from None
    try:
        check_workers(client)
    except BaseException:
        client.close()
        raise
    return client


# ----------------------------------------------------------------------------- bytes in, bytes out


def pack(folder: Path) -> bytes:
    """A lab folder as tar bytes (relative names): its folders and regular files.

    Links and special files are skipped with a warning (:func:`kdq_lab.files.lab_entries`);
    each file is read from a handle opened without following links.
    """
    folder = Path(folder)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, is_folder in lab_entries(folder):
            if is_folder:
                tar.addfile(tar.gettarinfo(folder / path, arcname=path))
                continue
            with open_regular(folder / path) as handle:
                if handle is None:  # swapped for a link or a special file since
                    warn_skipped(folder / path, "no longer a regular file")
                    continue
                info = tar.gettarinfo(arcname=path, fileobj=handle)
                tar.addfile(info, handle)
    return buffer.getvalue()


def _plain(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
    """Extraction filter: folders and regular files only (links and special files skipped with a warning)."""
    if not (member.isdir() or member.isreg()):
        warn_skipped(member.name, "a link or special file in packed data")
        return None
    return tarfile.data_filter(member, path)


def unpack(data: bytes, target: Path) -> Path:
    """Extract tar bytes into ``target``: only folders and regular files, never outside it."""
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        tar.extractall(target, filter=_plain)
    return target


def _local_split(split_id: str, payload: bytes | str) -> str:
    """A prepared split on this worker: unpacked once into its cache, or read from the shared folder."""
    if isinstance(payload, str):
        return payload
    from distributed import get_worker

    cache = Path(get_worker().local_directory) / "kdq-lab" / "splits"
    folder = cache / split_id
    if not (folder / "manifest.json").is_file():
        cache.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{split_id}.", dir=cache.parent))
        unpack(payload, staging)
        try:
            staging.rename(folder)
        except OSError:  # another task of this worker unpacked it first
            shutil.rmtree(staging, ignore_errors=True)
    return str(folder)


def execute_remote(job: dict[str, Any], notebook_text: str, inputs: dict[str, bytes | str],
                   shared_out: str | None) -> dict[str, Any]:  # fmt: skip
    """On a worker: execute one notebook whose prepared splits come as ``inputs``; return its outputs."""
    work = Path(tempfile.mkdtemp(prefix="kdq-run-"))
    parameters = dict(job["parameters"])
    parameters["SPLITS"] = [{**ref, "folder": _local_split(Path(ref["folder"]).name, inputs[Path(ref["folder"]).name])}
                            for ref in parameters.get("SPLITS") or []]  # fmt: skip
    out = Path(shared_out) if shared_out else work / "out"
    parameters["OUTPUT_DIR"] = str(out)
    notebook = work / "notebook.ipynb"
    notebook.write_text(notebook_text, encoding="utf-8")
    task = Job(job["kind"], job["key"], notebook, out / Path(job["output"]).name, parameters, job["threads"], work)
    result = with_html(task, execute(task, warm=False))
    result["files"] = None if shared_out else pack(out)
    shutil.rmtree(work, ignore_errors=True)
    return result


def run_trials(task: StudyTask, trials: int | None, timeout: float | None, payload: bytes | str) -> int:
    """On a worker: run a batch of a study's trials against the cluster's shared study storage."""
    import optuna
    from distributed import get_worker

    from kdq_lab.data.store import load_split
    from kdq_lab.tuning.study import pruner

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    split = load_split(Path(_local_split(Path(task.split_folder).name, payload)))
    storage = open_storage(task.storage) if isinstance(task.storage, str) else task.storage  # a URL: heartbeats
    study = optuna.load_study(study_name=task.name, storage=storage,
                              sampler=optuna.samplers.TPESampler(seed=task.sampler_seed),
                              pruner=pruner(task.budget.pruner))  # fmt: skip
    objective = within_budget(make_objective(task, split), task.budget)
    worker = str(get_worker().name)

    def on_this_worker(trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", worker)
        return objective(trial)

    study.optimize(on_this_worker, n_trials=trials, timeout=timeout, catch=(Exception,), gc_after_trial=False)
    return len(study.trials)


def _suspicious(dask_scheduler: Any, keys: list[str]) -> dict[str, int]:
    """How often each task was on a worker that died (the scheduler's count)."""
    return {key: dask_scheduler.tasks[key].suspicious for key in keys if key in dask_scheduler.tasks}


def _lost(exc: BaseException) -> bool:
    from concurrent.futures import CancelledError

    from distributed.comm import CommClosedError

    return isinstance(exc, (OSError, TimeoutError, CancelledError, CommClosedError))


class DaskBackend:
    """Units of work on an existing Dask cluster (see the module docstring)."""

    def __init__(self, address: str, shared_dir: Path | None = None, retries: int = 2):
        self.address = address
        self.client = connect(address)
        self.shared_dir = Path(shared_dir).resolve() if shared_dir else None
        self.retries = retries
        self._scattered: dict[str, Any] = {}
        self._session = uuid.uuid4().hex[:12]  # names this invocation's output folders in the shared folder

    def close(self) -> None:
        self.client.close()

    def describe(self) -> dict[str, Any]:
        try:  # the scheduler may be lost after the last run: its cached info then has no workers
            workers = self.client.scheduler_info().get("workers")
            environments = self.client.run(environment) if workers is not None else {}
        except BaseException as exc:
            if not _lost(exc):
                raise
            workers = None
        if workers is None:
            raise KdqError(
                f"{LOST} at {self.address} while recording its workers in the manifest; every run had finished "
                "and is kept in the run cache: run the same command again to write the report"
            )
        shared = str(self.shared_dir) if self.shared_dir else None
        return {"kind": "dask", "cluster": self.address, "shared_dir": shared,
                "workers": {address: {"name": str(info.get("name")), **environments.get(address, {})}
                            for address, info in sorted(workers.items())}}  # fmt: skip

    # ------------------------------------------------------------------ inputs

    def _input(self, folder: str) -> Any:
        """A prepared split for the workers: scattered once (or copied once into the shared folder)."""
        split_id = Path(folder).name
        known = self._scattered.get(split_id)
        if known is None or (not isinstance(known, str) and known.status != "finished"):  # new, or lost with a worker
            if self.shared_dir is not None:
                target = self.shared_dir / "splits" / split_id
                if not (target / "manifest.json").is_file():  # copied whole under a temporary name, then renamed
                    staging = target.parent / f".{split_id}.{self._session}"
                    copy_lab_folder(Path(folder), staging)
                    try:
                        staging.rename(target)
                    except OSError:  # another invocation placed it first
                        shutil.rmtree(staging, ignore_errors=True)
                self._scattered[split_id] = str(target)
            else:
                # to every worker; the scheduler may later keep fewer copies, and scatters again if all are lost
                self._scattered[split_id] = self.client.scatter(pack(Path(folder)), broadcast=True, hash=False)
        return self._scattered[split_id]

    def _shared_output(self, key: str, attempt: int) -> Path:
        """Where a unit's worker writes its outputs in the shared folder (one folder per invocation and attempt)."""
        assert self.shared_dir is not None
        return self.shared_dir / "outputs" / f"{self._session}-{key}-{attempt}"

    # ------------------------------------------------------------------ notebooks

    def notebooks(
        self, jobs: list[Any], label: str, progress: bool, on_done: OnDone | None = None
    ) -> list[dict[str, Any]]:
        """Execute notebook jobs on the cluster; outputs land where each job's output would be."""
        from distributed import as_completed

        if not jobs:
            return []
        pending: dict[Any, tuple[int, int]] = {}  # future -> (job index, attempt)
        results: list[dict[str, Any] | None] = [None] * len(jobs)
        retried = [0] * len(jobs)

        def submit(index: int, attempt: int) -> Any:
            job = jobs[index]
            inputs = {Path(r["folder"]).name: self._input(r["folder"]) for r in job.parameters.get("SPLITS") or []}
            shared = str(self._shared_output(job.key, attempt)) if self.shared_dir else None
            spec = {"kind": job.kind, "key": job.key, "output": str(job.output), "parameters": job.parameters,
                    "threads": job.threads}  # fmt: skip
            future = self.client.submit(execute_remote, spec, job.notebook.read_text(encoding="utf-8"), inputs,
                                        shared, pure=False, key=f"kdq-{job.key}-{attempt}")  # fmt: skip
            pending[future] = (index, attempt)
            return future

        bar = tqdm(total=len(jobs), desc=label, disable=not progress, unit="nb", file=sys.stderr)
        try:
            stream = as_completed([submit(i, 0) for i in range(len(jobs))], loop=self.client.loop)
            for future in stream:
                index, attempt = pending.pop(future)
                job = jobs[index]
                error = future.exception() if future.status == "error" else None
                if self._lost_with_a_worker(future):
                    retried[index] += 1
                    if attempt < self.retries:
                        stream.add(submit(index, attempt + 1))
                        continue
                    results[index] = {"kind": job.kind, "key": job.key, "status": "failed", "seconds": 0.0,
                                      "error": f"every worker running it died ({attempt + 1} attempts)"}  # fmt: skip
                elif error is not None:  # the unit itself raised: it failed, the experiment goes on
                    results[index] = {"kind": job.kind, "key": job.key, "status": "failed", "seconds": 0.0,
                                      "error": f"{type(error).__name__}: {error}"[:600]}  # fmt: skip
                else:
                    retried[index] += self.client.run_on_scheduler(_suspicious, keys=[future.key]).get(future.key, 0)
                    result = future.result()
                    files = result.pop("files")
                    target = job.output.parent
                    if files is not None:
                        unpack(files, target)
                    elif self.shared_dir is not None:
                        written = self._shared_output(job.key, attempt)
                        copy_lab_folder(written, target)
                        shutil.rmtree(written)  # this invocation's own folder: copied, so no longer needed
                    results[index] = result
                results[index]["retries"] = retried[index]  # type: ignore[index]
                if on_done is not None:
                    on_done(job, results[index])  # type: ignore[arg-type]
                bar.set_postfix_str(f"{job.key}: {results[index]['status']}", refresh=False)  # type: ignore[index]
                bar.update()
        except KeyboardInterrupt:
            self.client.cancel(list(pending))
            raise
        except BaseException as exc:
            if _lost(exc):
                done = sum(r is not None for r in results)
                raise KdqError(
                    f"{LOST} at {self.address} ({type(exc).__name__}); {done} of {len(jobs)} runs had "
                    "finished and are kept in the run cache: run the same command again to go on"
                ) from None
            raise
        finally:
            bar.close()
        return [r for r in results if r is not None]

    def _lost_with_a_worker(self, future: Any) -> bool:
        """Whether a unit ended because a worker died: while running it, or holding its inputs' last copy."""
        from distributed import KilledWorker

        if future.status == "cancelled":  # its scattered inputs were lost; the scheduler itself is still there
            return bool(self.client.status == "running")
        return future.status == "error" and isinstance(future.exception(), KilledWorker)

    # ------------------------------------------------------------------ tuning

    def studies(self, tasks: list[StudyTask], progress: bool) -> list[StudyResult]:
        """Tune studies with their trials spread over every worker.

        A study stored in a database server (``--storage URL``) is reached by the workers directly.
        A study in a SQLite file (the default) lives in the scheduler (``DaskStorage``) while it
        runs, and is copied back into its file after every finished batch and at the end.
        """
        import optuna
        from distributed import as_completed
        from optuna_integration import DaskStorage

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        shared = DaskStorage(client=self.client)  # the live SQLite studies: in memory on the scheduler
        workers = max(1, len(self.client.scheduler_info()["workers"]))
        futures: dict[Any, tuple[Batch, int]] = {}  # future -> (batch, attempt)

        def submit(unit: Batch, attempt: int) -> Any:
            payload = self._input(unit.task.split_folder)
            future = self.client.submit(run_trials, unit.remote, unit.trials, unit.timeout, payload, pure=False)
            futures[future] = (unit, attempt)
            return future

        for task in tasks:
            local = open_storage(task.storage)
            live = task.storage if reached_by_workers(task.storage) else shared
            with storage_failures(task.storage):
                study = open_study(task, local)
                optuna.storages.fail_stale_trials(study)
                if live is shared:  # the file holds this client's copies: a worker's trial still running there is lost
                    _fail_orphans(study, local)
                optuna.copy_study(from_study_name=task.name, from_storage=local, to_storage=shared)
            trials = study.get_trials(deepcopy=False)
            done = [t for t in trials if counted(t)]
            remote = replace(task, storage=live)
            if task.budget.trials is not None:
                remaining = max(0, task.budget.trials - len(done))
                limits: list[tuple[int | None, float | None]] = [(len(b), None) for b in _batches(remaining, workers)]
            else:
                timeout = max(0.0, (task.budget.timeout or 0) - sum(t.duration.total_seconds() for t in done
                                                                    if t.duration))  # fmt: skip
                limits = [(None, timeout)] * (workers if timeout > 0 else 0)
            for i, (size, seconds) in enumerate(limits):
                batch = replace(remote, sampler_seed=task.sampler_seed + 1000 * (len(done) + i))
                submit(Batch(task, batch, size, seconds), 0)
        bar = tqdm(total=len(futures), desc="tuning batches", disable=not progress, unit="batch", file=sys.stderr)
        try:
            stream = as_completed(list(futures), loop=self.client.loop)
            for future in stream:
                unit, attempt = futures.pop(future)
                if self._lost_with_a_worker(future) and attempt < self.retries:
                    stream.add(submit(unit, attempt + 1))  # trials it had finished are kept in the study
                    continue
                future.result()
                _checkpoint(unit.task, shared)
                bar.update()
        except KeyboardInterrupt:
            self.client.cancel(list(futures))
            raise
        except BaseException as exc:
            if _lost(exc):
                raise KdqError(
                    f"{LOST} at {self.address} ({type(exc).__name__}); the studies are kept as of their "
                    "last finished batch: run the same command again to go on"
                ) from None
            raise
        finally:
            bar.close()
        for task in tasks:
            _checkpoint(task, shared)
        return [summarise(task, optuna.load_study(study_name=task.name, storage=open_storage(task.storage)))
                for task in tasks]  # fmt: skip


def _fail_orphans(study: Any, storage: Any) -> None:
    """Fail the trials a worker left running in a study's file: the scheduler's copy they belonged to is gone.

    Such trials have no heartbeat (``DaskStorage`` has none), so they would otherwise count as
    running, against the budget, for ever.
    """
    from optuna.trial import TrialState

    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if "worker" in trial.user_attrs:
            storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)


def reached_by_workers(url: str) -> bool:
    """Whether workers write a study straight into ``url``: a database server, not a SQLite file on this machine."""
    return not url.startswith("sqlite")


@dataclass(frozen=True)
class Batch:
    """Some of a study's trials for one worker: a number of trials or a time limit."""

    task: StudyTask
    remote: StudyTask
    trials: int | None
    timeout: float | None


def _batches(n: int, workers: int) -> list[range]:
    """``n`` trials cut into at most ``workers`` nearly equal batches."""
    size = math.ceil(n / workers) if n else 0
    return [range(start, min(n, start + size)) for start in range(0, n, size)] if size else []


def _checkpoint(task: StudyTask, shared: Any) -> None:
    """Copy a study from the scheduler into its SQLite file (nothing to do for a database server).

    The file's copy is replaced (deleted, then copied) with Ctrl-C and SIGTERM held back until
    both steps are done, so an interrupt never leaves the study missing from the file.
    """
    import optuna

    if reached_by_workers(task.storage):
        return
    local = open_storage(task.storage)
    with storage_failures(task.storage), signals_deferred():
        if task.name in optuna.get_all_study_names(local):
            optuna.delete_study(study_name=task.name, storage=local)
        optuna.copy_study(from_study_name=task.name, from_storage=shared, to_storage=local)
