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
    for index, node in enumerate(nodes):
        for name in node.input:
            readers.setdefault(name, []).append(index)
    for output in graph.output:
        readers.setdefault(output.name, []).append(-1)  # a graph output is read from outside
    scalars = _ScalarConstants(graph, nodes)
    replaced: dict[int, object] = {}
    skipped: set[int] = set()
    for index, node in enumerate(nodes):
        if node.op_type == "Erf" and not node.domain:
            match = _exact_gelu(index, nodes, readers, scalars)
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

    def value(self, name: str) -> float | None:
        from onnx import numpy_helper
        if name in self._initializers:
            if int(np.prod(self._initializers[name].dims)) != 1:  # a weight, not a scalar: not decoded
                return None
            array = numpy_helper.to_array(self._initializers[name])
        elif name in self._constants:
            attrs = {a.name: a for a in self._constants[name].attribute}
            if "value" in attrs:
                array = numpy_helper.to_array(attrs["value"].t)
            elif "value_float" in attrs:
                array = np.asarray(attrs["value_float"].f)
            else:
                return None
        else:
            return None
        if array.size != 1 or array.dtype.kind != "f":
            return None
        return float(array.reshape(()))


def _only_reader(name: str, readers, nodes, op_type: str):
    """The one node reading ``name`` when it is an ``op_type`` (index, node), else None."""
    found = readers.get(name, [])
    if len(found) != 1 or found[0] < 0 or nodes[found[0]].op_type != op_type or nodes[found[0]].domain:
        return None
    return found[0], nodes[found[0]]


def _other(node, name: str) -> str | None:
    """The operand of a binary node that is not ``name``."""
    if len(node.input) != 2 or name not in node.input:
        return None
    return node.input[1] if node.input[0] == name else node.input[0]


def _close(value: float | None, expected: float) -> bool:
    return value is not None and abs(value - expected) <= 1e-6 * abs(expected)


def _producer(name: str, nodes, before: int):
    for index in range(before - 1, -1, -1):
        if name in nodes[index].output:
            return index, nodes[index]
    return None


def _exact_gelu(erf_index: int, nodes, readers, scalars):
    """The members (indexes, last one the output) and fused node of an exact GELU around this Erf."""
    from onnx import helper
    erf = nodes[erf_index]
    scaled = _producer(erf.input[0], nodes, erf_index)
    if scaled is None or len(readers.get(erf.input[0], [])) != 1:
        return None
    scaled_index, scaling = scaled
    if scaling.op_type == "Div" and _close(scalars.value(scaling.input[1]), math.sqrt(2.0)):
        x = scaling.input[0]
    elif scaling.op_type == "Mul" and _close(scalars.value(scaling.input[1]), math.sqrt(0.5)):
        x = scaling.input[0]
    elif scaling.op_type == "Mul" and _close(scalars.value(scaling.input[0]), math.sqrt(0.5)):
        x = scaling.input[1]
    else:
        return None
    members = [scaled_index, erf_index]
    negated = _producer(x, nodes, scaled_index)
    if negated is not None and negated[1].op_type == "Neg" and len(readers.get(x, [])) == 1:
        # tf2onnx's spelling of TensorFlow's 0.5 x erfc(-x / sqrt 2): 1 - erf(-x / sqrt 2)
        x = negated[1].input[0]
        members.append(negated[0])
        plus = _only_reader(erf.output[0], readers, nodes, "Sub")
        if plus is None or plus[1].input[1] != erf.output[0] or not _close(scalars.value(plus[1].input[0]), 1.0):
            return None
    else:
        plus = _only_reader(erf.output[0], readers, nodes, "Add")
        if plus is None or not _close(scalars.value(_other(plus[1], erf.output[0]) or ""), 1.0):
            return None
    times = _only_reader(plus[1].output[0], readers, nodes, "Mul")
    if times is None:
        return None
    factor = _other(times[1], plus[1].output[0])
    members += [plus[0], times[0]]
    if factor == x:  # x * (1 + erf), then * 0.5
        half = _only_reader(times[1].output[0], readers, nodes, "Mul")
        if half is None or not _close(scalars.value(_other(half[1], times[1].output[0]) or ""), 0.5):
            return None
        members.append(half[0])
    else:  # (x * 0.5) * (1 + erf)
        halved = _producer(factor or "", nodes, times[0])
        if (halved is None or halved[1].op_type != "Mul" or len(readers.get(factor, [])) != 1
                or _other(halved[1], x) is None or not _close(scalars.value(_other(halved[1], x)), 0.5)):
            return None
        members.append(halved[0])
    output = nodes[max(members)].output[0]
    node = helper.make_node("Gelu", [x], [output], name=erf.name or output, domain=FUSED_DOMAIN)
    return sorted(members), node
