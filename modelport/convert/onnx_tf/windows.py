"""ONNX ops over sliding windows that are not plain convolutions or pools: Col2Im (a segment sum
over index maps built from the window geometry), MaxUnpool, CausalConvWithState, DeformConv."""
from __future__ import annotations

from ...errors import UnsupportedOpError
from .graph import NodeContext, onnx_op


def _tf():
    import tensorflow as tf
    return tf


@onnx_op("CausalConvWithState", since=1)
def convert_causal_conv_with_state(ctx: NodeContext):
    """ONNX CausalConvWithState: depthwise causal 1-D convolution over the past state followed by
    the input (zeros without one), optional bias and SiLU; the last k - 1 positions are the new state."""
    tf = _tf()
    x, weight = ctx.inputs[:2]
    bias, past = ctx.input(2), ctx.input(3)
    k = int(weight.shape[2])
    if past is None:
        past = tf.zeros(tf.stack([tf.shape(x)[0], tf.shape(x)[1], k - 1]), x.dtype)
    padded = tf.concat([past, x], axis=2)
    length = tf.shape(x)[2]
    wide = tf.float32 if x.dtype in (tf.float16, tf.bfloat16) else x.dtype  # half types accumulate wider
    taps = tf.cast(weight[:, 0, :], wide)
    out = sum(taps[None, :, j, None] * tf.cast(padded[:, :, j:j + length], wide) for j in range(k))
    if bias is not None:
        out = out + tf.cast(bias, wide)[None, :, None]
    out = tf.cast(out, x.dtype)
    if ctx.attr("activation", "none") in ("silu", "swish"):
        wide_out = tf.cast(out, tf.float32)
        out = tf.cast(wide_out * tf.sigmoid(wide_out), x.dtype)
    elif ctx.attr("activation", "none") != "none":
        raise UnsupportedOpError(f"CausalConvWithState activation {ctx.attr('activation')!r}", ctx.opset,
                                 where=f"node {ctx.node.name!r}", hint="none, silu and swish are defined")
    return [out, padded[:, :, tf.shape(padded)[2] - (k - 1):]]


@onnx_op("Col2Im", since=18)
def convert_col2im(ctx: NodeContext):
    """ONNX Col2Im: sum the columns [N, C * prod(block), L] back into an image [N, C, *image_shape]
    (torch's fold): each column entry lands on one pixel, or in the padding, where it is dropped.
    The image and block shapes may be run-time values; their length must be static."""
    tf = _tf()
    x = ctx.inputs[0]
    image, block = tf.cast(ctx.inputs[1], tf.int64), tf.cast(ctx.inputs[2], tf.int64)
    rank = ctx.inputs[1].shape[0]
    if rank is None:
        raise UnsupportedOpError("Col2Im with an image shape of unknown length", ctx.opset,
                                 where=f"node {ctx.node.name!r}")
    dilations = ctx.attr("dilations") or [1] * rank
    strides = ctx.attr("strides") or [1] * rank
    pads = ctx.attr("pads") or [0] * (2 * rank)
    # Per spatial dim: the kernel offset of each column row, the block start of each column.
    offsets = [tf.reshape(g, [-1]) for g in tf.meshgrid(*[tf.range(block[d]) for d in range(rank)], indexing="ij")]
    counts = [(image[d] + pads[d] + pads[d + rank] - dilations[d] * (block[d] - 1) - 1) // strides[d] + 1
              for d in range(rank)]
    starts = [tf.reshape(g, [-1]) for g in tf.meshgrid(*[tf.range(c) for c in counts], indexing="ij")]
    pixels = tf.reduce_prod(image)
    flat, valid = tf.zeros([], tf.int64), tf.constant(True)
    for d in range(rank):  # target[j, l]: the flat pixel kernel offset j of block l covers
        coord = starts[d][None, :] * strides[d] + offsets[d][:, None] * dilations[d] - pads[d]
        valid = valid & (coord >= 0) & (coord < image[d])
        flat = flat * image[d] + coord
    target = tf.reshape(tf.where(valid, flat, pixels), [-1])  # pixels: the dropped padding
    n, channels = tf.shape(x, out_type=tf.int64)[0], tf.shape(x, out_type=tf.int64)[1] // tf.reduce_prod(block)
    columns = tf.reshape(x, tf.stack([n, channels, -1]))
    summed = tf.math.unsorted_segment_sum(tf.transpose(columns, [2, 0, 1]), target, pixels + 1)
    return tf.reshape(tf.transpose(summed[:pixels], [1, 2, 0]), tf.concat([tf.stack([n, channels]), image], 0))


