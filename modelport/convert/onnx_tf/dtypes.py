"""ONNX element types as TensorFlow dtypes: the types TF has, and the carriers of the narrow ones
(float8, float4, int4, int2: narrow.py)."""
from __future__ import annotations

from .narrow import carrier

# ONNX TensorProto element types -> TF dtype names.
_ONNX_TO_TF = {1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 8: "string",
               9: "bool",
               10: "float16", 11: "float64", 12: "uint32", 13: "uint64", 16: "bfloat16"}


# TF dtype names -> ONNX TensorProto element types.
ONNX_TYPE_OF = {name: code for code, name in _ONNX_TO_TF.items()}


def tf_dtype(onnx_type: int):
    """The TF dtype holding ONNX element type ``onnx_type``: its own, or a narrow type's carrier."""
    from ...errors import UnsupportedOpError
    name = _ONNX_TO_TF.get(int(onnx_type)) or carrier(onnx_type)
    if name is None:
        raise UnsupportedOpError(f"element type {onnx_type}", hint="TensorFlow has no such dtype")
    import tensorflow as tf
    return getattr(tf, name)
