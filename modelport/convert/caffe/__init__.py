"""Caffe -> ONNX: our own parser (caffe.proto subset) and one handler per layer type.

Custom layers register with :func:`caffe_layer`, the decorator the built-in layers use.
"""
from __future__ import annotations

from pathlib import Path

from ..onnx_builder import opsets_from
from ..registry import ConvertOptions, converter
from . import layers as _layers  # noqa: F401  (registers the built-in layer handlers)
from .graph import LAYERS, ONNX_OPSET, caffe_layer

ONNX_OPSET_MIN = 13  # Softmax over one axis and Split sizes as an input, as the handlers write them

__all__ = ["LAYERS", "caffe_layer", "caffe_to_onnx"]


@converter("caffe", "onnx", "modelport's Caffe parser", opsets=opsets_from(ONNX_OPSET_MIN))
def caffe_to_onnx(session, dst: Path, options: ConvertOptions) -> Path:
    """Caffe prototxt + caffemodel -> ONNX."""
    from ...metadata import CAFFE_PREPROCESSING, CAFFE_PREPROCESSING_BAKED
    from ..onnx_builder import finish_model
    from .graph import build_graph
    preprocessing = options.preprocessing
    bake = options.bake_preprocessing and preprocessing is not None
    graph, _, _ = build_graph(session.net, dynamic_batch=options.dynamic_batch,
                              preprocess=preprocessing.bake if bake else None)
    props = {"source_format": "caffe", "caffe_network": session.net.name}
    if preprocessing is not None:
        props[CAFFE_PREPROCESSING] = preprocessing.to_metadata()
        props[CAFFE_PREPROCESSING_BAKED] = "true" if bake else "false"
    model = finish_model(graph, options.opset or ONNX_OPSET, props=props,
                         doc=f"converted from Caffe {session.prototxt.name} + {session.caffemodel.name}")
    dst.write_bytes(model.SerializeToString())
    return dst
