"""``modelport pipeline``: many models x many targets in one declarative run, each job exactly the
modelport command it stands for, cached and resumable, with results people look at.

``spec.py`` reads and checks the pipeline file and expands it into jobs; ``runner.py`` runs them
(one process each, ``--jobs`` at a time, keys and records for the cache); ``report.py`` writes
``results.json`` and the ``index.html`` dashboard.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Sequence

from .spec import SCHEMA, Pipeline, load


def run_pipeline(path: str | Path, *, jobs: int = 1, timeout: float | None = None, force: bool = False,
                 only: Sequence[str] | None = None, progress: Callable[[str], None] = lambda line: None) -> dict:
    """Run the pipeline file at ``path``; returns the summary written to ``results.json``.

    Raises:
        UsageError: the file is not a valid pipeline (nothing run), or ``only`` names no model.
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
    results = run_jobs(pipeline, jobs=jobs, timeout=timeout, force=force, only=list(only or ()), progress=progress)
    return write(pipeline, results, time.monotonic() - began)


__all__ = ["SCHEMA", "Pipeline", "load", "run_pipeline"]
