"""Shape arithmetic kept symbolic while converting, so dynamic dims survive ``torch.export``.

Exporters write a dynamic reshape as Shape -> Gather -> Unsqueeze -> Concat -> Reshape. Computed as
tensors, the final Reshape would read its dims out of a tensor (``.tolist()``), which torch.export
can only treat as unknown data. Instead, Shape of a value with dynamic dims gives a
:class:`ShapeValue`: one entry per element, a Python int where the dim is static, else the traced
``x.size(i)``. The ops that shape arithmetic uses fold such values element by element (FOLDS
below); the ops that take a shape (Reshape, Expand, ConstantOfShape, Slice, ...) read the entries
through ``NodeContext.ints`` and pass them on as sizes. Any other op gets the value as a tensor.
"""
from __future__ import annotations

import operator
from typing import Any, Callable

import torch
import torch.fx as fx

# graph.NodeContext, which the folds receive (not imported: graph.py imports this module).
NodeContext = Any


def is_traced(value) -> bool:
    return isinstance(value, fx.Proxy)


class ShapeValue:
    """A 0-d or 1-d integer ONNX value known element by element: ints, or traced sizes."""

    def __init__(self, items: list, scalar: bool = False):
        self.items = list(items)
        self.scalar = scalar

    @property
    def static(self) -> bool:
        return not any(is_traced(item) for item in self.items)

    def tensor(self) -> torch.Tensor:
        values = torch.tensor(self.items, dtype=torch.int64)
        return values.reshape(()) if self.scalar else values




def settle(value):
    """A ShapeValue whose entries are all ints becomes a constant tensor."""
    if isinstance(value, ShapeValue) and value.static:
        return value.tensor()
    return value


def sizes_tensor(items: list, scalar: bool) -> torch.Tensor:
    """A ShapeValue as a tensor when the model runs (for an op that needs it as data)."""
    values = torch.stack([torch.as_tensor(item, dtype=torch.int64) for item in items]) if items else \
        torch.zeros(0, dtype=torch.int64)
    return values.reshape(()) if scalar else values


def materialize(ctx: NodeContext, value):
    if isinstance(value, ShapeValue):
        return ctx.call(sizes_tensor, value.items, value.scalar)
    return value


def _entries(value) -> list | None:
    """The elements of a ShapeValue, or of a small constant integer tensor; None otherwise."""
    if isinstance(value, ShapeValue):
        return value.items
    if isinstance(value, torch.Tensor) and value.dim() <= 1 and not value.is_floating_point() and value.numel() <= 64:
        return [int(v) for v in value.reshape(-1).tolist()]
    return None


def _scalar(value) -> bool:
    return value.scalar if isinstance(value, ShapeValue) else value.dim() == 0


def fold_shape(ctx: NodeContext, x):
    """Shape: the static dims as ints, the dynamic ones as traced sizes; None when all are static
    (the handler then gives a constant) or the rank is unknown."""
    if isinstance(x, ShapeValue):  # the shape of a shape: its length, always known
        return torch.tensor([] if x.scalar else [len(x.items)], dtype=torch.int64)
    dims = ctx.shape(0)
    if dims is None or not is_traced(x) or None not in dims:
        return None
    rank = len(dims)
    start, end = ctx.attr("start", 0), ctx.attr("end", rank)
    start, end = max(start + rank if start < 0 else start, 0), min(end + rank if end < 0 else end, rank)
    return ShapeValue([d if d is not None else x.size(i) for i, d in enumerate(dims)][start:end])


def fold_gather(ctx: NodeContext, data, indices):
    items, picks = _entries(data), _entries(indices)
    if items is None or picks is None or not isinstance(indices, torch.Tensor) or indices.dim() > 1:
        return None
    chosen = [items[i] for i in picks]
    return ShapeValue(chosen, scalar=indices.dim() == 0)


