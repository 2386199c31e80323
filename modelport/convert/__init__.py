"""Conversions between formats. Importing this package registers every built-in edge.

Edge modules import their frameworks inside the edge function, so registering them is cheap.
"""
from __future__ import annotations

from . import caffe, hf_decoder, jax_onnx, mxnet, onnx_openvino, onnx_tf, onnx_torch, tf_onnx, tf_tflite, torch_onnx  # noqa: F401  (registers edges)
from .pipeline import ConversionResult, HopResult, convert
from .registry import EDGES, ConvertOptions, Edge, converter, plan

__all__ = ["EDGES", "ConversionResult", "ConvertOptions", "Edge", "HopResult", "convert", "converter", "plan"]

from .._callable_module import make_callable  # noqa: E402

make_callable(__name__, "convert")
