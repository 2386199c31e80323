"""ONNX's quantization ops: QuantizeLinear, DequantizeLinear (per tensor, per axis or blocked),
DynamicQuantizeLinear, the integer / QLinear products (MatMulInteger, ConvInteger, QLinearMatMul,
QLinearConv), and BitCast. Computed exactly as ONNX defines them, in the graph, on dequantized
float32 values where the result is quantized again."""
from __future__ import annotations

from typing import List, Optional

import torch
import torch.nn.functional as F

from ..narrow_types import NARROW, NarrowFloat, NarrowInt
from .dtypes import torch_dtype
from .graph import NodeContext, onnx_op
from .narrow import cast_to_narrow

# ONNX integer element types -> (lowest, highest, torch dtype).
_INTEGER_RANGES = {2: (0, 255, torch.uint8), 3: (-128, 127, torch.int8), 4: (0, 65535, torch.uint16),
                   5: (-32768, 32767, torch.int16)}


def per_axis(value: torch.Tensor, x: torch.Tensor, axis: int, block: int) -> torch.Tensor:
    """A scale or zero point shaped to broadcast against ``x``: scalar, per ``axis``, or repeated over
    blocks of ``block`` along ``axis``."""
    if value.dim() == 0 or (value.dim() == 1 and value.shape[0] == 1):
        return value.reshape(())
    axis %= x.dim()
    if block:
        return value.repeat_interleave(block, axis).narrow(axis, 0, x.shape[axis])
    shape = [1] * x.dim()
    shape[axis] = -1
    return value.reshape(shape)


def quantize(x: torch.Tensor, scale: torch.Tensor, zero: Optional[torch.Tensor], code: int, saturate: bool,
             precision: Optional[torch.dtype]) -> torch.Tensor:
    """saturate(round(x / scale) + zero_point) in the ONNX type ``code`` (narrow floats rounded onto
    their grid)."""
    if precision is not None:
        x, scale = x.to(precision), scale.to(precision)
    elif x.dtype != scale.dtype:
        scale = scale.to(x.dtype)
    kind = NARROW.get(code)
    if isinstance(kind, NarrowFloat):
        q = x / scale
        if zero is not None:
            q = q + zero.to(q.dtype)
        return cast_to_narrow(q, code, saturate, "up")
    if isinstance(kind, NarrowInt):  # held in its carrier
        low, high = kind.lowest, kind.lowest + (1 << kind.bits) - 1
        dtype = torch.int8 if kind.signed else torch.uint8
    else:
        low, high, dtype = _INTEGER_RANGES[code]
    q = torch.round(x / scale)  # half to even, as ONNX's rint
    if zero is not None:
        q = q + zero.to(q.dtype)
    return torch.clamp(q, low, high).to(dtype)


def quantize_linear(x: torch.Tensor, scale: torch.Tensor, zero: Optional[torch.Tensor], axis: int, block: int,
                    code: int, saturate: bool, precision: Optional[torch.dtype]) -> torch.Tensor:
    zero = None if zero is None else per_axis(zero, x, axis, block)
    return quantize(x, per_axis(scale, x, axis, block), zero, code, saturate, precision)


def dequantize_linear(x: torch.Tensor, scale: torch.Tensor, zero: Optional[torch.Tensor], axis: int, block: int,
                      dtype: torch.dtype) -> torch.Tensor:
    dx = x.to(torch.float32)
    if zero is not None:
        dx = dx - per_axis(zero, x, axis, block).to(torch.float32)
    return (dx * per_axis(scale, x, axis, block).to(torch.float32)).to(dtype)


def _unsupported(code: int) -> bool:
    return code not in _INTEGER_RANGES and code not in NARROW