def fold_slice(ctx: NodeContext, data, starts=None, ends=None, axes=None, steps=None):
    if ctx.opset < 10:
        begin, end, step = ctx.attr("starts")[0], ctx.attr("ends")[0], 1
    else:
        begin, end = ctx.ints(1), ctx.ints(2)
        if begin is None or end is None or any(is_traced(v) for v in begin + end):
            return None
        step = ctx.ints(4)[0] if steps is not None and ctx.ints(4) is not None else 1
        begin, end = begin[0], end[0]
    items = data.items
    return ShapeValue(items[slice(begin, end, step)])


def fold_concat(ctx: NodeContext, *inputs):
    parts = [_entries(value) for value in inputs]
    if any(part is None for part in parts):
        return None
    return ShapeValue([item for part in parts for item in part])


def fold_unsqueeze(ctx: NodeContext, data, axes=None):
    if isinstance(data, ShapeValue) and data.scalar:
        return ShapeValue(data.items)
    return None


def fold_squeeze(ctx: NodeContext, data, axes=None):
    if isinstance(data, ShapeValue) and not data.scalar and len(data.items) == 1:
        return ShapeValue(data.items, scalar=True)
    return None


def fold_cast(ctx: NodeContext, data, *rest):
    to = ctx.attr("to") if ctx.node.op_type == "Cast" else ctx.onnx_type(1)
    return data if to in (6, 7) else None  # int32 / int64: sizes as they are


def fold_identity(ctx: NodeContext, data):
    return data


def fold_reshape(ctx: NodeContext, data, shape):
    """A shape reshaped to one dim ([-1] or [n]) or to a scalar stays element by element."""
    target = _entries(shape)
    if not isinstance(data, ShapeValue) or target is None or any(is_traced(v) for v in target):
        return None
    count = len(data.items)
    if target in ([-1], [count]):
        return ShapeValue(data.items)
    if target == [] and count == 1:
        return ShapeValue(data.items, scalar=True)
    return None


# A size is never negative: comparing one with a negative constant is decided without its value.
_COMPARE: dict[str, Callable] = {"Equal": operator.eq, "Less": operator.lt, "Greater": operator.gt,
                                 "LessOrEqual": operator.le, "GreaterOrEqual": operator.ge}
_SIZE_VS_NEGATIVE = {"Equal": False, "Less": False, "LessOrEqual": False, "Greater": True, "GreaterOrEqual": True}


def fold_compare(ctx: NodeContext, a, b):
    """Sizes compared with constants (the TorchScript exporter's ``expand(n, -1)``: Where(Equal(shape,
    -1), 1, shape)): a constant boolean tensor when every entry is decided, else None."""
    left, right = _entries(a), _entries(b)
    if left is None or right is None or (len(left) != len(right) and 1 not in (len(left), len(right))):
        return None
    count = max(len(left), len(right))
    left = left * count if len(left) == 1 else left
    right = right * count if len(right) == 1 else right
    op, decided = ctx.node.op_type, []
    for x, y in zip(left, right):
        if not is_traced(x) and not is_traced(y):
            decided.append(_COMPARE[op](x, y))
        elif is_traced(x) and not is_traced(y) and y < 0:
            decided.append(_SIZE_VS_NEGATIVE[op])
        elif is_traced(y) and not is_traced(x) and x < 0:  # constant on the left: the comparison mirrored
            decided.append(not _SIZE_VS_NEGATIVE[op] if op != "Equal" else False)
        else:
            return None
    result = torch.tensor(decided, dtype=torch.bool)
    return result.reshape(()) if _scalar(a) and _scalar(b) else result


def fold_where(ctx: NodeContext, condition, a, b):
    """Where with a constant condition over sizes: the chosen entries."""
    picks, left, right = _entries(condition), _entries(a), _entries(b)
    if picks is None or left is None or right is None or not isinstance(condition, torch.Tensor):
        return None
    count = max(len(picks), len(left), len(right))
    if any(len(v) not in (1, count) for v in (picks, left, right)):
        return None
    widen = (lambda v: v * count if len(v) == 1 else v)
    chosen = [x if c else y for c, x, y in zip(widen(picks), widen(left), widen(right))]
    return ShapeValue(chosen, scalar=condition.dim() == 0 and _scalar(a) and _scalar(b))


