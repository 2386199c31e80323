"""Running one job's command: ``modelport.cli.main`` in a process of its own, forked from a server
that has already imported the frameworks.

Each job still gets a fresh process (whatever torch or TensorFlow allocate goes back when it ends,
and no state leaks from one conversion into the next), but not a fresh interpreter: the fork server
(multiprocessing's ``forkserver``, started once per driver or Ray worker) imports torch, TensorFlow,
tf2onnx and ONNX Runtime once, and every job is a ``fork`` of it. On this project's small models the
imports are most of a single command's time (about 6 of 9 s for a PyTorch -> TFLite conversion),
which is what a loop of ``modelport`` commands pays for every job.

The job's stdout (its ``--json`` answer) and stderr (its log) are files; it runs in a session of its
own so a timeout or an interrupt stops it and whatever it started (Node runners) together. SIGTERM
reaches the command's own handlers, which remove its staged output before it exits.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
from typing import Callable

# What the fork server imports, by framework; a pipeline preloads only what its jobs use. Import
# errors are skipped by multiprocessing (an extra that is not installed simply is not preloaded).
PRELOAD = {
    "core": ["modelport.cli.main", "onnxruntime", "onnx"],
    "torch": ["torch", "torch.onnx", "torch._dynamo", "onnxscript"],
    "tf": ["tensorflow", "tf2onnx"],
}

_lock = threading.Lock()
_context: multiprocessing.context.BaseContext | None = None
_preloaded: frozenset[str] = frozenset()


def context(frameworks: set[str]) -> multiprocessing.context.BaseContext:
    """This process's fork server context, preloading ``frameworks`` (set before the server starts:
    the first call's set is the one the server keeps)."""
    global _context, _preloaded
    with _lock:
        if _context is None:
            from .._console import quiet_tensorflow
            quiet_tensorflow()  # the same environment a TensorFlow command sets before its first import
            _context = multiprocessing.get_context("forkserver")
            _preloaded = frozenset(frameworks | {"core"})
            _context.set_forkserver_preload([m for name in sorted(_preloaded) for m in PRELOAD.get(name, [])])
        return _context


def run_command(argv: list[str], stdout_path: str, stderr_path: str, *, timeout: float | None,
                frameworks: set[str], started: Callable[[int], None] = lambda pid: None) -> int | None:
    """Run ``modelport ARGV`` forked from the fork server; its exit code, or None when it timed out
    (it was stopped). ``started`` gets the process id (its session id too) as soon as it runs."""
    # The server was started earlier: the job takes this moment's environment and folder, as a
    # command started now would.
    process = context(frameworks).Process(target=_child, daemon=False, args=(
        list(argv), stdout_path, stderr_path, dict(os.environ), os.getcwd()))
    process.start()
    started(process.pid)
    process.join(timeout)
    if process.exitcode is None:
        stop(process.pid)
        process.join()
        return None
    return process.exitcode


def stop(pid: int, grace: float = 20.0) -> None:
    """SIGTERM to the job's session (the command removes its staged output), SIGKILL after ``grace``."""
    import time
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        try:  # stopped before its first line made it a session leader
            os.kill(pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _child(argv: list[str], stdout_path: str, stderr_path: str, environ: dict[str, str], cwd: str) -> None:
    os.setsid()
    _stop_with_parent()
    os.environ.clear()
    os.environ.update(environ)
    os.chdir(cwd)
    for fd, path in ((1, stdout_path), (2, stderr_path)):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(target, fd)
        os.close(target)
    sys.stdout = open(1, "w", closefd=False)
    sys.stderr = open(2, "w", closefd=False)
    os.environ.update(COLUMNS="160", PYTHONUNBUFFERED="1")
    from ..cli.main import main
    # SystemExit with the command's code: multiprocessing then runs its finalizers (semaphores the
    # job made are released, not reported leaked), flushes stdio and leaves with that code.
    sys.exit(main(argv))


def _stop_with_parent() -> None:
    """SIGTERM this job when the fork server goes (its driver or Ray worker was killed): a job nobody
    waits for anymore cleans up and stops instead of running on."""
    if sys.platform != "linux":
        return
    import ctypes
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
