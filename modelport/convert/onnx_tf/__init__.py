"""ONNX -> TensorFlow: our own converter, on the shared version-aware op registry.

``to_function(model)`` gives a ``tf.function`` computing the ONNX graph with TF ops (weights as
variables); the ``onnx -> savedmodel`` edge saves it with a serving signature whose inputs and
outputs keep the ONNX names (made TF-safe). ``backend.py`` runs ONNX's own node test suite
through it. Handlers live in elementwise.py, tensor.py, nn.py, resize.py and more.py.
"""
from __future__ import annotations

from . import elementwise, more, nn, resize, tensor  # noqa: F401  (register the handlers)
from .convert import onnx_to_savedmodel, to_module
from .graph import OPS, onnx_op

__all__ = ["OPS", "onnx_op", "onnx_to_savedmodel", "to_module"]
