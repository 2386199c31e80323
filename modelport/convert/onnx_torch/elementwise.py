"""Elementwise ops: math, comparisons, logic, activations, casts. ONNX broadcasts as numpy does, and
so does PyTorch; the differences handled here are integer division (ONNX truncates), integer
modulo, the result type of Pow, and the unsigned types PyTorch has few kernels for (computed in
int64 and cast back)."""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from . import runtime
from .dtypes import torch_dtype
from .graph import NodeContext, onnx_op

# Unsigned types most PyTorch kernels lack: computed as int64 (their values fit for the shapes ONNX
# models use them for) and cast back.
_WIDEN = {torch.uint16, torch.uint32, torch.uint64}


def widened(func):
    """Run an elementwise handler on int64 copies of uint16/32/64 inputs, casting its result back."""
    @functools.wraps(func)
    def handler(ctx: NodeContext, *inputs):
        dtype = ctx.dtype(0) if inputs else None
        if dtype not in _WIDEN:
            return func(ctx, *inputs)
        wide = [ctx.call(runtime.cast, x, torch.int64) if x is not None else None for x in inputs]
        result = func(ctx, *wide)
        out = ctx.output_type(0)
        return ctx.call(runtime.cast, result, torch_dtype(out) if out else dtype)
    return handler


_UNARY = {
    "Abs": torch.abs, "Neg": torch.neg, "Exp": torch.exp, "Log": torch.log, "Sqrt": torch.sqrt,
    "Reciprocal": torch.reciprocal, "Floor": torch.floor, "Ceil": torch.ceil, "Sin": torch.sin, "Cos": torch.cos,
    "Tan": torch.tan, "Asin": torch.asin, "Acos": torch.acos, "Atan": torch.atan, "Sinh": torch.sinh,
    "Cosh": torch.cosh, "Asinh": torch.asinh, "Acosh": torch.acosh, "Atanh": torch.atanh, "Erf": torch.erf,
    "Sigmoid": torch.sigmoid, "Tanh": torch.tanh, "Relu": torch.relu, "Not": torch.logical_not,
    "IsNaN": torch.isnan, "Sign": torch.sign, "Round": torch.round, "Softsign": F.softsign,
    "BitwiseNot": torch.bitwise_not, "Mish": F.mish,
}


def _unary(ctx: NodeContext, x):
    return ctx.call(_UNARY[ctx.node.op_type], x)


for _op in _UNARY:
    onnx_op(_op)(widened(_unary))

_BINARY = {"Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Equal": torch.eq, "Less": torch.lt,
           "LessOrEqual": torch.le, "Greater": torch.gt, "GreaterOrEqual": torch.ge, "And": torch.logical_and,
           "Or": torch.logical_or, "Xor": torch.logical_xor, "BitwiseAnd": torch.bitwise_and,
           "BitwiseOr": torch.bitwise_or, "BitwiseXor": torch.bitwise_xor}


@widened
def _binary(ctx: NodeContext, a, b):
    return ctx.call(_BINARY[ctx.node.op_type], a, b)


for _op in _BINARY:
    onnx_op(_op)(_binary)


@onnx_op("Div")
@widened
def div(ctx: NodeContext, a, b):
    dtype = ctx.dtype(0)
    if dtype is not None and not dtype.is_floating_point and dtype != torch.bool:
        return ctx.call(torch.div, a, b, rounding_mode="trunc")  # ONNX integer division truncates
    return ctx.call(torch.div, a, b)


@onnx_op("Mod")
@widened
def mod(ctx: NodeContext, a, b):
    # fmod=1: the sign of the dividend (C's fmod); fmod=0 (integers only): the divisor's, as Python's %.
    return ctx.call(torch.fmod if ctx.attr("fmod", 0) else torch.remainder, a, b)


@onnx_op("Pow")
def pow_(ctx: NodeContext, base, exponent):
    dtype = ctx.dtype(0)
    if dtype is not None and not dtype.is_floating_point:  # integer base: computed exactly, in its type
        exponent = ctx.call(runtime.cast, exponent, torch.int64)
        return ctx.call(runtime.cast, ctx.call(torch.pow, ctx.call(runtime.cast, base, torch.int64), exponent), dtype)
    return ctx.call(runtime.cast, ctx.call(torch.pow, base, exponent), dtype) if dtype else ctx.call(torch.pow, base, exponent)


@onnx_op("BitShift")
@widened
def bit_shift(ctx: NodeContext, x, shift):
    right = ctx.attr("direction") == "RIGHT"
    return ctx.call(torch.bitwise_right_shift if right else torch.bitwise_left_shift, x, shift)


@onnx_op("Max", "Min", "Sum", "Mean")
@widened
def variadic(ctx: NodeContext, *inputs):
    op = {"Max": torch.maximum, "Min": torch.minimum, "Sum": torch.add, "Mean": torch.add}[ctx.node.op_type]
    result = inputs[0]
    for other in inputs[1:]:
        result = ctx.call(op, result, other)
    if ctx.node.op_type == "Mean":
        result = ctx.call(torch.div, result, len(inputs))
    elif len(inputs) == 1:
        result = ctx.call(torch.clone, result)
    return result


