"""Smaller ONNX ops: windows, EyeLike, BitCast, SwiGLU, TensorScatter, ReverseSequence,
CenterCropPad, LpPool, GroupNormalization and the legacy Scatter."""
from __future__ import annotations

import numpy as np

from ...errors import UnsupportedOpError
from .graph import NodeContext, onnx_op
from .layout import Laid, logical


def _tf():
    import tensorflow as tf
    return tf


def _window(op_type: str, formula):
    def convert(ctx: NodeContext):
        from .dtypes import tf_dtype
        tf = _tf()
        size = tf.cast(tf.reshape(ctx.inputs[0], []), tf.float64)
        span = size if ctx.attr("periodic", 1) else size - 1
        n = tf.range(tf.cast(size, tf.int64), dtype=tf.float64)
        return tf.cast(formula(tf, n, span), tf_dtype(ctx.attr("output_datatype", 1)))
    convert.__name__ = f"convert_{op_type.lower()}"
    convert.__doc__ = f"ONNX {op_type} (periodic or symmetric)."
    onnx_op(op_type, since=17)(convert)


_window("HannWindow", lambda tf, n, span: tf.sin(np.pi * n / span) ** 2)
_window("HammingWindow", lambda tf, n, span: 25.0 / 46.0 - (21.0 / 46.0) * tf.cos(2 * np.pi * n / span))
_window("BlackmanWindow", lambda tf, n, span: 0.42 - 0.5 * tf.cos(2 * np.pi * n / span)
        + 0.08 * tf.cos(4 * np.pi * n / span))


@onnx_op("EyeLike", since=9)
def convert_eye_like(ctx: NodeContext):
    """ONNX EyeLike: ones on the diagonal shifted by ``k``, in the input's shape and ``dtype``."""
    from .dtypes import tf_dtype
    tf = _tf()
    x = ctx.inputs[0]
    dtype = tf_dtype(ctx.attr("dtype")) if ctx.attr("dtype") is not None else x.dtype
    rows, cols = tf.shape(x)[0], tf.shape(x)[1]
    diagonal = tf.range(cols)[None, :] - tf.range(rows)[:, None] == ctx.attr("k", 0)
    return tf.cast(diagonal, dtype)


@onnx_op("BitCast", since=26)
def convert_bitcast(ctx: NodeContext):
    """ONNX BitCast between types of the same width."""
    from .dtypes import tf_dtype
    tf = _tf()
    x, to = ctx.inputs[0], tf_dtype(ctx.attr("to"))
    if tf.bool in (x.dtype, to):  # TF bitcasts no bool; a bool byte is 0 or 1
        return tf.not_equal(x, 0) if to == tf.bool else tf.cast(x, to)
    return tf.bitcast(x, to)


@onnx_op("SwiGLU", since=26)
def convert_swiglu(ctx: NodeContext):
    """ONNX SwiGLU: a * sigmoid(alpha * a) * b."""
    tf = _tf()
    a, b = ctx.inputs[:2]
    return a * tf.sigmoid(tf.cast(ctx.attr("alpha", 1.0), a.dtype) * a) * b


@onnx_op("TensorScatter", since=24)
def convert_tensor_scatter(ctx: NodeContext):
    """ONNX TensorScatter: write ``update`` into the cache along ``axis`` from each batch's write
    index (linear, or circular modulo the cache length)."""
    tf = _tf()
    cache, update = ctx.inputs[:2]
    rank = len(cache.shape)
    axis = ctx.attr("axis", -2) % rank
    batch, length, steps = tf.shape(cache)[0], tf.shape(cache)[axis], tf.shape(update)[axis]
    start = ctx.input(2)
    start = tf.zeros([batch], tf.int32) if start is None else tf.cast(start, tf.int32)
    position = start[:, None] + tf.range(steps)[None, :]  # [batch, steps]
    mode = ctx.attr("mode", "linear")
    if mode == "circular":
        position = position % length
    # Move the axis next to the batch, scatter rows [batch, position], move it back.
    order = [0, axis, *[a for a in range(1, rank) if a != axis]]
    back = list(np.argsort(order))
    moved_cache, moved_update = tf.transpose(cache, order), tf.transpose(update, order)
    index = tf.stack([tf.broadcast_to(tf.range(batch)[:, None], tf.shape(position)), position], -1)
    return tf.transpose(tf.tensor_scatter_nd_update(moved_cache, index, moved_update), back)


@onnx_op("ReverseSequence", since=10)
def convert_reverse_sequence(ctx: NodeContext):
    """ONNX ReverseSequence: reverse the first lens[i] steps of each batch entry."""
    x, lengths = ctx.inputs[:2]
    return _tf().reverse_sequence(x, lengths, seq_axis=ctx.attr("time_axis", 0), batch_axis=ctx.attr("batch_axis", 1))


