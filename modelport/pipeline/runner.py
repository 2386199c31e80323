"""Running a pipeline's jobs on this machine: each job is the modelport command it stands for, in a
process of its own (the frameworks' memory goes back when it ends), ``jobs`` at a time, each with a
timeout. A job is skipped when its key (the content of what it reads, its command, modelport's
version) matches the record of an earlier run and its artifact is still there: an interrupted run
resumes where it stopped, an unchanged one is nearly free. Each job's record is written when it
ends, after the command has put its artifact in place (atomically, as every modelport output).
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from .spec import JOB_FOLDER, Job, Pipeline

HEARTBEAT_S = 30.0  # a progress line at least this often while jobs run
RECORDS = ".modelport-pipeline"  # the output folder's job records, one JSON file per job
EXIT_STATUS = {0: "pass", 1: "fail"}  # a command's exit code; anything else is an error of the job


@dataclass
class JobResult:
    model: str
    target: str
    status: str  # pass, fail (its check), error (the command refused or crashed), timeout
    exit_code: int | None
    seconds: float
    key: str
    artifact: str  # relative to the output folder
    log: str
    result: str  # the command's --json output, relative to the output folder
    cached: bool = False
    message: str = ""  # the command's error line, for failures
    figures: dict[str, Any] = field(default_factory=dict)  # size, latency, worst error, where the command says
    executor: str = "local"  # where it ran: local, ray

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def job_key(job: Job) -> str:
    """What the job's result depends on: modelport's version, the command (paths stand for their
    content, so a moved tree keeps its keys) and the target."""
    from .. import __version__
    digest = hashlib.sha256(f"modelport {__version__}\0{job.target.text}\0".encode())
    for arg in job.argv:
        digest.update((content_hash(arg) if arg in job.inputs else arg).encode() + b"\0")
    return digest.hexdigest()[:32]


def content_hash(arg: str) -> str:
    """A file's or folder's content; a Python factory's module source (its code is the model)."""
    path = Path(arg)
    digest = hashlib.sha256()
    if path.is_file():
        _hash_file(digest, path)
    elif path.is_dir():
        for item in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(item.relative_to(path).as_posix().encode() + b"\0")
            _hash_file(digest, item)
    else:  # package.module:factory
        import importlib.util
        module = arg.split(":")[0]
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.origin and Path(spec.origin).is_file():
            _hash_file(digest, Path(spec.origin))
        digest.update(arg.encode())
    return "sha256:" + digest.hexdigest()


def _hash_file(digest, path: Path) -> None:
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)


def run_jobs(pipeline: Pipeline, *, jobs: int = 1, timeout: float | None = None, force: bool = False,
             only: list[str] | None = None, progress: Callable[[str], None] = lambda line: None,
             executor=None) -> list[JobResult]:
    """Run (or take from the records) every job; returns one result per job, in the file's order.
    ``executor`` runs one job (LocalExecutor by default; ray_executor.RayExecutor), ``jobs`` at once."""
    chosen = [j for j in pipeline.jobs if not only or j.model in only]
    records = pipeline.output / RECORDS
    records.mkdir(parents=True, exist_ok=True)
    results: dict[str, JobResult] = {}
    pending: list[tuple[Job, str]] = []
    for job in chosen:
        key = job_key(job)
        earlier = None if force else _earlier(records, job, key, pipeline.output)
        if earlier is not None:
            results[job.id] = earlier
        else:
            pending.append((job, key))
    done = len(results)
    total = len(chosen)
    began = time.monotonic()
    if done:
        progress(f"{done} of {total} jobs unchanged since the last run: taken from {RECORDS}/")
    running: dict = {}
    started: dict[str, float] = {}
    executor = executor or LocalExecutor([job for job, _ in pending])
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        try:
            queue = list(pending)
            heavy = {job.id for job, _ in pending if _is_heavy(job)}
            while queue or running:
                while queue and len(running) < max(1, jobs) and _may_start(queue[0][0], running, heavy):
                    job, key = queue.pop(0)
                    running[pool.submit(executor.run, job, key, pipeline.output, timeout)] = job
                    started[job.id] = time.monotonic()
                finished, _ = wait(list(running), timeout=HEARTBEAT_S, return_when=FIRST_COMPLETED)
                if not finished:  # long jobs: say what runs, for how long, so a quiet run is not a hung one
                    now = time.monotonic()
                    progress(f"[{done}/{total}] running " + ", ".join(
                        f"{job.id} ({now - started[job.id]:.0f} s)" for job in running.values())
                        + f"; elapsed {now - began:.0f} s")
                for future in finished:
                    job = running.pop(future)
                    result = future.result()
                    results[job.id] = result
                    (records / f"{_record_name(job)}.json").write_text(json.dumps(result.to_dict(), indent=1) + "\n")
                    done += 1
                    elapsed = time.monotonic() - began
                    remaining = total - done
                    fresh = done - (total - len(pending))  # jobs run in this call, at the pace elapsed shows
                    eta = elapsed / max(fresh, 1) * remaining if remaining else 0.0
                    failed = sum(r.status != "pass" for r in results.values())
                    progress(f"[{done}/{total}] {job.id}: {result.status} ({result.seconds:.0f} s); running "
                             f"{len(running)}, failed {failed}, elapsed {elapsed:.0f} s, ETA {eta:.0f} s")
        except BaseException:
            executor.stop_all()
            raise
    # With --only, the other models' cells stay as their last run left them (when it did).
    for job in pipeline.jobs:
        if job.id not in results:
            earlier = _earlier(records, job, job_key(job), pipeline.output)
            if earlier is not None:
                results[job.id] = earlier
    return [results[j.id] for j in pipeline.jobs if j.id in results]


