"""TFLite flatbuffers, run by the LiteRT interpreter (ai-edge-litert)."""
from __future__ import annotations

from typing import Any

import numpy as np

from .._console import captured_output
from ..errors import InvalidModelError, first_line
from ..tensors import TensorSpec
from .base import Format, Probe, Session, register_format


def _spec(detail) -> TensorSpec:
    signature = detail.get("shape_signature")
    dims = signature if signature is not None and len(signature) else detail["shape"]
    return TensorSpec(detail["name"], tuple(None if d < 0 else int(d) for d in dims), np.dtype(detail["dtype"]))


class TFLiteSession(Session):
    format_name = "tflite"

    def __init__(self, path, *, threads: int | None = None, **_ignored):
        super().__init__(path)
        from ai_edge_litert.interpreter import Interpreter
        try:
            with captured_output():  # LiteRT announces its XNNPACK delegate on stderr when it plans memory
                self.interpreter = Interpreter(model_path=str(self.path), num_threads=threads)
                self.interpreter.allocate_tensors()
        except Exception as exc:
            raise InvalidModelError(f"LiteRT cannot load {str(path)!r}: {first_line(exc)}",
                                    hint="the file may be truncated or corrupt") from exc
        self._input_details = self.interpreter.get_input_details()
        self._output_details = self.interpreter.get_output_details()
        self.inputs = [_spec(d) for d in self._input_details]
        self.outputs = [_spec(d) for d in self._output_details]
        self._shapes = [tuple(d["shape"]) for d in self._input_details]

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        arrays = [np.ascontiguousarray(feeds[s.name], dtype=s.dtype) for s in self.inputs]
        shapes = [a.shape for a in arrays]
        if shapes != self._shapes:  # a new batch size: resize, then re-plan the memory
            for detail, shape in zip(self._input_details, shapes):
                self.interpreter.resize_tensor_input(detail["index"], list(shape), strict=True)
            with captured_output():
                self.interpreter.allocate_tensors()
            self._shapes = shapes
            self._output_details = self.interpreter.get_output_details()
        for detail, array in zip(self._input_details, arrays):
            self.interpreter.set_tensor(detail["index"], array)
        self.interpreter.invoke()
        return {s.name: self.interpreter.get_tensor(d["index"]).copy()
                for s, d in zip(self.outputs, self._output_details)}

    @property
    def precision(self) -> str:
        if any(spec.dtype.name in ("int8", "uint8") for spec in self.inputs):
            return "int8"
        return super().precision

    def describe(self) -> dict[str, Any]:
        signatures = list(self.interpreter.get_signature_list())
        return {"signatures": signatures, "tensors": len(self.interpreter.get_tensor_details())}


def open_tflite(path, **options) -> TFLiteSession:
    return TFLiteSession(path, **options)


def sniff_tflite(probe: Probe) -> str | None:
    if not probe.is_dir and probe.head[4:8] == b"TFL3":
        return "a TFLite flatbuffer"
    return None


register_format(Format("tflite", "TFLite", (".tflite",), open_tflite, sniff_tflite, extra="tf",
                       runtime_modules=("ai_edge_litert",), aliases=("litert",)))
