"""Importing this module registers every ONNX -> PyTorch handler (the registry does, on first use)."""
from __future__ import annotations

from . import attention, control, elementwise, losses, misc, nn, quantize, resize, rnn, sampling, sequences, signal, tensor  # noqa: F401