# A job whose inputs weigh more than this runs alone: converting a model takes several times its
# weights in memory (tf2onnx about 50x), and two such jobs at once can exhaust a machine.
HEAVY_BYTES = 512 * 2**20


def _is_heavy(job: Job) -> bool:
    size = 0
    for item in map(Path, job.inputs):
        if item.is_file():
            size += item.stat().st_size
        elif item.is_dir():
            size += sum(p.stat().st_size for p in item.rglob("*") if p.is_file())
    return size > HEAVY_BYTES


def _may_start(job: Job, running: dict, heavy: set[str]) -> bool:
    """A heavy job starts when nothing runs; nothing starts beside a running heavy job."""
    if not running:
        return True
    return job.id not in heavy and not any(other.id in heavy for other in running.values())


def _record_name(job: Job) -> str:
    return job.id.replace("/", "__")


def _earlier(records: Path, job: Job, key: str, output: Path) -> JobResult | None:
    path = records / f"{_record_name(job)}.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if data.get("key") != key or data.get("status") not in ("pass", "fail") or not (output / data["artifact"]).exists():
        return None  # changed, errored (worth another try), or its artifact is gone
    return JobResult(**{**data, "cached": True})


# Formats whose conversions import TensorFlow / torch: the fork server preloads what the jobs use.
_TF_FORMATS = {"keras", "savedmodel", "tflite", "tfjs"}
_TORCH_FORMATS = {"pytorch", "lightning", "huggingface", "hf-onnx", "executorch"}


def frameworks(jobs: list[Job]) -> set[str]:
    """The frameworks a set of jobs will import (a factory is taken for PyTorch, the usual case)."""
    from ..formats import detect, is_factory_spec
    # Edge runtimes and quantize modes are named apart from formats: tflite, tfjs and executorch
    # are the ones that need a framework, and they share their format's name.
    names = {job.target.name for job in jobs}
    for source in {job.argv[2] if job.argv[0] == "edge" else job.argv[1] for job in jobs}:
        try:
            names.add("pytorch" if is_factory_spec(source) else detect(source).name)
        except Exception:  # noqa: BLE001 - the job itself will say what is wrong with its source
            pass
    return ({"tf"} if names & _TF_FORMATS else set()) | ({"torch"} if names & _TORCH_FORMATS else set())


def job_command(argv: list[str], kind: str, artifact: Path, folder: Path) -> list[str]:
    """The modelport command line of a job's ``argv`` (without the program name), writing to
    ``artifact``, other outputs in the job's ``folder`` (a conversion's parity report beside its artifact)."""
    command = [*_with_output([a.replace(JOB_FOLDER, str(folder)) for a in argv], str(artifact)), "--json"]
    return command + ["--report", str(artifact.parent / "report.html")] if kind == "convert" else command


