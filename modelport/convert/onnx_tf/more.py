"""More ONNX ops: triangular masks, cumulative sums, top-k, one-hot, einsum, scatter/gather by
index, depth/space rearrangements, transposed convolution."""
from __future__ import annotations

import numpy as np

from ...errors import UnsupportedOpError
from .graph import NodeContext, onnx_op


def _tf():
    import tensorflow as tf
    return tf


@onnx_op("Trilu", since=14)
def convert_trilu(ctx: NodeContext):
    """ONNX Trilu: keep the upper (or lower) triangle from diagonal k of the last two dims."""
    tf = _tf()
    x = ctx.inputs[0]
    k = ctx.input(1)
    k = tf.cast(tf.reshape(k, []), tf.int64) if k is not None else tf.constant(0, tf.int64)
    rows = tf.range(tf.shape(x, out_type=tf.int64)[-2])[:, None]
    cols = tf.range(tf.shape(x, out_type=tf.int64)[-1])[None, :]
    keep = (cols - rows >= k) if ctx.attr("upper", 1) else (cols - rows <= k)
    return tf.where(keep, x, tf.zeros_like(x))


@onnx_op("CumSum", since=11)
def convert_cumsum(ctx: NodeContext):
    """ONNX CumSum (exclusive, reverse)."""
    tf = _tf()
    axis = tf.reshape(tf.cast(ctx.inputs[1], tf.int32), [])
    return tf.cumsum(ctx.inputs[0], axis=axis, exclusive=bool(ctx.attr("exclusive", 0)),
                     reverse=bool(ctx.attr("reverse", 0)))


@onnx_op("TopK", since=10)
def convert_topk(ctx: NodeContext):
    """ONNX TopK: values and int64 indices along ``axis``, largest or smallest, sorted."""
    tf = _tf()
    x = ctx.inputs[0]
    axis = ctx.attr("axis", -1)
    rank = len(x.shape)
    axis = axis + rank if axis < 0 else axis
    k = tf.reshape(tf.cast(ctx.inputs[1], tf.int32), [])
    perm = [*[d for d in range(rank) if d != axis], axis]
    moved = tf.transpose(x, perm)
    largest = ctx.attr("largest", 1)
    values, indices = tf.math.top_k(moved if largest else -moved, k=k, sorted=True)
    values = values if largest else -values
    back = np.argsort(perm).tolist()
    return [tf.transpose(values, back), tf.transpose(tf.cast(indices, tf.int64), back)]


@onnx_op("OneHot", since=9)
def convert_one_hot(ctx: NodeContext):
    """ONNX OneHot(indices, depth, [off, on]) along ``axis``; negative indices wrap."""
    tf = _tf()
    indices, depth, values = ctx.inputs[:3]
    depth = tf.cast(tf.reshape(depth, []), tf.int64)
    indices = tf.cast(indices, tf.int64)
    indices = tf.where(indices < 0, indices + depth, indices)
    return tf.one_hot(indices, depth, on_value=values[1], off_value=values[0], axis=ctx.attr("axis", -1))


@onnx_op("Einsum", since=12)
def convert_einsum(ctx: NodeContext):
    """ONNX Einsum."""
    equation = ctx.attr("equation")
    return _tf().einsum(equation.decode() if isinstance(equation, bytes) else equation, *ctx.inputs)


@onnx_op("Hardmax")
def convert_hardmax(ctx: NodeContext):
    """ONNX Hardmax: 1 at the first maximum along ``axis`` (flattened 2-D before opset 13)."""
    tf = _tf()
    x = ctx.inputs[0]
    if ctx.opset < 13:
        raise UnsupportedOpError("Hardmax", ctx.opset, where=f"node {ctx.node.name!r}",
                                 hint="Hardmax converts from opset 13")
    axis = ctx.attr("axis", -1)
    return tf.one_hot(tf.argmax(x, axis=axis), tf.shape(x)[axis], axis=axis, dtype=x.dtype)


@onnx_op("GatherND", since=11)
def convert_gather_nd(ctx: NodeContext):
    """ONNX GatherND with batch_dims."""
    tf = _tf()
    return tf.gather_nd(ctx.inputs[0], tf.cast(ctx.inputs[1], tf.int64), batch_dims=ctx.attr("batch_dims", 0))


@onnx_op("ScatterND", since=11)
def convert_scatter_nd(ctx: NodeContext):
    """ONNX ScatterND (reduction none or add/mul/max/min)."""
    tf = _tf()
    data, indices, updates = ctx.inputs[:3]
    indices = tf.cast(indices, tf.int64)
    reduction = ctx.attr("reduction", b"none")
    reduction = reduction.decode() if isinstance(reduction, bytes) else reduction
    scatter = {"none": tf.tensor_scatter_nd_update, "add": tf.tensor_scatter_nd_add,
               "max": tf.tensor_scatter_nd_max, "min": tf.tensor_scatter_nd_min}.get(reduction)
    if scatter is None:
        raise UnsupportedOpError(f"ScatterND reduction {reduction!r}", ctx.opset, ["none", "add", "max", "min"])
    return scatter(data, indices, updates)