@onnx_op("Clip")
@widened
def clip_v1(ctx: NodeContext, x, low=None, high=None):
    if ctx.opset < 11:  # bounds were attributes
        low, high = ctx.attr("min"), ctx.attr("max")
    if low is None and high is None:
        return ctx.call(torch.clone, x)
    bounds = [b if not isinstance(b, torch.Tensor) or b.numel() != 1 else b.item() for b in (low, high)]
    if all(b is None or isinstance(b, (int, float)) for b in bounds):  # constant bounds: torch's own form
        if bounds == [0.0, 6.0] and ctx.dtype(0) is not None and ctx.dtype(0).is_floating_point:
            return ctx.call(F.relu6, x)
        return ctx.call(torch.clamp, x, *bounds)
    return ctx.call(runtime.clip, x, low, high)


@onnx_op("Where")
@widened
def where(ctx: NodeContext, condition, a, b):
    return ctx.call(torch.where, condition, a, b)


def _cast(ctx: NodeContext, x, code: int):
    """ONNX Cast to element type ``code``: narrow types rounded onto their grid (narrow.py)."""
    from ..narrow_types import NARROW
    from .narrow import cast_to_narrow
    source = ctx.onnx_type(0)
    if int(code) in NARROW:
        if source is not None and int(source) in NARROW and int(source) != int(code):
            x = ctx.call(runtime.cast, x, torch.float32)  # from one narrow type to another: via float32
        return ctx.call(cast_to_narrow, x, int(code), bool(ctx.attr("saturate", 1)), ctx.attr("round_mode", "up"))
    if source is not None and int(source) in NARROW and torch_dtype(source) in (torch.int8, torch.uint8):
        return ctx.call(runtime.cast, x, torch_dtype(code))
    return ctx.call(runtime.cast, x, torch_dtype(code))


@onnx_op("Cast")
def cast(ctx: NodeContext, x):
    return _cast(ctx, x, ctx.attr("to"))


@onnx_op("CastLike")
def cast_like(ctx: NodeContext, x, like):
    return _cast(ctx, x, ctx.onnx_type(1))


@onnx_op("IsInf")
def is_inf(ctx: NodeContext, x):
    positive, negative = ctx.attr("detect_positive", 1), ctx.attr("detect_negative", 1)
    if positive and negative:
        return ctx.call(torch.isinf, x)
    if positive:
        return ctx.call(torch.isposinf, x)
    if negative:
        return ctx.call(torch.isneginf, x)
    return ctx.call(torch.zeros_like, x, dtype=torch.bool)


# -- activations ---------------------------------------------------------------------------------
@onnx_op("LeakyRelu")
def leaky_relu(ctx: NodeContext, x):
    return ctx.call(F.leaky_relu, x, ctx.attr("alpha", 0.01))


@onnx_op("Elu")
def elu(ctx: NodeContext, x):
    return ctx.call(F.elu, x, ctx.attr("alpha", 1.0))


@onnx_op("Celu")
def celu(ctx: NodeContext, x):
    return ctx.call(F.celu, x, ctx.attr("alpha", 1.0))


@onnx_op("Selu")
def selu(ctx: NodeContext, x):
    alpha, gamma = ctx.attr("alpha", 1.67326319217681884765625), ctx.attr("gamma", 1.05070102214813232421875)
    return ctx.call(runtime.selu, x, alpha, gamma)


@onnx_op("ThresholdedRelu")
def thresholded_relu(ctx: NodeContext, x):
    return ctx.call(runtime.thresholded_relu, x, ctx.attr("alpha", 1.0))


@onnx_op("HardSigmoid")
def hard_sigmoid(ctx: NodeContext, x):
    return ctx.call(runtime.hard_sigmoid, x, ctx.attr("alpha", 0.2), ctx.attr("beta", 0.5))


@onnx_op("HardSwish")
def hard_swish(ctx: NodeContext, x):
    return ctx.call(F.hardswish, x)


@onnx_op("Softplus")
def softplus(ctx: NodeContext, x):
    return ctx.call(runtime.softplus, x)


@onnx_op("PRelu")
def prelu(ctx: NodeContext, x, slope):
    return ctx.call(runtime.prelu, x, slope)


@onnx_op("Gelu", since=20)
def gelu(ctx: NodeContext, x):
    return ctx.call(F.gelu, x, approximate=ctx.attr("approximate", "none"))


@onnx_op("Shrink")
def shrink(ctx: NodeContext, x):
    return ctx.call(runtime.shrink, x, ctx.attr("lambd", 0.5), ctx.attr("bias", 0.0))


@onnx_op("Swish", since=24)
def swish(ctx: NodeContext, x):
    return ctx.call(runtime.swish, x, ctx.attr("alpha", 1.0))


@onnx_op("Affine", "ScaledTanh", "ParametricSoftplus")  # experimental ops of opsets < 10
def experimental(ctx: NodeContext, x):
    alpha, beta = ctx.attr("alpha", 1.0), ctx.attr("beta", 0.0 if ctx.node.op_type == "Affine" else 1.0)
    if ctx.node.op_type == "Affine":
        return ctx.call(torch.add, ctx.call(torch.mul, x, alpha), beta)
    if ctx.node.op_type == "ScaledTanh":
        return ctx.call(torch.mul, ctx.call(torch.tanh, ctx.call(torch.mul, x, beta)), alpha)
    return ctx.call(torch.mul, ctx.call(F.softplus, ctx.call(torch.mul, x, beta)), alpha)
