"""ONNX's sampling ops: AffineGrid and GridSample (any number of spatial dims; nearest, linear
and cubic; zeros, border and reflection padding), as gathers of the neighbouring pixels."""
from __future__ import annotations

import itertools

from .graph import NodeContext, onnx_op


def _tf():
    import tensorflow as tf
    return tf


def _normalized_positions(tf, size, align: bool):
    """Pixel centres (or corners, aligned) of a dimension of ``size`` in [-1, 1]."""
    i = tf.cast(tf.range(size), tf.float64)
    size = tf.cast(size, tf.float64)
    return -1.0 + 2.0 * i / (size - 1.0) if align else -1.0 + (2.0 * i + 1.0) / size


@onnx_op("AffineGrid", since=20)
def convert_affine_grid(ctx: NodeContext):
    """ONNX AffineGrid: theta [N, k, k+1] applied to the normalized grid of ``size`` (2-D or 3-D)."""
    tf = _tf()
    theta, size = ctx.inputs[0], tf.cast(ctx.inputs[1], tf.int32)
    align = bool(ctx.attr("align_corners", 0))
    spatial = theta.shape[1]
    dims = [size[2 + i] for i in range(spatial)]  # (H, W) or (D, H, W)
    axes = tf.meshgrid(*[_normalized_positions(tf, d, align) for d in dims], indexing="ij")
    base = tf.stack([*axes[::-1], tf.ones_like(axes[0])], axis=-1)  # x, y(, z), 1
    flat = tf.reshape(base, [-1, spatial + 1])
    grid = tf.einsum("nij,pj->npi", tf.cast(theta, tf.float64), flat)
    return tf.cast(tf.reshape(grid, tf.concat([size[:1], tf.stack(dims), [spatial]], 0)), theta.dtype)


def _reflect(tf, x, low, high):
    """Fold ``x`` back into [low, high] like a mirror, as ONNX's GridSample does."""
    span = high - low

    def fold(distance):
        turns = tf.floor(distance / span)
        return distance - turns * span, tf.math.floormod(turns, 2.0) == 0

    rest, even = fold(low - x)
    below = tf.where(even, low + rest, high - rest)
    rest, even = fold(x - high)
    above = tf.where(even, high - rest, low + rest)
    return tf.where(x < low, below, tf.where(x > high, above, x))


def _cubic_weights(tf, t):
    a = -0.75
    def near(d):
        return ((a + 2) * d - (a + 3)) * d * d + 1
    def far(d):
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


@onnx_op("GridSample", since=16)
def convert_grid_sample(ctx: NodeContext):
    """ONNX GridSample: sample X [N, C, spatial...] at the grid's normalized positions."""
    tf = _tf()
    x, grid = ctx.inputs[:2]
    mode = ctx.attr("mode", "linear" if ctx.opset >= 20 else "bilinear")
    mode = {"bilinear": "linear", "bicubic": "cubic"}.get(mode, mode)  # opset 16's names
    padding = ctx.attr("padding_mode", "zeros")
    align = bool(ctx.attr("align_corners", 0))
    k = len(x.shape) - 2
    sizes = [tf.cast(tf.shape(x)[2 + i], tf.float64) for i in range(k)]
    channels_last = tf.transpose(x, [0, *range(2, k + 2), 1])
    grid = tf.cast(grid, tf.float64)
    coords, lows, highs = [], [], []
    for i in range(k):  # the grid lists the last spatial dim first
        n, size = grid[..., k - 1 - i], sizes[i]
        coords.append((n + 1) / 2.0 * (size - 1) if align else ((n + 1) * size - 1) / 2.0)
        lows.append(tf.zeros([], tf.float64) if align else tf.constant(-0.5, tf.float64))
        highs.append(size - 1.0 if align else size - 0.5)
    if mode == "nearest":
        coords = [tf.round(c) for c in coords]  # half to even, as ONNX
    if padding == "border":
        coords = [tf.clip_by_value(c, 0.0, s - 1) for c, s in zip(coords, sizes)]
    elif padding == "reflection":
        coords = [_reflect(tf, c, lo, hi) for c, lo, hi in zip(coords, lows, highs)]

    def fetch(indices):
        """Pixels at integer positions [N, out..., k]; outside: zeros, or folded back for the other modes."""
        valid = None
        fixed = []
        for i, index in enumerate(indices):
            if padding == "zeros":
                inside = (index >= 0) & (index < sizes[i])
                valid = inside if valid is None else valid & inside
                index = tf.clip_by_value(index, 0.0, sizes[i] - 1)
            elif padding == "border":
                index = tf.clip_by_value(index, 0.0, sizes[i] - 1)
            else:
                index = _reflect(tf, index, lows[i], highs[i])
                index = tf.where(index < 0, tf.math.ceil(index), tf.floor(index))  # C's int(): toward zero
            fixed.append(tf.cast(index, tf.int32))
        values = tf.gather_nd(channels_last, tf.stack(fixed, -1), batch_dims=1)
        if valid is not None:
            values = values * tf.cast(valid, values.dtype)[..., None]
        return tf.cast(values, tf.float64)

    if mode == "nearest":
        result = fetch(coords)
    else:
        base = [tf.floor(c) for c in coords]
        frac = [c - b for c, b in zip(coords, base)]
        if mode == "linear":
            offsets, weights = [0, 1], [[1 - f, f] for f in frac]
        else:
            offsets, weights = [-1, 0, 1, 2], [_cubic_weights(tf, f) for f in frac]
        result = 0.0
        for corner in itertools.product(range(len(offsets)), repeat=k):
            weight = 1.0
            for i, which in enumerate(corner):
                weight = weight * weights[i][which]
            result = result + fetch([b + offsets[which] for b, which in zip(base, corner)]) * weight[..., None]
    out_rank = len(grid.shape) - 1
    return tf.cast(tf.transpose(result, [0, out_rank, *range(1, out_rank)]), x.dtype)


