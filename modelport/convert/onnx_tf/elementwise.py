"""Elementwise ONNX ops: math, activations, comparisons and logic, as TF ops (both broadcast
the numpy way)."""
from __future__ import annotations

from .fusions import FUSED_DOMAIN
from .graph import NodeContext, onnx_op
from .sequences import OptionalValue, TensorSequence
from .layout import ELEMENTWISE


def _tf():
    import tensorflow as tf
    return tf


def _unary(op_type: str, make):
    def convert(ctx: NodeContext):
        return make(_tf(), ctx.inputs[0], ctx)
    convert.__name__ = f"convert_{op_type.lower()}"
    convert.__doc__ = f"ONNX {op_type}."
    onnx_op(op_type, layout=ELEMENTWISE)(convert)


def _absolute(tf, x, ctx):
    if x.dtype.is_integer:  # TFLite's ABS takes no int64: the larger of x and -x
        return tf.maximum(x, tf.negative(x))
    return tf.abs(x)


for _name, _make in {
    "Abs": _absolute, "Neg": lambda tf, x, c: tf.negative(x), "Exp": lambda tf, x, c: tf.exp(x),
    "Log": lambda tf, x, c: tf.math.log(x), "Sqrt": lambda tf, x, c: tf.sqrt(x),
    "Reciprocal": lambda tf, x, c: tf.math.reciprocal(x), "Floor": lambda tf, x, c: tf.floor(x),
    "Ceil": lambda tf, x, c: tf.math.ceil(x), "Round": lambda tf, x, c: tf.round(x),  # half to even, as ONNX
    "Sign": lambda tf, x, c: tf.sign(x), "Erf": lambda tf, x, c: tf.math.erf(x),
    "Sin": lambda tf, x, c: tf.sin(x), "Cos": lambda tf, x, c: tf.cos(x), "Tan": lambda tf, x, c: tf.tan(x),
    "Asin": lambda tf, x, c: tf.asin(x), "Acos": lambda tf, x, c: tf.acos(x), "Atan": lambda tf, x, c: tf.atan(x),
    "Sinh": lambda tf, x, c: tf.sinh(x), "Cosh": lambda tf, x, c: tf.cosh(x),
    "Asinh": lambda tf, x, c: tf.asinh(x), "Acosh": lambda tf, x, c: tf.acosh(x), "Atanh": lambda tf, x, c: tf.atanh(x),
    "Relu": lambda tf, x, c: tf.nn.relu(x), "Sigmoid": lambda tf, x, c: tf.sigmoid(x),
    "Tanh": lambda tf, x, c: tf.tanh(x), "Softplus": lambda tf, x, c: tf.nn.softplus(x),
    "Softsign": lambda tf, x, c: tf.nn.softsign(x), "Not": lambda tf, x, c: tf.logical_not(x),
    "IsNaN": lambda tf, x, c: tf.math.is_nan(x), "Identity": lambda tf, x, c: x if isinstance(x, (TensorSequence, OptionalValue)) else tf.identity(x),
    "LeakyRelu": lambda tf, x, c: tf.nn.leaky_relu(x, alpha=c.attr("alpha", 0.01)),
    # alpha 1 is TensorFlow's own Elu op, which TFLite and TF.js run as one kernel (TF.js fuses it).
    "Elu": lambda tf, x, c: tf.nn.elu(x) if c.attr("alpha", 1.0) == 1.0 else tf.where(
        x > 0, x, c.attr("alpha", 1.0) * (tf.exp(x) - 1)),
    "Selu": lambda tf, x, c: c.attr("gamma", 1.0507009873554805) * tf.where(
        x > 0, x, c.attr("alpha", 1.6732632423543772) * (tf.exp(x) - 1)),
    "Celu": lambda tf, x, c: tf.maximum(x, 0.0) + tf.minimum(c.attr("alpha", 1.0) * (tf.exp(x / c.attr("alpha", 1.0)) - 1), 0.0),
    "HardSigmoid": lambda tf, x, c: tf.clip_by_value(c.attr("alpha", 0.2) * x + c.attr("beta", 0.5), 0.0, 1.0),
    "HardSwish": lambda tf, x, c: x * tf.clip_by_value(x / 6.0 + 0.5, 0.0, 1.0),
    "Mish": lambda tf, x, c: x * tf.tanh(tf.nn.softplus(x)),
    "ThresholdedRelu": lambda tf, x, c: tf.where(x > c.attr("alpha", 1.0), x, tf.zeros_like(x)),
}.items():
    _unary(_name, _make)


