"""ONNX's quantization ops on integer types: QuantizeLinear, DequantizeLinear (per tensor, per axis
or blocked), DynamicQuantizeLinear, and the integer / QLinear products (MatMulInteger,
ConvInteger, QLinearMatMul, QLinearConv), computed exactly as ONNX defines them."""
from __future__ import annotations

from .graph import NodeContext, onnx_op

# ONNX integer element types -> (TF dtype name, lowest, highest).
_INTEGER_RANGES = {2: ("uint8", 0, 255), 3: ("int8", -128, 127), 4: ("uint16", 0, 65535), 5: ("int16", -32768, 32767)}


def _tf():
    import tensorflow as tf
    return tf


def _per_axis(tf, value, x, axis: int, block: int = 0):
    """A scale or zero point shaped to broadcast against ``x``: scalar, per ``axis``, or repeated
    over blocks of ``block`` along ``axis``."""
    if value.shape.rank == 0 or (value.shape.rank == 1 and value.shape[0] == 1):
        return tf.reshape(value, [])
    rank = len(x.shape)
    axis %= rank
    if block:
        return tf.repeat(value, block, axis=axis)[tuple(slice(None) if a != axis else slice(0, x.shape[axis])
                                                        for a in range(rank))]
    shape = [1] * rank
    shape[axis] = -1
    return tf.reshape(value, shape)


def _quantize(tf, x, scale, zero, type_code: int, saturate: bool = True):
    from ...errors import UnsupportedOpError
    from .narrow import NARROW, NarrowFloat, NarrowInt, carrier, cast_to_narrow
    narrow = NARROW.get(int(type_code))
    if isinstance(narrow, NarrowFloat):  # float8 / float4: x / scale + zero_point, rounded onto the type
        q = x / scale
        if zero is not None:
            q = q + tf.cast(zero, q.dtype)
        return cast_to_narrow(tf, q, type_code, saturate=saturate)
    if isinstance(narrow, NarrowInt):
        name, low, high = carrier(type_code), narrow.lowest, narrow.lowest + (1 << narrow.bits) - 1
    elif type_code in _INTEGER_RANGES:
        name, low, high = _INTEGER_RANGES[type_code]
    else:
        raise UnsupportedOpError(f"QuantizeLinear to element type {type_code}", hint="quantizing to (u)int2/4/8/16, "
                                 "float8 and float4 converts")
    q = tf.round(x / scale)  # half to even, as ONNX's rint
    if zero is not None:
        q = q + tf.cast(zero, q.dtype)
    return tf.cast(tf.clip_by_value(q, low, high), getattr(tf, name))


def _linear_operands(ctx: NodeContext):
    """QuantizeLinear's and DequantizeLinear's x, scale, zero point, axis and block size."""
    x, scale = ctx.inputs[:2]
    return x, scale, ctx.input(2), ctx.attr("axis", 1), ctx.attr("block_size", 0)


@onnx_op("QuantizeLinear", since=10)
def convert_quantize_linear(ctx: NodeContext):
    """ONNX QuantizeLinear to (u)int2/4/8/16, float8 or float4: saturate(round(x / scale) + zero_point)."""
    tf = _tf()
    x, scale, zero, axis, block = _linear_operands(ctx)
    precision = ctx.attr("precision")
    if precision:
        from .dtypes import tf_dtype
        x, scale = tf.cast(x, tf_dtype(precision)), tf.cast(scale, tf_dtype(precision))
    elif x.dtype != scale.dtype:
        scale = tf.cast(scale, x.dtype)
    type_code = ctx.onnx_type(2) if zero is not None else ctx.attr("output_dtype") or 2
    zero = None if zero is None else _per_axis(tf, zero, x, axis, block)
    return _quantize(tf, x, _per_axis(tf, scale, x, axis, block), zero, type_code, bool(ctx.attr("saturate", 1)))


@onnx_op("DequantizeLinear", since=10)
def convert_dequantize_linear(ctx: NodeContext):
    """ONNX DequantizeLinear: (x - zero_point) * scale, per tensor, axis or block."""
    tf = _tf()
    x, scale, zero, axis, block = _linear_operands(ctx)
    dx = tf.cast(x, tf.float32)
    if zero is not None:
        dx = dx - tf.cast(_per_axis(tf, zero, x, axis, block), tf.float32)
    y = dx * tf.cast(_per_axis(tf, scale, x, axis, block), tf.float32)
    output = ctx.attr("output_dtype")
    if output:
        from .dtypes import tf_dtype
        return tf.cast(y, tf_dtype(output))
    return tf.cast(y, scale.dtype)


