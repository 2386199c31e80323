"""ONNX's signal ops: DFT (forward, inverse, one-sided, any axis, padded or cut to a length) on the
[..., 1 | 2] real / complex representation ONNX uses."""
from __future__ import annotations

import numpy as np

from .graph import NodeContext, onnx_op


def _tf():
    import tensorflow as tf
    return tf


def _fit(tf, x, axis: int, length: int):
    """Cut or zero-pad ``x`` along ``axis`` to ``length``."""
    size = x.shape[axis]
    if size is not None and size >= length:
        index = [slice(None)] * len(x.shape)
        index[axis] = slice(0, length)
        return x[tuple(index)]
    paddings = [[0, 0]] * len(x.shape)
    paddings[axis] = [0, length - size]
    return tf.pad(x, paddings)


@onnx_op("DFT", since=17)
def convert_dft(ctx: NodeContext):
    """ONNX DFT (axis as an attribute before opset 20, as an input from it: a computed axis picks
    among the possible ones at run time)."""
    tf = _tf()
    x = ctx.inputs[0]
    rank = len(x.shape)
    if ctx.opset >= 20:
        given = ctx.const(2)
        if given is None and ctx.input(2) is not None:
            axis = tf.math.floormod(tf.cast(tf.reshape(ctx.inputs[2], []), tf.int32), rank)
            return tf.switch_case(axis, [lambda a=a: _dft(ctx, x, a) for a in range(rank - 1)])
        axis = int(np.asarray(given).reshape(-1)[0]) if given is not None else -2
    else:
        axis = ctx.attr("axis", 1)
    return _dft(ctx, x, axis % rank)


def _dft(ctx: NodeContext, x, axis: int):
    tf = _tf()
    rank = len(x.shape)
    inverse, onesided = bool(ctx.attr("inverse", 0)), bool(ctx.attr("onesided", 0))
    length = ctx.const(1)
    size = x.shape[axis]
    if length is not None:
        length = int(np.asarray(length).reshape(-1)[0])
    else:
        length = 2 * (size - 1) if inverse and onesided else size
    # Forward transforms and one-sided inverses in double precision (numpy's); the complex inverse
    # in the input's single precision, which is what onnx's expected values for it carry.
    wide = tf.float32 if inverse and not onesided else tf.float64
    real = tf.cast(x[..., 0], wide)
    imag = tf.cast(x[..., 1], wide) if x.shape[-1] == 2 else tf.zeros_like(real)
    last = rank - 2  # the signal's last axis (the real/imag axis is gone)
    moved = tf.experimental.numpy.moveaxis(tf.complex(real, imag), axis, last)
    if inverse and onesided:
        result = tf.signal.irfft(moved, fft_length=[length])
        return tf.cast(tf.experimental.numpy.moveaxis(result, last, axis)[..., None], x.dtype)
    moved = _fit(tf, moved, last, length)
    result = tf.signal.ifft(moved) if inverse else tf.signal.fft(moved)
    if onesided and not inverse:
        result = result[..., :length // 2 + 1]
    result = tf.experimental.numpy.moveaxis(result, last, axis)
    return tf.cast(tf.stack([tf.math.real(result), tf.math.imag(result)], axis=-1), x.dtype)
