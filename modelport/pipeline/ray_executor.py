"""Running a pipeline's jobs as Ray tasks (``modelport pipeline --ray ADDRESS``).

Each job is one task asking for one CPU and memory in proportion to its inputs; a task whose worker
dies is retried once (Ray's ``max_retries``). Nothing assumes the workers share the driver's disk:
the job's input files travel through Ray's object store (each put once, shared by that model's
jobs), the task runs the same command the local executor runs (worker.py: forked from a fork server
in the Ray worker, so a worker imports the frameworks once) into a scratch folder of its own, and
returns the job's folder, log and JSON answer as one archive that the driver unpacks into its
output folder, replacing the job's previous folder in one rename. Paths in the returned texts are
rewritten from the scratch folder to the driver's. A factory (``package.module:fn``) must be
importable on the workers: the driver's working folder and PYTHONPATH are passed on, which covers a
cluster on this machine and one whose nodes share the code's layout.
"""
from __future__ import annotations

import io
import os
import shutil
import socket
import tarfile
import tempfile
import threading
import time
from pathlib import Path

from .._atomic import commit
from ..errors import UsageError
from .runner import JobResult, frameworks, job_command, job_paths, result_of
from .spec import Job

_TEXT_SUFFIXES = (".json", ".log", ".html")  # the job's texts that name its paths
GIB = 2**30


def connect(address: str):
    """Join the Ray cluster at ``address`` (host:port, or ``auto``); UsageError within seconds when it
    does not answer or Ray is not installed."""
    import importlib.util
    if importlib.util.find_spec("ray") is None:
        raise UsageError("--ray needs Ray, which is not installed", hint="pip install 'modelport[ray]'")
    if address != "auto":
        host, _, port = address.rpartition(":")
        if address.startswith("ray://") or not host or not port.isdigit():
            raise UsageError(f"--ray {address!r}: give the head's HOST:PORT (the GCS port, 6379 unless `ray start "
                             "--port` said otherwise), or auto")
        try:
            socket.create_connection((host, int(port)), timeout=3).close()
        except OSError as exc:
            raise UsageError(f"--ray {address}: no Ray head answers there ({exc.strerror or exc})",
                             hint="start one with `ray start --head --port PORT`, or give --ray auto on a "
                                  "node of a running cluster") from None
        if _loopback_only(host, int(port)):
            # On Linux Ray swaps a loopback address for the machine's own, where a head started on
            # 127.0.0.1 (--node-ip-address) does not listen; this setting (read when Ray is
            # imported) keeps the driver on loopback too.
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray
    runtime_env = {"env_vars": {"PYTHONPATH": os.pathsep.join(
        p for p in [os.getcwd(), os.environ.get("PYTHONPATH", "")] if p)}}
    try:
        ray.init(address=address, runtime_env=runtime_env, log_to_driver=False, logging_level="ERROR")
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise UsageError(f"--ray {address}: cannot join the cluster: {exc}",
                         hint="`ray status` on the head says whether it runs") from None
    return ray


def _loopback_only(host: str, port: int) -> bool:
    """Whether ``host`` is a loopback address and the head does not also answer on this machine's own."""
    try:
        if not socket.gethostbyname(host).startswith("127."):
            return False
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # a UDP connect sends nothing: it only picks the outgoing address
            own = probe.getsockname()[0]
    except OSError:
        return True  # no other address to answer on
    try:
        socket.create_connection((own, port), timeout=1).close()
        return False
    except OSError:
        return True


