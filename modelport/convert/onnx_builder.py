"""Writing ONNX graphs by hand, for the converters that build them node by node (Caffe, MXNet)."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np


class Graph:
    """Collects ONNX nodes and initializers with unique names."""

    def __init__(self):
        from onnx import helper
        self.helper = helper
        self.nodes: list = []
        self.initializers: list = []
        self._names: set[str] = set()

    def unique(self, base: str) -> str:
        name, i = base, 1
        while name in self._names:
            name, i = f"{base}_{i}", i + 1
        self._names.add(name)
        return name

    def reserve(self, name: str) -> str:
        self._names.add(name)
        return name

    def const(self, base: str, value, dtype=np.float32) -> str:
        from onnx import numpy_helper
        name = self.unique(base)
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def ints(self, base: str, values: Sequence[int]) -> str:
        return self.const(base, np.asarray(values, dtype=np.int64), np.int64)

    def op(self, op_type: str, inputs: Sequence[str], base: str, outputs: int = 1, **attrs) -> list[str] | str:
        names = [self.unique(base if i == 0 else f"{base}_{i}") for i in range(outputs)]
        self.nodes.append(self.helper.make_node(op_type, list(inputs), names, name=self.unique(f"{base}/{op_type}"),
                                                **attrs))
        return names if outputs > 1 else names[0]


def padded_average_divisor_fix(size, out, kernel, stride, pad) -> np.ndarray | None:
    """Per-output factor turning ONNX's kh*kw divisor into Caffe's and MXNet's: the window counts the
    padding but is clipped at size + pad (a ceil-mode window reaching past it is smaller). None when
    every window is whole."""
    factors = []
    for dim, o, k, s, p in zip(size, out, kernel, stride, pad):
        start = np.arange(o) * s - p
        end = np.minimum(start + k, dim + p)
        factors.append(k / (end - start))
    fix = factors[0]
    for more in factors[1:]:
        fix = np.multiply.outer(fix, more)
    fix = np.asarray(fix, dtype=np.float32)
    return None if np.allclose(fix, 1.0) else fix


def finish_model(graph, opset: int, *, doc: str = "", props: dict[str, str] | None = None, check: bool = True):
    """``graph`` as a ModelProto at ``opset``, produced by modelport, typed with an IR version every
    ONNX Runtime of the last years reads, its metadata set, unused initializers dropped, and checked."""
    from onnx import checker, helper
    used = {name for node in graph.node for name in node.input} | {output.name for output in graph.output}
    unused = [init for init in graph.initializer if init.name not in used]
    for init in unused:  # constants a converter placed but no node reads (a folded value's source)
        graph.initializer.remove(init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="modelport",
                              doc_string=doc)
    model.ir_version = min(model.ir_version, 10)
    if props:
        helper.set_model_props(model, props)
    if check:
        checker.check_model(model)
    return model


def opsets_from(minimum: int) -> Callable[[], tuple[int, int]]:
    """An edge's ``opsets``: from ``minimum`` (what its handlers write) to the newest the installed
    onnx knows (read when asked, so registering the edge imports no onnx)."""
    def opsets() -> tuple[int, int]:
        import onnx.defs
        return minimum, onnx.defs.onnx_opset_version()
    return opsets
