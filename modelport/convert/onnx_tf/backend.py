"""An ``onnx.backend.base.Backend`` over the ONNX -> TensorFlow converter, so that ONNX's own node
test cases (``onnx.backend.test``) measure what it converts correctly."""
from __future__ import annotations

from typing import Any

import numpy as np
from onnx.backend.base import Backend, BackendRep

from ..onnx_graph import element_type
from .convert import to_module
from .narrow import NARROW, from_carrier, to_carrier


class TensorFlowRep(BackendRep):
    def __init__(self, model):
        self.module = to_module(model)
        self.input_names = [i.name for i in model.graph.input
                            if i.name not in {init.name for init in model.graph.initializer}]
        self.output_names = [o.name for o in model.graph.output]
        self.output_types = [element_type(o.type) for o in model.graph.output]

    def run(self, inputs: Any, **kwargs) -> tuple[np.ndarray, ...]:
        from .convert import tf_name
        from onnx import TensorProto, numpy_helper
        if isinstance(inputs, dict):
            inputs = [inputs[name] for name in self.input_names]
        elif not isinstance(inputs, (list, tuple)):
            inputs = [inputs]
        # Cases whose values numpy cannot hold exactly (bfloat16, NaN payloads) come as TensorProtos.
        inputs = [numpy_helper.to_array(i) if isinstance(i, TensorProto) else i for i in inputs]
        results = self.module.serve(*[to_carrier(i) for i in inputs])
        return tuple(_to_numpy(results[tf_name(name)], code) for name, code in zip(self.output_names, self.output_types))


def _to_numpy(tensor, code: int):
    """A TF result as numpy in the ONNX output's type: TF's strings are bytes, ONNX's (numpy object
    arrays) str; a narrow type comes back from its carrier; a sequence as a list, an empty optional
    as None."""
    if tensor is None:
        return None
    if isinstance(tensor, (list, tuple)):
        return [_to_numpy(item, code) for item in tensor]
    array = np.asarray(tensor)
    if array.dtype == object:
        array = np.vectorize(lambda b: b.decode("utf-8"), otypes=[object])(array) if array.size else array
    if code in NARROW:
        array = from_carrier(array, code)
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
