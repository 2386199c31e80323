"""A Node.js runner process spoken to one JSON line per request (TF.js, ONNX Runtime Web): started
once per Session, it answers ``{"ready": ...}`` when its model is loaded, then one line per run.
Tensors travel as base64 of their little-endian bytes, with their dtype and shape."""
from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import InvalidModelError, UnsupportedFormatError


def node_command(runner: Path, package: str, *args: str) -> list[str]:
    """``node RUNNER/run.mjs ARGS``; UnsupportedFormatError saying how to install what is missing."""
    node = shutil.which("node")
    if node is None:
        raise UnsupportedFormatError("running this model needs Node.js (18 or newer), which is not on the PATH",
                                     hint="install Node.js, then: npm ci --prefix " + str(runner))
    if not (runner / "node_modules" / package).is_dir():
        raise UnsupportedFormatError(f"the runner's packages ({package}) are not installed",
                                     hint=f"npm ci --prefix {runner}")
    return [node, str(runner / "run.mjs"), *args]


def encode(value: np.ndarray, dtype: str) -> dict[str, Any]:
    """A tensor as a request carries it: ``dtype`` is the runtime's name for it."""
    data = value.astype(value.dtype.newbyteorder("<")).tobytes()
    return {"dtype": dtype, "shape": list(value.shape), "data": base64.b64encode(data).decode()}


def decode(item: dict[str, Any], dtype: np.dtype) -> np.ndarray:
    """A tensor from an answer, as ``dtype`` (the bytes' own little-endian type)."""
    raw = np.frombuffer(base64.b64decode(item["data"]), dtype=np.dtype(dtype).newbyteorder("<"))
    return raw.reshape(item["shape"]).astype(np.dtype(dtype).newbyteorder("="))


class NodeRunner:
    """The runner process: ``ready`` is its first answer; ``ask`` sends one request."""

    def __init__(self, command: list[str], what: str, failure: Callable[[str], Exception]):
        self.what = what
        self._log = tempfile.TemporaryFile()  # the runner's stderr, for messages when it stops
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log)
        self.ready = self._answer()
        if "error" in self.ready:
            self.close()
            raise failure(self.ready["error"])

    def _answer(self) -> dict[str, Any]:
        line = self._process.stdout.readline()
        if not line:
            self._log.seek(0)
            tail = " ".join(self._log.read().decode(errors="replace").split())[-600:]
            raise InvalidModelError(f"the {self.what} runner stopped (exit {self._process.poll()}): {tail}")
        return json.loads(line)

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        self._process.stdin.write(json.dumps(request).encode() + b"\n")
        self._process.stdin.flush()
        return self._answer()

    def close(self) -> None:
        process = getattr(self, "_process", None)
        if process is not None and process.poll() is None:
            process.stdin.close()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None
