"""ONNX ops over sliding windows that are not plain convolutions or pools: Col2Im (a segment sum
over index maps built from the window geometry), MaxUnpool, CausalConvWithState."""
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