class RayExecutor:
    """One Ray task per job; see the module's text."""

    def __init__(self, address: str, jobs: list[Job]):
        self.ray = connect(address)
        resources = self.ray.cluster_resources()
        self.cpus = max(1, int(resources.get("CPU", 1)))
        self._memory = int(resources.get("memory", 4 * GIB))
        self._frameworks = frameworks(jobs)
        self._inputs: dict[str, object] = {}  # input path -> object ref of its archive
        self._lock = threading.Lock()
        self._running: set = set()
        self._task = self.ray.remote(_run_remote_job)

    def run(self, job: Job, key: str, output: Path, timeout: float | None) -> JobResult:
        shipped = [path for path in job.inputs if Path(path).exists()]  # not a factory
        refs = [self._input(path) for path in shipped]
        weight = sum(_size(Path(p)) for p in job.inputs)
        # Converting takes several times a model's weights (tf2onnx up to ~50x); ask for that much,
        # within what the cluster has (a larger ask would never be scheduled).
        memory = min(max(GIB, 20 * weight), self._memory)
        began = time.monotonic()
        ref = self._task.options(num_cpus=1, memory=memory, max_retries=1, name=f"modelport {job.id}").remote(
            job, shipped, timeout, sorted(self._frameworks), *refs)
        with self._lock:
            self._running.add(ref)
        try:
            code, archive, renames = self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:  # the task failed twice (its worker died again)
            return _lost(job, key, output, time.monotonic() - began, exc)
        finally:
            with self._lock:
                self._running.discard(ref)
        _unpack(archive, job, output, {there: here or str(output) for there, here in renames.items()})
        return result_of(job, key, output, code, time.monotonic() - began, {"executor": "ray"})

    def _input(self, path: str):
        with self._lock:
            if path not in self._inputs:
                self._inputs[path] = self.ray.put(_pack_input(Path(path)))
            return self._inputs[path]

    def stop_all(self) -> None:
        with self._lock:
            running = list(self._running)
        for ref in running:
            try:
                self.ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - it ended meanwhile
                pass

    def close(self) -> None:
        self.ray.shutdown()


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return 0  # a factory


def _pack_input(path: Path) -> bytes:
    """A file or folder as a tar archive."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.add(path, arcname=path.name)
    return buffer.getvalue()


def _run_remote_job(job: Job, inputs: list[str], timeout: float | None, needs: list[str],
                    *archives: bytes) -> tuple[int | None, bytes, dict]:
    """The Ray task: unpack the inputs, run the job's command into a scratch folder; returns its exit
    code, what it wrote (an archive) and the scratch paths to give back their driver's names."""
    from .worker import run_command
    scratch = Path(tempfile.mkdtemp(prefix="modelport-ray-"))
    try:
        moved: dict[str, str] = {}
        for index, (original, data) in enumerate(zip(inputs, archives)):
            place = scratch / "inputs" / str(index)
            place.mkdir(parents=True)
            with tarfile.open(fileobj=io.BytesIO(data)) as archive:
                archive.extractall(place, filter="data")
            moved[original] = str(place / Path(original).name)
        out = scratch / "out"
        folder, artifact, log, answer = job_paths(job, out)
        (folder if job.target.kind != "edge" else folder.parent).mkdir(parents=True, exist_ok=True)
        command = job_command([moved.get(arg, arg) for arg in job.argv], job.target.kind, artifact, folder)
        code = run_command(command, str(answer), str(log), timeout=timeout, frameworks=set(needs))
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            for path in (folder, log, answer):
                if path.exists():
                    archive.add(path, arcname=str(path.relative_to(out)))
        return code, buffer.getvalue(), {there: original for original, there in moved.items()} | {str(out): ""}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _unpack(archive: bytes, job: Job, output: Path, renames: dict[str, str]) -> None:
    """The task's archive into the driver's output folder: the job's folder replaced in one rename,
    its log and answer each renamed into place. ``renames``: scratch path -> the driver's."""
    staging = Path(tempfile.mkdtemp(prefix=".ray-", dir=output))
    try:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(staging, filter="data")
        for path in staging.rglob("*"):
            if path.is_file() and path.suffix in _TEXT_SUFFIXES:
                text = path.read_text(errors="replace")
                for there, here in sorted(renames.items(), key=lambda item: -len(item[0])):
                    text = text.replace(there, here)
                path.write_text(text)
        folder, _, log, answer = job_paths(job, output)
        folder.parent.mkdir(parents=True, exist_ok=True)
        for path in (folder, log, answer):
            staged = staging / path.relative_to(output)
            if staged.exists():
                commit(staged, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _lost(job: Job, key: str, output: Path, seconds: float, exc: Exception) -> JobResult:
    """A job whose task Ray gave up on: an error result with Ray's reason in its log."""
    _, _, log, answer = job_paths(job, output)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(f"error: the Ray task was lost: {type(exc).__name__}: {exc}\n")
    answer.write_text("")
    return result_of(job, key, output, -1, seconds, {"executor": "ray"})
