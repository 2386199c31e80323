"""ONNX -> PyTorch: our own converter, on the shared version-aware op registry.

``to_module(model)`` gives a ``torch.fx.GraphModule`` whose weighted layers are real ``torch.nn``
modules (Conv, Linear, BatchNorm, LayerNorm, LSTM, ...) named after the ONNX nodes, so it trains;
the ``onnx -> pytorch`` edge saves it with ``torch.export`` as a .pt2 keeping the ONNX inputs'
dynamic dims, and ``--as-code`` writes editable Python source beside it. ``backend.py`` runs
ONNX's own node test suite through it. Handlers live in elementwise.py, tensor.py, nn.py and the
other modules (handlers.py lists them; they load on first use, so registering the edge imports no
torch); runtime.py holds the plain-torch functions converted graphs call.
"""
from __future__ import annotations

from .convert import onnx_to_pytorch, to_module
from .registry import OPS

__all__ = ["OPS", "onnx_to_pytorch", "to_module"]
