"""ONNX ops that move, select and shape tensors, and the reductions."""
from __future__ import annotations

import numpy as np

from .graph import NodeContext, constant_value, onnx_op
from .layout import AWARE, Laid, align, laid, logical, rank_of

def _tf():
    import tensorflow as tf
    return tf


def _axes(ctx: NodeContext, index: int = 1, attr: str = "axes") -> list[int] | None:
    """Axes given as an attribute (older opsets) or as a constant input (newer ones)."""
    value = ctx.const(index)
    if value is not None:
        return [int(a) for a in np.asarray(value).ravel()]
    if ctx.input(index) is not None:
        return None  # computed at run time
    given = ctx.attr(attr)
    return None if given is None else [int(a) for a in given]


@onnx_op("Constant")
def convert_constant(ctx: NodeContext):
    """ONNX Constant (value, value_float(s), value_int(s), value_string(s))."""
    return _tf().constant(constant_value(ctx.attrs))


@onnx_op("ConstantOfShape", since=9)
def convert_constant_of_shape(ctx: NodeContext):
    """ONNX ConstantOfShape: a tensor of the given shape filled with ``value`` (0.0 by default)."""
    from onnx import numpy_helper
    tf = _tf()
    value = numpy_helper.to_array(ctx.attr("value")) if ctx.attr("value") is not None else np.zeros(1, np.float32)
    return tf.fill(tf.cast(ctx.inputs[0], tf.int64), tf.constant(value.ravel()[0], dtype=value.dtype))


@onnx_op("Shape")
def convert_shape(ctx: NodeContext):
    """ONNX Shape, with the start/end slice of opset 15."""
    tf = _tf()
    shape = tf.shape(ctx.inputs[0], out_type=tf.int64)
    start, end = ctx.attr("start", 0), ctx.attr("end")
    return shape[start:end] if (start or end is not None) else shape


@onnx_op("Size")
def convert_size(ctx: NodeContext):
    """ONNX Size: the element count, int64."""
    tf = _tf()
    return tf.size(ctx.inputs[0], out_type=tf.int64)


@onnx_op("Reshape", since=5)
def convert_reshape(ctx: NodeContext):
    """ONNX Reshape: 0 copies the input dim (unless allowzero), -1 is inferred."""
    tf = _tf()
    x, shape = ctx.inputs[0], tf.cast(ctx.inputs[1], tf.int64)
    static = _static_target(ctx, x)
    if static is not None:
        return tf.reshape(x, static)
    if not ctx.attr("allowzero", 0):
        rank = tf.size(shape)
        current = tf.shape(x, out_type=tf.int64)
        padded = tf.concat([current, tf.zeros(tf.maximum(rank - tf.size(current), 0), tf.int64)], 0)[:rank]
        shape = tf.where(tf.equal(shape, 0), padded, shape)
    return tf.reshape(x, shape)


def _static_target(ctx: NodeContext, x) -> list[int] | None:
    """The reshape target as a list with at most one -1, when the shape arithmetic before it fixes
    the other dims (TF then knows them too)."""
    target = ctx.known(1)
    if target is None:
        return None
    dims = x.shape.as_list() if x.shape.rank is not None else []
    values = []
    for i, v in enumerate(target):
        if v == 0 and not ctx.attr("allowzero", 0):
            v = dims[i] if i < len(dims) else None
        values.append(-1 if v is None else v)
    return values if values.count(-1) <= 1 else None


@onnx_op("Flatten")
def convert_flatten(ctx: NodeContext):
    """ONNX Flatten to 2-D at ``axis``."""
    tf = _tf()
    x = ctx.inputs[0]
    axis = ctx.attr("axis", 1)
    shape = tf.shape(x, out_type=tf.int64)
    axis = axis + tf.size(shape, out_type=tf.int64) if axis < 0 else axis
    return tf.reshape(x, tf.stack([tf.reduce_prod(shape[:axis]), tf.reduce_prod(shape[axis:])]))


