"""Shape arithmetic folded while converting: exporters compute reshape targets at run time
(Shape -> Slice/Gather -> Mul -> Concat -> Reshape), which hides from TensorFlow dims that are in
fact fixed. TFLite needs them (a recurrent layer after such a reshape is unrolled only over a
known length). Each small integer vector is followed here as a list whose entries are ints where
known and None where they depend on a dynamic dim.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

# A partially known integer scalar (rank 0) or vector (rank 1).
Partial = tuple[int, list[Optional[int]]]


def initial(array) -> Partial | None:
    """A constant's value, when it is a small integer scalar or vector."""
    array = np.asarray(array)
    if array.dtype.kind not in "iu" or array.ndim > 1 or array.size > 16:
        return None
    return array.ndim, [int(v) for v in array.reshape(-1)]


def _elementwise(a: Partial, b: Partial, op: Callable[[int, int], int]) -> Partial | None:
    (rank_a, xs), (rank_b, ys) = a, b
    if len(xs) != len(ys) and 1 not in (len(xs), len(ys)):
        return None
    n = max(len(xs), len(ys))
    xs, ys = (xs * n if len(xs) == 1 else xs), (ys * n if len(ys) == 1 else ys)
    return max(rank_a, rank_b), [None if x is None or y is None else op(x, y) for x, y in zip(xs, ys)]


def _div(x: int, y: int) -> int:
    return int(x / y) if y else 0  # ONNX integer division truncates


_ARITHMETIC = {"Add": lambda x, y: x + y, "Sub": lambda x, y: x - y, "Mul": lambda x, y: x * y, "Div": _div}


def fold(node, attrs: dict, partial_of: Callable[[str], Partial | None], const_of: Callable[[str], object],
         static_shape_of: Callable[[str], list | None]) -> Partial | None:
    """The partially known value of ``node``'s first output, when it is shape arithmetic."""
    op = node.op_type
    inputs = list(node.input)
    if op == "Shape":
        dims = static_shape_of(inputs[0])
        if dims is None:
            return None
        start, end = attrs.get("start", 0), attrs.get("end")
        return 1, list(dims)[start:end]
    if op in ("Cast", "Identity"):
        return partial_of(inputs[0])
    if op in _ARITHMETIC:
        a, b = partial_of(inputs[0]), partial_of(inputs[1])
        return _elementwise(a, b, _ARITHMETIC[op]) if a and b else None
    if op == "Concat":
        parts = [partial_of(name) for name in inputs]
        if any(p is None or p[0] != 1 for p in parts):
            return None
        return 1, [v for _, values in parts for v in values]
    if op in ("Unsqueeze", "Squeeze", "Reshape"):
        value = partial_of(inputs[0])
        if value is None or len(value[1]) != 1:
            return None
        return (1 if op != "Squeeze" else 0), value[1]
    if op == "Gather":
        value, index = partial_of(inputs[0]), const_of(inputs[1])
        if value is None or index is None or value[0] != 1:
            return None
        index = np.asarray(index)
        picked = [value[1][int(i)] for i in index.reshape(-1)]
        return index.ndim, picked
    if op == "Slice":
        value = partial_of(inputs[0])
        starts, ends = (const_of(inputs[i]) if len(inputs) > i and inputs[i] else None for i in (1, 2))
        steps = const_of(inputs[4]) if len(inputs) > 4 and inputs[4] else None
        if value is None or value[0] != 1 or starts is None or ends is None:
            return None
        step = int(np.asarray(steps).reshape(-1)[0]) if steps is not None else 1
        start, end = int(np.asarray(starts).reshape(-1)[0]), int(np.asarray(ends).reshape(-1)[0])
        length = len(value[1])
        start, end = max(min(start, length), -length - 1), max(min(end, length), -length - 1)
        return 1, value[1][start:end:step]
    return None