@onnx_op("QuantizeLinear", since=10)
def quantize_linear_op(ctx: NodeContext, x, scale, zero=None):
    code = ctx.onnx_type(2) if zero is not None else ctx.attr("output_dtype") or 2
    if _unsupported(int(code)):
        from ...errors import UnsupportedOpError
        raise UnsupportedOpError(f"QuantizeLinear to element type {code}",
                                 hint="quantizing to (u)int2/4/8/16, float8 and float4 converts")
    precision = ctx.attr("precision")
    return ctx.call(quantize_linear, x, scale, zero, ctx.attr("axis", 1), ctx.attr("block_size", 0), int(code),
                    bool(ctx.attr("saturate", 1)), torch_dtype(precision) if precision else None)


@onnx_op("DequantizeLinear", since=10)
def dequantize_linear_op(ctx: NodeContext, x, scale, zero=None):
    output = ctx.attr("output_dtype")
    dtype = torch_dtype(output) if output else ctx.dtype(1)
    return ctx.call(dequantize_linear, x, scale, zero, ctx.attr("axis", 1), ctx.attr("block_size", 0), dtype)


def dynamic_quantize_linear(x: torch.Tensor):
    """uint8 with a scale and zero point from the data's range (0 included)."""
    low = torch.clamp(torch.min(x), max=0.0)
    high = torch.clamp(torch.max(x), min=0.0)
    scale = (high - low) / 255.0
    zero = torch.clamp(torch.round(-low / scale), 0, 255).to(torch.uint8)
    return quantize(x, scale, zero, 2, True, None), scale, zero


@onnx_op("DynamicQuantizeLinear", since=11)
def dynamic_quantize_linear_op(ctx: NodeContext, x):
    result = ctx.call(dynamic_quantize_linear, x)
    return result[0], result[1], result[2]


def _centered(value: torch.Tensor, zero: Optional[torch.Tensor], axis: Optional[int]) -> torch.Tensor:
    value = value.to(torch.int32)
    if zero is None:
        return value
    zero = zero.to(torch.int32)
    if zero.numel() == 1:
        return value - zero.reshape(())
    shape = [1] * value.dim()
    shape[axis] = -1
    return value - zero.reshape(shape)


def matmul_integer(a: torch.Tensor, b: torch.Tensor, a_zero: Optional[torch.Tensor],
                   b_zero: Optional[torch.Tensor]) -> torch.Tensor:
    """int32 product of zero-point-centered (u)int8 matrices (exact in float64)."""
    a = _centered(a, a_zero, a.dim() - 2 if a.dim() > 1 else None)
    b = _centered(b, b_zero, b.dim() - 1)
    return torch.matmul(a.to(torch.float64), b.to(torch.float64)).to(torch.int32)


@onnx_op("MatMulInteger", since=10)
def matmul_integer_op(ctx: NodeContext, a, b, a_zero=None, b_zero=None):
    return ctx.call(matmul_integer, a, b, a_zero, b_zero)


def qlinear_matmul(a, a_scale, a_zero, b, b_scale, b_zero, y_scale, y_zero, code: int) -> torch.Tensor:
    da = (a.to(torch.float32) - per_axis(a_zero, a, -2, 0).to(torch.float32)) * per_axis(a_scale, a, -2, 0).to(torch.float32)
    db = (b.to(torch.float32) - per_axis(b_zero, b, -1, 0).to(torch.float32)) * per_axis(b_scale, b, -1, 0).to(torch.float32)
    return quantize(torch.matmul(da, db), y_scale.to(torch.float32), y_zero, code, True, None)


@onnx_op("QLinearMatMul", since=10)
def qlinear_matmul_op(ctx: NodeContext, a, a_scale, a_zero, b, b_scale, b_zero, y_scale, y_zero):
    return ctx.call(qlinear_matmul, a, a_scale, a_zero, b, b_scale, b_zero, y_scale, y_zero, int(ctx.onnx_type(7)))


