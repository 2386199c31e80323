"""ONNX Resize (and Upsample): separable interpolation, one axis at a time, with ONNX's own
coordinate rules, so that every mode and coordinate transformation matches the reference rather
than TF's image resizers (which implement only some of them)."""
from __future__ import annotations

import numpy as np

from ...errors import UnsupportedOpError
from .graph import NodeContext, onnx_op


def _tf():
    import tensorflow as tf
    return tf



def _source_coordinates(tf, out_len, in_len, scale, mode: str, roi_start=None, roi_end=None):
    """The input coordinate each output index samples, by coordinate_transformation_mode (float32:
    TFLite has no float64 kernels)."""
    x = tf.range(out_len, dtype=tf.float32)
    out_f, in_f = tf.cast(out_len, tf.float32), tf.cast(in_len, tf.float32)
    if mode == "half_pixel":
        return (x + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return tf.where(out_f > 1, (x + 0.5) / scale - 0.5, tf.zeros_like(x))
    if mode == "align_corners":
        return tf.where(out_f > 1, x * (in_f - 1) / tf.maximum(out_f - 1, 1), tf.zeros_like(x))
    if mode == "asymmetric":
        return x / scale
    if mode == "half_pixel_symmetric":
        adjustment = out_f / (scale * in_f)
        offset = in_f / 2 * (1 - adjustment)
        return offset + (x + 0.5) / scale - 0.5
    if mode == "tf_crop_and_resize":
        return tf.where(out_f > 1, roi_start * (in_f - 1) + x * (roi_end - roi_start) * (in_f - 1) / tf.maximum(out_f - 1, 1),
                        0.5 * (roi_start + roi_end) * (in_f - 1))
    raise UnsupportedOpError(f"Resize coordinate_transformation_mode {mode!r}")


def _nearest_index(tf, coords, rule: str):
    if rule == "round_prefer_floor":
        return tf.math.ceil(coords - 0.5)
    if rule == "round_prefer_ceil":
        return tf.floor(coords + 0.5)
    if rule == "floor":
        return tf.floor(coords)
    if rule == "ceil":
        return tf.math.ceil(coords)
    raise UnsupportedOpError(f"Resize nearest_mode {rule!r}")


def _cubic_weights(tf, t, a: float):
    """Keys' cubic convolution weights for the taps at offsets -1, 0, 1, 2 from floor(x)."""
    def far(d):  # 1 < |d| < 2
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    def near(d):  # |d| <= 1
        return ((a + 2) * d - (a + 3)) * d * d + 1
    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def _resize_axis(tf, x, axis: int, out_len, scale, ctx: NodeContext, roi):
    in_len = x.shape[axis] if x.shape[axis] is not None else tf.shape(x, out_type=tf.int64)[axis]
    mode = ctx.attr("mode", "nearest")
    transform = ctx.attr("coordinate_transformation_mode", "half_pixel" if ctx.opset >= 11 else "asymmetric")
    coords = _source_coordinates(tf, out_len, in_len, scale, transform, *(roi or (None, None)))
    last = tf.cast(in_len - 1, tf.float32)
    outside = (coords < 0) | (coords > last) if transform == "tf_crop_and_resize" else None

    def take(index):
        clipped = tf.cast(tf.clip_by_value(index, 0, last), tf.int64)
        return tf.gather(x, clipped, axis=axis)

    shape = [1] * len(x.shape)
    shape[axis] = -1
    if mode == "nearest":
        y = take(_nearest_index(tf, coords, ctx.attr("nearest_mode", "round_prefer_floor")))
    elif mode == "linear":
        base = tf.floor(coords)
        weight = tf.reshape(tf.cast(coords - base, x.dtype), shape)
        y = take(base) * (1 - weight) + take(base + 1) * weight
    elif mode == "cubic":
        base = tf.floor(coords)
        weights = _cubic_weights(tf, coords - base, float(ctx.attr("cubic_coeff_a", -0.75)))
        taps = [base + offset for offset in (-1, 0, 1, 2)]
        if ctx.attr("exclude_outside", 0):  # taps outside the input get no weight; the rest renormalised
            weights = [tf.where((t < 0) | (t > last), tf.zeros_like(w), w) for t, w in zip(taps, weights)]
            total = tf.add_n(weights)
            weights = [w / total for w in weights]
        y = tf.add_n([take(t) * tf.reshape(tf.cast(w, x.dtype), shape) for t, w in zip(taps, weights)])
    else:
        raise UnsupportedOpError(f"Resize mode {mode!r}", ctx.opset, ["nearest", "linear", "cubic"])
    if outside is not None:
        fill = tf.cast(ctx.attr("extrapolation_value", 0.0), x.dtype)
        y = tf.where(tf.reshape(outside, shape), fill, y)
    return y


@onnx_op("Resize", since=10)
def convert_resize(ctx: NodeContext):
    """ONNX Resize: nearest/linear/cubic along any axes, every coordinate transformation (antialias not yet)."""
    tf = _tf()
    x = ctx.inputs[0]
    rank = len(x.shape)
    if ctx.attr("antialias", 0):
        raise UnsupportedOpError("Resize with antialias", ctx.opset, where=f"node {ctx.node.name!r}")
    axes = list(ctx.attr("axes", range(rank)))
    axes = [a + rank if a < 0 else a for a in axes]
    if ctx.opset < 11:
        scales, sizes, roi = ctx.input(1), None, None
    else:
        roi, scales, sizes = ctx.input(1), ctx.input(2), ctx.input(3)
    in_shape = tf.shape(x, out_type=tf.int64)
    in_lengths = tf.gather(in_shape, axes)
    if sizes is not None and (sizes.shape.rank is None or sizes.shape[0] != 0):
        sizes = tf.cast(tf.reshape(sizes, [-1]), tf.int64)
        ratio = tf.cast(sizes, tf.float32) / tf.cast(in_lengths, tf.float32)
        policy = ctx.attr("keep_aspect_ratio_policy", "stretch")
        if policy in ("not_larger", "not_smaller"):
            ratio = tf.fill(tf.shape(ratio), tf.reduce_min(ratio) if policy == "not_larger" else tf.reduce_max(ratio))
            sizes = tf.cast(tf.round(ratio * tf.cast(in_lengths, tf.float32)), tf.int64)
        scales = ratio
    else:
        scales = tf.cast(tf.reshape(scales, [-1]), tf.float32)
        if ctx.opset >= 18 or scales.shape[0] == len(axes):
            scales = scales if scales.shape[0] == len(axes) else tf.gather(scales, axes)
        sizes = tf.cast(tf.floor(scales * tf.cast(in_lengths, tf.float32)), tf.int64)
    roi_values = None
    if roi is not None and roi.shape.rank is not None and roi.shape[0] not in (0, None):
        roi_values = tf.reshape(tf.cast(roi, tf.float32), [2, -1])
        if roi.shape[0] == 2 * rank and len(axes) != rank:
            roi_values = tf.gather(roi_values, axes, axis=1)
    fixed = _static_lengths(ctx, x, axes)
    y = x
    for i, axis in enumerate(axes):
        roi_axis = (roi_values[0, i], roi_values[1, i]) if roi_values is not None else None
        out_len, scale = fixed[i] if fixed[i] is not None else (sizes[i], scales[i])
        y = _resize_axis(tf, y, axis, out_len, scale, ctx, roi_axis)
    return y


def _static_lengths(ctx: NodeContext, x, axes: list[int]) -> list[tuple | None]:
    """Per axis, (output length, scale) as numbers when the input length and the requested size or
    scale are known while converting (a batch-dynamic model's sizes are often Concat(Shape(x)[:2],
    constants)). Computed from tf.shape instead, the sampled indices would have a length only the
    run knows, and TFLite's converter then cannot see the channels of what follows (a Conv2D it
    refuses to make a builtin of: SegFormer's decode head)."""
    if ctx.attr("keep_aspect_ratio_policy", "stretch") != "stretch":
        return [None] * len(axes)
    sizes = ctx.known(3) if ctx.opset >= 11 else None
    scales = ctx.static(2 if ctx.opset >= 11 else 1)
    if scales is not None and scales.size not in (len(axes), x.shape.rank or -1):
        scales = None
    fixed = []
    for i, axis in enumerate(axes):
        in_len = x.shape[axis]
        if in_len is None:
            fixed.append(None)
        elif sizes is not None and len(sizes) == len(axes) and sizes[i] is not None:
            fixed.append((int(sizes[i]), float(sizes[i]) / in_len))
        elif sizes is None and scales is not None and scales.size:
            scale = float(scales.reshape(-1)[i if scales.size == len(axes) else axis])
            fixed.append((int(np.floor(scale * in_len)), scale))
        else:
            fixed.append(None)
    return fixed


@onnx_op("Upsample", since=7)
def convert_upsample(ctx: NodeContext):
    """ONNX Upsample (deprecated Resize with scales and asymmetric coordinates)."""
    if ctx.opset < 9:
        raise UnsupportedOpError("Upsample", ctx.opset, where=f"node {ctx.node.name!r}", hint="Upsample converts from opset 9")
    ctx.attrs.setdefault("nearest_mode", "floor")  # Upsample's nearest takes floor(i / scale)
    ctx.attrs.setdefault("coordinate_transformation_mode", "asymmetric")
    return convert_resize(ctx)
