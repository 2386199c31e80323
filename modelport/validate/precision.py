"""Which precision a candidate model computes in, to pick its default tolerances."""
from __future__ import annotations

from ..formats.base import Session

_STATIC_QUANT = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "QLinearAdd"}
_DYNAMIC_QUANT = {"DynamicQuantizeLinear", "MatMulInteger", "ConvInteger", "DynamicQuantizeMatMul"}


def detect_precision(session: Session) -> str:
    """'fp32', 'fp16', 'int8' (quantized activations) or 'uint8-weights' (dynamic quantization)."""
    model = getattr(session, "model", None)
    if session.format_name == "onnx" and model is not None:
        ops = {node.op_type for node in model.graph.node}
        if ops & _DYNAMIC_QUANT:
            return "uint8-weights"
        if ops & _STATIC_QUANT:
            return "int8"
        if any(init.data_type == 10 for init in model.graph.initializer):  # TensorProto.FLOAT16
            return "fp16"
    if any(spec.dtype.name == "float16" for spec in list(session.inputs) + list(session.outputs)):
        return "fp16"
    if session.format_name == "tflite" and any(spec.dtype.name in ("int8", "uint8") for spec in session.inputs):
        return "int8"
    return "fp32"
