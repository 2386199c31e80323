"""Importing this module registers every ONNX -> PyTorch handler (the registry does, on first use)."""
from __future__ import annotations

from . import (attention, control, elementwise, losses, misc, nn, quantize, random_ops, resize, rnn,  # noqa: F401
               sampling, sequences, signal, tensor)
