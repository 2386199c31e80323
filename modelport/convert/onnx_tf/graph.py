"""Walking an ONNX graph into TensorFlow ops: the node context handlers see, and the walk.

Each node's handler comes from the shared op registry (``OPS``), resolved by domain, op type and
the opset the model imports. Handlers receive TF tensors and decoded attributes, and can ask for
an input's constant value (initializers, Constant nodes) where ONNX passes a shape or axes as a
tensor. Values may be kept channels-last inside the graph (layout.py says how and who sees what).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

from ...errors import UnsupportedOpError
from ..ops import OpRegistry
from .layout import ELEMENTWISE, POLICIES, align, logical, relaid

OPS = OpRegistry("onnx_tf", "ONNX")


def onnx_op(*op_types: str, since: int = 1, domain: str = "", layout: str | None = None) -> Callable:
    """Register a handler translating ONNX ``op_types`` from opset ``since`` on; ``layout`` is its
    layout policy (layout.py: None, ELEMENTWISE or AWARE)."""
    if layout not in POLICIES:
        raise ValueError(f"unknown layout policy {layout!r}")
    register = OPS.register(*op_types, domain=domain, since=since)

    def decorate(func: Callable) -> Callable:
        func.layout = layout
        return register(func)
    return decorate


class NodeContext:
    """What a handler sees: the node, its inputs as TF tensors (None for an omitted optional input),
    its attributes as Python values, and the constant value of inputs that are constants."""

    def __init__(self, node, inputs: list, constants: Mapping[str, np.ndarray], opset: int, attrs: dict[str, Any]):
        self.node = node
        self.inputs = inputs
        self._constants = constants
        self.opset = opset
        self.attrs = attrs

    def attr(self, name: str, default=None):
        return self.attrs.get(name, default)

    def input(self, index: int):
        return self.inputs[index] if index < len(self.inputs) else None

    def const(self, index: int) -> np.ndarray | None:
        """The value of input ``index`` when the graph fixes it (initializer or Constant node)."""
        if index >= len(self.node.input) or not self.node.input[index]:
            return None
        return self._constants.get(self.node.input[index])


def trailing_axes(x, axis: int) -> list[int]:
    """The axes from ``axis`` (negative counts from the end) to the last: what the normalization
    ops (LayerNormalization, RMSNormalization) reduce over."""
    rank = len(x.shape)
    return list(range(axis + rank if axis < 0 else axis, rank))


def constant_value(attrs: dict) -> np.ndarray:
    """The value of a Constant node from its attributes (value, value_float(s), value_int(s))."""
    from onnx import numpy_helper
    if "value" in attrs:
        return numpy_helper.to_array(attrs["value"])
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32), ("value_int", np.int64),
                       ("value_ints", np.int64)):
        if key in attrs:
            return np.asarray(attrs[key], dtype=dtype)
    raise UnsupportedOpError(f"Constant with {sorted(attrs)}", hint="value, value_float(s) and value_int(s) are supported")


def decode_attributes(node) -> dict[str, Any]:
    from onnx import helper
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def opset_of(model, domain: str = "") -> int:
    for entry in model.opset_import:
        if (entry.domain or "") == domain or (domain == "" and entry.domain == "ai.onnx"):
            return entry.version
    return 1


def check_supported(graph, opset: int) -> None:
    """Resolve every node's handler before tracing: an unsupported op is reported as itself (inside
    a tf.function trace TensorFlow would wrap the error), naming the op, the opset and the node."""
    for node in graph.node:
        OPS.handler(node.op_type, domain=node.domain or "", opset=opset, where=f"node {node.name or node.op_type!r}",
                    hint="see docs/onnx-tf-coverage.md for the ops and opsets that convert")


class GraphValues(Mapping):
    """The values a graph walk computed, by ONNX name, as logical (ONNX-ordered) tensors: a value
    kept in another order is transposed back once, when first asked for."""

    def __init__(self, tf):
        self._tf = tf
        self.raw: dict[str, Any] = {}
        self._logical: dict[str, Any] = {}

    def __getitem__(self, name: str):
        if name not in self._logical:
            self._logical[name] = logical(self._tf, self.raw[name])
        return self._logical[name]

    def __iter__(self):
        return iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)

    def set(self, name: str, value) -> None:
        self.raw[name] = value
        self._logical.pop(name, None)


def run_graph(graph, feeds: Mapping[str, Any], opset: int, values: Mapping[str, Any] | None = None,
              constants: Mapping[str, np.ndarray] | None = None) -> GraphValues:
    """Evaluate ``graph`` with TF ops: feeds and known values by name in, every node output out.

    ``values`` maps initializer names to TF tensors or variables; ``constants`` to their numpy
    values (so handlers can read shapes and axes). Feeds may be :class:`~.layout.Laid`. Subgraphs
    (If, Loop) call this again with the outer scope's values.
    """
    from onnx import numpy_helper
    import tensorflow as tf
    env = GraphValues(tf)
    for name, value in (values or {}).items():
        env.set(name, value)
    consts: dict[str, np.ndarray] = dict(constants or {})
    for init in graph.initializer:
        if init.name not in env.raw:
            array = numpy_helper.to_array(init)
            consts[init.name] = array
            env.set(init.name, tf.constant(array))
    for name, value in feeds.items():
        env.set(name, value)
    for node in graph.node:
        handler = OPS.handler(node.op_type, domain=node.domain or "", opset=opset,
                              where=f"node {node.name or node.op_type!r}")
        attrs = decode_attributes(node)
        missing = [name for name in node.input if name and name not in env.raw]
        if missing:
            raise UnsupportedOpError(node.op_type, opset, where=f"node {node.name!r}: inputs {missing} are not computed")
        policy = getattr(handler, "layout", None)
        order = None
        if policy is None:
            inputs = [env[name] if name else None for name in node.input]
        else:
            inputs = [env.raw[name] if name else None for name in node.input]
            if policy == ELEMENTWISE:
                inputs, order = align(tf, inputs)
        ctx = NodeContext(node, inputs, consts, opset, attrs)
        with tf.name_scope(_scope_name(node)):
            outputs = relaid(handler(ctx), order)
        if not isinstance(outputs, (list, tuple)):
            outputs = [outputs]
        for name, value in zip(node.output, outputs):
            if name:
                env.set(name, value)
                if node.op_type == "Constant":
                    consts[name] = constant_value(attrs)
    return env


def _scope_name(node) -> str:
    """A TF name scope from the ONNX node name (kept so tensors can be paired with ONNX's)."""
    import re
    name = node.name or node.op_type
    return re.sub(r"[^A-Za-z0-9_.\-/]", "_", name).lstrip("_-/.") or node.op_type
