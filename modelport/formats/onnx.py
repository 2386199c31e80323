"""ONNX models, run by ONNX Runtime on the CPU."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidModelError
from ..tensors import TensorSpec, ort_type_to_numpy
from .base import Session


def _dim(value) -> int | None:
    return value if isinstance(value, int) and value >= 0 else None


def load_onnx_model(path: Path):
    """Parse and check an ONNX file; corrupt or truncated files become InvalidModelError."""
    import onnx
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:  # protobuf DecodeError, ValidationError, ... all mean "bad file"
        raise InvalidModelError(
            f"{str(path)!r} is not a valid ONNX model: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
            hint="the file may be truncated or corrupt; export it again") from exc
    return model


class OnnxSession(Session):
    format_name = "onnx"

    def __init__(self, path: str | Path, *, providers: list[str] | None = None, threads: int = 0,
                 model=None, **_ignored):
        super().__init__(path)
        import onnxruntime as ort
        self.model = model if model is not None else load_onnx_model(self.path)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
        try:
            self._session = ort.InferenceSession(
                self.model.SerializeToString() if self.model.ByteSize() < 2**31 - 1 else str(self.path),
                options, providers=providers or ["CPUExecutionProvider"])
        except Exception as exc:
            raise InvalidModelError(f"ONNX Runtime cannot load {str(path)!r}: {exc}") from exc
        self.inputs = [TensorSpec(i.name, tuple(_dim(d) for d in i.shape), ort_type_to_numpy(i.type))
                       for i in self._session.get_inputs()]
        self.outputs = [TensorSpec(o.name, tuple(_dim(d) for d in o.shape), ort_type_to_numpy(o.type))
                        for o in self._session.get_outputs()]

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feeds = {spec.name: np.ascontiguousarray(feeds[spec.name], dtype=spec.dtype) for spec in self.inputs}
        names = [o.name for o in self.outputs]
        return dict(zip(names, self._session.run(names, feeds)))

    def describe(self) -> dict[str, Any]:
        opsets = {(o.domain or "ai.onnx"): o.version for o in self.model.opset_import}
        return {
            "opset": opsets.get("ai.onnx"),
            "opsets": opsets,
            "ir_version": self.model.ir_version,
            "producer": " ".join(p for p in (self.model.producer_name, self.model.producer_version) if p),
            "nodes": len(self.model.graph.node),
        }


def open_onnx(path, **options) -> OnnxSession:
    return OnnxSession(path, **options)
