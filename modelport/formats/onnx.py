"""ONNX models, run by ONNX Runtime on the CPU."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidModelError, first_line
from ..tensors import TensorSpec, ort_type_to_numpy
from .base import Session


def _dim(value) -> int | None:
    return value if isinstance(value, int) and value >= 0 else None


def load_onnx_model(path: Path):
    """Parse an ONNX file; unparsable (truncated, corrupt) files become InvalidModelError.

    The ONNX checker's verdict is kept as ``model_check_error`` rather than enforced: ONNX Runtime
    runs graphs the checker rejects (nodes out of topological order, as some fp16 converters
    write them), and whether the runtime accepts a model is what matters here.
    """
    import onnx
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf DecodeError and friends all mean "bad file"
        raise InvalidModelError(
            f"{str(path)!r} is not a valid ONNX model: {first_line(exc)}",
            hint="the file may be truncated or corrupt; export it again") from exc
    return model


def check_model(model) -> str | None:
    import onnx
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        return first_line(exc)
    return None



def index_bounds(model) -> dict[str, int]:
    """Integer graph inputs that index a constant table (Gather on an initializer): their bound."""
    from onnx import helper
    tables = {init.name: tuple(init.dims) for init in model.graph.initializer}
    bounds: dict[str, int] = {}
    for node in model.graph.node:
        if node.op_type == "Gather" and len(node.input) == 2 and node.input[0] in tables:
            axis = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), 0)
            size = tables[node.input[0]][axis] if tables[node.input[0]] else None
            if size:
                bounds[node.input[1]] = min(bounds.get(node.input[1], size), size)
    return bounds


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
            problem = check_model(self.model)
            raise InvalidModelError(
                f"{str(path)!r} is not a valid ONNX model: {problem or first_line(exc)}",
                hint="the file may be truncated or corrupt; export it again") from exc
        bounds = index_bounds(self.model)
        self.inputs = [TensorSpec(i.name, tuple(_dim(d) for d in i.shape), ort_type_to_numpy(i.type),
                                  dim_names=tuple(d if isinstance(d, str) else None for d in i.shape),
                                  index_bound=bounds.get(i.name))
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
            "metadata": {p.key: p.value if len(p.value) <= 300 else p.value[:297] + "..."
                         for p in self.model.metadata_props},
        }


def open_onnx(path, **options) -> OnnxSession:
    return OnnxSession(path, **options)
