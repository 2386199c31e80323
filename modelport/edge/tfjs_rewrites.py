"""Graph rewrites that make a frozen TensorFlow graph fast in TF.js, each exact (same values).

Graphs from ONNX say Clip as ``Minimum(Maximum(x, [[[[0]]]]), [[[[6]]]])`` and a convolution's bias
as a separate ``Add``; TF.js's WebAssembly backend runs broadcasts of rank-4 constants through a
generic loop (~40x slower than its ReLU6 kernel on MobileNetV2) and has fused kernels for
convolution + bias + activation (one pass over the output instead of three). So:

- ``clip``: ``Minimum(Maximum(x, 0), 6)`` is ``Relu6``, ``Maximum(x, 0)`` is ``Relu``, other
  constant bounds are ``ClipByValue`` with scalar bounds;
- ``fuse``: ``Conv2D`` / ``DepthwiseConv2dNative`` / ``MatMul`` followed by a bias ``Add`` (and a
  ReLU, ReLU6, ELU, sigmoid or leaky ReLU) become TF.js's fused ops ``_FusedConv2D``,
  ``FusedDepthwiseConv2dNative``, ``_FusedMatMul``.

A rewrite only applies where the replaced nodes feed nothing else, so every other tensor keeps its
value; the graph is then checked in TF.js against the source like any bundle.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Callable

import numpy as np

ACTIVATIONS = {"Relu": b"Relu", "Relu6": b"Relu6", "Elu": b"Elu", "Sigmoid": b"Sigmoid", "LeakyRelu": b"LeakyRelu"}
FUSED = {"Conv2D": "_FusedConv2D", "DepthwiseConv2dNative": "FusedDepthwiseConv2dNative", "MatMul": "_FusedMatMul"}


class _Graph:
    """A GraphDef with the lookups rewrites need: nodes by name, who consumes a node, constant
    values and static ranks (from TensorFlow's shape inference)."""

    def __init__(self, graph_def, outputs: list[str]):
        from tensorflow.python.framework import tensor_util
        from ..formats._tf import import_tf
        tf = import_tf()
        self.graph_def = graph_def
        self.outputs = {name.split(":")[0] for name in outputs}
        self._make_ndarray = tensor_util.MakeNdarray
        self._make_proto = tensor_util.make_tensor_proto
        graph = tf.Graph()
        with graph.as_default():
            tf.graph_util.import_graph_def(graph_def, name="")
        self.ranks = {op.name: (op.outputs[0].shape.rank if op.outputs else None) for op in graph.get_operations()}
        self.refresh()

    def refresh(self) -> None:
        self.nodes = {node.name: node for node in self.graph_def.node}
        self.consumers: dict[str, list] = defaultdict(list)
        for node in self.graph_def.node:
            for name in node.input:
                self.consumers[_node_name(name)].append(node)

    def only_feeds(self, name: str, consumer) -> bool:
        """``name`` is used by ``consumer`` alone and is no graph output."""
        users = self.consumers.get(name, [])
        return name not in self.outputs and len(users) == 1 and users[0] is consumer

    def constant(self, name: str) -> np.ndarray | None:
        node = self.nodes.get(_node_name(name))
        if node is None or node.op != "Const" or ":" in name and not name.endswith(":0"):
            return None
        return self._make_ndarray(node.attr["value"].tensor)

    def add_constant(self, name: str, value: np.ndarray, dtype) -> str:
        node = self.graph_def.node.add()
        node.name, node.op = self._unique(name), "Const"
        node.attr["dtype"].type = dtype
        node.attr["value"].tensor.CopyFrom(self._make_proto(value))
        self.nodes[node.name] = node
        return node.name

    def _unique(self, name: str) -> str:
        candidate, k = name, 1
        while candidate in self.nodes:
            candidate, k = f"{name}_{k}", k + 1
        return candidate

    def prune(self) -> None:
        """Drop the nodes no output needs any more (the ones a rewrite replaced)."""
        needed, stack = set(), list(self.outputs)
        while stack:
            name = stack.pop()
            if name in needed or name not in self.nodes:
                continue
            needed.add(name)
            stack.extend(_node_name(i) for i in self.nodes[name].input)
        kept = [node for node in self.graph_def.node if node.name in needed]
        del self.graph_def.node[:]
        self.graph_def.node.extend(kept)
        self.refresh()


def _node_name(tensor: str) -> str:
    return tensor.lstrip("^").split(":")[0]


def _split(graph: _Graph, node) -> tuple[str, np.ndarray, str] | None:
    """(the constant's input name, its value, the other input) when ``node`` has one constant
    input holding a single value."""
    if len(node.input) != 2:
        return None
    for const_at in (1, 0):
        value = graph.constant(node.input[const_at])
        if value is not None and value.size == 1 and graph.constant(node.input[1 - const_at]) is None:
            return node.input[const_at], value, node.input[1 - const_at]
    return None


def _broadcast_free(graph: _Graph, x: str, const_name: str) -> bool:
    """Replacing the constant by a scalar keeps the result's shape: x has at least its rank."""
    x_rank, c_rank = graph.ranks.get(_node_name(x)), graph.ranks.get(_node_name(const_name))
    return x_rank is not None and c_rank is not None and x_rank >= c_rank


def _become(node, op: str, inputs: list[str], dtype_attr) -> None:
    node.op = op
    del node.input[:]
    node.input.extend(inputs)
    node.ClearField("attr")
    node.attr["T"].CopyFrom(dtype_attr)


def clip(graph: _Graph) -> int:
    changed = 0
    for node in list(graph.graph_def.node):
        if node.op != "Minimum":
            continue
        upper = _split(graph, node)
        if upper is None:
            continue
        hi_name, hi, inner_name = upper
        inner = graph.nodes.get(_node_name(inner_name))
        if inner is None or inner.op != "Maximum" or not graph.only_feeds(inner.name, node):
            continue
        lower = _split(graph, inner)
        if lower is None:
            continue
        lo_name, lo, x = lower
        if not (_broadcast_free(graph, x, lo_name) and _broadcast_free(graph, x, hi_name)):
            continue
        dtype = node.attr["T"]
        if float(lo.reshape(())) == 0 and float(hi.reshape(())) == 6:
            _become(node, "Relu6", [x], dtype)
        else:
            low = graph.add_constant(f"{node.name}/low", lo.reshape(()), dtype.type)
            high = graph.add_constant(f"{node.name}/high", hi.reshape(()), dtype.type)
            _become(node, "ClipByValue", [x, low, high], dtype)
        changed += 1
    graph.prune()  # the Maximum nodes replaced above
    for node in list(graph.graph_def.node):
        if node.op != "Maximum":
            continue
        lower = _split(graph, node)
        if lower is not None and float(lower[1].reshape(())) == 0 and _broadcast_free(graph, lower[2], lower[0]):
            _become(node, "Relu", [lower[2]], node.attr["T"])
            changed += 1
    graph.refresh()
    return changed


def fuse(graph: _Graph) -> int:
    changed = 0
    for node in list(graph.graph_def.node):
        if node.op not in ("Add", "AddV2", "BiasAdd") or len(node.input) != 2:
            continue
        if node.op == "BiasAdd" and node.attr["data_format"].s not in (b"", b"NHWC"):
            continue
        found = _producer_and_bias(graph, node)
        if found is None:
            continue
        producer, bias = found
        last, activation = node, None
        users = graph.consumers.get(node.name, [])
        if node.name not in graph.outputs and len(users) == 1 and users[0].op in ACTIVATIONS:
            last, activation = users[0], users[0]
        bias_name = graph.add_constant(f"{producer.name}/bias", bias, producer.attr["T"].type)
        attrs = {key: value for key, value in producer.attr.items()}
        fused_ops = [b"BiasAdd"] + ([ACTIVATIONS[activation.op]] if activation is not None else [])
        extra = last.attr["alpha"].f if activation is not None and activation.op == "LeakyRelu" else None
        weights = producer.input[1]
        if producer.op == "MatMul" and attrs["transpose_b"].b:
            # TF.js 4.22's WebAssembly fused MatMul computes a transposed B wrongly: store B transposed.
            weights = graph.add_constant(f"{producer.name}/weights_t", graph.constant(weights).T.copy(),
                                         producer.attr["T"].type)
            attrs["transpose_b"] = type(attrs["transpose_b"])(b=False)
        inputs = [producer.input[0], weights, bias_name]
        last.op = FUSED[producer.op]
        del last.input[:]
        last.input.extend(inputs)
        last.ClearField("attr")
        for key, value in attrs.items():
            last.attr[key].CopyFrom(value)
        last.attr["fused_ops"].list.s.extend(fused_ops)
        last.attr["num_args"].i = 1
        last.attr["epsilon"].f = 0.0
        if extra is not None:
            last.attr["leakyrelu_alpha"].f = extra
        changed += 1
        graph.refresh()
    return changed


def _producer_and_bias(graph: _Graph, add) -> tuple[object, np.ndarray] | None:
    """The convolution or MatMul an Add adds a per-channel constant to, and that constant as a
    vector, when the Add is that node's only consumer."""
    for at in (0, 1):
        producer = graph.nodes.get(_node_name(add.input[at]))
        bias = graph.constant(add.input[1 - at])
        if producer is None or bias is None or producer.op not in FUSED or not graph.only_feeds(producer.name, add):
            continue
        if producer.op != "MatMul" and producer.attr["data_format"].s not in (b"", b"NHWC"):
            continue
        if producer.attr["T"].type != 1:  # DT_FLOAT: TF.js fuses float32 only
            continue
        rank = graph.ranks.get(producer.name)
        if rank is None or bias.ndim > rank or any(d != 1 for d in bias.shape[:-1]) or bias.ndim == 0:
            continue
        if producer.op == "MatMul":
            if producer.attr["transpose_a"].b:
                continue
            weights = graph.constant(producer.input[1])
            channels = None if weights is None else weights.shape[0 if producer.attr["transpose_b"].b else 1]
        else:
            weights = graph.constant(producer.input[1])
            channels = None if weights is None else (weights.shape[3] if producer.op == "Conv2D"
                                                     else weights.shape[2] * weights.shape[3])
        if channels is not None and bias.shape[-1] == channels:
            return producer, bias.reshape(-1).astype(np.float32)
    return None


REWRITES: dict[str, Callable[[_Graph], int]] = {"clip": clip, "fuse": fuse}


def rewrite_for_tfjs(graph_def, outputs: list[str]) -> dict[str, int]:
    """Apply every rewrite to ``graph_def`` in place; return how many places each changed."""
    graph = _Graph(graph_def, outputs)
    counts = {}
    for name, rewrite in REWRITES.items():
        counts[name] = rewrite(graph)
        graph.prune()
    return counts
