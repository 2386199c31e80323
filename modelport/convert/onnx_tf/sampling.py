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