@onnx_op("Gelu", since=20, layout=ELEMENTWISE)
def convert_gelu(ctx: NodeContext):
    """ONNX Gelu (exact, or tanh approximation)."""
    tf, x = _tf(), ctx.inputs[0]
    if ctx.attr("approximate", "none") == "tanh":
        return tf.nn.gelu(x, approximate=True)
    return _exact_gelu(tf, x)


def _exact_gelu(tf, x):
    # Written with Erf, in exactly this order: tf.nn.gelu uses Erfc, which TF.js and TFLite's
    # builtins lack, and the TFLite converter turns only this spelling into its GELU builtin.
    return 0.5 * x * (1.0 + tf.math.erf(x * tf.constant(0.7071067811865476, x.dtype)))


@onnx_op("Gelu", domain=FUSED_DOMAIN, layout=ELEMENTWISE)
def convert_fused_gelu(ctx: NodeContext):
    """Exact GELU that an exporter wrote as Div, Erf, Add and two Muls (fusions.py finds them)."""
    return _exact_gelu(_tf(), ctx.inputs[0])


@onnx_op("IsInf", since=10, layout=ELEMENTWISE)
def convert_isinf(ctx: NodeContext):
    """ONNX IsInf, with its detect_positive/detect_negative switches."""
    tf, x = _tf(), ctx.inputs[0]
    infinite = tf.math.is_inf(x)
    result = tf.zeros_like(x, dtype=tf.bool)
    if ctx.attr("detect_positive", 1):
        result = result | (infinite & (x > 0))
    if ctx.attr("detect_negative", 1):
        result = result | (infinite & (x < 0))
    return result


def _binary(op_type: str, make, since: int = 1):
    def convert(ctx: NodeContext):
        return make(_tf(), ctx.inputs[0], ctx.inputs[1], ctx)
    convert.__name__ = f"convert_{op_type.lower()}"
    convert.__doc__ = f"ONNX {op_type} (numpy broadcasting)."
    onnx_op(op_type, since=since, layout=ELEMENTWISE)(convert)


def _divide(tf, a, b, ctx):
    if a.dtype.is_integer:  # ONNX integer division truncates toward zero
        # Written with FloorDiv (TruncateDiv is neither a TFLite builtin nor a TF.js op): the floor,
        # plus one where the signs differ and the division is not exact.
        if a.dtype == tf.int64:  # TFLite's FLOOR_DIV takes int32: sizes and indices fit (the check
            # compares integer outputs exactly, so a value that does not would be caught)
            narrow = _divide(tf, tf.cast(a, tf.int32), tf.cast(b, tf.int32), ctx)
            return tf.cast(narrow, tf.int64)
        floor = tf.math.floordiv(a, b)
        inexact = tf.not_equal(floor * b, a)
        signs_differ = tf.not_equal(tf.less(a, tf.zeros_like(a)), tf.less(b, tf.zeros_like(b)))
        return floor + tf.cast(tf.logical_and(inexact, signs_differ), a.dtype)
    return a / b



def _power(tf, a, b, ctx):
    if a.dtype != b.dtype:
        b = tf.cast(b, a.dtype)
    return tf.pow(a, b)


def _modulo(tf, a, b, ctx):
    if a.dtype in (tf.float16, tf.bfloat16):  # TF's CPU mod kernels take float32
        return tf.cast(_modulo(tf, tf.cast(a, tf.float32), tf.cast(b, tf.float32), ctx), a.dtype)
    if ctx.attr("fmod", 0):
        return tf.truncatemod(a, b)  # C fmod: the sign of the dividend
    return tf.math.floormod(a, b)  # Python %: the sign of the divisor


