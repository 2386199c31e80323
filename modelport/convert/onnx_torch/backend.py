"""An ``onnx.backend.base.Backend`` over the ONNX -> PyTorch converter, so that ONNX's own node
test cases (``onnx.backend.test``) measure what it converts correctly. The converted
``GraphModule`` runs eagerly, as a user fine-tuning it would run it."""
from __future__ import annotations

from typing import Any

from onnx.backend.base import Backend, BackendRep

from ..onnx_graph import element_type
from .convert import to_module


class TorchRep(BackendRep):
    def __init__(self, model):
        self.module = to_module(model)
        self.output_names = [o.name for o in model.graph.output]
        self.output_types = [element_type(o.type) for o in model.graph.output]

    def run(self, inputs: Any, **kwargs) -> tuple:
        import torch
        from onnx import TensorProto, numpy_helper
        from .values import from_torch, to_torch
        names = self.module.onnx_input_names
        if isinstance(inputs, dict):
            inputs = [inputs[name] for name in names]
        elif not isinstance(inputs, (list, tuple)):
            inputs = [inputs]
        # Cases whose values numpy cannot hold exactly (bfloat16, NaN payloads) come as TensorProtos.
        inputs = [numpy_helper.to_array(i) if isinstance(i, TensorProto) else i for i in inputs]
        with torch.no_grad():
            result = self.module(*[to_torch(value) for value in inputs])
        results = [result] if len(self.output_names) == 1 else [result[name] for name in self.output_names]
        return tuple(from_torch(value, code) for value, code in zip(results, self.output_types))


class TorchBackend(Backend):
    @classmethod
    def prepare(cls, model, device: str = "CPU", **kwargs) -> TorchRep:
        super().prepare(model, device, **kwargs)
        return TorchRep(model)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return device == "CPU"


prepare = TorchBackend.prepare
run_model = TorchBackend.run_model
supports_device = TorchBackend.supports_device
