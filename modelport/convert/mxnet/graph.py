"""Building the ONNX graph of an MXNet symbol: the node walk, parameters, and static shapes.

Symbols carry no shapes, so the input shapes come from the user (``--input-shape``) and each
handler returns its outputs' shapes, computed by MXNet's own rules; the batch dimension stays
dynamic in the ONNX model. Parameters become initializers when a handler first reads them.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np

from ...errors import InvalidModelError
from ...formats.mxnet.parser import LOSS_OPS, MXNetNet, Node
from ..onnx_builder import Graph
from ..ops import OpRegistry

ONNX_OPSET = 17
Shape = tuple
# MXNet operators on the shared op registry: one domain, no opsets (an operator name means one thing).
MXNET_OPS = OpRegistry("mxnet", "MXNet", versioned=False, default_domain="mxnet")


def mxnet_op(*names: str):
    """Register a handler for MXNet operator name(s); custom operators use this same registry."""
    return MXNET_OPS.register(*names)


class OpContext:
    """What a handler sees: the graph, the node and its attributes, its inputs (ONNX names and
    static shapes); parameters are read as arrays or placed as initializers on demand."""

    def __init__(self, graph: Graph, net: MXNetNet, node: Node, values: dict[tuple[int, int], tuple[str, Shape]]):
        self.graph, self.net, self.node, self.attrs = graph, net, node, node.attrs
        self._values = values
        self.shapes: list[Shape] = []
        for source in node.inputs:
            variable = net.nodes[source[0]]
            if variable.is_variable and variable.name in net.params:
                self.shapes.append(tuple(net.params[variable.name].shape))
            elif source in values:
                self.shapes.append(values[source][1])
            else:
                raise InvalidModelError(f"node {node.name!r} ({node.op}) reads {variable.name!r}, which has no value",
                                        hint="the symbol file is damaged, or a label input is read by a non-loss op")

    @property
    def base(self) -> str:
        return self.node.name

    def is_param(self, index: int) -> bool:
        variable = self.net.nodes[self.node.inputs[index][0]]
        return variable.is_variable and variable.name in self.net.params

    def param(self, index: int, what: str) -> np.ndarray:
        """The array of input ``index``, which must be a parameter of the .params file."""
        if index >= len(self.node.inputs) or not self.is_param(index):
            raise InvalidModelError(f"node {self.node.name!r} ({self.node.op}): its {what} must be a parameter "
                                    "stored in the .params file", hint="computed weights are not supported")
        return self.net.params[self.net.nodes[self.node.inputs[index][0]].name]

    def input(self, index: int) -> str:
        """The ONNX tensor holding input ``index`` (a parameter becomes an initializer once)."""
        source = self.node.inputs[index]
        if self.is_param(index):
            name = self.net.nodes[source[0]].name
            if name not in self.graph.placed:
                self.graph.placed[name] = self.graph.const(name, self.net.params[name],
                                                           self.net.params[name].dtype)
            return self.graph.placed[name]
        return self._values[source][0]

    def const(self, suffix: str, value, dtype=np.float32) -> str:
        return self.graph.const(f"{self.base}/{suffix}", value, dtype)

    def ints(self, suffix: str, values: Sequence[int]) -> str:
        return self.graph.ints(f"{self.base}/{suffix}", values)

    def op(self, op_type: str, inputs: Sequence[str], suffix: str | None = None, **attrs) -> str:
        return self.graph.op(op_type, inputs, f"{self.base}/{suffix}" if suffix else self.base, **attrs)

    def unsupported(self, what: str) -> InvalidModelError:
        from ...errors import UnsupportedOpError
        return UnsupportedOpError(self.node.op, where=f"node {self.node.name!r}: {what}", framework="MXNet",
                                  hint="open an issue with the symbol file; or register a handler with "
                                       "modelport.convert.mxnet.mxnet_op")


Handler = Callable[[OpContext], list[tuple[str, Shape]]]


class _ShapesOnly(Graph):
    """A graph that records nodes but no constants: for a second pass that only wants shapes."""

    def const(self, base: str, value, dtype=np.float32) -> str:
        return self.unique(base)


def build_graph(net: MXNetNet, shapes: dict[str, tuple[int, ...]], *, dynamic_batch: bool = True,
                opset: int = ONNX_OPSET):
    """Convert ``net`` to an ONNX GraphProto; returns (graph, {output name: static shape}).

    With a dynamic batch, an output dim is declared ``N`` only where it follows the batch: the
    shapes are computed again at another batch size (a pass without constants) and compared.
    """
    graph, out_shapes = _build(Graph(), net, shapes, dynamic_batch, opset)
    if dynamic_batch:
        other = {name: (shape[0] + 1, *shape[1:]) for name, shape in shapes.items()}
        _, moved = _build(_ShapesOnly(), net, other, dynamic_batch, opset)
        batch = next(iter(shapes.values()))[0]
        for output in graph.output:
            dims = output.type.tensor_type.shape.dim
            for k, (a, b) in enumerate(zip(out_shapes[output.name], moved[output.name])):
                if a == b:
                    dims[k].dim_value = a
                elif a == batch and b == batch + 1:
                    dims[k].dim_param = "N"
                else:
                    dims[k].dim_param = f"{output.name}_dim{k}"
    return graph, out_shapes


def _build(graph: Graph, net: MXNetNet, shapes: dict[str, tuple[int, ...]], dynamic_batch: bool, opset: int):
    from onnx import TensorProto, helper
    graph.opset = opset  # handlers whose ONNX spelling changed between opsets read it
    graph.placed = {}  # parameter variable -> its initializer
    values: dict[tuple[int, int], tuple[str, Shape]] = {}
    graph_inputs = []
    for name in net.inputs:
        graph.reserve(name)
        dims = ["N" if (dynamic_batch and i == 0) else d for i, d in enumerate(shapes[name])]
        graph_inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, dims))
    for name in net.output_names:
        graph.reserve(name)
    needed = _needed(net)
    for node in net.nodes:
        if node.index not in needed:
            continue
        if node.is_variable:
            if node.name in net.inputs:
                values[(node.index, 0)] = (node.name, shapes[node.name])
            continue
        handler = MXNET_OPS.handler(node.op, where=f"MXNet node {node.name!r}",
                                    hint="register a handler with modelport.convert.mxnet.mxnet_op")
        if node.op in LOSS_OPS:  # at inference a loss layer reads its data, not its label
            node = dataclasses.replace(node, inputs=node.inputs[:1])
        ctx = OpContext(graph, net, node, values)
        for index, (tensor, shape) in enumerate(handler(ctx)):
            values[(node.index, index)] = (tensor, tuple(int(d) for d in shape))
    graph_outputs, out_shapes, renamed = [], {}, {}
    for (index, slot), name in zip(net.heads, net.output_names):
        if (index, slot) not in values:
            raise InvalidModelError(f"output {name!r} is not computed by the graph")
        tensor, shape = values[(index, slot)]
        if tensor in renamed or tensor in net.inputs or not _rename(graph, tensor, name):
            source = renamed.get(tensor, tensor)  # a head listed twice, or an input passed through
            graph.nodes.append(helper.make_node("Identity", [source], [name], name=graph.unique(f"{name}/Identity")))
        else:
            renamed[tensor] = name
        graph_outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
        out_shapes[name] = shape
    onnx_graph = helper.make_graph(graph.nodes, net.name or "mxnet", graph_inputs, graph_outputs, graph.initializers)
    return onnx_graph, out_shapes


def _needed(net: MXNetNet) -> set[int]:
    """Nodes the outputs depend on (a loss layer's label branch and dead nodes are skipped)."""
    needed, stack = set(), [i for i, _ in net.heads]
    while stack:
        index = stack.pop()
        if index in needed:
            continue
        needed.add(index)
        node = net.nodes[index]
        for position, (source, _) in enumerate(node.inputs):
            if node.op in LOSS_OPS and position > 0:
                continue  # the label
            stack.append(source)
    return needed


def _rename(graph: Graph, tensor: str, name: str) -> bool:
    """Make the node that computes ``tensor`` write ``name`` (an output keeps MXNet's name)."""
    for node in reversed(graph.nodes):
        for i, out in enumerate(node.output):
            if out == tensor:
                node.output[i] = name
                for later in graph.nodes:
                    later.input[:] = [name if x == tensor else x for x in later.input]
                return True
    return False
