"""ONNX -> PyTorch: our own converter, on the shared version-aware op registry.

``to_module(model)`` gives a ``torch.fx.GraphModule`` whose weighted layers are real ``torch.nn``
modules (Conv, Linear, BatchNorm, LayerNorm, ...) named after the ONNX nodes, so it trains; the
``onnx -> pytorch`` edge saves it with ``torch.export`` as a .pt2 keeping the ONNX inputs' dynamic
dims. ``backend.py`` runs ONNX's own node test suite through it. Handlers live in elementwise.py,
tensor.py, nn.py and the other modules; runtime.py holds the plain-torch functions graphs call.
"""
from __future__ import annotations

from . import attention, control, elementwise, losses, misc, nn, quantize, resize, rnn, sampling, sequences, signal, tensor  # noqa: F401  (register the handlers)
from .convert import onnx_to_pytorch, to_module
from .graph import OPS, onnx_op

__all__ = ["OPS", "onnx_op", "onnx_to_pytorch", "to_module"]
