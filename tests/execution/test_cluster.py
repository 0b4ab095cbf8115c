"""The cluster backend against a real Dask scheduler and two real workers on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from links_fixture import SOURCE, outside_file, plant_links, regular_tree

from kdq_lab.app.tune import TuneOptions
from kdq_lab.errors import KdqError
from kdq_lab.execution.runner import ExecOptions
from kdq_lab.experiment.plan import PlanOptions

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "notebooks" / "experiments" / "smoke.yaml"
DASK = str(Path(sys.executable).parent / "dask")
TIMING = ["fit_seconds", "eval_seconds"]


@dataclass
class Cluster:
    address: str
    scheduler: subprocess.Popen
    workers: dict[str, subprocess.Popen]
    folder: Path

    def start_worker(self, name: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        process = subprocess.Popen(
            [DASK, "worker", self.address, "--nworkers", "1", "--nthreads", "1", "--name", name, "--no-dashboard",
             "--local-directory", str(self.folder / name)],
            stdout=subprocess.DEVNULL, stderr=(self.folder / f"{name}.log").open("w"), env=env, start_new_session=True,
        )  # fmt: skip
        self.workers[name] = process
        return process

    def wait_for(self, n: int, timeout: float = 60) -> None:
        from distributed import Client

        with Client(self.address, timeout="20s", set_as_default=False) as client:
            client.wait_for_workers(n, timeout=timeout)

    def stop(self) -> None:
        for process in [*self.workers.values(), self.scheduler]:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in [*self.workers.values(), self.scheduler]:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def start_cluster(folder: Path, workers: int = 2, env: dict[str, str] | None = None) -> Cluster:
    folder.mkdir(parents=True, exist_ok=True)
    file = folder / "scheduler.json"
    scheduler = subprocess.Popen(
        [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file", str(file)],
        stdout=subprocess.DEVNULL, stderr=(folder / "scheduler.log").open("w"), start_new_session=True,
    )  # fmt: skip
    deadline = time.time() + 60
    while not file.is_file() and time.time() < deadline:
        time.sleep(0.2)
    cluster = Cluster(json.loads(file.read_text())["address"], scheduler, {}, folder)
    for i in range(workers):
        cluster.start_worker(f"w{i + 1}", env)
    cluster.wait_for(workers)
    return cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    started = start_cluster(tmp_path_factory.mktemp("dask"))
    yield started
    started.stop()


def run(out: Path, **execution) -> Path:
    """The smoke experiment's popularity and hybrid runs, without 04_compare_models (its tables are computed here)."""
    from kdq_lab.app.run import run_experiment
    from kdq_lab.report.comparison import write_comparison

    options = PlanOptions(out=out, only=["popularity", "lightfm_hybrid"], compare=False)
    outcome = run_experiment(SMOKE, options, ExecOptions(progress=False, fresh=True, **execution))
    assert outcome.ok, outcome.failed
    write_comparison(out)
    return out


def cli(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "kdq_lab.cli", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, **kwargs)  # fmt: skip


