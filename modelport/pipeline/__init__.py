"""``modelport pipeline``: many models x many targets in one declarative run, each job exactly the
modelport command it stands for, cached and resumable, with results people look at.

``spec.py`` reads and checks the pipeline file and expands it into jobs; ``runner.py`` schedules
them (``--jobs`` at a time, heavy ones alone, keys and records for the cache) on an executor: this
machine's (``worker.py``: one forked process per job) or Ray's (``ray_executor.py``: one task per
job); ``report.py`` writes ``results.json`` and the ``index.html`` dashboard.
"""
from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

from .spec import SCHEMA, Pipeline, load


def run_pipeline(path: str | Path, *, jobs: int | None = None, timeout: float | None = None, force: bool = False,
                 only: Sequence[str] | None = None, ray: str | None = None,
                 progress: Callable[[str], None] = lambda line: None) -> dict:
    """Run the pipeline file at ``path``; returns the summary written to ``results.json``.

    ``jobs``: jobs at once (default 1 here, the cluster's CPUs on Ray); ``ray``: a Ray head's
    HOST:PORT (or ``auto``) to run the jobs on as Ray tasks.

    Raises:
        UsageError: the file is not a valid pipeline (nothing run), ``only`` names no model, or the
            Ray address does not answer.
    """
    from ..errors import UsageError
    from .report import write
    from .runner import run_jobs
    pipeline = load(path)
    unknown = sorted(set(only or ()) - set(pipeline.models))
    if unknown:
        raise UsageError(f"--only {', '.join(unknown)}: no such model in {Path(path).name}",
                         hint=f"its models: {', '.join(pipeline.models)}")
    began = time.monotonic()
    executor = None
    # Ray prints its cluster's messages (a worker that died, ...) on stdout, which is --json's: they
    # go to stderr with the progress instead.
    with contextlib.redirect_stdout(sys.stderr) if ray is not None else contextlib.nullcontext():
        if ray is not None:
            from .ray_executor import RayExecutor
            executor = RayExecutor(ray, pipeline.jobs)
            progress(f"Ray cluster at {ray}: {executor.cpus} CPUs; each job a task (1 CPU, retried once if its "
                     "worker dies)")
        try:
            results = run_jobs(pipeline, jobs=jobs or (executor.cpus if executor else 1), timeout=timeout,
                               force=force, only=list(only or ()), progress=progress, executor=executor)
        finally:
            if executor is not None:
                executor.close()
    return write(pipeline, results, time.monotonic() - began)


__all__ = ["SCHEMA", "Pipeline", "load", "run_pipeline"]
