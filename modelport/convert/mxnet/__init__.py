"""MXNet -> ONNX: our own reader of the symbol JSON and .params (no MXNet install) and one handler
per operator.

Custom operators register with :func:`mxnet_op`, the decorator the built-in handlers use.
"""
from __future__ import annotations

from pathlib import Path

from ..onnx_builder import opsets_from
from ..registry import ConvertOptions, converter
from . import ops as _ops  # noqa: F401  (registers the built-in operator handlers)
from .graph import MXNET_OPS, ONNX_OPSET, mxnet_op

ONNX_OPSET_MIN = 13  # Softmax over one axis and Split sizes as an input, as the handlers write them

__all__ = ["MXNET_OPS", "mxnet_op", "mxnet_to_onnx"]


@converter("mxnet", "onnx", "modelport's MXNet symbol reader", opsets=opsets_from(ONNX_OPSET_MIN))
def mxnet_to_onnx(session, dst: Path, options: ConvertOptions) -> Path:
    """MXNet symbol JSON + .params -> ONNX."""
    from ..onnx_builder import finish_model
    from .graph import build_graph
    opset = options.opset or ONNX_OPSET
    graph, _ = build_graph(session.net, session.shapes, dynamic_batch=options.dynamic_batch, opset=opset)
    props = {"source_format": "mxnet", "mxnet_symbol": session.symbol_path.name}
    if session.net.version:
        props["mxnet_version"] = session.net.version
    model = finish_model(graph, opset, props=props,
                         doc=f"converted from MXNet {session.symbol_path.name} + {session.params_path.name}")
    dst.write_bytes(model.SerializeToString())
    return dst
