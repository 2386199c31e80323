"""ONNX -> TensorFlow: our own converter, on the shared version-aware op registry.

``to_module(model)`` gives a ``tf.Module`` whose ``serve`` tf.function computes the ONNX graph with TF ops (weights as
variables); the ``onnx -> savedmodel`` edge saves it with a serving signature whose inputs and
outputs keep the ONNX names (made TF-safe). ``backend.py`` runs ONNX's own node test suite
through it. Handlers live in elementwise.py, tensor.py, nn.py, resize.py, attention.py and more.py;
layout.py plans which values are kept channels-last.
"""
from __future__ import annotations

from . import attention, control, elementwise, losses, misc, more, nn, quantize, resize, rnn, sampling, sequences, signal, strings, tensor, training, windows  # noqa: F401  (register the handlers)
from .convert import onnx_to_savedmodel, to_module
from .graph import OPS, onnx_op

__all__ = ["OPS", "onnx_op", "onnx_to_savedmodel", "to_module"]