def result_of(job: Job, key: str, output: Path, code: int | None, seconds: float, extra: dict | None = None) -> JobResult:
    """The record of a job that ran, from its exit code and what it left in ``output``."""
    _, artifact, log, answer = job_paths(job, output)
    status = "timeout" if code is None else EXIT_STATUS.get(code, "error")
    relative = {name: str(path.relative_to(output)) for name, path in (("artifact", artifact), ("log", log),
                                                                         ("result", answer))}
    return JobResult(job.model, job.target.text, status, code, round(seconds, 2), key, message=_message(log, status),
                     figures=_figures(answer, artifact), **relative, **(extra or {}))


def job_paths(job: Job, output: Path) -> tuple[Path, Path, Path, Path]:
    """Under ``output``: the job's folder (all it writes but its log and answer), its artifact, its
    log and its JSON answer."""
    folder = output / job.model
    return (folder / job.target.folder, output / job.output, folder / f"{job.target.folder}.log",
            folder / f"{job.target.folder}.json")


class LocalExecutor:
    """Jobs in processes forked from this machine's fork server (see worker.py), ``jobs`` at a time."""

    def __init__(self, jobs: list[Job]):
        self.frameworks = frameworks(jobs)
        self._pids: set[int] = set()
        self._lock = threading.Lock()

    def run(self, job: Job, key: str, output: Path, timeout: float | None) -> JobResult:
        from .worker import run_command
        folder, artifact, log, answer = job_paths(job, output)
        (folder if job.target.kind != "edge" else folder.parent).mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        pid: list[int] = []

        def started(process_id: int) -> None:
            pid.append(process_id)
            with self._lock:
                self._pids.add(process_id)
        try:
            code = run_command(job_command(job.argv, job.target.kind, artifact, folder), str(answer), str(log),
                               timeout=timeout, frameworks=self.frameworks, started=started)
        finally:
            with self._lock:
                self._pids.difference_update(pid)
        return result_of(job, key, output, code, time.monotonic() - began)

    def stop_all(self) -> None:
        """Interrupted: stop the running commands (each removes its staged output)."""
        from .worker import stop
        with self._lock:
            pids = list(self._pids)
        for pid in pids:
            stop(pid)

    def close(self) -> None:
        pass


def _with_output(argv: list[str], output: str) -> list[str]:
    """The command with its output path where each command takes it (after the source)."""
    return [*argv[:2], output, *argv[2:]] if argv[0] in ("convert", "quantize") else [*argv[:3], output, *argv[3:]]


def _message(log: Path, status: str) -> str:
    if status == "pass":
        return ""
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.startswith(("error", "parity FAILED"))]
    return lines[-1] if lines else ("timed out" if status == "timeout" else "")


def _figures(answer: Path, artifact: Path) -> dict[str, Any]:
    """Size on disk, and what the command's JSON says of latency and the worst error (relative to
    the output's scale) where it says it."""
    figures: dict[str, Any] = {}
    if artifact.is_file():
        figures["bytes"] = artifact.stat().st_size + sum(p.stat().st_size for p in artifact.parent.glob(artifact.stem + ".bin"))
    elif artifact.is_dir():
        figures["bytes"] = sum(p.stat().st_size for p in artifact.rglob("*") if p.is_file())
    try:
        data = json.loads(answer.read_text() or "null")
    except ValueError:
        return figures
    if not isinstance(data, dict):
        return figures
    reports = [h.get("parity") for h in data.get("hops", [])] + [m.get("report") for m in data.get("models", [])]
    worst = [o["max_abs"] / o["scale"] for r in reports if r for o in r.get("outputs", [])
             if o.get("max_abs") is not None and o.get("scale")]
    if worst:
        figures["worst"] = max(worst)
    latencies = [m["latency_ms"] for m in data.get("models", []) if m.get("latency_ms") is not None]
    if latencies:
        figures["latency_ms"] = min(latencies)
    return figures