@onnx_op("Transpose")
def convert_transpose(ctx: NodeContext):
    """ONNX Transpose (reversed dims without ``perm``)."""
    perm = ctx.attr("perm")
    return _tf().transpose(ctx.inputs[0], perm=list(perm) if perm is not None else None)


def _axes_mask(tf, axes, rank: int):
    """A boolean vector over ``rank`` dims, true at ``axes`` (a tensor; negative axes wrap)."""
    axes = tf.cast(tf.reshape(axes, [-1]), tf.int64)
    axes = tf.where(axes < 0, axes + rank, axes)
    return tf.reduce_any(tf.equal(tf.range(rank, dtype=tf.int64)[:, None], axes[None, :]), axis=1)


@onnx_op("Squeeze")
def convert_squeeze(ctx: NodeContext):
    """ONNX Squeeze: the listed axes (attribute, constant or computed), or every unit dim."""
    tf = _tf()
    x = ctx.inputs[0]
    axes = _axes(ctx)
    if axes is None and ctx.input(1) is not None:  # computed axes: keep the other dims
        keep = tf.logical_not(_axes_mask(tf, ctx.inputs[1], len(x.shape)))
        return tf.reshape(x, tf.boolean_mask(tf.shape(x, out_type=tf.int64), keep))
    return tf.squeeze(x, axis=axes if axes else None)


@onnx_op("Unsqueeze")
def convert_unsqueeze(ctx: NodeContext):
    """ONNX Unsqueeze: insert unit dims at the axes of the output."""
    tf = _tf()
    x = ctx.inputs[0]
    axes = _axes(ctx)
    if axes is None:  # computed axes: the output rank is known from the axes' length
        given = ctx.inputs[1]
        rank = len(x.shape) + int(given.shape[0])
        inserted = _axes_mask(tf, given, rank)
        positions = tf.cumsum(tf.cast(tf.logical_not(inserted), tf.int64)) - 1
        source = tf.gather(tf.concat([tf.shape(x, out_type=tf.int64), [1]], 0),
                           tf.where(inserted, tf.cast(tf.size(tf.shape(x)), tf.int64), positions))
        return tf.reshape(x, source)
    rank = len(x.shape) + len(axes)
    for axis in sorted(a + rank if a < 0 else a for a in axes):
        x = tf.expand_dims(x, axis)
    return x


@onnx_op("Concat", since=4, layout=AWARE)
def convert_concat(ctx: NodeContext):
    """ONNX Concat along ``axis``, in the order its first laid-out input is kept."""
    tf = _tf()
    values, order = align(tf, [v for v in ctx.inputs if v is not None])  # same rank: align only permutes
    if order is None:
        return tf.concat(values, axis=ctx.attr("axis"))
    return Laid(tf.concat(values, axis=Laid(values[0], order).axis(ctx.attr("axis"))), order)


