"""Structural ops: constants, shapes, reshaping, slicing, gathering, scattering, padding, reductions.

Where ONNX passes a shape, axes or pads as a tensor, a constant one is read while converting (the
common case, and the one ``torch.export`` can keep dynamic dims through); a computed one is read
when the model runs (runtime.py).
"""
from __future__ import annotations

import torch

from . import runtime
from ..onnx_graph import CONSTANT_SCALAR_ATTRIBUTES
from .dtypes import torch_dtype, tensor_from_numpy
from .elementwise import widened
from .graph import NodeContext, onnx_op


@onnx_op("Constant")
def constant(ctx: NodeContext):
    from onnx import numpy_helper
    attrs = ctx.attrs
    if "value" in attrs:
        return tensor_from_numpy(numpy_helper.to_array(attrs["value"]), attrs["value"].data_type)
    if "sparse_value" in attrs:
        sparse = attrs["sparse_value"]
        dense = torch.zeros(list(sparse.dims), dtype=torch_dtype(sparse.values.data_type))
        values = tensor_from_numpy(numpy_helper.to_array(sparse.values))
        indices = torch.from_numpy(numpy_helper.to_array(sparse.indices).copy())
        if indices.dim() == 1:
            dense.view(-1)[indices] = values
        else:
            dense[tuple(indices.t())] = values
        return dense
    for key, dtype in CONSTANT_SCALAR_ATTRIBUTES:
        if key in attrs:
            return torch.tensor(attrs[key], dtype=getattr(torch, dtype))
    from ...errors import UnsupportedOpError
    raise UnsupportedOpError("Constant", ctx.opset, where=f"node {ctx.name!r}",
                             hint=f"a constant of {sorted(attrs)}: PyTorch tensors cannot hold strings")


@onnx_op("Identity")
def identity(ctx: NodeContext, x):
    return x


@onnx_op("Reshape")
def reshape(ctx: NodeContext, x, shape=None):
    allowzero = bool(ctx.attr("allowzero", 0))
    dims = ctx.attr("shape") if ctx.opset < 5 else ctx.ints(1)
    if dims is None:
        return ctx.call(runtime.reshape, x, shape, allowzero)
    if not allowzero:  # a 0 copies the input's dim (static: the number; dynamic: its traced size)
        shape = ctx.shape(0)
        dims = [(x.shape[i] if shape is None or shape[i] is None else shape[i]) if isinstance(d, int) and d == 0
                else d for i, d in enumerate(dims)]
    return ctx.call(torch.reshape, x, dims)


@onnx_op("Flatten")
def flatten(ctx: NodeContext, x):
    return ctx.call(runtime.flatten, x, ctx.attr("axis", 1))


@onnx_op("Transpose")
def transpose(ctx: NodeContext, x):
    perm = ctx.attr("perm") or list(reversed(range(ctx.rank(0))))
    return ctx.call(torch.permute, x, perm)


@onnx_op("Squeeze")
def squeeze(ctx: NodeContext, x, axes=None):
    chosen = ctx.attr("axes") if ctx.opset < 13 else (ctx.ints(1) if axes is not None and ctx.const(1) is not None
                                                       else axes)
    return ctx.call(runtime.squeeze, x, chosen if not isinstance(chosen, list) or chosen else None)


@onnx_op("Unsqueeze")
def unsqueeze(ctx: NodeContext, x, axes=None):
    chosen = ctx.attr("axes") if ctx.opset < 13 else (ctx.ints(1) if ctx.const(1) is not None else axes)
    return ctx.call(runtime.unsqueeze, x, chosen)


@onnx_op("Concat")
def concat(ctx: NodeContext, *inputs):
    return ctx.call(torch.cat, list(inputs), ctx.attr("axis", 0))


@onnx_op("Split")
def split(ctx: NodeContext, x, sizes=None):
    axis = ctx.attr("axis", 0)
    parts = len(ctx.node.output)
    sizes = ctx.attr("split") if ctx.opset < 13 else (ctx.ints(1) if ctx.const(1) is not None else sizes)
    if sizes is not None and (not isinstance(sizes, list) or sizes):
        result = ctx.call(runtime.split, x, sizes, axis)
    elif ctx.attr("num_outputs"):
        result = ctx.call(runtime.split_even, x, ctx.attr("num_outputs"), axis)
    else:
        result = ctx.call(torch.tensor_split, x, parts, axis)
    return tuple(result[i] for i in range(parts))


