"""ONNX models run in ONNX Runtime Web's WebAssembly build (``onnxruntime-web``, in Node: the runner
in ``edge/ortweb_runner``), so a check sees what a browser page computes; and the bundle folder
``modelport edge web`` writes (``model.onnx``, the page, ORT Web's files, ``manifest.json``), which
opens as its model run this way.

The format is not detected from an ``.onnx`` file (that is ONNX, run by ONNX Runtime): it is a
bundle folder, or asked for by name (``open_model(path, format="ort-web")``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidModelError
from ._node import NodeRunner, decode, encode, node_command
from .base import Format, Probe, Session, register_format

RUNNER_DIR = Path(__file__).resolve().parent.parent / "edge" / "ortweb_runner"
BUNDLE_TARGET = "ort-web"  # manifest.json's target in a bundle folder
# ORT Web's tensor type names of the numpy dtypes an ONNX model's inputs and outputs take.
_TYPES = {"float32": "float32", "float64": "float64", "float16": "float16", "int64": "int64", "int32": "int32",
          "int16": "int16", "int8": "int8", "uint8": "uint8", "uint16": "uint16", "bool": "bool"}


class OrtWebSession(Session):
    format_name = "ort-web"

    def __init__(self, path, *, threads: int = 1, **_ignored):
        super().__init__(path)
        model_path = self.path / "model.onnx" if self.path.is_dir() else self.path
        from .onnx import OnnxSession
        with OnnxSession(model_path) as declared:  # names, shapes, dtypes and ranges as the ONNX file says
            self.inputs, self.outputs = declared.inputs, declared.outputs
        for spec in [*self.inputs, *self.outputs]:
            if spec.dtype.name not in _TYPES:
                raise InvalidModelError(f"{spec.name!r} is {spec.dtype.name}, which ONNX Runtime Web does not carry")
        self._runner = NodeRunner(node_command(RUNNER_DIR, "onnxruntime-web", str(model_path), "--threads", str(threads)),
                                  "ONNX Runtime Web", lambda error: InvalidModelError(
                                      f"ONNX Runtime Web cannot load {str(model_path)!r}: {error}",
                                      hint="an op its WebAssembly build lacks is named above"))
        self.version = self._runner.ready.get("ort")

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        request = {"inputs": {}, "outputs": [spec.name for spec in self.outputs]}
        for spec in self.inputs:
            value = np.ascontiguousarray(feeds[spec.name], dtype=spec.dtype)
            request["inputs"][spec.name] = encode(value.view(np.uint8) if spec.dtype == np.bool_ else value,
                                                  _TYPES[spec.dtype.name])
        reply = self._runner.ask(request)
        if "error" in reply:
            raise InvalidModelError(f"ONNX Runtime Web failed to run {self.path.name!r}: {reply['error']}")
        outputs = {}
        for spec in self.outputs:
            value = decode(reply["outputs"][spec.name], np.uint8 if spec.dtype == np.bool_ else spec.dtype)
            outputs[spec.name] = value.astype(bool) if spec.dtype == np.bool_ else value
        return outputs

    def describe(self) -> dict[str, Any]:
        return {"onnxruntime-web": self.version, "backend": "wasm"}

    def close(self) -> None:
        if getattr(self, "_runner", None) is not None:
            self._runner.close()


def sniff_ort_web(probe: Probe) -> str | None:
    if not probe.is_dir or not (probe.path / "model.onnx").is_file() or not (probe.path / "manifest.json").is_file():
        return None
    try:
        manifest = json.loads((probe.path / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return "an ONNX Runtime Web bundle" if isinstance(manifest, dict) and manifest.get("target") == BUNDLE_TARGET else None


register_format(Format("ort-web", "ONNX Runtime Web bundle", (), OrtWebSession, sniff_ort_web, is_directory=True,
                       aliases=("onnxruntime-web", "web")))
