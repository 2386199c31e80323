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
from ..onnx_graph import Opsets, StaticInfo, constant_array, decode_attributes, domain_opset as _domain_opset
from ..ops import OpRegistry
from . import shapes as shapes_fold
from .fusions import fused
from .dtypes import ONNX_TYPE_OF
from .layout import ELEMENTWISE, POLICIES, Laid, align, logical, relaid
from .narrow import to_carrier

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

    def __init__(self, node, inputs: list, constants: Mapping[str, np.ndarray], opset: int, attrs: dict[str, Any],
                 scope: "GraphValues | None" = None, opsets: "int | Opsets | None" = None):
        self.node = node
        self.inputs = inputs
        self._constants = constants
        self.opset = opset
        self.attrs = attrs
        self.scope = scope  # the enclosing graph's values, which subgraphs (If, Loop, Scan) may read
        self.opsets = opset if opsets is None else opsets  # every domain's, for subgraphs
        self.partials: Mapping[str, Any] = {}  # shape arithmetic folded so far (shapes.py)
        self.types: Mapping[str, int] = {}  # ONNX element types declared or inferred, by value name

    def known(self, index: int) -> list | None:
        """Input ``index``'s value where shape arithmetic fixes it: ints, None where dynamic."""
        if index >= len(self.node.input) or not self.node.input[index]:
            return None
        found = self.partials.get(self.node.input[index])
        return None if found is None else found[1]

    def static(self, index: int) -> np.ndarray | None:
        """Input ``index``'s value when it is known while converting: a constant, folded shape
        arithmetic, or a tensor TensorFlow evaluates statically; None when only the run knows it."""
        if index >= len(self.node.input) or not self.node.input[index]:
            return None
        known = self.known(index)
        if known is not None and None not in known:
            return np.asarray(known)
        value = self.const(index)
        if value is None:
            import tensorflow as tf
            tensor = self.inputs[index]
            tensor = tensor.tensor if isinstance(tensor, Laid) else tensor
            value = tf.get_static_value(tensor) if tf.is_tensor(tensor) else None
        return None if value is None else np.asarray(value)

    def onnx_type(self, index: int) -> int | None:
        """Input ``index``'s ONNX element type: as declared or inferred, else read off its TF dtype
        (a narrow type's carrier alone cannot tell int4 from int8: narrow.py)."""
        if index >= len(self.node.input) or not self.node.input[index]:
            return None
        if self.node.input[index] in self.types:
            return self.types[self.node.input[index]]
        value = self.inputs[index]
        tensor = value.tensor if isinstance(value, Laid) else value
        return ONNX_TYPE_OF.get(tensor.dtype.name) if hasattr(tensor, "dtype") else None

    def derive(self, inputs: list, attrs: dict[str, Any] | None = None) -> "NodeContext":
        """This node with other inputs (and attributes): to reuse another op's handler."""
        return NodeContext(self.node, inputs, {}, self.opset, self.attrs if attrs is None else attrs)

    def run_subgraph(self, graph, feeds: Mapping[str, Any]) -> list:
        """Run a subgraph attribute with ``feeds`` for its inputs and this graph's values in scope;
        its outputs, in order, as logical tensors."""
        values = run_graph(graph, feeds, self.opsets, dict(self.scope.raw) if self.scope else {}, self._constants)
        return [values[output.name] for output in graph.output]

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
    array = constant_array(attrs)
    if array is None:
        raise UnsupportedOpError(f"Constant with {sorted(attrs)}",
                                 hint="value, value_float(s) and value_int(s) are supported")
    return to_carrier(array)


def check_supported(graph, opset: "int | Opsets") -> None:
    """Resolve every node's handler before tracing: an unsupported op is reported as itself (inside
    a tf.function trace TensorFlow would wrap the error), naming the op, the opset and the node."""
    for node in graph.node:  # the ops as written: a chain fusions.py fuses has a handler for each too
        OPS.handler(node.op_type, domain=node.domain or "", opset=_domain_opset(opset, node.domain or ""),
                    where=f"node {node.name or node.op_type!r}",
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


def _refine(value, dims: list[int | None]):
    """Tell TF the dims ONNX knows (a reshape from a computed shape loses them; TFLite needs them)."""
    tensor = value.tensor if isinstance(value, Laid) else value
    if not hasattr(tensor, "set_shape") or tensor.shape.rank not in (None, len(dims)):
        return
    if isinstance(value, Laid):
        dims = [dims[axis] for axis in value.perm]
    try:
        tensor.set_shape(dims)
    except ValueError:  # TF knows better (or differently): keep its shape
        pass


def run_graph(graph, feeds: Mapping[str, Any], opset: "int | Opsets", values: Mapping[str, Any] | None = None,
              constants: Mapping[str, np.ndarray] | None = None,
              info: StaticInfo | None = None) -> GraphValues:
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
            array = to_carrier(numpy_helper.to_array(init))
            consts[init.name] = array
            env.set(init.name, tf.constant(array))
    for name, value in feeds.items():
        env.set(name, value)
    partials: dict[str, Any] = {}
    shapes, types = info or StaticInfo({}, {})

    def partial_of(name: str):
        if name in partials:
            return partials[name]
        return shapes_fold.initial(consts[name]) if name in consts else None

    def static_shape_of(name: str):
        value = env.raw.get(name)
        if value is None:
            return None
        if isinstance(value, Laid):
            return value.logical_shape()
        return value.shape.as_list() if getattr(value, "shape", None) is not None and value.shape.rank is not None \
            else None

    for node in fused(graph.node, graph):
        node_opset = _domain_opset(opset, node.domain or "")
        handler = OPS.handler(node.op_type, domain=node.domain or "", opset=node_opset,
                              where=f"node {node.name or node.op_type!r}")
        attrs = decode_attributes(node)
        missing = [name for name in node.input if name and name not in env.raw]
        if missing:
            raise UnsupportedOpError(node.op_type, node_opset,
                                     where=f"node {node.name!r}: inputs {missing} are not computed")
        policy = getattr(handler, "layout", None)
        order = None
        if policy is None:
            inputs = [env[name] if name else None for name in node.input]
        else:
            inputs = [env.raw[name] if name else None for name in node.input]
            if policy == ELEMENTWISE:
                inputs, order = align(tf, inputs)
        ctx = NodeContext(node, inputs, consts, node_opset, attrs, env, opset)
        ctx.partials = {name: partial_of(name) for name in node.input if name}
        ctx.types = types
        with tf.name_scope(_scope_name(node)):
            outputs = relaid(handler(ctx), order)
        if not isinstance(outputs, (list, tuple)):
            outputs = [outputs]
        for name, value in zip(node.output, outputs):
            if name:
                if name in shapes and value is not None:
                    _refine(value, shapes[name])
                env.set(name, value)
                if node.op_type == "Constant":
                    consts[name] = constant_value(attrs)
        if node.output and node.output[0]:
            folded = shapes_fold.fold(node, attrs, partial_of, consts.get, static_shape_of)
            if folded is not None:
                partials[node.output[0]] = folded
    return env


def _scope_name(node) -> str:
    """A TF name scope from the ONNX node name (kept so tensors can be paired with ONNX's)."""
    import re
    name = node.name or node.op_type
    return re.sub(r"[^A-Za-z0-9_.\-/]", "_", name).lstrip("_-/.") or node.op_type