@onnx_op("Slice")
def slice_(ctx: NodeContext, x, starts=None, ends=None, axes=None, steps=None):
    if ctx.opset < 10:
        begin, end = ctx.attr("starts"), ctx.attr("ends")
        axis = ctx.attr("axes") or list(range(len(begin)))
        step = [1] * len(begin)
    else:
        begin, end, axis, step = ctx.ints(1), ctx.ints(2), ctx.ints(3), ctx.ints(4)
        if begin is None or end is None or (axes is not None and axis is None) or (steps is not None and step is None):
            return ctx.call(runtime.slice_dynamic, x, starts, ends, axes, steps)
        axis = axis if axis is not None else list(range(len(begin)))
        step = step if step is not None else [1] * len(begin)
    return ctx.call(runtime.slice_axes, x, begin, end, axis, step)


@onnx_op("Gather")
def gather(ctx: NodeContext, x, indices):
    return ctx.call(runtime.gather, x, indices, ctx.attr("axis", 0))


@onnx_op("GatherElements")
def gather_elements(ctx: NodeContext, x, indices):
    return ctx.call(runtime.gather_elements, x, indices, ctx.attr("axis", 0))


@onnx_op("GatherND")
def gather_nd(ctx: NodeContext, x, indices):
    return ctx.call(runtime.gather_nd, x, indices, ctx.attr("batch_dims", 0))


@onnx_op("ScatterElements", "Scatter")
def scatter_elements(ctx: NodeContext, x, indices, updates):
    return ctx.call(runtime.scatter_elements, x, indices, updates, ctx.attr("axis", 0),
                    ctx.attr("reduction", "none"))


@onnx_op("ScatterND")
def scatter_nd(ctx: NodeContext, x, indices, updates):
    return ctx.call(runtime.scatter_nd, x, indices, updates, ctx.attr("reduction", "none"))


@onnx_op("Expand")
def expand(ctx: NodeContext, x, shape):
    dims = ctx.ints(1)
    return ctx.call(runtime.expand, x, shape if dims is None else dims)


@onnx_op("Tile")
def tile(ctx: NodeContext, x, repeats):
    counts = ctx.ints(1)
    return ctx.call(torch.Tensor.repeat, x, counts) if counts is not None else ctx.call(runtime.tile, x, repeats)


@onnx_op("Pad")
def pad(ctx: NodeContext, x, pads=None, value=None, axes=None):
    mode = ctx.attr("mode", "constant")
    if ctx.opset < 11:
        return ctx.call(runtime.pad, x, ctx.attr("pads"), mode, ctx.attr("value", 0.0))
    amounts = ctx.ints(1) if ctx.const(1) is not None else pads
    chosen = ctx.ints(3) if ctx.const(3) is not None else axes
    constant = ctx.const(2)  # a constant fill is a Python number: read from a buffer it is data to torch.export
    fill = constant.reshape(-1)[0].item() if constant is not None and constant.numel() == 1 else value
    return ctx.call(runtime.pad, x, amounts, mode, fill, chosen)


@onnx_op("Shape")
def shape(ctx: NodeContext, x):
    start, end = ctx.attr("start", 0), ctx.attr("end")
    dims = ctx.shape(0)
    if dims is not None and None not in dims:
        return torch.tensor(dims[start:end], dtype=torch.int64)
    return ctx.call(runtime.shape_tensor, x, start, end)


@onnx_op("Size")
def size(ctx: NodeContext, x):
    dims = ctx.shape(0)
    if dims is not None and None not in dims:
        count = 1
        for d in dims:
            count *= d
        return torch.tensor(count, dtype=torch.int64)
    return ctx.call(torch.tensor, ctx.call(torch.numel, x), dtype=torch.int64)


@onnx_op("ConstantOfShape")
def constant_of_shape(ctx: NodeContext, shape):
    from onnx import numpy_helper
    value = ctx.attr("value")
    fill = tensor_from_numpy(numpy_helper.to_array(value), value.data_type) if value is not None else \
        torch.zeros(1, dtype=torch.float32)
    dims = ctx.ints(0)
    if dims is not None:
        return ctx.call(torch.full, dims, fill.reshape(-1)[0].item(), dtype=fill.dtype)
    return ctx.call(runtime.constant_of_shape, shape, fill)


@onnx_op("Range")
def range_(ctx: NodeContext, start, limit, delta):
    if all(isinstance(v, torch.Tensor) for v in (start, limit, delta)):
        return runtime.range_(start, limit, delta)
    bounds = [ctx.ints(i) for i in range(3)]
    if all(b is not None and len(b) == 1 for b in bounds):  # folded sizes: an arange over them
        return ctx.call(torch.arange, bounds[0][0], bounds[1][0], bounds[2][0], dtype=torch.int64)
    return ctx.call(runtime.range_, start, limit, delta)


