"""Values crossing the boundary of a converted model: numpy arrays (ONNX's tensors), lists (its
sequences) and None (an empty optional) to and from their torch forms."""
from __future__ import annotations

from typing import Any

from .dtypes import tensor_from_numpy, tensor_to_numpy


def to_torch(value: Any):
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return [to_torch(item) for item in value]
    return tensor_from_numpy(value)


def from_torch(value: Any, onnx_type: int | None = None):
    """A result as numpy; ``onnx_type`` (the ONNX output's element type) turns a narrow type's
    carrier back into that type."""
    import torch
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return [from_torch(item, onnx_type) for item in value]
    if isinstance(value, torch.Tensor):
        return tensor_to_numpy(value, onnx_type)
    return value
