"""The ONNX -> PyTorch op registry. The handlers (written in PyTorch, which they import at module
level) are registered by importing handlers.py, which the registry does on first use."""
from __future__ import annotations

from ..ops import OpRegistry

OPS = OpRegistry("onnx_torch", "ONNX", handlers_module="modelport.convert.onnx_torch.handlers")
