"""Building the ONNX graph of a Caffe net: names, constants, shapes, and the layer walk.

Layer handlers (layers.py) emit ONNX nodes through :class:`Graph` and return their output shapes;
shapes are tracked statically (Caffe nets declare their input shape) while the batch dimension
stays dynamic in the ONNX model. Weight blobs come from a ``BlobSource``: the caffemodel when
converting, a random generator when the test writer makes a caffemodel for a bare definition.
"""
from __future__ import annotations

from typing import Callable, Protocol

import numpy as np

from ...errors import InvalidModelError
from ...formats.caffe.parser import CaffeLayer, CaffeNet, blob_array
from ..onnx_builder import Graph
from ..ops import OpRegistry

ONNX_OPSET = 17
Shape = tuple


class BlobSource(Protocol):
    def __call__(self, layer: CaffeLayer, index: int, shape: Shape, kind: str) -> np.ndarray: ...


def caffemodel_blobs(layer: CaffeLayer, index: int, shape: Shape, kind: str) -> np.ndarray:
    """The layer's index-th blob from the caffemodel, checked against the shape the layer needs."""
    if index >= len(layer.blobs):
        raise InvalidModelError(
            f"layer {layer.name!r} ({layer.type}) has {len(layer.blobs)} weight blob(s) in the caffemodel, "
            f"needs blob {index} ({kind}, shape {list(shape)})",
            hint="the caffemodel does not belong to this prototxt, or a layer was renamed")
    array = blob_array(layer.blobs[index])
    if array.size != int(np.prod(shape)):
        raise InvalidModelError(
            f"layer {layer.name!r} ({layer.type}): blob {index} ({kind}) has shape {list(array.shape)}, "
            f"the prototxt implies {list(shape)}",
            hint="the caffemodel does not belong to this prototxt (different num_output or input size?)")
    return array.reshape(shape)


class LayerContext:
    """What a handler sees: the graph, the layer, its inputs (ONNX names and static shapes)."""

    def __init__(self, graph: Graph, layer: CaffeLayer, inputs: list[str], shapes: list[Shape],
                 blobs: BlobSource):
        self.graph, self.layer, self.inputs, self.shapes = graph, layer, inputs, shapes
        self._blobs = blobs

    def blob(self, index: int, shape: Shape, kind: str) -> np.ndarray:
        return self._blobs(self.layer, index, tuple(int(d) for d in shape), kind)

    def has_blob(self, index: int) -> bool:
        return index < len(self.layer.blobs) or self._blobs is not caffemodel_blobs

    @property
    def base(self) -> str:
        return self.layer.tops[0] if self.layer.tops else self.layer.name


Handler = Callable[[LayerContext], list[tuple[str, Shape]]]
# Caffe layer types on the shared op registry: one domain, no opsets (a layer type means one thing).
LAYERS = OpRegistry("caffe", "Caffe", versioned=False, default_domain="caffe")


def caffe_layer(*types: str) -> Callable[[Handler], Handler]:
    """Register a handler for Caffe layer type(s); custom layers use this same registry."""
    return LAYERS.register(*types)


def _rename_output(graph: Graph, first_node: int, tensor: str, name: str) -> str:
    """Give a network output its Caffe blob name: rename it where this layer produced it, or copy it
    with an Identity when the layer passed its input through (Dropout, Split)."""
    from onnx import helper
    for node in graph.nodes[first_node:]:
        for i, out in enumerate(node.output):
            if out == tensor:
                node.output[i] = name
                return name
    graph.nodes.append(helper.make_node("Identity", [tensor], [name], name=graph.unique(f"{name}/Identity")))
    return name


def build_graph(net: CaffeNet, blobs: BlobSource = caffemodel_blobs, *, dynamic_batch: bool = True,
                preprocess: Callable | None = None):
    """Convert ``net`` to an ONNX GraphProto; returns (graph, output names)."""
    from onnx import TensorProto, helper
    graph = Graph()
    current: dict[str, str] = {}   # Caffe blob -> ONNX tensor holding its latest value
    shapes: dict[str, Shape] = {}
    graph_inputs = []
    for name, shape in net.inputs.items():
        graph.reserve(name)
        dims = ["N" if (dynamic_batch and i == 0) else d for i, d in enumerate(shape)]
        graph_inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, dims))
        current[name], shapes[name] = name, tuple(shape)
        if preprocess is not None:
            current[name] = preprocess(graph, name, shape)
    outputs = net.outputs()
    last_writer = net.last_writer()
    for blob in outputs:  # the final value of an output blob keeps the blob's own name
        graph.reserve(blob)
    for layer in net.layers:
        handler = LAYERS.handler(layer.type, where=f"Caffe layer {layer.name!r}",
                                 hint="register a handler with modelport.convert.caffe.caffe_layer, "
                                      "or remove the layer from the deploy prototxt")
        missing = [b for b in layer.bottoms if b not in current]
        if missing:
            raise InvalidModelError(f"layer {layer.name!r} reads blob(s) {', '.join(map(repr, missing))} that no "
                                    "earlier layer or input produces")
        ctx = LayerContext(graph, layer, [current[b] for b in layer.bottoms], [shapes[b] for b in layer.bottoms], blobs)
        first_node = len(graph.nodes)
        results = handler(ctx)
        if len(results) != len(layer.tops):
            raise InvalidModelError(f"layer {layer.name!r} ({layer.type}) has {len(layer.tops)} top(s), "
                                    f"the layer computes {len(results)}")
        for top, (tensor, shape) in zip(layer.tops, results):
            if top in outputs and last_writer[top] is layer and tensor != top:
                tensor = _rename_output(graph, first_node, tensor, top)
            current[top], shapes[top] = tensor, tuple(int(d) for d in shape)
    graph_outputs = []
    for blob in outputs:
        dims = ["N" if (dynamic_batch and i == 0) else d for i, d in enumerate(shapes[blob])]
        graph_outputs.append(helper.make_tensor_value_info(blob, TensorProto.FLOAT, dims))
    onnx_graph = helper.make_graph(graph.nodes, net.name or "caffe", graph_inputs, graph_outputs, graph.initializers)
    return onnx_graph, outputs, shapes