for _name, _make in {
    "Add": lambda tf, a, b, c: a + b, "Sub": lambda tf, a, b, c: a - b, "Mul": lambda tf, a, b, c: a * b,
    "Div": _divide, "Pow": _power, "Mod": _modulo,
    "Equal": lambda tf, a, b, c: tf.equal(a, b), "Less": lambda tf, a, b, c: tf.less(a, b),
    "Greater": lambda tf, a, b, c: tf.greater(a, b), "LessOrEqual": lambda tf, a, b, c: tf.less_equal(a, b),
    "GreaterOrEqual": lambda tf, a, b, c: tf.greater_equal(a, b),
    "And": lambda tf, a, b, c: tf.logical_and(a, b), "Or": lambda tf, a, b, c: tf.logical_or(a, b),
    "Xor": lambda tf, a, b, c: tf.math.logical_xor(a, b),
    "BitwiseAnd": lambda tf, a, b, c: tf.bitwise.bitwise_and(a, b),
    "BitwiseOr": lambda tf, a, b, c: tf.bitwise.bitwise_or(a, b),
    "BitwiseXor": lambda tf, a, b, c: tf.bitwise.bitwise_xor(a, b),
    "PRelu": lambda tf, a, b, c: tf.where(a < 0, a * b, a),
}.items():
    _binary(_name, _make)


@onnx_op("BitwiseNot", since=18, layout=ELEMENTWISE)
def convert_bitwise_not(ctx: NodeContext):
    """ONNX BitwiseNot."""
    return _tf().bitwise.invert(ctx.inputs[0])


def _variadic(op_type: str, combine):
    def convert(ctx: NodeContext):
        values = [v for v in ctx.inputs if v is not None]
        result = values[0]
        for value in values[1:]:
            result = combine(_tf(), result, value)
        return result if op_type != "Mean" else result / len(values)
    convert.__name__ = f"convert_{op_type.lower()}"
    convert.__doc__ = f"ONNX {op_type} over any number of inputs (broadcasting)."
    onnx_op(op_type, layout=ELEMENTWISE)(convert)


_variadic("Sum", lambda tf, a, b: a + b)
_variadic("Mean", lambda tf, a, b: a + b)
_variadic("Max", lambda tf, a, b: tf.maximum(a, b))
_variadic("Min", lambda tf, a, b: tf.minimum(a, b))


@onnx_op("Clip", layout=ELEMENTWISE)
def convert_clip(ctx: NodeContext):
    """ONNX Clip: bounds as attributes (before opset 11) or optional inputs."""
    tf, x = _tf(), ctx.inputs[0]
    low = ctx.input(1) if ctx.opset >= 11 else ctx.attr("min")
    high = ctx.input(2) if ctx.opset >= 11 else ctx.attr("max")
    if low is not None:
        x = tf.maximum(x, tf.cast(low, x.dtype))
    if high is not None:
        x = tf.minimum(x, tf.cast(high, x.dtype))
    return x


@onnx_op("Where", since=9, layout=ELEMENTWISE)
def convert_where(ctx: NodeContext):
    """ONNX Where (broadcasting)."""
    return _tf().where(*ctx.inputs[:3])


@onnx_op("Cast", layout=ELEMENTWISE)
def convert_cast(ctx: NodeContext):
    """ONNX Cast to the ``to`` element type (narrow types rounded onto their grid: narrow.py)."""
    return _cast(ctx, ctx.inputs[0], ctx.attr("to"))


@onnx_op("CastLike", since=15)
def convert_cast_like(ctx: NodeContext):
    """ONNX CastLike: to the element type of the second input."""
    return _cast(ctx, ctx.inputs[0], ctx.onnx_type(1))


def _cast(ctx: NodeContext, x, to: int):
    from .narrow import NARROW, cast_to_narrow
    from .dtypes import tf_dtype
    if int(to) in NARROW:
        return cast_to_narrow(_tf(), x, to, saturate=bool(ctx.attr("saturate", 1)),
                              round_mode=ctx.attr("round_mode", "up"))
    return _tf().cast(x, tf_dtype(to))