def _roi_axis(tf, start, size, bins: int, grid: int, extent):
    """RoiAlign's sample positions along one axis, per roi [R, bins, grid]: the two neighbouring
    pixel indices, their weights, and whether the sample lies near enough the image to count."""
    step = size / bins
    pos = (start[:, None, None] + tf.range(bins, dtype=start.dtype)[None, :, None] * step[:, None, None]
           + (tf.range(grid, dtype=start.dtype)[None, None, :] + 0.5) * (step / grid)[:, None, None])
    extent_f = tf.cast(extent, pos.dtype)
    inside = (pos >= -1.0) & (pos <= extent_f)
    pos = tf.maximum(pos, 0.0)
    low = tf.cast(tf.floor(pos), tf.int64)
    at_end = low >= extent - 1  # the last pixel: both neighbours are it
    low = tf.where(at_end, extent - 1, low)
    high = tf.where(at_end, low, low + 1)
    pos = tf.where(at_end, tf.cast(low, pos.dtype), pos)
    frac = pos - tf.cast(low, pos.dtype)
    return low, high, 1.0 - frac, frac, inside


@onnx_op("RoiAlign", since=10)
def convert_roi_align(ctx: NodeContext):
    """ONNX RoiAlign: each roi cut into output_height x output_width bins, each bin the average (or
    max) of sampling_ratio^2 bilinear samples; half_pixel or output_half_pixel coordinates."""
    from ...errors import UnsupportedOpError
    tf = _tf()
    x, rois, batch = ctx.inputs[:3]
    grid = ctx.attr("sampling_ratio", 0)
    if grid <= 0:
        raise UnsupportedOpError("RoiAlign with sampling_ratio 0 (adaptive: a sample count per roi)", ctx.opset,
                                 where=f"node {ctx.node.name!r}", hint="export with a fixed sampling_ratio")
    out_h, out_w = ctx.attr("output_height", 1), ctx.attr("output_width", 1)
    half_pixel = ctx.attr("coordinate_transformation_mode", "half_pixel") == "half_pixel" and ctx.opset >= 16
    scale = ctx.attr("spatial_scale", 1.0)
    rois = tf.cast(rois, tf.float32) * scale - (0.5 if half_pixel else 0.0)
    width, height = rois[:, 2] - rois[:, 0], rois[:, 3] - rois[:, 1]
    if not half_pixel:
        width, height = tf.maximum(width, 1.0), tf.maximum(height, 1.0)
    shape = tf.shape(x, out_type=tf.int64)
    y0, y1, hy, ly, in_y = _roi_axis(tf, rois[:, 1], height, out_h, grid, shape[2])
    x0, x1, hx, lx, in_x = _roi_axis(tf, rois[:, 0], width, out_w, grid, shape[3])
    image = tf.transpose(x, [0, 2, 3, 1])  # [N, H, W, C]
    batch = tf.cast(batch, tf.int64)[:, None, None, None, None]

    def at(ys, xs):  # the pixels at every (y, x) sample pair: [R, out_h, grid, out_w, grid, C]
        ys, xs = ys[:, :, :, None, None], xs[:, None, None, :, :]
        shape = tf.shape(ys + xs)
        index = tf.stack([tf.broadcast_to(batch, shape), tf.broadcast_to(ys, shape), tf.broadcast_to(xs, shape)], -1)
        return tf.cast(tf.gather_nd(image, index), tf.float32)

    def weight(wy, wx):
        valid = tf.cast(in_y[:, :, :, None, None] & in_x[:, None, None, :, :], tf.float32)
        return (wy[:, :, :, None, None] * wx[:, None, None, :, :] * valid)[..., None]
    terms = [weight(hy, hx) * at(y0, x0), weight(hy, lx) * at(y0, x1),
             weight(ly, hx) * at(y1, x0), weight(ly, lx) * at(y1, x1)]
    if ctx.attr("mode", "avg") == "max":
        pooled = tf.reduce_max(tf.reduce_max(tf.stack(terms), axis=0), axis=[2, 4])
    else:
        pooled = tf.reduce_sum(tf.add_n(terms), axis=[2, 4]) / float(grid * grid)
    return tf.cast(tf.transpose(pooled, [0, 3, 1, 2]), x.dtype)