@onnx_op("CenterCropPad", since=18)
def convert_center_crop_pad(ctx: NodeContext):
    """ONNX CenterCropPad: crop or zero-pad each listed axis around its center to the given size."""
    tf = _tf()
    x, sizes = ctx.inputs[0], tf.cast(ctx.inputs[1], tf.int32)
    rank = len(x.shape)
    axes = [a % rank for a in (ctx.attr("axes") or range(rank))]
    for index, axis in enumerate(axes):
        dim, size = tf.shape(x)[axis], sizes[index]
        begin = tf.maximum(dim - size, 0) // 2  # crop: the extra element (odd difference) goes at the end
        x = tf.gather(x, tf.range(begin, begin + tf.minimum(size, dim)), axis=axis)
        extra = tf.maximum(size - dim, 0)  # pad: likewise
        paddings = tf.tensor_scatter_nd_update(tf.zeros([rank, 2], tf.int32), [[axis]], [[extra // 2, extra - extra // 2]])
        x = tf.pad(x, paddings)
    return x


@onnx_op("LpPool", since=11)
def convert_lp_pool(ctx: NodeContext):
    """ONNX LpPool: (sum over each window of |x|^p)^(1/p), padding counting as zeros."""
    from .nn import convert_average_pool
    tf = _tf()
    p = float(ctx.attr("p", 2))
    powered = tf.pow(tf.abs(logical(tf, ctx.inputs[0])), p)
    attrs = dict(ctx.attrs, count_include_pad=1)
    attrs.pop("p", None)
    mean = convert_average_pool(ctx.derive([powered], attrs))
    window = float(np.prod(ctx.attr("kernel_shape")))
    return Laid(tf.pow(mean.tensor * window, 1.0 / p), mean.perm)


@onnx_op("GroupNormalization", since=18)
def convert_group_normalization(ctx: NodeContext):
    """ONNX GroupNormalization: normalize over each group of channels (and the spatial dims), then
    scale and shift per group (opset 18) or per channel (opset 21)."""
    tf = _tf()
    x, scale, bias = ctx.inputs[:3]
    groups = ctx.attr("num_groups")
    shape = tf.shape(x)
    rank = len(x.shape)
    grouped = tf.reshape(x, tf.concat([shape[:1], [groups, -1]], 0))
    mean, var = tf.nn.moments(grouped, axes=[2], keepdims=True)
    normal = tf.reshape((grouped - mean) * tf.math.rsqrt(var + ctx.attr("epsilon", 1e-5)), shape)
    channels = x.shape[1]
    if scale.shape[0] == groups and groups != channels:  # opset 18: one scale per group
        scale, bias = tf.repeat(scale, channels // groups), tf.repeat(bias, channels // groups)
    broadcast = [1, -1] + [1] * (rank - 2)
    return normal * tf.reshape(scale, broadcast) + tf.reshape(bias, broadcast)


@onnx_op("Unique", since=11)
def convert_unique(ctx: NodeContext):
    """ONNX Unique: the distinct elements (or slices along ``axis``), sorted or in order of first
    appearance, with first indices, inverse indices and counts."""
    tf = _tf()
    x = ctx.inputs[0]
    axis = ctx.attr("axis")
    if axis is None:
        rows = tf.reshape(x, [-1, 1])
    else:
        axis %= len(x.shape)
        moved = tf.experimental.numpy.moveaxis(x, axis, 0)
        rows = tf.reshape(moved, tf.stack([tf.shape(moved)[0], -1]))
    count = tf.shape(rows)[0]
    if ctx.attr("sorted", 1):  # lexicographic order of the rows: stable sorts from the last column on
        order = tf.range(count)
        for column in reversed(range(rows.shape[1])):
            order = tf.gather(order, tf.argsort(tf.gather(rows[:, column], order), stable=True))
        ranked = tf.gather(rows, order)
    else:
        order, ranked = tf.range(count), rows
    distinct, ranked_inverse = tf.raw_ops.UniqueV2(x=ranked, axis=tf.constant([0], tf.int64))
    inverse = tf.scatter_nd(order[:, None], ranked_inverse, [count])
    groups = tf.shape(distinct)[0]
    first = tf.math.unsorted_segment_min(tf.range(count), inverse, groups)
    counts = tf.math.unsorted_segment_sum(tf.ones([count], tf.int64), inverse, groups)
    if axis is None:
        y = tf.reshape(distinct, [-1])
    else:
        rest = tf.shape(moved)[1:]
        y = tf.experimental.numpy.moveaxis(tf.reshape(distinct, tf.concat([[groups], rest], 0)), 0, axis)
    outputs = [y, tf.cast(first, tf.int64), tf.cast(inverse, tf.int64), counts]
    return outputs[:len(ctx.node.output)]


@onnx_op("NonMaxSuppression", since=10)
def convert_non_max_suppression(ctx: NodeContext):
    """ONNX NonMaxSuppression: per batch and class, TF's greedy NMS; [batch, class, box] rows in
    that order (boxes by descending score). Boxes are corners, or centre + size."""
    tf = _tf()
    boxes, scores = ctx.inputs[:2]
    limit, iou, threshold = ctx.input(2), ctx.input(3), ctx.input(4)
    limit = tf.constant(0, tf.int32) if limit is None else tf.cast(tf.reshape(limit, []), tf.int32)
    iou = tf.constant(0.0) if iou is None else tf.reshape(tf.cast(iou, tf.float32), [])
    threshold = tf.constant(float("-inf")) if threshold is None else tf.reshape(tf.cast(threshold, tf.float32), [])
    boxes = tf.cast(boxes, tf.float32)
    if ctx.attr("center_point_box", 0):  # [x_centre, y_centre, width, height] -> [y1, x1, y2, x2]
        xc, yc, w, h = tf.unstack(boxes, axis=-1)
        boxes = tf.stack([yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2], axis=-1)
    rows = []
    for b in range(boxes.shape[0]):
        for c in range(scores.shape[1]):
            kept = tf.image.non_max_suppression(boxes[b], tf.cast(scores[b, c], tf.float32), limit, iou, threshold)
            kept = tf.cast(kept, tf.int64)
            rows.append(tf.stack([tf.fill(tf.shape(kept), tf.constant(b, tf.int64)),
                                  tf.fill(tf.shape(kept), tf.constant(c, tf.int64)), kept], axis=1))
    return tf.concat(rows, axis=0) if rows else tf.zeros([0, 3], tf.int64)


@onnx_op("Binarizer", domain="ai.onnx.ml")
def convert_binarizer(ctx: NodeContext):
    """ONNX-ML Binarizer: 1 above the threshold, else 0, in the input's type."""
    x = ctx.inputs[0]
    return _tf().cast(x > _tf().cast(ctx.attr("threshold", 0.0), x.dtype), x.dtype)


@onnx_op("ArrayFeatureExtractor", domain="ai.onnx.ml")
def convert_array_feature_extractor(ctx: NodeContext):
    """ONNX-ML ArrayFeatureExtractor: the listed entries of the last axis."""
    x, indices = ctx.inputs[:2]
    return _tf().gather(x, _tf().reshape(indices, [-1]), axis=-1)


# Every byte value as a one-byte string: gathering with a uint8 tensor and joining the result
# gives the tensor's bytes as one TF string (what TF's image decoders read).
_BYTE_STRINGS = [bytes([value]) for value in range(256)]


@onnx_op("ImageDecoder", since=20)
def convert_image_decoder(ctx: NodeContext):
    """ONNX ImageDecoder: encoded bytes (uint8) -> HWC uint8 pixels in RGB, BGR or Grayscale.
    TF decodes BMP, GIF, JPEG, PNG and WebP; grayscale is computed from RGB with the ITU-R 601-2
    weights in fixed point, as the reference (Pillow's convert("L")) does."""
    tf = _tf()
    encoded = tf.strings.reduce_join(tf.gather(tf.constant(_BYTE_STRINGS), tf.cast(ctx.inputs[0], tf.int32)))
    rgb = tf.cond(tf.io.is_jpeg(encoded),  # JPEG with the accurate integer IDCT, libjpeg's default (and Pillow's)
                  lambda: tf.io.decode_jpeg(encoded, channels=3, dct_method="INTEGER_ACCURATE"),
                  lambda: tf.io.decode_image(encoded, channels=3, expand_animations=False))
    pixel_format = ctx.attr("pixel_format", "RGB")
    if pixel_format == "RGB":
        return rgb
    if pixel_format == "BGR":
        return tf.reverse(rgb, [-1])
    if pixel_format == "Grayscale":
        wide = tf.cast(rgb, tf.int32)
        luma = (wide[..., 0] * 19595 + wide[..., 1] * 38470 + wide[..., 2] * 7471 + 0x8000) // 65536
        return tf.cast(luma, tf.uint8)[..., None]
    raise UnsupportedOpError(f"ImageDecoder pixel_format {pixel_format!r}", ctx.opset, where=f"node {ctx.node.name!r}",
                             hint="RGB, BGR and Grayscale are defined")