@pytest.mark.slow  # a Dask cluster and a whole experiment
def test_a_cluster_report_equals_the_local_one(cluster, tmp_path):
    local = run(tmp_path / "local")  # two local processes, as PlanOptions has it
    remote = run(tmp_path / "remote", cluster=cluster.address)
    for name in ("comparison.csv", "paired.csv"):
        a = pd.read_csv(local / name).drop(columns=TIMING, errors="ignore")
        b = pd.read_csv(remote / name).drop(columns=TIMING, errors="ignore")
        pd.testing.assert_frame_equal(a, b)
    for folder in ("popularity__global", "lightfm_hybrid__global"):
        pd.testing.assert_frame_equal(pd.read_parquet(local / "runs" / folder / "metrics.parquet"),
                                      pd.read_parquet(remote / "runs" / folder / "metrics.parquet"))  # fmt: skip
        assert (remote / "runs" / folder / "03_train_evaluate.html").is_file()
    assert (remote / "runs" / "lightfm_hybrid__global" / "model" / "model.json").is_file()
    manifest = json.loads((remote / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["backend"]["cluster"] == cluster.address and len(manifest["backend"]["workers"]) == 2


@pytest.mark.slow  # a Dask cluster and a whole experiment
def test_shared_dir_instead_of_shipping_bytes(cluster, tmp_path):
    shared = tmp_path / "shared"
    out = run(tmp_path / "report", cluster=cluster.address, shared_dir=shared)
    splits = list((shared / "splits").iterdir())
    assert splits and all((split / "manifest.json").is_file() for split in splits), "splits copied whole, renamed"
    assert (shared / "outputs").is_dir() and not list((shared / "outputs").iterdir()), "outputs copied, then removed"
    assert (out / "runs" / "popularity__global" / "summary.json").is_file()


@pytest.mark.slow  # a Dask cluster
@pytest.mark.parametrize("direct", [False, True], ids=["dask-storage", "database-url"])
def test_a_study_is_shared_between_workers(cluster, tmp_path, monkeypatch, direct):
    import optuna

    from kdq_lab.app.tune import tune_experiment
    from kdq_lab.execution import cluster as backend

    # database-url: workers write straight into the study's database (here a SQLite file both workers see)
    monkeypatch.setattr(backend, "reached_by_workers", lambda url: direct)
    results, storage = tune_experiment(
        SMOKE,
        TuneOptions(trials=4),
        PlanOptions(only=["lightfm_hybrid"], out=tmp_path / "report"),
        ExecOptions(progress=False, cluster=cluster.address),
    )
    assert [r.complete + r.pruned + r.failed for r in results] == [4]
    trials = optuna.load_study(study_name=results[0].name, storage=storage).trials
    assert len(trials) == 4 and storage.startswith("sqlite:///")
    assert {t.user_attrs["worker"] for t in trials} == {"w1", "w2"}, "both workers ran trials of the one study"
    again, _ = tune_experiment(
        SMOKE,
        TuneOptions(trials=6),
        PlanOptions(only=["lightfm_hybrid"], out=tmp_path / "report"),
        ExecOptions(progress=False, cluster=cluster.address),
    )
    assert again[0].complete + again[0].pruned + again[0].failed == 6, "a second call resumes the stored study"
    assert len(optuna.load_study(study_name=results[0].name, storage=storage).trials) == 6


@pytest.mark.slow  # a Dask cluster and a whole experiment
def test_a_killed_worker_s_run_is_retried_elsewhere(tmp_path):
    from distributed import Client

    cluster = start_cluster(tmp_path / "dask")
    try:
        killed: list[str] = []

        def kill_first_busy_worker() -> None:
            with Client(cluster.address, timeout="20s", set_as_default=False) as client:
                deadline = time.time() + 120
                while time.time() < deadline and not killed:
                    names = {w["id"]: w["name"] for w in client.scheduler_info()["workers"].values()}
                    for address, keys in client.processing().items():
                        if any(str(k).startswith("kdq-") for k in keys):
                            name = client.scheduler_info()["workers"][address]["name"]
                            os.killpg(cluster.workers[name].pid, signal.SIGKILL)
                            killed.append(name)
                            break
                    time.sleep(0.05)
                assert names

        watcher = threading.Thread(target=kill_first_busy_worker)
        watcher.start()
        out = run(tmp_path / "report", cluster=cluster.address)
        watcher.join()
        assert killed, "a worker was killed while it ran a unit"
        steps = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["steps"]
        assert any(step.get("retries", 0) >= 1 for step in steps if step["kind"] == "run")
        assert all(step["status"] == "ok" for step in steps)
    finally:
        cluster.stop()


@pytest.mark.slow  # a Dask cluster
def test_a_worker_running_other_code_is_refused(tmp_path):
    from kdq_lab.execution.cluster import DaskBackend

    copy = tmp_path / "other" / "kdq_lab"
    shutil.copytree(ROOT / "src" / "kdq_lab", copy, ignore=shutil.ignore_patterns("__pycache__"))
    init = copy / "__init__.py"
    init.write_text(init.read_text(encoding="utf-8").replace('__version__ = "', '__version__ = "9.9.9-'))
    env = dict(os.environ, PYTHONPATH=str(copy.parent))
    cluster = start_cluster(tmp_path / "dask", workers=1, env=env)
    try:
        with pytest.raises(KdqError) as caught:
            DaskBackend(cluster.address)
        message = str(caught.value)
        assert "worker tcp://127.0.0.1" in message and "kdq_lab is '9.9.9-" in message and "code is" in message
        proc = subprocess.run([sys.executable, "-m", "kdq_lab.cli", "run", str(SMOKE), "--cluster", cluster.address,
                               "--out", str(tmp_path / "r")], capture_output=True, text=True, cwd=ROOT)  # fmt: skip
        assert proc.returncode == 2 and "differ from this machine" in proc.stderr and "Traceback" not in proc.stderr
        assert not (tmp_path / "r").exists()
    finally:
        cluster.stop()


def test_no_scheduler_is_a_clear_error():
    from kdq_lab.execution.cluster import connect

    with pytest.raises(KdqError, match=r"no Dask scheduler answers at tcp://127\.0\.0\.1:9"):
        connect("tcp://127.0.0.1:9", timeout=1)


def busy_with_a_run(address: str, timeout: float = 120) -> str:
    """Wait until some worker runs one of the lab's units; return that worker's name."""
    from distributed import Client

    with Client(address, timeout="20s", set_as_default=False) as client:
        deadline = time.time() + timeout
        while time.time() < deadline:
            for worker, keys in client.processing().items():
                if any(str(k).startswith("kdq-") for k in keys):
                    return client.scheduler_info()["workers"][worker]["name"]
            time.sleep(0.05)
    raise AssertionError("no unit ever ran")


@pytest.mark.slow  # a Dask cluster and a whole experiment
def test_ctrl_c_cancels_the_runs_and_leaves_the_cluster_usable(cluster, tmp_path):
    from distributed import Client

    proc = cli("run", str(SMOKE), "--cluster", cluster.address, "--out", str(tmp_path / "r"), "--fresh")
    busy_with_a_run(cluster.address)
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err
    with Client(cluster.address, timeout="20s", set_as_default=False) as client:
        deadline = time.time() + 30
        while any(str(k).startswith("kdq-") for keys in client.processing().values() for k in keys):
            assert time.time() < deadline, "the cancelled runs left the workers"
            time.sleep(0.2)
        assert client.submit(sum, [1, 2], pure=False).result(timeout=30) == 3, "the cluster still works"
    assert not (tmp_path / "r").exists()


@pytest.mark.slow  # a Dask cluster and a whole experiment
def test_losing_the_scheduler_keeps_the_report_and_the_finished_runs(tmp_path):
    from kdq_lab.app.run import run_experiment
    from kdq_lab.config import Paths
    from kdq_lab.execution.cache import CACHE
    from kdq_lab.files import atomic_dir

    out = tmp_path / "report"
    with atomic_dir(out) as tmp:  # a report the lab made
        (tmp / "index.html").write_text("<p>previous</p>")
    cache = Paths.default().processed / CACHE
    before = set(cache.iterdir()) if cache.is_dir() else set()
    cluster = start_cluster(tmp_path / "dask", workers=1)
    try:
        proc = cli("run", str(SMOKE), "--cluster", cluster.address, "--out", str(out), "--fresh")
        deadline = time.time() + 180
        while not (set(cache.iterdir()) - before if cache.is_dir() else set()) and time.time() < deadline:
            time.sleep(0.1)  # until a first run has finished (and is in the run cache)
        os.killpg(cluster.scheduler.pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=120)
    finally:
        cluster.stop()
    assert proc.returncode == 2 and "lost the Dask scheduler" in err and "Traceback" not in err, err
    assert (out / "index.html").read_text() == "<p>previous</p>", "the previous report is intact"
    outcome = run_experiment(
        SMOKE, PlanOptions(out=out, compare=False), ExecOptions(progress=False)
    )  # the same command, here: reuses
    steps = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["steps"]
    assert outcome.ok and any(step.get("cached") for step in steps if step["kind"] == "run")


def lab_folder_with_links(tmp_path: Path) -> tuple[Path, list[str]]:
    folder = tmp_path / "split-abc"
    (folder / "sub").mkdir(parents=True)
    (folder / "manifest.json").write_text("{}", encoding="utf-8")
    (folder / "sub" / "train.npz").write_bytes(b"npz")
    planted = plant_links(folder, outside_file(tmp_path)) + [f"sub/{n}" for n in plant_links(folder / "sub", SOURCE)]
    return folder, planted


def test_packing_a_split_skips_links_and_special_files(tmp_path):
    from kdq_lab.execution.cluster import pack, unpack
    from kdq_lab.files import SkippedEntryWarning

    folder, planted = lab_folder_with_links(tmp_path)
    with pytest.warns(SkippedEntryWarning) as caught:
        data = pack(folder)
    assert {str(folder / name) for name in planted} == {str(w.message).split(": ")[0] for w in caught}
    target = unpack(data, tmp_path / "unpacked")
    assert regular_tree(target) == ["manifest.json", "sub", "sub/train.npz"]
    assert (target / "sub" / "train.npz").read_bytes() == b"npz"


@pytest.mark.parametrize("kind", ["symlink out", "symlink in", "hard link", "fifo", "device"])
def test_unpacking_skips_links_and_special_files(kind, tmp_path):
    import io
    import tarfile

    from kdq_lab.execution.cluster import unpack
    from kdq_lab.files import SkippedEntryWarning

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = b"{}"
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        odd = tarfile.TarInfo("odd")
        odd.type, odd.linkname = {
            "symlink out": (tarfile.SYMTYPE, str(outside_file(tmp_path))),
            "symlink in": (tarfile.SYMTYPE, "manifest.json"),
            "hard link": (tarfile.LNKTYPE, "manifest.json"),
            "fifo": (tarfile.FIFOTYPE, ""),
            "device": (tarfile.CHRTYPE, ""),
        }[kind]
        tar.addfile(odd)
    with pytest.warns(SkippedEntryWarning, match="odd"):
        target = unpack(buffer.getvalue(), tmp_path / "unpacked")
    assert regular_tree(target) == ["manifest.json"]


def test_shared_dir_copies_of_splits_skip_links_and_special_files(tmp_path):
    from kdq_lab.execution.cluster import DaskBackend
    from kdq_lab.files import SkippedEntryWarning

    folder, planted = lab_folder_with_links(tmp_path)
    backend = DaskBackend.__new__(DaskBackend)  # no scheduler needed to copy into the shared folder
    backend.shared_dir, backend._scattered, backend._session = tmp_path / "shared", {}, "session"
    with pytest.warns(SkippedEntryWarning) as caught:
        copied = Path(backend._input(str(folder)))
    assert len(caught) == len(planted)
    assert copied == tmp_path / "shared" / "splits" / folder.name
    assert regular_tree(copied) == ["manifest.json", "sub", "sub/train.npz"]


@pytest.mark.parametrize(
    "address",
    [
        "tcp://10.0.0.5:8786",
        "tls://scheduler.lab.example:8786",
        "127.0.0.1:1",
        "tcp://[::1]:65535",
        "host-1:8786",
        "tcp://[fe80::1%eth0]:8786",
        "node.cluster.local.:8786",
    ],
)
def test_scheduler_addresses_that_read_well(address):
    from kdq_lab.execution.cluster import check_address

    assert check_address(address) == address


@pytest.mark.parametrize(
    "address, problem",
    [
        ("foo:bar", "expected [tcp:// or tls://]HOST:PORT"),
        ("tcp://", "expected [tcp:// or tls://]HOST:PORT"),
        ("tcp://10.0.0.5", "expected [tcp:// or tls://]HOST:PORT"),
        ("", "expected [tcp:// or tls://]HOST:PORT"),
        ("tcp://::1:8786", "expected [tcp:// or tls://]HOST:PORT"),
        ("http://10.0.0.5:8786", "the scheme http:// is not tcp:// or tls://"),
        ("ucx://10.0.0.5:8786", "the scheme ucx:// is not tcp:// or tls://"),
        ("tcp://10.0.0.5:0", "the port 0 is not in 1-65535"),
        ("tcp://10.0.0.5:65536", "the port 65536 is not in 1-65535"),
        ("tcp://10.0.0.5:" + "9" * 5000, "the port 99999"),
        ("tcp://10.0.0.999:8786", "'10.0.0.999' is not a host name or an IP address"),
        ("tcp://1.2.3:8786", "'1.2.3' is not a host name"),
        ("tcp://[::g]:8786", "'[::g]' is not a host name"),
        ("tcp://a b:8786", "'a b' is not a host name"),
        ("tcp://-bad-.example:8786", "'-bad-.example' is not a host name"),
        ("tcp://" + "a" * 64 + ":8786", "is not a host name"),
        ("tcp://host..name:8786", "'host..name' is not a host name"),
    ],
)
def test_malformed_scheduler_addresses_are_refused(address, problem):
    from kdq_lab.execution.cluster import check_address

    with pytest.raises(KdqError) as caught:
        check_address(address, "KDQ_LAB_CLUSTER")
    message = str(caught.value)
    assert message.startswith(f"KDQ_LAB_CLUSTER {address[:40]!r}"[:-1]) and problem in message
    assert message.endswith("e.g. tcp://10.0.0.5:8786") and "\n" not in message


@pytest.mark.slow  # starts another Python process
@pytest.mark.parametrize("where", ["--cluster", "KDQ_LAB_CLUSTER"])
@pytest.mark.parametrize("command", ["run", "tune"])
def test_a_malformed_address_is_one_line_exit_2_before_anything(command, where, tmp_path):
    env = {**os.environ, "KDQ_LAB_DATA": str(tmp_path / "home")}
    args = [command, str(SMOKE), "--out", str(tmp_path / "r")]
    if where == "--cluster":
        args += ["--cluster", "tcp://10.0.0.5:99999"]
    else:
        env["KDQ_LAB_CLUSTER"] = "tcp://10.0.0.5:99999"
    proc = subprocess.run(
        [sys.executable, "-m", "kdq_lab.cli", *args], capture_output=True, text=True, cwd=ROOT, env=env
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(f"error: {where} 'tcp://10.0.0.5:99999': not a Dask scheduler address")
    assert not (tmp_path / "r").exists() and not (tmp_path / "home").exists()


@contextmanager
def not_a_scheduler(behaviour: str) -> Iterator[str]:
    """A TCP server on 127.0.0.1 that answers every connection like something else than a Dask scheduler."""
    import socket

    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            if behaviour == "web server":
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            elif behaviour == "huge frame":
                conn.sendall((2**62).to_bytes(8, "little") * 4)
            if behaviour == "silent":
                held.append(conn)
            else:
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()
        for conn in held:
            conn.close()


@pytest.mark.parametrize("behaviour", ["web server", "huge frame", "hangs up", "silent"])
def test_a_server_that_is_not_a_scheduler_is_a_clear_error(behaviour):
    from kdq_lab.execution.cluster import connect

    with not_a_scheduler(behaviour) as address, pytest.raises(KdqError) as caught:
        connect(address, timeout=1)
    assert str(caught.value).startswith(f"no Dask scheduler answers at {address} within 1 s (")


@pytest.mark.slow  # a Dask cluster
def test_a_worker_s_address_is_not_the_scheduler_s(cluster):
    from distributed import Client

    from kdq_lab.execution.cluster import connect

    with Client(cluster.address, timeout="20s", set_as_default=False) as client:
        worker = next(iter(client.scheduler_info()["workers"]))
    with pytest.raises(KdqError, match=f"{worker} answers, but not as a Dask scheduler"):
        connect(worker, timeout=5)


@pytest.mark.slow  # starts another Python process
@pytest.mark.parametrize("behaviour", ["web server", "huge frame"])
def test_the_command_says_it_in_one_line_and_exits_2(behaviour, tmp_path):
    with not_a_scheduler(behaviour) as address:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "kdq_lab.cli",
                "run",
                str(SMOKE),
                "--only",
                "popularity",
                "--cluster",
                address,
                "--out",
                str(tmp_path / "r"),
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("error: ") and address in proc.stderr and "Traceback" not in proc.stderr


class _LostClient:
    """A client whose scheduler went away: cached info without workers, or a closed connection."""

    def __init__(self, failure: BaseException | None):
        self.failure = failure

    def scheduler_info(self) -> dict:
        if self.failure is not None:
            raise self.failure
        return {}

    def run(self, function):  # never reached when the scheduler is lost
        raise AssertionError("run() on a lost scheduler")


@pytest.mark.parametrize("failure", [None, OSError("connection closed"), TimeoutError("no answer")])
def test_a_scheduler_lost_after_the_last_run_is_one_clear_error(failure):
    """The manifest asks the scheduler for its workers after every run: losing it then is the lost-scheduler error
    (exit 2, the runs kept in the cache), never a KeyError."""
    from kdq_lab.execution.cluster import LOST, DaskBackend

    backend = object.__new__(DaskBackend)  # no connection: only what describe() reads
    backend.client, backend.address, backend.shared_dir = _LostClient(failure), "tcp://127.0.0.1:1", None
    with pytest.raises(KdqError, match=LOST):
        backend.describe()