@onnx_op("NonZero", since=9)
def convert_non_zero(ctx: NodeContext):
    """ONNX NonZero: indices of the non-zero elements, one row per dim (int64)."""
    tf = _tf()
    return tf.transpose(tf.where(tf.not_equal(ctx.inputs[0], tf.zeros_like(ctx.inputs[0]))))


@onnx_op("DepthToSpace")
def convert_depth_to_space(ctx: NodeContext):
    """ONNX DepthToSpace (DCR or CRD order) on NCHW."""
    tf = _tf()
    x, b = ctx.inputs[0], ctx.attr("blocksize")
    mode = ctx.attr("mode", b"DCR")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    n, c, h, w = (tf.shape(x)[i] for i in range(4))
    if mode == "DCR":
        y = tf.reshape(x, tf.stack([n, b, b, c // (b * b), h, w]))
        y = tf.transpose(y, [0, 3, 4, 1, 5, 2])
    else:
        y = tf.reshape(x, tf.stack([n, c // (b * b), b, b, h, w]))
        y = tf.transpose(y, [0, 1, 4, 2, 5, 3])
    return tf.reshape(y, tf.stack([n, c // (b * b), h * b, w * b]))


@onnx_op("SpaceToDepth")
def convert_space_to_depth(ctx: NodeContext):
    """ONNX SpaceToDepth on NCHW."""
    tf = _tf()
    x, b = ctx.inputs[0], ctx.attr("blocksize")
    n, c, h, w = (tf.shape(x)[i] for i in range(4))
    y = tf.reshape(x, tf.stack([n, c, h // b, b, w // b, b]))
    y = tf.transpose(y, [0, 3, 5, 1, 2, 4])
    return tf.reshape(y, tf.stack([n, c * b * b, h // b, w // b]))


@onnx_op("ConvTranspose")
def convert_conv_transpose(ctx: NodeContext):
    """ONNX ConvTranspose (2-D, explicit pads, output_padding, groups of 1)."""
    tf = _tf()
    x, w = ctx.inputs[:2]
    if len(x.shape) != 4 or ctx.attr("group", 1) != 1 or ctx.attr("output_shape") is not None:
        raise UnsupportedOpError("ConvTranspose beyond 2-D, group 1 and explicit pads", ctx.opset,
                                 where=f"node {ctx.node.name!r}")
    auto_pad = ctx.attr("auto_pad", b"NOTSET")
    if (auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad) not in ("NOTSET", "VALID"):
        raise UnsupportedOpError("ConvTranspose with auto_pad SAME", ctx.opset, where=f"node {ctx.node.name!r}")
    strides = list(ctx.attr("strides", [1, 1]))
    dilations = list(ctx.attr("dilations", [1, 1]))
    pads = list(ctx.attr("pads", [0, 0, 0, 0]))
    extra = list(ctx.attr("output_padding", [0, 0]))
    kernel = list(w.shape[2:])
    h, wd = tf.shape(x)[2], tf.shape(x)[3]  # dynamic after a Reshape-based norm, so computed
    full = [(size - 1) * s + (k - 1) * d + 1 + e for size, s, k, d, e in zip((h, wd), strides, kernel, dilations, extra)]
    nhwc = tf.transpose(x, [0, 2, 3, 1])
    filters = tf.transpose(w, [2, 3, 1, 0])  # ONNX C x O x kh x kw -> TF kh x kw x O x C
    batch = tf.shape(x)[0]
    y = tf.nn.conv2d_transpose(nhwc, filters, tf.stack([batch, full[0], full[1], w.shape[1]]), strides=strides,
                               padding="VALID", dilations=dilations)
    y = y[:, pads[0]:full[0] - pads[2], pads[1]:full[1] - pads[3], :]
    bias = ctx.input(2)
    if bias is not None:
        y = y + bias
    return tf.transpose(y, [0, 3, 1, 2])


@onnx_op("MeanVarianceNormalization", since=9)
def convert_mean_variance_normalization(ctx: NodeContext):
    """ONNX MeanVarianceNormalization over ``axes`` (batch and spatial by default)."""
    tf = _tf()
    x = ctx.inputs[0]
    axes = list(ctx.attr("axes", [0, 2, 3]))
    mean, var = tf.nn.moments(x, axes=axes, keepdims=True)
    return (x - mean) / (tf.sqrt(var) + 1e-9)


@onnx_op("Shrink", since=9)
def convert_shrink(ctx: NodeContext):
    """ONNX Shrink."""
    tf = _tf()
    x = ctx.inputs[0]
    lambd, bias = ctx.attr("lambd", 0.5), ctx.attr("bias", 0.0)
    return tf.where(x < -lambd, x + tf.cast(bias, x.dtype),
                    tf.where(x > lambd, x - tf.cast(bias, x.dtype), tf.zeros_like(x)))


@onnx_op("Det", since=11)
def convert_det(ctx: NodeContext):
    """ONNX Det."""
    return _tf().linalg.det(ctx.inputs[0])