@onnx_op("OneHot")
def one_hot(ctx: NodeContext, indices, depth, values):
    return ctx.call(runtime.one_hot, indices, depth, values, ctx.attr("axis", -1))


@onnx_op("TopK")
def top_k(ctx: NodeContext, x, k=None):
    count = ctx.attr("k") if ctx.opset < 10 else ctx.ints(1) if ctx.const(1) is not None else k
    result = ctx.call(runtime.top_k, x, count, ctx.attr("axis", -1), bool(ctx.attr("largest", 1)),
                      bool(ctx.attr("sorted", 1)))
    return result[0], result[1]


@onnx_op("ArgMax", "ArgMin")
def arg_reduce(ctx: NodeContext, x):
    return ctx.call(runtime.arg_reduce, x, ctx.attr("axis", 0), bool(ctx.attr("keepdims", 1)),
                    bool(ctx.attr("select_last_index", 0)), ctx.node.op_type == "ArgMax")


_REDUCE = {"ReduceSum": "sum", "ReduceMean": "mean", "ReduceMax": "max", "ReduceMin": "min", "ReduceProd": "prod",
           "ReduceL1": "l1", "ReduceL2": "l2", "ReduceSumSquare": "sum_square", "ReduceLogSum": "log_sum",
           "ReduceLogSumExp": "log_sum_exp"}
# The opset from which each reduction takes its axes as an input instead of an attribute.
_AXES_INPUT = {"ReduceSum": 13}


@onnx_op(*_REDUCE)
@widened
def reduce(ctx: NodeContext, x, axes=None):
    noop = bool(ctx.attr("noop_with_empty_axes", 0))
    if ctx.opset >= _AXES_INPUT.get(ctx.node.op_type, 18):
        chosen = ctx.ints(1) if ctx.const(1) is not None else axes
    else:
        chosen, noop = ctx.attr("axes"), False
    kind, keep = _REDUCE[ctx.node.op_type], bool(ctx.attr("keepdims", 1))
    simple = {"sum": torch.sum, "mean": torch.mean, "max": torch.amax, "min": torch.amin}.get(kind)
    shape = ctx.shape(0)
    if (simple is not None and isinstance(chosen, list) and chosen and shape is not None
            and all(shape[a] for a in chosen if -len(shape) <= a < len(shape))
            and ctx.dtype(0) is not None and ctx.dtype(0).is_floating_point):
        return ctx.call(simple, x, list(chosen), keepdim=keep)  # the readable form, for a non-empty float input
    return ctx.call(runtime.reduce, x, kind, chosen, keep, noop)


@onnx_op("CumSum")
def cumsum(ctx: NodeContext, x, axis):
    return ctx.call(runtime.cumsum, x, axis, bool(ctx.attr("exclusive", 0)), bool(ctx.attr("reverse", 0)))


@onnx_op("NonZero")
def non_zero(ctx: NodeContext, x):
    if ctx.rank(0) == 0:
        return ctx.call(torch.Tensor.reshape, ctx.call(torch.nonzero, ctx.call(torch.Tensor.reshape, x, [1])), [0, -1])
    return ctx.call(torch.Tensor.t, ctx.call(torch.nonzero, x))


@onnx_op("Trilu")
def trilu(ctx: NodeContext, x, k=None):
    return ctx.call(runtime.trilu, x, 0 if k is None else k, bool(ctx.attr("upper", 1)))


@onnx_op("EyeLike")
def eye_like(ctx: NodeContext, x):
    code = ctx.attr("dtype") or ctx.onnx_type(0)
    return ctx.call(runtime.eye_like, x, ctx.attr("k", 0), torch_dtype(code))


@onnx_op("DepthToSpace")
def depth_to_space(ctx: NodeContext, x):
    return ctx.call(runtime.depth_to_space, x, ctx.attr("blocksize"), ctx.attr("mode", "DCR"))


@onnx_op("SpaceToDepth")
def space_to_depth(ctx: NodeContext, x):
    return ctx.call(runtime.space_to_depth, x, ctx.attr("blocksize"), ctx.attr("mode", "DCR"))


@onnx_op("Compress")
def compress(ctx: NodeContext, x, condition):
    axis = ctx.attr("axis")
    return ctx.call(runtime.compress, x, condition, axis)


@onnx_op("Unique")
def unique(ctx: NodeContext, x):
    axis = ctx.attr("axis")
    result = ctx.call(runtime.unique, x, axis, bool(ctx.attr("sorted", 1)))
    return tuple(result[i] for i in range(4))


@onnx_op("ReverseSequence")
def reverse_sequence(ctx: NodeContext, x, lengths):
    return ctx.call(runtime.reverse_sequence, x, lengths, ctx.attr("batch_axis", 1), ctx.attr("time_axis", 0))
