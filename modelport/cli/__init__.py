"""The ``modelport`` command line: info, convert, validate, demo.

Nothing here imports a framework at start-up; each command imports what it needs when it runs.
Exit codes: 0 success, 1 parity check failed (artifact kept), 2 bad usage or input (nothing
written), 3 a bug of modelport, 130 interrupted (SIGINT), 143 terminated (SIGTERM).
"""
from __future__ import annotations

from .app import app
from .main import main

__all__ = ["app", "main"]