@onnx_op("Split", since=2)
def convert_split(ctx: NodeContext):
    """ONNX Split: sizes from the attribute or input, or into equal parts (num_outputs in 18)."""
    tf = _tf()
    x, axis = ctx.inputs[0], ctx.attr("axis", 0)
    sizes = ctx.const(1) if ctx.opset >= 13 else ctx.attr("split")
    parts = len(ctx.node.output)
    if sizes is None and ctx.opset >= 13 and ctx.input(1) is not None:  # sizes computed at run time
        return tf.split(x, tf.reshape(ctx.inputs[1], [-1]), num=parts, axis=axis)
    if (sizes is None or len(np.asarray(sizes)) == 0) and x.shape[axis] is None:  # equal parts of a dynamic dim
        length = tf.shape(x)[axis]
        chunk = -(-length // parts)
        return tf.split(x, tf.stack([tf.minimum(chunk, tf.maximum(length - i * chunk, 0)) for i in range(parts)]),
                        num=parts, axis=axis)
    if sizes is None or len(np.asarray(sizes)) == 0:
        length = x.shape[axis]
        chunk = -(-length // parts)  # ceil: the last part may be smaller (opset 18)
        sizes = [min(chunk, length - i * chunk) for i in range(parts)]
    return tf.split(x, [int(s) for s in np.asarray(sizes).ravel()], axis=axis)


@onnx_op("Slice")
def convert_slice(ctx: NodeContext):
    """ONNX Slice: starts/ends/axes/steps from attributes (opset < 10) or inputs, clamped like numpy."""
    x = ctx.inputs[0]
    if ctx.opset < 10:
        starts, ends, axes, steps = ctx.attr("starts"), ctx.attr("ends"), ctx.attr("axes"), None
    else:
        starts, ends = ctx.const(1), ctx.const(2)
        axes, steps = ctx.const(3), ctx.const(4)
        if starts is None or ends is None:
            return _dynamic_slice(ctx)
    rank = len(x.shape)
    axes = list(range(len(starts))) if axes is None else [int(a) + rank if a < 0 else int(a) for a in axes]
    steps = [1] * len(axes) if steps is None else [int(s) for s in steps]
    index = [slice(None)] * rank
    for axis, start, end, step in zip(axes, starts, ends, steps):
        big = np.iinfo(np.int64).max
        start = None if (step > 0 and start <= -big) or (step < 0 and start >= big) else int(start)
        end = None if (step > 0 and end >= big) or (step < 0 and end <= -big) else int(end)
        index[axis] = slice(start, end, step)
    return x[tuple(index)]


def _dynamic_slice(ctx: NodeContext):
    """Slice with starts/ends computed at run time: the full begin/end/stride vectors are put
    together from them (an axis not sliced runs from 0 to the end). With constant axes and steps
    (what exporters write) the vectors are concatenated piece by piece; otherwise scattered."""
    tf = _tf()
    x = ctx.inputs[0]
    rank = len(x.shape)
    starts, ends = tf.cast(tf.reshape(ctx.inputs[1], [-1]), tf.int64), tf.cast(tf.reshape(ctx.inputs[2], [-1]), tf.int64)
    # Bounds kept within int32: TFLite's STRIDED_SLICE and TF.js take int32 indices, and ONNX's "to
    # the end" (INT64_MAX) cast to int32 is -1, which would drop the last element.
    limit = tf.constant(np.iinfo(np.int32).max, tf.int64)
    starts, ends = tf.clip_by_value(starts, -limit, limit), tf.clip_by_value(ends, -limit, limit)
    const_axes, const_steps = ctx.const(3) if ctx.input(3) is not None else None, ctx.const(4)
    counted = starts.shape[0] is not None or const_axes is not None
    if counted and (ctx.input(3) is None or const_axes is not None) and (ctx.input(4) is None or const_steps is not None):
        count = int(starts.shape[0]) if starts.shape[0] is not None else len(const_axes)
        axes = list(range(count)) if const_axes is None else [int(a) % rank for a in const_axes]
        steps = [1] * len(axes) if const_steps is None else [int(s) for s in const_steps]
        begin, end, stride = [], [], []
        for axis in range(rank):
            if axis in axes:
                i = axes.index(axis)
                begin.append(starts[i:i + 1])
                end.append(ends[i:i + 1])
                stride.append(steps[i])
            else:
                begin.append(tf.zeros([1], tf.int64))
                end.append(tf.reshape(limit, [1]))
                stride.append(1)
        return tf.strided_slice(x, tf.concat(begin, 0), tf.concat(end, 0), tf.constant(stride, tf.int64))
    axes = ctx.input(3)
    axes = tf.range(tf.size(starts, out_type=tf.int64)) if axes is None else tf.cast(tf.reshape(axes, [-1]), tf.int64)
    axes = tf.where(axes < 0, axes + rank, axes)[:, None]
    steps = ctx.input(4)
    steps = tf.ones_like(starts) if steps is None else tf.cast(tf.reshape(steps, [-1]), tf.int64)
    begin = tf.tensor_scatter_nd_update(tf.zeros([rank], tf.int64), axes, starts)
    end = tf.tensor_scatter_nd_update(tf.fill([rank], limit), axes, ends)
    stride = tf.tensor_scatter_nd_update(tf.ones([rank], tf.int64), axes, steps)
    return tf.strided_slice(x, begin, end, stride)


@onnx_op("Gather")
def convert_gather(ctx: NodeContext):
    """ONNX Gather along ``axis``; negative indices count from the end."""
    tf = _tf()
    x, indices = ctx.inputs[0], tf.cast(ctx.inputs[1], tf.int64)
    axis = ctx.attr("axis", 0)
    size = tf.shape(x, out_type=tf.int64)[axis]
    return tf.gather(x, tf.where(indices < 0, indices + size, indices), axis=axis)


@onnx_op("GatherElements", since=11)
def convert_gather_elements(ctx: NodeContext):
    """ONNX GatherElements (take_along_axis)."""
    tf = _tf()
    x, indices = ctx.inputs[0], tf.cast(ctx.inputs[1], tf.int64)
    axis = ctx.attr("axis", 0)
    size = tf.shape(x, out_type=tf.int64)[axis]
    return tf.experimental.numpy.take_along_axis(x, tf.where(indices < 0, indices + size, indices), axis=axis)


@onnx_op("Expand", since=8)
def convert_expand(ctx: NodeContext):
    """ONNX Expand: bidirectional broadcast to the shape."""
    tf = _tf()
    x, shape = ctx.inputs[0], tf.cast(ctx.inputs[1], tf.int64)
    return x * tf.ones(shape, dtype=x.dtype) if x.dtype != tf.bool else tf.logical_and(x, tf.ones(shape, tf.bool))


@onnx_op("Tile", since=6)
def convert_tile(ctx: NodeContext):
    """ONNX Tile."""
    tf = _tf()
    return tf.tile(ctx.inputs[0], tf.cast(ctx.inputs[1], tf.int64))


@onnx_op("Range", since=11)
def convert_range(ctx: NodeContext):
    """ONNX Range(start, limit, delta)."""
    tf = _tf()
    start, limit, delta = (tf.reshape(v, []) for v in ctx.inputs[:3])  # one-element tensors too
    return tf.range(start, limit, delta, dtype=start.dtype)


@onnx_op("Pad", since=2)
def convert_pad(ctx: NodeContext):
    """ONNX Pad: constant, reflect or edge; pads as attribute (before 11) or input, axes in 18."""
    tf = _tf()
    x = ctx.inputs[0]
    rank = len(x.shape)
    pads = ctx.attr("pads") if ctx.opset < 11 else ctx.const(1)
    if pads is None:  # computed pads (non-negative): TF pads take a tensor
        return _pad_computed(ctx)
    pads = [int(p) for p in np.asarray(pads).ravel()]
    axes = ctx.const(3) if ctx.opset >= 18 else None
    axes = list(range(rank)) if axes is None else [int(a) + rank if a < 0 else int(a) for a in axes]
    paddings = [[0, 0] for _ in range(rank)]
    half = len(pads) // 2
    for i, axis in enumerate(axes):
        paddings[axis] = [pads[i], pads[i + half]]
    mode = ctx.attr("mode", "constant")
    if any(p < 0 for pair in paddings for p in pair):  # negative pads crop
        begin = [max(0, -a) for a, _ in paddings]
        size = [d - max(0, -a) - max(0, -b) for d, (a, b) in zip(tf.shape(x), paddings)]
        x = tf.slice(x, begin, size)
        paddings = [[max(0, a), max(0, b)] for a, b in paddings]
    if mode == "constant":
        value = ctx.attr("value", 0.0) if ctx.opset < 11 else ctx.input(2)
        value = tf.cast(value if value is not None else 0, x.dtype)
        return tf.pad(x, paddings, constant_values=tf.reshape(value, []))
    if mode == "reflect":
        return tf.pad(x, paddings, mode="REFLECT")
    if mode in ("edge", "wrap"):
        return _gather_pad(x, paddings, mode)
    from ...errors import UnsupportedOpError
    raise UnsupportedOpError(f"Pad mode {mode!r}", ctx.opset, ["constant", "reflect", "edge", "wrap"])


def _pad_computed(ctx: NodeContext):
    """Pad with pads (and maybe axes) computed at run time."""
    tf = _tf()
    x = ctx.inputs[0]
    rank = len(x.shape)
    pads = tf.cast(tf.reshape(ctx.inputs[1], [-1]), tf.int64)
    axes = ctx.input(3) if ctx.opset >= 18 else None
    const_axes = None if axes is None else ctx.const(3)
    if axes is None or const_axes is not None:
        # Known axes: the paddings stacked row by row (TF.js's TensorScatterUpdate mixes dtypes here).
        chosen = list(range(rank)) if axes is None else [int(a) % rank for a in np.reshape(const_axes, -1)]
        count = len(chosen)
        rows = [tf.stack([pads[chosen.index(a)], pads[chosen.index(a) + count]]) if a in chosen
                else tf.zeros([2], tf.int64) for a in range(rank)]
        paddings = tf.stack(rows)
    else:
        axes = tf.cast(tf.reshape(axes, [-1]), tf.int64)
        axes = tf.where(axes < 0, axes + rank, axes)
        half = tf.size(axes)
        paddings = tf.tensor_scatter_nd_update(tf.zeros([rank, 2], tf.int64), axes[:, None],
                                               tf.stack([pads[:half], pads[half:]], axis=1))
    mode = ctx.attr("mode", "constant")
    if mode == "constant":
        value = ctx.input(2)
        value = tf.reshape(tf.cast(value if value is not None else 0, x.dtype), [])
        return tf.pad(x, paddings, constant_values=value)
    if mode == "reflect":
        return tf.pad(x, paddings, mode="REFLECT")
    if mode in ("edge", "wrap"):
        return _gather_pad(x, [(paddings[a, 0], paddings[a, 1]) for a in range(rank)], mode)
    from ...errors import UnsupportedOpError
    raise UnsupportedOpError(f"Pad mode {mode!r}", ctx.opset, ["constant", "reflect", "edge", "wrap"])


def _gather_pad(x, paddings, mode: str):
    """Edge padding (repeat the border value) or wrap padding (continue from the other side): TF has
    neither, so gather the clamped or wrapped indices along each axis."""
    tf = _tf()
    for axis, (before, after) in enumerate(paddings):
        size = tf.shape(x, out_type=tf.int64)[axis]
        index = tf.range(-tf.cast(before, tf.int64), size + tf.cast(after, tf.int64))
        index = tf.clip_by_value(index, 0, size - 1) if mode == "edge" else tf.math.floormod(index, size)
        x = tf.gather(x, index, axis=axis)
    return x


def _reduce(op_type: str, reducer, since: int = 1, axes_input_since: int = 18):
    def convert(ctx: NodeContext):
        tf = _tf()
        x = ctx.inputs[0]
        x = laid(x) if rank_of(x) is not None else Laid(x, ())  # unknown rank: no order to keep
        if ctx.opset >= axes_input_since:
            axes = _axes(ctx)
            if axes is None and ctx.input(1) is not None:  # computed axes: reduce the logical tensor
                x, axes = Laid(logical(tf, ctx.inputs[0]), ()), logical(tf, ctx.inputs[1])
        else:
            axes = ctx.attr("axes")
        keep = bool(ctx.attr("keepdims", 1))
        if axes is None or (isinstance(axes, list) and not axes):  # no axes: all, unless told to do nothing
            if ctx.attr("noop_with_empty_axes", 0):
                return Laid(tf.identity(x.tensor), x.perm)
            axes = None if x.tensor.shape.rank is None else list(range(x.rank))
        if not isinstance(axes, list):  # computed axes: an empty list means all (or none, with noop)
            axes = tf.reshape(axes, [-1])
            if ctx.attr("noop_with_empty_axes", 0):
                return tf.cond(tf.size(axes) > 0, lambda: reducer(tf, x.tensor, axes, keep), lambda: x.tensor)
            axes = tf.cond(tf.size(axes) > 0, lambda: axes, lambda: tf.range(tf.rank(x.tensor), dtype=axes.dtype))
            return reducer(tf, x.tensor, axes, keep)
        if x.tensor.shape.rank is None:
            return reducer(tf, x.tensor, axes, keep)
        # Constant axes: reduce where they are kept; the remaining axes keep their relative order.
        kept = sorted({x.axis(a) for a in axes})
        y = reducer(tf, x.tensor, kept, keep)
        if keep:
            return Laid(y, x.perm)
        remaining = [a for a in x.perm if x.perm.index(a) not in kept]
        return Laid(y, [sorted(remaining).index(a) for a in remaining])
    convert.__name__ = f"convert_{op_type.lower()}"
    convert.__doc__ = f"ONNX {op_type} over ``axes`` (attribute, or input from its opset on)."
    onnx_op(op_type, since=since, layout=AWARE)(convert)


_reduce("ReduceSum", lambda tf, x, a, k: tf.reduce_sum(x, a, keepdims=k), axes_input_since=13)
_reduce("ReduceMean", lambda tf, x, a, k: tf.reduce_mean(x, a, keepdims=k))
# bool max / min (opset 20) are any / all: TF's max and min take no bools.
_reduce("ReduceMax", lambda tf, x, a, k: (tf.reduce_any if x.dtype == tf.bool else tf.reduce_max)(x, a, keepdims=k))
_reduce("ReduceMin", lambda tf, x, a, k: (tf.reduce_all if x.dtype == tf.bool else tf.reduce_min)(x, a, keepdims=k))
_reduce("ReduceProd", lambda tf, x, a, k: tf.reduce_prod(x, a, keepdims=k))
_reduce("ReduceL1", lambda tf, x, a, k: tf.reduce_sum(tf.abs(x), a, keepdims=k))
_reduce("ReduceL2", lambda tf, x, a, k: tf.sqrt(tf.reduce_sum(tf.square(x), a, keepdims=k)))
_reduce("ReduceSumSquare", lambda tf, x, a, k: tf.reduce_sum(tf.square(x), a, keepdims=k))
_reduce("ReduceLogSum", lambda tf, x, a, k: tf.math.log(tf.reduce_sum(x, a, keepdims=k)))
_reduce("ReduceLogSumExp", lambda tf, x, a, k: tf.reduce_logsumexp(x, a, keepdims=k))


def _arg(op_type: str, pick):
    def convert(ctx: NodeContext):
        tf = _tf()
        x, axis = ctx.inputs[0], ctx.attr("axis", 0)
        if ctx.attr("select_last_index", 0):
            flipped = tf.reverse(x, [axis])
            index = tf.cast(tf.shape(x)[axis] - 1, tf.int64) - pick(tf, flipped, axis)
        else:
            index = pick(tf, x, axis)
        return tf.expand_dims(index, axis) if ctx.attr("keepdims", 1) else index
    convert.__name__ = f"convert_{op_type.lower()}"
    convert.__doc__ = f"ONNX {op_type} (first index of ties, or the last with select_last_index)."
    onnx_op(op_type)(convert)


_arg("ArgMax", lambda tf, x, axis: tf.argmax(x, axis=axis, output_type=tf.int64))
_arg("ArgMin", lambda tf, x, axis: tf.argmin(x, axis=axis, output_type=tf.int64))