@onnx_op("DynamicQuantizeLinear", since=11)
def convert_dynamic_quantize_linear(ctx: NodeContext):
    """ONNX DynamicQuantizeLinear: uint8 with a scale and zero point from the data's range (0 included)."""
    tf = _tf()
    x = ctx.inputs[0]
    low = tf.minimum(tf.reduce_min(x), 0.0)
    high = tf.maximum(tf.reduce_max(x), 0.0)
    scale = (high - low) / 255.0
    zero = tf.cast(tf.clip_by_value(tf.round(-low / scale), 0, 255), tf.uint8)
    return [_quantize(tf, x, scale, zero, 2), scale, zero]


def _centered(tf, value, zero, axis=None, like=None):
    value = tf.cast(value, tf.int32)
    if zero is None:
        return value
    zero = tf.cast(zero, tf.int32)
    if axis is not None and zero.shape.rank == 1 and zero.shape[0] != 1:
        shape = [1] * len(like.shape)
        shape[axis] = -1
        zero = tf.reshape(zero, shape)
    return value - tf.reshape(zero, []) if zero.shape.rank and zero.shape[0] == 1 else value - zero


@onnx_op("MatMulInteger", since=10)
def convert_matmul_integer(ctx: NodeContext):
    """ONNX MatMulInteger: int32 product of zero-point-centered (u)int8 matrices."""
    tf = _tf()
    a, b = ctx.inputs[:2]
    a = _centered(tf, a, ctx.input(2), axis=-2 if len(a.shape) > 1 else None, like=a)
    b = _centered(tf, b, ctx.input(3), axis=len(b.shape) - 1, like=b)
    return tf.experimental.numpy.matmul(a, b)


@onnx_op("QLinearMatMul", since=10)
def convert_qlinear_matmul(ctx: NodeContext):
    """ONNX QLinearMatMul: dequantize both operands, multiply, quantize to the output's type."""
    tf = _tf()
    a, a_scale, a_zero, b, b_scale, b_zero, y_scale, y_zero = ctx.inputs[:8]
    da = (tf.cast(a, tf.float32) - tf.cast(_per_axis(tf, a_zero, a, -2), tf.float32)) * tf.cast(
        _per_axis(tf, a_scale, a, -2), tf.float32)
    db = (tf.cast(b, tf.float32) - tf.cast(_per_axis(tf, b_zero, b, -1), tf.float32)) * tf.cast(
        _per_axis(tf, b_scale, b, -1), tf.float32)
    product = tf.linalg.matmul(da, db)
    return _quantize(tf, product, tf.cast(y_scale, tf.float32), y_zero, ctx.onnx_type(7))


def _float_conv(ctx: NodeContext, x, w, bias=None):
    """ONNX Conv with this node's attributes on float operands (integers up to 2**24 are exact)."""
    from .layout import logical
    from .nn import convert_conv
    inputs = [x, w] + ([bias] if bias is not None else [])
    return logical(_tf(), convert_conv(ctx.derive(inputs)))


@onnx_op("ConvInteger", since=10)
def convert_conv_integer(ctx: NodeContext):
    """ONNX ConvInteger: int32 convolution of zero-point-centered (u)int8 tensors."""
    tf = _tf()
    x, w = ctx.inputs[:2]
    x = _centered(tf, x, ctx.input(2))
    w = _centered(tf, w, ctx.input(3), axis=0, like=w)
    return tf.cast(tf.round(_float_conv(ctx, tf.cast(x, tf.float32), tf.cast(w, tf.float32))), tf.int32)


@onnx_op("QLinearConv", since=10)
def convert_qlinear_conv(ctx: NodeContext):
    """ONNX QLinearConv: dequantize input and (per output channel) weights, convolve with the int32
    bias, quantize to the output's type."""
    tf = _tf()
    x, x_scale, x_zero, w, w_scale, w_zero, y_scale, y_zero = ctx.inputs[:8]
    bias = ctx.input(8)
    dx = (tf.cast(x, tf.float32) - tf.cast(tf.reshape(x_zero, []), tf.float32)) * tf.cast(x_scale, tf.float32)
    dw = (tf.cast(w, tf.float32) - tf.cast(_per_axis(tf, w_zero, w, 0), tf.float32)) * tf.cast(
        _per_axis(tf, w_scale, w, 0), tf.float32)
    if bias is not None:  # int32, in units of x_scale * w_scale
        bias = tf.cast(bias, tf.float32) * tf.reshape(tf.cast(x_scale, tf.float32) * tf.cast(w_scale, tf.float32), [-1])
    y = _float_conv(ctx, dx, dw, bias)
    return _quantize(tf, y, tf.cast(y_scale, tf.float32), y_zero, ctx.onnx_type(7))
