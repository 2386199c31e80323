"""An ``onnx.backend.base.Backend`` over the ONNX -> TensorFlow converter, so that ONNX's own node
test cases (``onnx.backend.test``) measure what it converts correctly."""
from __future__ import annotations

from typing import Any

import numpy as np
from onnx.backend.base import Backend, BackendRep

from .convert import to_module


class TensorFlowRep(BackendRep):
    def __init__(self, model):
        self.module = to_module(model)
        self.input_names = [i.name for i in model.graph.input
                            if i.name not in {init.name for init in model.graph.initializer}]
        self.output_names = [o.name for o in model.graph.output]

    def run(self, inputs: Any, **kwargs) -> tuple[np.ndarray, ...]:
        from .convert import tf_name
        from onnx import TensorProto, numpy_helper
        if isinstance(inputs, dict):
            inputs = [inputs[name] for name in self.input_names]
        elif not isinstance(inputs, (list, tuple)):
            inputs = [inputs]
        # Cases whose values numpy cannot hold exactly (bfloat16, NaN payloads) come as TensorProtos.
        inputs = [numpy_helper.to_array(i) if isinstance(i, TensorProto) else i for i in inputs]
        results = self.module.serve(*inputs)
        return tuple(_to_numpy(results[tf_name(name)]) for name in self.output_names)


def _to_numpy(tensor) -> np.ndarray:
    """A TF result as numpy; TF's strings are bytes, ONNX's (numpy object arrays) are str."""
    array = np.asarray(tensor)
    if array.dtype == object:
        array = np.vectorize(lambda b: b.decode("utf-8"), otypes=[object])(array) if array.size else array
    return array


class TensorFlowBackend(Backend):
    @classmethod
    def prepare(cls, model, device: str = "CPU", **kwargs) -> TensorFlowRep:
        super().prepare(model, device, **kwargs)
        return TensorFlowRep(model)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return device == "CPU"


prepare = TensorFlowBackend.prepare
run_model = TensorFlowBackend.run_model
supports_device = TensorFlowBackend.supports_device
