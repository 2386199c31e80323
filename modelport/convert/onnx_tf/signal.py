"""ONNX's signal ops: DFT (forward, inverse, one-sided, any axis, padded or cut to a length) and STFT
on the [..., 1 | 2] real / complex representation ONNX uses; MelWeightMatrix."""
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


@onnx_op("STFT", since=17)
def convert_stft(ctx: NodeContext):
    """ONNX STFT: frames of frame_length every frame_step samples, times the window, each
    transformed (one-sided by default for real signals); [batch, frames, bins, 2]."""
    tf = _tf()
    x, step = ctx.inputs[0], tf.reshape(tf.cast(ctx.inputs[1], tf.int32), [])
    window, length = ctx.input(2), ctx.input(3)
    if length is None and window is None:
        from ...errors import UnsupportedOpError
        raise UnsupportedOpError("STFT without a window or frame_length", ctx.opset, where=f"node {ctx.node.name!r}")
    size = tf.reshape(tf.cast(length, tf.int32), []) if length is not None else tf.shape(window)[0]
    signal = tf.cast(x[..., 0], tf.float64)
    if x.shape[-1] == 2:
        signal = tf.complex(signal, tf.cast(x[..., 1], tf.float64))
    frames = tf.signal.frame(signal, size, step, axis=1)  # [batch, frames, size]
    if window is not None:
        frames = frames * tf.cast(window, frames.dtype)
    onesided = bool(ctx.attr("onesided", 1))
    if frames.dtype.is_complex:
        result = tf.signal.fft(frames)
    elif onesided:
        result = tf.signal.rfft(frames, fft_length=tf.reshape(size, [1]))
    else:
        result = tf.signal.fft(tf.complex(frames, tf.zeros_like(frames)))
    return tf.cast(tf.stack([tf.math.real(result), tf.math.imag(result)], axis=-1), x.dtype)


@onnx_op("MelWeightMatrix", since=17)
def convert_mel_weight_matrix(ctx: NodeContext):
    """ONNX MelWeightMatrix: [dft_length // 2 + 1, num_mel_bins] triangular filters between mel-spaced
    FFT bins (bin edges rounded down, as ONNX's reference computes them)."""
    from .dtypes import tf_dtype
    tf = _tf()
    mels, dft, rate = [tf.reshape(tf.cast(v, tf.int64), []) for v in ctx.inputs[:3]]
    low, high = [tf.reshape(tf.cast(v, tf.float32), []) for v in ctx.inputs[3:5]]
    ln10 = np.log(10)
    low_mel = tf.cast(2595 * tf.math.log1p(low / 700) / ln10, tf.float64)
    high_mel = tf.cast(2595 * tf.math.log1p(high / 700) / ln10, tf.float64)
    points = tf.range(mels + 2)
    mel = tf.cast(points, tf.float64) * ((high_mel - low_mel) / tf.cast(mels + 2, tf.float64)) + low_mel
    hertz = 700 * tf.math.expm1(mel / 2595 * ln10)
    edges = tf.cast(tf.floor(tf.cast(dft + 1, tf.float64) * hertz / tf.cast(rate, tf.float64)), tf.int64)
    left, center, right = edges[:-2][None, :], edges[1:-1][None, :], edges[2:][None, :]
    j = tf.range(dft // 2 + 1)[:, None]
    def ratio(num, den):
        return tf.cast(num, tf.float64) / tf.cast(tf.maximum(den, 1), tf.float64)
    # Rising edge from left to center (a single 1 where they coincide), then the falling edge from
    # center to right, which wins where both apply (the reference writes it second).
    rising = tf.where(tf.equal(center, left), tf.cast(tf.equal(j, center), tf.float64),
                      tf.where((j >= left) & (j <= center), ratio(j - left, center - left), 0.0))
    falling_here = (right > center) & (j >= center) & (j < right)
    falling = ratio(right - j, right - center)
    return tf.cast(tf.where(falling_here, falling, rising), tf_dtype(ctx.attr("output_datatype", 1)))
