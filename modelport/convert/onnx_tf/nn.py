"""ONNX neural-network ops: matrix products, convolution, pooling, normalization, softmax.

ONNX is channels-first; TensorFlow's CPU convolution and pooling kernels are channels-last: those
handlers take their input in whatever order it is kept and produce channels-last values (layout.py).
"""
from __future__ import annotations

import numpy as np

from ...errors import UnsupportedOpError
from .graph import NodeContext, onnx_op, trailing_axes
from .layout import AWARE, ELEMENTWISE, Laid, arrange, channels_last, laid, logical, rank_of


def _tf():
    import tensorflow as tf
    return tf


def _channels_last_input(tf, value):
    """The input of a convolution or pool, channels-last, and its order."""
    order = channels_last(rank_of(value))
    return arrange(tf, value, order), order


@onnx_op("MatMul")
def convert_matmul(ctx: NodeContext):
    """ONNX MatMul (numpy semantics: 1-D operands promoted and squeezed back)."""
    tf = _tf()
    a, b = ctx.inputs[:2]
    if len(a.shape) == 1 or len(b.shape) == 1:
        return tf.experimental.numpy.matmul(a, b)
    return tf.linalg.matmul(a, b)


@onnx_op("Gemm")
def convert_gemm(ctx: NodeContext):
    """ONNX Gemm: alpha * op(A) @ op(B) + beta * C."""
    tf = _tf()
    a, b = ctx.inputs[:2]
    y = tf.linalg.matmul(a, b, transpose_a=bool(ctx.attr("transA", 0)), transpose_b=bool(ctx.attr("transB", 0)))
    alpha, beta = ctx.attr("alpha", 1.0), ctx.attr("beta", 1.0)
    if alpha != 1.0:
        y = y * tf.cast(alpha, y.dtype)
    c = ctx.input(2)
    if c is not None:
        y = y + (c * tf.cast(beta, c.dtype) if beta != 1.0 else c)
    return y