def conv_float(x: torch.Tensor, w: torch.Tensor, b: Optional[torch.Tensor], strides: List[int], begin: List[int],
               end: List[int], dilations: List[int], group: int) -> torch.Tensor:
    """ONNX Conv on float operands with explicit (possibly asymmetric) pads."""
    flat: List[int] = []
    for first, last in zip(reversed(begin), reversed(end)):
        flat += [first, last]
    x = F.pad(x, flat)
    fn = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[x.dim() - 2]
    return fn(x, w, b, strides, 0, dilations, group)


def _conv_geometry(ctx: NodeContext, weight_index: int):
    from .nn import _auto_pads, _spatial
    kernel = ctx.attr("kernel_shape") or list(ctx.shape(weight_index)[2:])
    strides, dilations, begin, end = _spatial(ctx, kernel)
    begin, end, same = _auto_pads(ctx, None, kernel, strides, dilations, begin, end)
    if same is not None:
        from ...errors import UnsupportedOpError
        raise UnsupportedOpError(ctx.node.op_type, ctx.opset, where=f"node {ctx.name!r}",
                                 hint="auto_pad SAME needs static spatial sizes")
    return strides, begin, end, dilations, ctx.attr("group", 1)


def conv_integer(x, w, x_zero, w_zero, strides, begin, end, dilations, group: int) -> torch.Tensor:
    x = _centered(x, x_zero, 1).to(torch.float64)
    w = _centered(w, w_zero, 0).to(torch.float64)
    return torch.round(conv_float(x, w, None, strides, begin, end, dilations, group)).to(torch.int32)


@onnx_op("ConvInteger", since=10)
def conv_integer_op(ctx: NodeContext, x, w, x_zero=None, w_zero=None):
    return ctx.call(conv_integer, x, w, x_zero, w_zero, *_conv_geometry(ctx, 1))


def qlinear_conv(x, x_scale, x_zero, w, w_scale, w_zero, y_scale, y_zero, bias, code: int, strides, begin, end,
                 dilations, group: int) -> torch.Tensor:
    """Dequantize input and (per output channel) weights, convolve with the int32 bias, quantize."""
    dx = (x.to(torch.float32) - x_zero.reshape(()).to(torch.float32)) * x_scale.to(torch.float32)
    dw = (w.to(torch.float32) - per_axis(w_zero, w, 0, 0).to(torch.float32)) * per_axis(w_scale, w, 0, 0).to(torch.float32)
    if bias is not None:  # int32, in units of x_scale * w_scale
        bias = bias.to(torch.float32) * (x_scale.to(torch.float32) * w_scale.to(torch.float32)).reshape(-1)
    y = conv_float(dx, dw, bias, strides, begin, end, dilations, group)
    return quantize(y, y_scale.to(torch.float32), y_zero, code, True, None)


@onnx_op("QLinearConv", since=10)
def qlinear_conv_op(ctx: NodeContext, x, x_scale, x_zero, w, w_scale, w_zero, y_scale, y_zero, bias=None):
    return ctx.call(qlinear_conv, x, x_scale, x_zero, w, w_scale, w_zero, y_scale, y_zero, bias,
                    int(ctx.onnx_type(7)), *_conv_geometry(ctx, 3))


def bit_cast(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    if x.dtype == torch.bool or dtype == torch.bool:  # a bool byte is 0 or 1
        return x != 0 if dtype == torch.bool else x.to(dtype)
    if x.dtype in (torch.uint16, torch.uint32, torch.uint64) or dtype in (torch.uint16, torch.uint32, torch.uint64):
        # torch views these types only through their signed twins
        twin = {torch.uint16: torch.int16, torch.uint32: torch.int32, torch.uint64: torch.int64}
        source = x.view(twin.get(x.dtype, x.dtype)) if x.dtype in twin else x
        return source.view(twin.get(dtype, dtype)).view(dtype) if dtype in twin else source.view(dtype)
    return x.view(dtype)


@onnx_op("BitCast", since=26)
def bit_cast_op(ctx: NodeContext, x):
    return ctx.call(bit_cast, x, torch_dtype(ctx.attr("to")))
