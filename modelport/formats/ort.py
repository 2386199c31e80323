"""ONNX Runtime's own format (``.ort``): the flatbuffer ORT Mobile loads, written by
``modelport edge ort``. Run with the same ONNX Runtime as ONNX models; it holds no ONNX protobuf,
so inputs and outputs come from the runtime's session."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InvalidModelError, first_line
from ..tensors import TensorSpec, ort_type_to_numpy
from .base import Format, Probe, Session, register_format
from .onnx import session_options


class OrtFormatSession(Session):
    format_name = "ort"

    def __init__(self, path, *, threads: int = 0, **_ignored):
        super().__init__(path)
        import onnxruntime as ort
        try:
            self._session = ort.InferenceSession(str(self.path), session_options(threads), providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise InvalidModelError(f"ONNX Runtime cannot load the ORT-format model {str(path)!r}: {first_line(exc)}",
                                    hint="the file may be truncated, or written by a newer ONNX Runtime") from exc
        self.inputs = [TensorSpec(i.name, tuple(d if isinstance(d, int) else None for d in i.shape),
                                  ort_type_to_numpy(i.type)) for i in self._session.get_inputs()]
        self.outputs = [TensorSpec(o.name, tuple(d if isinstance(d, int) else None for d in o.shape),
                                   ort_type_to_numpy(o.type)) for o in self._session.get_outputs()]

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = [o.name for o in self.outputs]
        feeds = {spec.name: np.ascontiguousarray(feeds[spec.name], dtype=spec.dtype) for spec in self.inputs}
        return dict(zip(names, self._session.run(names, feeds)))

    def describe(self) -> dict[str, Any]:
        meta = self._session.get_modelmeta()
        return {"producer": meta.producer_name, "graph": meta.graph_name}


def sniff_ort(probe: Probe) -> str | None:
    if not probe.is_dir and probe.head[4:8] == b"ORTM":
        return "an ONNX Runtime (ORT format) flatbuffer"
    return None


register_format(Format("ort", "ORT format", (".ort",), OrtFormatSession, sniff_ort,
                       runtime_modules=("onnxruntime",)))
