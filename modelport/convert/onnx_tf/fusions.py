"""Patterns an exporter spelled out op by op that TensorFlow's consumers only run whole.

torch's TorchScript exporter (opset < 20, where ONNX has no Gelu) writes exact GELU as
``Mul(Mul(x, Add(Erf(Div(x, sqrt 2)), 1)), 0.5)``, and tf2onnx writes TensorFlow's
``0.5 x erfc(-x / sqrt 2)`` as ``Mul(Mul(x, 0.5), Sub(1, Erf(Mul(Neg(x), 1 / sqrt 2))))``. Translated op for op, that is a ``tf.Erf``,
which TFLite has no builtin for, and the TFLite converter fuses GELU only from the one spelling
TensorFlow itself writes (``0.5 * x * (1 + erf(x * 0.7071))``, operands in that order). So such a
chain is recognised here and walked as one node of the private ``modelport.fused`` domain, whose
handler writes TensorFlow's spelling. Every member but the last must feed only the next one (nothing
else reads an intermediate), so the fused graph computes exactly the values the graph asks for.
"""
from __future__ import annotations

import math
from typing import Iterable, Iterator

import numpy as np

FUSED_DOMAIN = "modelport.fused"


def fused(nodes: Iterable, graph) -> Iterator:
    """``nodes`` in order, each recognised chain replaced by one fused node (at its last member)."""
    nodes = list(nodes)
    readers: dict[str, list[int]] = {}
    producers: dict[str, int] = {}
    for index, node in enumerate(nodes):
        for name in node.input:
            readers.setdefault(name, []).append(index)
        for name in node.output:
            producers[name] = index
    for output in graph.output:
        readers.setdefault(output.name, []).append(-1)  # a graph output is read from outside
    walk = _Graph(nodes, readers, producers, _ScalarConstants(graph, nodes))
    replaced: dict[int, object] = {}
    skipped: set[int] = set()
    for index, node in enumerate(nodes):
        if node.op_type == "Erf" and not node.domain:
            match = _exact_gelu(index, walk)
            if match is not None:
                members, replacement = match
                skipped.update(members[:-1])
                replaced[members[-1]] = replacement
    for index, node in enumerate(nodes):
        if index not in skipped:
            yield replaced.get(index, node)


class _ScalarConstants:
    """The value of a name when it is a one-element float constant (initializer or Constant node)."""

    def __init__(self, graph, nodes):
        self._initializers = {init.name: init for init in graph.initializer}
        self._constants = {node.output[0]: node for node in nodes if node.op_type == "Constant" and node.output}

    def value(self, name: str | None) -> float | None:
        from onnx import numpy_helper
        from ..onnx_graph import constant_array, decode_attributes
        if name in self._initializers:
            if int(np.prod(self._initializers[name].dims)) != 1:  # a weight, not a scalar: not decoded
                return None
            array = numpy_helper.to_array(self._initializers[name])
        elif name in self._constants:
            array = constant_array(decode_attributes(self._constants[name]))
            if array is None:  # a Constant of another kind (sparse, strings): not a scalar of ours
                return None
        else:
            return None
        if array.size != 1 or array.dtype.kind != "f":
            return None
        return float(np.reshape(array, ()))


class _Graph:
    """The node list with who reads and who writes each value, as the pattern walk asks."""

    def __init__(self, nodes, readers: dict[str, list[int]], producers: dict[str, int], scalars: _ScalarConstants):
        self.nodes, self.readers, self.producers, self.scalars = nodes, readers, producers, scalars

    def only_reader(self, name: str, op_type: str):
        """The one node reading ``name`` when it is an ``op_type`` (index, node), else None."""
        found = self.readers.get(name, [])
        if len(found) != 1 or found[0] < 0 or self.nodes[found[0]].op_type != op_type or self.nodes[found[0]].domain:
            return None
        return found[0], self.nodes[found[0]]

    def producer(self, name: str | None):
        """The node writing ``name`` (index, node), else None (a graph input, an initializer)."""
        index = self.producers.get(name) if name else None
        return None if index is None else (index, self.nodes[index])

    def read_once(self, name: str | None) -> bool:
        return len(self.readers.get(name, [])) == 1


def _other(node, name: str) -> str | None:
    """The operand of a binary node that is not ``name``."""
    if len(node.input) != 2 or name not in node.input:
        return None
    return node.input[1] if node.input[0] == name else node.input[0]


def _close(value: float | None, expected: float) -> bool:
    return value is not None and abs(value - expected) <= 1e-6 * abs(expected)


def _exact_gelu(erf_index: int, g: _Graph):
    """The members (indexes, last one the output) and fused node of an exact GELU around this Erf."""
    from onnx import helper
    value = g.scalars.value
    erf = g.nodes[erf_index]
    scaled = g.producer(erf.input[0])
    if scaled is None or not g.read_once(erf.input[0]):
        return None
    scaled_index, scaling = scaled
    if scaling.op_type == "Div" and _close(value(scaling.input[1]), math.sqrt(2.0)):
        x = scaling.input[0]
    elif scaling.op_type == "Mul" and _close(value(scaling.input[1]), math.sqrt(0.5)):
        x = scaling.input[0]
    elif scaling.op_type == "Mul" and _close(value(scaling.input[0]), math.sqrt(0.5)):
        x = scaling.input[1]
    else:
        return None
    members = [scaled_index, erf_index]
    negated = g.producer(x)
    if negated is not None and negated[1].op_type == "Neg" and g.read_once(x):
        # tf2onnx's spelling of TensorFlow's 0.5 x erfc(-x / sqrt 2): 1 - erf(-x / sqrt 2)
        x = negated[1].input[0]
        members.append(negated[0])
        plus = g.only_reader(erf.output[0], "Sub")
        if plus is None or plus[1].input[1] != erf.output[0] or not _close(value(plus[1].input[0]), 1.0):
            return None
    else:
        plus = g.only_reader(erf.output[0], "Add")
        if plus is None or not _close(value(_other(plus[1], erf.output[0])), 1.0):
            return None
    times = g.only_reader(plus[1].output[0], "Mul")
    if times is None:
        return None
    factor = _other(times[1], plus[1].output[0])
    members += [plus[0], times[0]]
    if factor == x:  # x * (1 + erf), then * 0.5
        half = g.only_reader(times[1].output[0], "Mul")
        if half is None or not _close(value(_other(half[1], times[1].output[0])), 0.5):
            return None
        members.append(half[0])
    else:  # (x * 0.5) * (1 + erf)
        halved = g.producer(factor)
        if (halved is None or halved[1].op_type != "Mul" or not g.read_once(factor)
                or not _close(value(_other(halved[1], x)), 0.5)):
            return None
        members.append(halved[0])
    output = g.nodes[max(members)].output[0]
    node = helper.make_node("Gelu", [x], [output], name=erf.name or output, domain=FUSED_DOMAIN)
    return sorted(members), node