@onnx_op("MaxUnpool", since=9)
def convert_max_unpool(ctx: NodeContext):
    """ONNX MaxUnpool: each value written at its flat index (MaxPool's Indices) in a zero tensor of
    the shape the pool's geometry gives, then zero-padded at the end to ``output_shape`` if given."""
    tf = _tf()
    x, where = ctx.inputs[:2]
    kernel = list(ctx.attr("kernel_shape"))
    rank = len(kernel)
    strides = ctx.attr("strides") or [1] * rank
    pads = ctx.attr("pads") or [0] * (2 * rank)
    given = tf.shape(x, out_type=tf.int64)
    shape = tf.stack([given[0], given[1], *[(given[2 + d] - 1) * strides[d] - pads[d] - pads[d + rank] + kernel[d]
                                            for d in range(rank)]])
    flat = tf.scatter_nd(tf.reshape(tf.cast(where, tf.int64), [-1, 1]), tf.reshape(x, [-1]),
                         tf.reshape(tf.reduce_prod(shape), [1]))
    y = tf.reshape(flat, shape)
    if ctx.input(2) is not None:
        grow = tf.cast(ctx.inputs[2], tf.int64) - shape
        y = tf.pad(y, tf.stack([tf.zeros_like(grow), grow], axis=1))
    return y


def _bilinear_at(tf, image, batch, ys, xs):
    """``image`` [N, H, W, C] sampled at fractional pixel positions ``ys``, ``xs`` (shape [N, ...]),
    corners outside the image counting as zero: [N, ..., C]."""
    shape = tf.shape(image)
    height, width = tf.cast(shape[1], ys.dtype), tf.cast(shape[2], ys.dtype)
    y0, x0 = tf.floor(ys), tf.floor(xs)
    total = 0
    for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1)):
        yy, xx = y0 + dy, x0 + dx
        weight = (1 - tf.abs(ys - yy)) * (1 - tf.abs(xs - xx))
        inside = (yy >= 0) & (yy <= height - 1) & (xx >= 0) & (xx <= width - 1)
        index = tf.stack([tf.broadcast_to(batch, tf.shape(yy)),
                          tf.cast(tf.clip_by_value(yy, 0, height - 1), tf.int32),
                          tf.cast(tf.clip_by_value(xx, 0, width - 1), tf.int32)], axis=-1)
        total = total + tf.gather_nd(image, index) * tf.cast(tf.where(inside, weight, 0.0), image.dtype)[..., None]
    return total


@onnx_op("DeformConv", since=19)
def convert_deform_conv(ctx: NodeContext):
    """ONNX DeformConv (2-D): each kernel tap reads the input at its grid position plus a learned
    offset (bilinear, zero outside), optionally scaled by a mask; then a grouped convolution."""
    tf = _tf()
    x, w, offset = ctx.inputs[:3]
    bias, mask = ctx.input(3), ctx.input(4)
    if len(x.shape) != 4:
        raise UnsupportedOpError(f"DeformConv on rank {len(x.shape)}", ctx.opset, where=f"node {ctx.node.name!r}",
                                 hint="2-D deformable convolution converts")
    kh, kw = (ctx.attr("kernel_shape") or w.shape[2:])
    sh, sw = ctx.attr("strides") or [1, 1]
    dh, dw = ctx.attr("dilations") or [1, 1]
    pads = ctx.attr("pads") or [0, 0, 0, 0]
    group, offset_groups = ctx.attr("group", 1), ctx.attr("offset_group", 1)
    n, channels = tf.shape(x)[0], x.shape[1]
    oh, ow = tf.shape(offset)[2], tf.shape(offset)[3]
    offset = tf.reshape(offset, tf.stack([n, offset_groups, kh, kw, 2, oh, ow]))
    mask = (tf.ones(tf.stack([n, offset_groups, kh, kw, oh, ow]), x.dtype) if mask is None
            else tf.reshape(mask, tf.stack([n, offset_groups, kh, kw, oh, ow])))
    grid_y = (tf.cast(tf.range(kh) * dh, x.dtype)[:, None, None, None]
              + tf.cast(tf.range(oh) * sh - pads[0], x.dtype)[None, None, :, None])  # [kh, 1, oh, 1]
    grid_x = (tf.cast(tf.range(kw) * dw, x.dtype)[None, :, None, None]
              + tf.cast(tf.range(ow) * sw - pads[1], x.dtype)[None, None, None, :])  # [1, kw, 1, ow]
    image = tf.transpose(x, [0, 2, 3, 1])
    batch = tf.reshape(tf.range(n), [-1, 1, 1, 1, 1])
    per_group = channels // offset_groups
    sampled = []
    for g in range(offset_groups):  # [N, kh, kw, oh, ow, C / offset_groups]
        ys, xs = grid_y[None] + offset[:, g, :, :, 0], grid_x[None] + offset[:, g, :, :, 1]
        taps = _bilinear_at(tf, image[..., g * per_group:(g + 1) * per_group], batch, ys, xs)
        sampled.append(taps * mask[:, g, ..., None])
    sampled = tf.concat(sampled, axis=-1)
    outs, ins = w.shape[0] // group, channels // group
    y = tf.concat([tf.einsum("nijhwc,ocij->nohw", sampled[..., g * ins:(g + 1) * ins], w[g * outs:(g + 1) * outs])
                   for g in range(group)], axis=1)
    return y if bias is None else y + tf.reshape(bias, [1, -1, 1, 1])
