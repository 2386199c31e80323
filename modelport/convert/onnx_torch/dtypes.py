"""ONNX element types as torch dtypes, and numpy arrays (from initializers and feeds) as tensors."""
from __future__ import annotations

import numpy as np
import torch

from ...errors import UnsupportedOpError

# ONNX TensorProto element types -> torch dtype names (those this torch has).
_NAMES = {1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 9: "bool",
          10: "float16", 11: "float64", 12: "uint32", 13: "uint64", 14: "complex64", 15: "complex128",
          16: "bfloat16", 17: "float8_e4m3fn", 18: "float8_e4m3fnuz", 19: "float8_e5m2", 20: "float8_e5m2fnuz",
          24: "float8_e8m0fnu"}
TORCH_DTYPES = {code: getattr(torch, name) for code, name in _NAMES.items() if hasattr(torch, name)}
ONNX_TYPES = {dtype: code for code, dtype in TORCH_DTYPES.items()}
FLOAT8 = {TORCH_DTYPES[code] for code in (17, 18, 19, 20) if code in TORCH_DTYPES}


def torch_dtype(onnx_type: int) -> torch.dtype:
    """The torch dtype holding ONNX element type ``onnx_type``: its own, or a narrow type's carrier."""
    from .narrow import holder
    dtype = TORCH_DTYPES.get(int(onnx_type)) or holder(int(onnx_type))
    if dtype is None:
        from onnx import helper
        name = helper.tensor_dtype_to_string(int(onnx_type)) if onnx_type else "undefined"
        raise UnsupportedOpError(f"element type {name}", hint="PyTorch has no such dtype")
    return dtype


def onnx_type_of(dtype: torch.dtype) -> int | None:
    return ONNX_TYPES.get(dtype)


def tensor_from_numpy(array: np.ndarray, onnx_type: int | None = None) -> torch.Tensor:
    """A numpy array (ml_dtypes' float8/bfloat16 included) as a torch tensor of the same type."""
    from ..narrow_types import narrow_code, to_carrier
    array = np.asarray(array)
    code = narrow_code(array)
    if code is not None and code not in (17, 18, 19, 20, 24):  # no torch dtype: its carrier
        array = to_carrier(array)
    if array.dtype == object:
        raise UnsupportedOpError("element type string", hint="PyTorch tensors cannot hold strings")
    name = array.dtype.name
    if name in ("bfloat16", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz", "float8_e8m0fnu"):
        bits = torch.from_numpy(np.array(array, order="C").view(np.uint16 if name == "bfloat16" else np.uint8).copy())
        return bits.view(getattr(torch, name if name != "float8_e8m0fnu" else "float8_e8m0fnu"))
    if array.dtype.kind in "fiubc":
        return torch.from_numpy(np.array(array, order="C"))
    raise UnsupportedOpError(f"element type {name}", hint="PyTorch has no such dtype")


def tensor_to_numpy(tensor: torch.Tensor, onnx_type: int | None = None) -> np.ndarray:
    """A torch tensor as numpy, bfloat16 and float8 as ml_dtypes arrays; a narrow ONNX type carried
    in a wider dtype (``onnx_type`` says) back as its ml_dtypes type."""
    from .narrow import is_carried
    if onnx_type is not None and is_carried(onnx_type):
        from ..narrow_types import from_carrier
        return from_carrier(tensor_to_numpy(tensor), onnx_type)
    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16 or tensor.dtype in FLOAT8 or tensor.dtype == TORCH_DTYPES.get(24):
        import ml_dtypes
        name = str(tensor.dtype).removeprefix("torch.")
        bits = tensor.view(torch.int16 if tensor.dtype == torch.bfloat16 else torch.uint8).numpy()
        return bits.view(getattr(ml_dtypes, name))
    return tensor.numpy()