def _spatial(ctx: NodeContext, sizes: list, kernel_shape):
    """strides, dilations and explicit [(begin, end)] pads (auto_pad resolved) for each spatial dim
    of ``sizes`` (None where dynamic)."""
    rank = len(sizes)
    strides = list(ctx.attr("strides", [1] * rank))
    dilations = list(ctx.attr("dilations", [1] * rank))
    auto_pad = ctx.attr("auto_pad", "NOTSET")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pads = []
        for size, k, s, d in zip(sizes, kernel_shape, strides, dilations):
            if size is None:
                raise UnsupportedOpError("auto_pad SAME with a dynamic spatial size", where=f"node {ctx.node.name!r}")
            out = -(-size // s)
            total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
            small, big = total // 2, total - total // 2
            pads.append((big, small) if auto_pad == "SAME_LOWER" else (small, big))
    elif auto_pad == "VALID":
        pads = [(0, 0)] * rank
    else:
        flat = list(ctx.attr("pads", [0] * (2 * rank)))
        pads = list(zip(flat[:rank], flat[rank:]))
    return strides, dilations, pads


@onnx_op("Conv", layout=AWARE)
def convert_conv(ctx: NodeContext):
    """ONNX Conv (1-3 spatial dims, groups, depthwise, dilations, explicit or SAME pads), channels-last."""
    tf = _tf()
    y, order = _channels_last_input(tf, ctx.inputs[0])
    w = logical(tf, ctx.inputs[1])
    kernel = list(w.shape[2:])
    strides, dilations, pads = _spatial(ctx, y.shape.as_list()[1:-1], kernel)
    group = ctx.attr("group", 1)
    if any(a or b for a, b in pads):
        y = tf.pad(y, [[0, 0], *[[a, b] for a, b in pads], [0, 0]])
    channels = y.shape[-1]
    if group > 1 and group == channels and len(kernel) == 2 and (strides[0] == strides[1] or set(dilations) == {1}):
        # Depthwise: ONNX weights (C*M) x 1 x kh x kw, output channel c*M + m -> TF kh x kw x C x M.
        multiplier = w.shape[0] // group
        filters = tf.transpose(tf.reshape(w, [group, multiplier, *kernel]), [2, 3, 0, 1])
        y = tf.nn.depthwise_conv2d(y, filters, strides=[1, *strides, 1], padding="VALID", dilations=dilations)
    else:
        # ONNX weights O x C/g x k..., TF filters k... x C/g x O.
        filters = tf.transpose(w, [*range(2, len(w.shape)), 1, 0])
        if group == 1 or channels is None:
            y = tf.nn.convolution(y, filters, strides=strides, dilations=dilations, padding="VALID")
        else:
            outputs = w.shape[0] // group
            per = channels // group
            y = tf.concat([tf.nn.convolution(y[..., g * per:(g + 1) * per], filters[..., g * outputs:(g + 1) * outputs],
                                             strides=strides, dilations=dilations, padding="VALID")
                           for g in range(group)], axis=-1)
    bias = ctx.input(2)
    if bias is not None:
        y = y + logical(tf, bias)
    return Laid(y, order)


def _pool(ctx: NodeContext, kind: str, indices: bool = False):
    tf = _tf()
    y, order = _channels_last_input(tf, ctx.inputs[0])
    kernel = list(ctx.attr("kernel_shape"))
    spatial = y.shape.as_list()[1:-1]
    strides, dilations, pads = _spatial(ctx, spatial, kernel)
    extra = [0] * len(kernel)  # end padding added by ceil_mode, which never counts as elements
    if ctx.attr("ceil_mode", 0):  # extend the end pads so that the last, partial window is kept
        extra = []
        for size, k, s, d, (a, b) in zip(spatial, kernel, strides, dilations, pads):
            if size is None:
                raise UnsupportedOpError("ceil_mode with a dynamic spatial size", where=f"node {ctx.node.name!r}")
            k = (k - 1) * d + 1  # the window's reach
            out = -(-(size + a + b - k) // s) + 1
            if (out - 1) * s >= size + a:  # the last window would start in the end padding
                out -= 1
            extra.append(max(0, (out - 1) * s + k - (size + a + b)))
        pads = [(a, b + e) for (a, b), e in zip(pads, extra)]
    window = [1, *kernel, 1]
    stride = [1, *strides, 1]
    if indices:
        values, where = _max_pool_indices(tf, y, kernel, strides, dilations, pads,
                                          column_major=bool(ctx.attr("storage_order", 0)))
        return [Laid(values, order), Laid(where, order)]
    if any(d != 1 for d in dilations):
        return Laid(_dilated_pool(tf, y, kind, kernel, strides, dilations, pads, extra,
                                  ctx.attr("count_include_pad", 0)), order)
    if kind == "max":
        if any(a or b for a, b in pads):
            y = tf.pad(y, [[0, 0], *[[a, b] for a, b in pads], [0, 0]], constant_values=_lowest(tf, y.dtype))
        return Laid(tf.nn.max_pool(y, window, stride, "VALID"), order)
    if not any(a or b for a, b in pads):
        return Laid(tf.nn.avg_pool(y, window, stride, "VALID"), order)  # every window is whole
    count_pad = ctx.attr("count_include_pad", 0)
    padded = tf.pad(y, [[0, 0], *[[a, b] for a, b in pads], [0, 0]]) if any(a or b for a, b in pads) else y
    total = tf.nn.avg_pool(padded, window, stride, "VALID") * float(np.prod(kernel))
    if count_pad and not ctx.attr("ceil_mode", 0):
        return Laid(total / float(np.prod(kernel)), order)
    # Divide by the window's count of real elements (pads excluded, or ceil-mode overhang excluded).
    ones = tf.ones_like(y[..., :1])
    if count_pad:  # explicit pads count, the ceil-mode overhang does not
        ones = tf.pad(ones, [[0, 0], *[[a, b - e] for (a, b), e in zip(pads, extra)], [0, 0]], constant_values=1.0)
        ones = tf.pad(ones, [[0, 0], *[[0, e] for e in extra], [0, 0]])
    else:
        ones = tf.pad(ones, [[0, 0], *[[a, b] for a, b in pads], [0, 0]])
    count = tf.nn.avg_pool(ones, window, stride, "VALID") * float(np.prod(kernel))
    return Laid(total / count, order)


def _lowest(tf, dtype):
    return float("-inf") if dtype.is_floating else dtype.min


def _windows(tf, tensor, kernel, strides, dilations):
    """Each kernel offset's strided slice of a padded channels-last tensor: the window elements,
    one tensor of the output's size per offset (in row-major kernel order)."""
    rank = len(kernel)
    sizes = tensor.shape.as_list()[1:-1]
    outs = [(size - ((k - 1) * d + 1)) // s + 1 for size, k, d, s in zip(sizes, kernel, dilations, strides)]
    for offset in np.ndindex(*kernel):
        begin = [0, *[o * d for o, d in zip(offset, dilations)], 0]
        end = [0, *[b + (n - 1) * s + 1 for b, n, s in zip(begin[1:-1], outs, strides)], 0]
        yield tf.strided_slice(tensor, begin, end, [1, *strides, 1], begin_mask=1 | (1 << (rank + 1)),
                               end_mask=1 | (1 << (rank + 1)))


def _dilated_pool(tf, y, kind: str, kernel, strides, dilations, pads, extra, count_pad):
    """Pooling with dilated windows (channels-last): one strided slice per kernel offset, combined."""
    paddings = [[0, 0], *[[a, b] for a, b in pads], [0, 0]]
    fill = _lowest(tf, y.dtype) if kind == "max" else 0
    padded = tf.pad(y, paddings, constant_values=fill)
    if kind == "max":
        return tf.reduce_max(tf.stack(list(_windows(tf, padded, kernel, strides, dilations))), axis=0)
    total = tf.add_n(list(_windows(tf, padded, kernel, strides, dilations)))
    ones = tf.ones_like(y[..., :1])
    if count_pad:  # explicit pads count as elements, the ceil-mode overhang does not
        counted = [[0, 0], *[[a, b - e] for (a, b), e in zip(pads, extra)], [0, 0]]
        ones = tf.pad(tf.pad(ones, counted, constant_values=1.0), [[0, 0], *[[0, e] for e in extra], [0, 0]])
    else:
        ones = tf.pad(ones, paddings)
    return total / tf.add_n(list(_windows(tf, ones, kernel, strides, dilations)))


def _max_pool_indices(tf, y, kernel, strides, dilations, pads, column_major: bool):
    """MaxPool's values and ONNX Indices (channels-last): each element's flat index in the NCHW
    input (row-major, or column-major over the spatial dims), the first maximum of each window."""
    paddings = [[0, 0], *[[a, b] for a, b in pads], [0, 0]]
    shape = tf.shape(y, out_type=tf.int64)
    rank = len(kernel)
    spatial = [shape[1 + d] for d in range(rank)]
    # flat = ((n * C + c) * H + h) * W + w, or with the spatial part column-major (h + w * H).
    flat = tf.zeros([], tf.int64)
    strides_of = {}
    step = tf.ones([], tf.int64)
    for d in (range(rank) if column_major else reversed(range(rank))):
        strides_of[d] = step
        step = step * spatial[d]
    plane = step
    for d in range(rank):
        flat = flat + tf.reshape(tf.range(spatial[d]) * strides_of[d], [-1 if a == d else 1 for a in range(rank)])
    n_index = tf.reshape(tf.range(shape[0]), [-1] + [1] * (rank + 1))
    c_index = tf.reshape(tf.range(shape[-1]), [1] * (rank + 1) + [-1])
    index = (n_index * shape[-1] + c_index) * plane + flat[None, ..., None]
    values = tf.pad(y, paddings, constant_values=_lowest(tf, y.dtype))
    index = tf.pad(index, paddings, constant_values=-1)
    value_windows = tf.stack(list(_windows(tf, values, kernel, strides, dilations)))
    index_windows = tf.stack(list(_windows(tf, index, kernel, strides, dilations)))
    first = tf.argmax(value_windows, axis=0, output_type=tf.int32)  # argmax keeps the first of ties
    return tf.reduce_max(value_windows, axis=0), tf.gather(tf.transpose(index_windows, [*range(1, rank + 3), 0]),
                                                           first[..., None], batch_dims=rank + 2)[..., 0]


@onnx_op("MaxPool", layout=AWARE)
def convert_max_pool(ctx: NodeContext):
    """ONNX MaxPool, and its Indices output when asked for (flat NCHW positions of the maxima)."""
    return _pool(ctx, "max", indices=len(ctx.node.output) > 1 and bool(ctx.node.output[1]))


@onnx_op("AveragePool", layout=AWARE)
def convert_average_pool(ctx: NodeContext):
    """ONNX AveragePool (count_include_pad, ceil_mode)."""
    return _pool(ctx, "average")


def _spatial_axes(x: Laid) -> list[int]:
    return sorted(x.axis(axis) for axis in range(2, x.rank))


@onnx_op("GlobalAveragePool", layout=AWARE)
def convert_global_average_pool(ctx: NodeContext):
    """ONNX GlobalAveragePool over every spatial dim (in the order the input is kept)."""
    x = laid(ctx.inputs[0])
    return Laid(_tf().reduce_mean(x.tensor, axis=_spatial_axes(x), keepdims=True), x.perm)


@onnx_op("GlobalMaxPool", layout=AWARE)
def convert_global_max_pool(ctx: NodeContext):
    """ONNX GlobalMaxPool over every spatial dim (in the order the input is kept)."""
    x = laid(ctx.inputs[0])
    return Laid(_tf().reduce_max(x.tensor, axis=_spatial_axes(x), keepdims=True), x.perm)


def _channel_shaped(tf, value, rank, channel_axis: int = 1):
    shape = [1] * rank
    shape[channel_axis] = -1
    return tf.reshape(value, shape)


@onnx_op("BatchNormalization", layout=AWARE)
def convert_batch_normalization(ctx: NodeContext):
    """ONNX BatchNormalization at inference (running statistics), in the order the input is kept."""
    tf = _tf()
    x = laid(ctx.inputs[0])
    scale, bias, mean, var = (logical(tf, v) for v in ctx.inputs[1:5])
    channel = x.axis(1) if x.rank > 1 else 0
    if ctx.attr("training_mode", 0):  # batch statistics; the running ones updated with momentum
        momentum = ctx.attr("momentum", 0.9)
        batch_mean, batch_var = tf.nn.moments(x.tensor, axes=[a for a in range(x.rank) if a != channel])
        shape = [_channel_shaped(tf, v, x.rank, channel) for v in (scale, bias, batch_mean, batch_var)]
        inv = shape[0] * tf.math.rsqrt(shape[3] + ctx.attr("epsilon", 1e-5))
        y = Laid(x.tensor * inv + (shape[1] - shape[2] * inv), x.perm)
        return [y, mean * momentum + batch_mean * (1 - momentum), var * momentum + batch_var * (1 - momentum)]
    shape = [_channel_shaped(tf, v, x.rank, channel) for v in (scale, bias, mean, var)]
    inv = shape[0] * tf.math.rsqrt(shape[3] + ctx.attr("epsilon", 1e-5))
    return Laid(x.tensor * inv + (shape[1] - shape[2] * inv), x.perm)


@onnx_op("InstanceNormalization", since=6)
def convert_instance_normalization(ctx: NodeContext):
    """ONNX InstanceNormalization: per sample and channel over the spatial dims."""
    tf = _tf()
    x, scale, bias = ctx.inputs[:3]
    rank = len(x.shape)
    mean, var = tf.nn.moments(x, axes=list(range(2, rank)), keepdims=True)
    normal = (x - mean) * tf.math.rsqrt(var + ctx.attr("epsilon", 1e-5))
    return normal * _channel_shaped(tf, scale, rank) + _channel_shaped(tf, bias, rank)


@onnx_op("LayerNormalization", since=17)
def convert_layer_normalization(ctx: NodeContext):
    """ONNX LayerNormalization from ``axis`` to the last dim: Y, and Mean and InvStdDev when asked."""
    tf = _tf()
    x, scale = ctx.inputs[:2]
    mean, var = tf.nn.moments(x, axes=trailing_axes(x, ctx.attr("axis", -1)), keepdims=True)
    inv_std = tf.math.rsqrt(var + ctx.attr("epsilon", 1e-5))
    y = (x - mean) * inv_std * scale
    bias = ctx.input(2)
    y = y + bias if bias is not None else y
    return [y, mean, inv_std][:len(ctx.node.output)]


def _softmax(ctx: NodeContext, log: bool):
    tf = _tf()
    x = ctx.inputs[0]
    rank = len(x.shape)
    if ctx.opset >= 13:
        axis = ctx.attr("axis", -1)
        return tf.nn.log_softmax(x, axis=axis) if log else tf.nn.softmax(x, axis=axis)
    axis = ctx.attr("axis", 1)  # before 13: flatten from axis, normalise the 2-D rows, reshape back
    axis = axis + rank if axis < 0 else axis
    shape = tf.shape(x)
    flat = tf.reshape(x, tf.stack([tf.reduce_prod(shape[:axis]), -1]))
    y = tf.nn.log_softmax(flat, axis=-1) if log else tf.nn.softmax(flat, axis=-1)
    return tf.reshape(y, shape)


@onnx_op("Softmax")
def convert_softmax(ctx: NodeContext):
    """ONNX Softmax (one axis from opset 13, flattened 2-D before)."""
    return _softmax(ctx, log=False)


@onnx_op("LogSoftmax")
def convert_log_softmax(ctx: NodeContext):
    """ONNX LogSoftmax."""
    return _softmax(ctx, log=True)


@onnx_op("Dropout", layout=ELEMENTWISE)
def convert_dropout(ctx: NodeContext):
    """ONNX Dropout at inference: the identity (and an all-true mask when asked for)."""
    tf = _tf()
    x = ctx.inputs[0]
    if len(ctx.node.output) > 1 and ctx.node.output[1]:
        return [tf.identity(x), tf.ones_like(x, dtype=tf.bool)]
    return tf.identity(x)


@onnx_op("LRN")
def convert_lrn(ctx: NodeContext):
    """ONNX LRN across channels: x / (bias + alpha/size * sum of squares in the window)^beta."""
    tf = _tf()
    x = ctx.inputs[0]
    size = ctx.attr("size")
    square = tf.square(x)
    half_before, half_after = (size - 1) // 2, size // 2  # ONNX's window: floor before, ceil after
    padded = tf.pad(square, [[0, 0], [half_before, half_after]] + [[0, 0]] * (len(x.shape) - 2))
    window = tf.add_n([padded[:, i:i + tf.shape(x)[1]] for i in range(size)])
    return x / tf.pow(ctx.attr("bias", 1.0) + ctx.attr("alpha", 1e-4) / size * window, ctx.attr("beta", 0.75))