_ARITHMETIC: dict[str, Callable] = {"Add": operator.add, "Sub": operator.sub, "Mul": operator.mul,
                                    "Div": operator.floordiv, "Mod": operator.mod}


def fold_arithmetic(ctx: NodeContext, a, b):
    left, right = _entries(a), _entries(b)
    if left is None or right is None:
        return None
    if ctx.node.op_type == "Div" and any(not isinstance(v, int) or v <= 0 for v in right):
        return None  # sizes divide exactly by positive constants; anything else is data
    if len(left) != len(right) and 1 not in (len(left), len(right)):
        return None
    count = max(len(left), len(right))
    left = left * count if len(left) == 1 and count > 1 else left
    right = right * count if len(right) == 1 and count > 1 else right
    op = _ARITHMETIC[ctx.node.op_type]
    return ShapeValue([op(x, y) for x, y in zip(left, right)], scalar=_scalar(a) and _scalar(b))


_REDUCTIONS: dict[str, tuple[Callable, int]] = {"ReduceProd": (operator.mul, 1), "ReduceSum": (operator.add, 0)}


def fold_reduce(ctx: NodeContext, data, axes=None):
    """The product or sum of a 1-d shape's entries (tf2onnx's Tensordot: the rows a Dense layer
    sees as the product of every dim but the last)."""
    if not isinstance(data, ShapeValue) or data.scalar:
        return None
    chosen = ctx.attr("axes") if axes is None else ctx.ints(1)
    if chosen is None and axes is not None:
        return None
    if not chosen:
        if axes is not None and ctx.attr("noop_with_empty_axes", 0):
            return data
    elif list(chosen) not in ([0], [-1]):
        return None
    combine, total = _REDUCTIONS[ctx.node.op_type]
    for item in data.items:
        total = combine(total, item)
    return ShapeValue([total], scalar=not ctx.attr("keepdims", 1))


def _fold_size(x):
    """Size of a shape: its length."""
    if isinstance(x, ShapeValue):
        return torch.tensor(1 if x.scalar else len(x.items), dtype=torch.int64)
    return None


FOLDS: dict[str, Callable[..., Any]] = {
    "Gather": fold_gather, "Slice": fold_slice, "Concat": fold_concat, "Unsqueeze": fold_unsqueeze,
    "Squeeze": fold_squeeze, "Cast": fold_cast, "CastLike": fold_cast, "Identity": fold_identity,
    "Reshape": fold_reshape, "Where": fold_where,
    **{op: fold_arithmetic for op in _ARITHMETIC},
    **{op: fold_reduce for op in _REDUCTIONS},
    **{op: fold_compare for op in _COMPARE},
}
# Ops whose handlers read a ShapeValue input as sizes (NodeContext.ints), by input position.
READS_SIZES: dict[str, set[int]] = {"Reshape": {1}, "Expand": {1}, "ConstantOfShape": {0}, "Tile": {1},
                                    "Slice": {1, 2}, "Range": {0, 1, 2}, "Resize": {3}}


def fold_shapes(ctx: NodeContext, domain: str, inputs: list):
    """Shape arithmetic on dynamic dims, kept symbolic (shapes.py): the folded value, or None when
    the handler is to run (with folded shapes made tensors, unless it reads them as sizes)."""
    op = ctx.node.op_type if domain == "" else None
    if op == "Shape" or op == "Size":
        folded = fold_shape(ctx, inputs[0]) if op == "Shape" else _fold_size(inputs[0])
        return None if folded is None else settle(folded)
    if not any(isinstance(value, ShapeValue) for value in inputs):
        return None
    fold = FOLDS.get(op)
    folded = fold(ctx, *inputs) if fold is not None else None
    if folded is not None:
        return settle(folded)
    keep = READS_SIZES.get(op, set())
    ctx.inputs = [value if i in keep else materialize(ctx, value) for i, value in enumerate(inputs)]
    return None
