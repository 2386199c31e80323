"""One handler per MXNet operator: emit the ONNX nodes, return (tensor, shape) per visible output.

Each follows MXNet 1.x's definition of the operator, defaults included (they are where naive
converters drift): BatchNorm's fix_gamma=True and eps=1e-3, Deconvolution's no_bias=True,
Pooling's 'full' convention (ceil) and its padded average divisor, SoftmaxOutput's softmax over
the flattened sample, Reshape's special codes 0/-1/-2/-3/-4.
"""
from __future__ import annotations

import math

import numpy as np

from ...errors import InvalidModelError
from ..onnx_builder import padded_average_divisor_fix
from .graph import OpContext, mxnet_op


def _spatial(ctx: OpContext, key: str, rank: int, default: int) -> list[int]:
    values = list(ctx.attrs.ints(key))
    if not values:
        return [default] * rank
    return values * rank if len(values) == 1 else values


def _check_layout(ctx: OpContext) -> None:
    layout = ctx.attrs.text("layout")
    if layout not in (None, "None", "NCW", "NCHW", "NCDHW"):
        raise ctx.unsupported(f"layout {layout} (channels-first layouts only)")


# ------------------------------------------------------------------------------- convolutions
@mxnet_op("Convolution")
def convolution(ctx: OpContext):
    """Convolution -> Conv (groups, dilation, per-axis kernel/stride/pad)."""
    _check_layout(ctx)
    n, c, *spatial = ctx.shapes[0]
    kernel = list(ctx.attrs.ints("kernel"))
    rank = len(kernel)
    stride, pad = _spatial(ctx, "stride", rank, 1), _spatial(ctx, "pad", rank, 0)
    dilate = _spatial(ctx, "dilate", rank, 1)
    out, group = ctx.attrs.int("num_filter"), ctx.attrs.int("num_group", 1)
    weight = ctx.param(1, "weight")
    if weight.shape != (out, c // group, *kernel):
        raise InvalidModelError(f"node {ctx.base!r}: weight shape {list(weight.shape)}, the symbol implies "
                                f"{[out, c // group, *kernel]}", hint="the .params does not belong to this symbol")
    inputs = [ctx.input(0), ctx.input(1)]
    if not ctx.attrs.bool("no_bias"):
        inputs.append(ctx.input(2))
    y = ctx.op("Conv", inputs, kernel_shape=kernel, strides=stride, pads=pad + pad, dilations=dilate, group=group)
    dims = [(x + 2 * p - (d * (k - 1) + 1)) // s + 1 for x, k, s, p, d in zip(spatial, kernel, stride, pad, dilate)]
    return [(y, (n, out, *dims))]


@mxnet_op("Deconvolution")
def deconvolution(ctx: OpContext):
    """Deconvolution -> ConvTranspose (adj as output_padding; no bias unless no_bias=False)."""
    _check_layout(ctx)
    if ctx.attrs.ints("target_shape") and any(ctx.attrs.ints("target_shape")):
        raise ctx.unsupported("target_shape (give pad and adj instead)")
    n, c, *spatial = ctx.shapes[0]
    kernel = list(ctx.attrs.ints("kernel"))
    rank = len(kernel)
    stride, pad = _spatial(ctx, "stride", rank, 1), _spatial(ctx, "pad", rank, 0)
    dilate, adj = _spatial(ctx, "dilate", rank, 1), _spatial(ctx, "adj", rank, 0)
    out, group = ctx.attrs.int("num_filter"), ctx.attrs.int("num_group", 1)
    inputs = [ctx.input(0), ctx.input(1)]
    if not ctx.attrs.bool("no_bias", True):  # MXNet's default for Deconvolution: no bias
        inputs.append(ctx.input(2))
    return [_conv_transpose(ctx, inputs, (n, c, *spatial), out, kernel, stride, pad, dilate, adj, group)]


def _conv_transpose(ctx, inputs, shape, out, kernel, stride, pad, dilate, adj, group, suffix=None):
    n, _, *spatial = shape
    y = ctx.op("ConvTranspose", inputs, suffix, kernel_shape=kernel, strides=stride, pads=pad + pad,
               dilations=dilate, group=group, output_padding=adj)
    dims = [(x - 1) * s - 2 * p + d * (k - 1) + 1 + a
            for x, k, s, p, d, a in zip(spatial, kernel, stride, pad, dilate, adj)]
    return y, (n, out, *dims)


@mxnet_op("FullyConnected")
def fully_connected(ctx: OpContext):
    """FullyConnected -> Flatten + Gemm (flatten=True), or MatMul over the last axis."""
    shape = ctx.shapes[0]
    hidden = ctx.attrs.int("num_hidden")
    weight = ctx.param(1, "weight")
    bias = None if ctx.attrs.bool("no_bias") else ctx.input(2)
    if ctx.attrs.bool("flatten", True):
        x = ctx.input(0)
        if len(shape) != 2:
            x = ctx.op("Flatten", [x], "flat", axis=1)
        y = ctx.op("Gemm", [x, ctx.input(1)] + ([bias] if bias else []), transB=1)
        return [(y, (shape[0], hidden))]
    y = ctx.op("MatMul", [ctx.input(0), ctx.const("weight_t", np.ascontiguousarray(weight.T))], "matmul")
    if bias:
        y = ctx.op("Add", [y, bias])
    return [(y, (*shape[:-1], hidden))]


# --------------------------------------------------------------------------- normalization
@mxnet_op("BatchNorm")
def batch_norm(ctx: OpContext):
    """BatchNorm (inference: moving statistics) -> BatchNormalization; gamma is 1 when fix_gamma."""
    shape = ctx.shapes[0]
    axis = ctx.attrs.int("axis", 1)
    axis = axis + len(shape) if axis < 0 else axis
    eps = ctx.attrs.float("eps", 1e-3)
    gamma = ctx.param(1, "gamma").astype(np.float32)
    if ctx.attrs.bool("fix_gamma", True):
        gamma = np.ones_like(gamma)
    beta, mean, var = (ctx.param(i, what).astype(np.float32) for i, what in ((2, "beta"), (3, "moving_mean"),
                                                                            (4, "moving_var")))
    if axis == 1:
        names = [ctx.const(k, v) for k, v in (("gamma", gamma), ("beta", beta), ("mean", mean), ("var", var))]
        y = ctx.op("BatchNormalization", [ctx.input(0), *names], epsilon=eps)
        return [(y, shape)]
    # Another channel axis: the same affine map, spelled out with constants shaped to broadcast.
    scale = gamma / np.sqrt(var + eps)
    broadcast = [1] * len(shape)
    broadcast[axis] = shape[axis]
    y = ctx.op("Mul", [ctx.input(0), ctx.const("scale", scale.reshape(broadcast))], "scale")
    y = ctx.op("Add", [y, ctx.const("shift", (beta - mean * scale).reshape(broadcast))])
    return [(y, shape)]


# ----------------------------------------------------------------------------- activations
_ACTIVATIONS = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softrelu": "Softplus", "softsign": "Softsign"}


@mxnet_op("Activation")
def activation(ctx: OpContext):
    """Activation(relu, sigmoid, tanh, softrelu, softsign): MXNet 1.x's five."""
    kind = ctx.attrs.text("act_type")
    if kind not in _ACTIVATIONS:
        raise ctx.unsupported(f"act_type {kind!r}")
    return [(ctx.op(_ACTIVATIONS[kind], [ctx.input(0)]), ctx.shapes[0])]


@mxnet_op("LeakyReLU")
def leaky_relu(ctx: OpContext):
    """LeakyReLU(leaky, prelu, elu, selu, gelu, rrelu at inference)."""
    kind = ctx.attrs.text("act_type", "leaky")
    shape = ctx.shapes[0]
    x = ctx.input(0)
    if kind == "leaky":
        return [(ctx.op("LeakyRelu", [x], alpha=ctx.attrs.float("slope", 0.25)), shape)]
    if kind == "rrelu":  # inference: the mean of the random slope's range
        slope = (ctx.attrs.float("lower_bound", 0.125) + ctx.attrs.float("upper_bound", 0.334)) / 2
        return [(ctx.op("LeakyRelu", [x], alpha=slope), shape)]
    if kind == "prelu":
        gamma = ctx.param(1, "gamma").astype(np.float32)
        if gamma.size > 1:  # one slope per channel (axis 1)
            gamma = gamma.reshape((shape[1],) + (1,) * (len(shape) - 2))
        return [(ctx.op("PRelu", [x, ctx.const("slope", gamma)]), shape)]
    if kind == "elu":
        return [(ctx.op("Elu", [x], alpha=ctx.attrs.float("slope", 0.25)), shape)]
    if kind == "selu":
        return [(ctx.op("Selu", [x]), shape)]
    if kind == "gelu":
        return [(ctx.op("Gelu", [x]) if _opset_has_gelu(ctx) else _gelu(ctx, x), shape)]
    raise ctx.unsupported(f"act_type {kind!r}")


def _opset_has_gelu(ctx: OpContext) -> bool:
    return ctx.graph.opset >= 20


def _gelu(ctx: OpContext, x: str) -> str:
    """x * (1 + erf(x / sqrt 2)) / 2, for opsets before Gelu."""
    erf = ctx.op("Erf", [ctx.op("Div", [x, ctx.const("sqrt2", math.sqrt(2.0))], "scaled")], "erf")
    half = ctx.op("Mul", [ctx.op("Add", [erf, ctx.const("one", 1.0)], "plus1"), ctx.const("half", 0.5)], "half")
    return ctx.op("Mul", [x, half])


# ------------------------------------------------------------------------------------ pooling
def pooled_size(size: int, kernel: int, pad: int, stride: int, convention: str) -> int:
    """MXNet's pooled size: floor ('valid') or ceil ('full') division; no clip rule (unlike Caffe)."""
    span = size + 2 * pad - kernel
    return (span // stride if convention == "valid" else -(-span // stride)) + 1


@mxnet_op("Pooling")
def pooling(ctx: OpContext):
    """Pooling(max, avg, sum; valid or full convention; global) -> MaxPool/AveragePool with end pads."""
    _check_layout(ctx)
    shape = ctx.shapes[0]
    n, c, *spatial = shape
    kind = ctx.attrs.text("pool_type", "max")
    if kind not in ("max", "avg", "sum"):
        raise ctx.unsupported(f"pool_type {kind!r}")
    x = ctx.input(0)
    if ctx.attrs.bool("global_pool"):
        if kind == "max":
            y = ctx.op("GlobalMaxPool", [x])
        else:
            y = ctx.op("GlobalAveragePool", [x], None if kind == "avg" else "mean")
            if kind == "sum":
                y = ctx.op("Mul", [y, ctx.const("area", float(np.prod(spatial)))])
        return [(y, (n, c, *[1] * len(spatial)))]
    convention = ctx.attrs.text("pooling_convention", "valid")
    if convention not in ("valid", "full"):
        raise ctx.unsupported(f"pooling_convention {convention!r}")
    kernel = list(ctx.attrs.ints("kernel"))
    rank = len(kernel)
    stride, pad = _spatial(ctx, "stride", rank, 1), _spatial(ctx, "pad", rank, 0)
    out = [pooled_size(x_, k, p, s, convention) for x_, k, p, s in zip(spatial, kernel, pad, stride)]
    # ONNX pads at the end so that floor division gives MXNet's size (ceil mode reads past the end).
    end = [max(p, (o - 1) * s + k - x_ - p) for o, s, k, x_, p in zip(out, stride, kernel, spatial, pad)]
    attrs = dict(kernel_shape=kernel, strides=stride, pads=pad + end)
    if kind == "max":
        y = ctx.op("MaxPool", [x], **attrs)
    else:
        include_pad = ctx.attrs.bool("count_include_pad", True)
        if include_pad or kind == "sum":
            y = ctx.op("AveragePool", [x], "average", count_include_pad=1, **attrs)
            # ONNX divides every window by the kernel area; MXNet's average clips the window at
            # size + pad, and a sum is the kernel-area average times the area.
            fix = np.float32(np.prod(kernel)) if kind == "sum" else \
                padded_average_divisor_fix(spatial, out, kernel, stride, pad)
            if fix is not None:
                y = ctx.op("Mul", [y, ctx.const("divisor_fix", fix)])
        else:
            y = ctx.op("AveragePool", [x], count_include_pad=0, **attrs)
    onnx_out = [(x_ + p + e - k) // s + 1 for x_, p, e, k, s in zip(spatial, pad, end, kernel, stride)]
    if onnx_out != out:
        y = ctx.op("Slice", [y, ctx.ints("starts", [0] * rank), ctx.ints("ends", out),
                             ctx.ints("axes", list(range(2, 2 + rank)))], "crop")
    return [(y, (n, c, *out))]


# ------------------------------------------------------------------------------------ softmax
def _softmax_flat(ctx: OpContext, shape, log: bool = False):
    """Softmax over everything but the batch, in the input's shape (SoftmaxOutput, SoftmaxActivation)."""
    op = "LogSoftmax" if log else "Softmax"
    if len(shape) == 2:
        return ctx.op(op, [ctx.input(0)], axis=1)
    flat = ctx.op("Flatten", [ctx.input(0)], "flat", axis=1)
    y = ctx.op(op, [flat], "softmax", axis=1)
    return ctx.op("Reshape", [y, ctx.ints("shape", [0, *shape[1:]])])


@mxnet_op("SoftmaxOutput")
def softmax_output(ctx: OpContext):
    """SoftmaxOutput at inference: the softmax (the label and the loss are training only)."""
    shape = ctx.shapes[0]
    if ctx.attrs.bool("multi_output"):
        return [(ctx.op("Softmax", [ctx.input(0)], axis=1), shape)]
    if ctx.attrs.bool("preserve_shape"):
        return [(ctx.op("Softmax", [ctx.input(0)], axis=-1), shape)]
    return [(_softmax_flat(ctx, shape), shape)]


@mxnet_op("SoftmaxActivation")
def softmax_activation(ctx: OpContext):
    """SoftmaxActivation: over the channel axis (mode='channel') or the whole sample ('instance')."""
    shape = ctx.shapes[0]
    if ctx.attrs.text("mode", "instance") == "channel":
        return [(ctx.op("Softmax", [ctx.input(0)], axis=1), shape)]
    return [(_softmax_flat(ctx, shape), shape)]


@mxnet_op("softmax", "log_softmax")
def softmax(ctx: OpContext):
    """softmax / log_softmax over an axis (temperature divides the input first)."""
    x = ctx.input(0)
    temperature = ctx.attrs.float("temperature")
    if temperature not in (None, 1.0):
        x = ctx.op("Div", [x, ctx.const("temperature", temperature)], "tempered")
    op = "LogSoftmax" if ctx.node.op == "log_softmax" else "Softmax"
    return [(ctx.op(op, [x], axis=ctx.attrs.int("axis", -1)), ctx.shapes[0])]


# ------------------------------------------------------------------------------- pass-through
@mxnet_op("Dropout")
def dropout(ctx: OpContext):
    """Dropout is the identity at inference (mode='training', MXNet's default)."""
    if ctx.attrs.text("mode", "training") == "always":
        raise ctx.unsupported("mode='always' (random at inference)")
    return [(ctx.input(0), ctx.shapes[0])]


@mxnet_op("BlockGrad", "_copy")
def identity(ctx: OpContext):
    """Gradient and copy markers: the value passes through."""
    return [(ctx.input(0), ctx.shapes[0])]


# ------------------------------------------------------------------------------------- shapes
@mxnet_op("Flatten")
def flatten(ctx: OpContext):
    shape = ctx.shapes[0]
    return [(ctx.op("Flatten", [ctx.input(0)], axis=1), (shape[0], int(np.prod(shape[1:]))))]


def reshape_shape(shape: tuple[int, ...], spec: tuple[int, ...], reverse: bool = False) -> tuple[int, ...]:
    """MXNet Reshape's output shape: 0 copies a dim, -1 infers one, -2 copies the rest, -3 merges two
    dims, -4 splits one into the next two values (one of which may be -1); reverse reads both from
    the right."""
    if reverse:
        shape, spec = shape[::-1], spec[::-1]
    out: list[int] = []
    i = j = 0
    infer = None
    while j < len(spec):
        code = spec[j]
        if code == 0:
            out.append(shape[i])
            i += 1
        elif code == -1:
            infer = len(out)
            out.append(1)
            i += 1
        elif code == -2:
            out.extend(shape[i:])
            i = len(shape)
        elif code == -3:
            out.append(shape[i] * shape[i + 1])
            i += 2
        elif code == -4:
            a, b = spec[j + 1], spec[j + 2]
            if reverse:
                a, b = b, a
            if a == -1:
                a = shape[i] // b
            if b == -1:
                b = shape[i] // a
            out.extend([b, a] if reverse else [a, b])
            i += 1
            j += 2
        else:
            out.append(int(code))
            i += 1
        j += 1
    if infer is not None:
        known = int(np.prod([d for k, d in enumerate(out) if k != infer]))
        out[infer] = int(np.prod(shape)) // max(known, 1)
    if int(np.prod(out)) != int(np.prod(shape)):
        raise ValueError(f"cannot reshape {list(shape[::-1] if reverse else shape)} to spec {list(spec)}")
    return tuple(out[::-1]) if reverse else tuple(out)


@mxnet_op("Reshape")
def reshape(ctx: OpContext):
    """Reshape with MXNet's special codes, resolved statically; the batch dim stays dynamic where the
    output's first dim follows the input's batch."""
    shape = ctx.shapes[0]
    spec = ctx.attrs.ints("shape") or ctx.attrs.ints("target_shape")
    reverse = ctx.attrs.bool("reverse")
    try:
        out = reshape_shape(shape, spec, reverse)
        # Where does the batch go? Resolve the spec at another batch size and see which dim moves.
        other = reshape_shape((shape[0] + 1, *shape[1:]), spec, reverse)
    except (ValueError, IndexError) as exc:
        raise InvalidModelError(f"node {ctx.base!r}: {exc}") from None
    moved = [k for k, (a, b) in enumerate(zip(out, other)) if a != b]
    target = list(out)
    if len(moved) == 1:
        target[moved[0]] = -1
    return [(ctx.op("Reshape", [ctx.input(0), ctx.ints("shape", target)]), out)]


@mxnet_op("transpose")
def transpose(ctx: OpContext):
    shape = ctx.shapes[0]
    axes = list(ctx.attrs.ints("axes")) or list(range(len(shape)))[::-1]
    return [(ctx.op("Transpose", [ctx.input(0)], perm=axes), tuple(shape[a] for a in axes))]


@mxnet_op("expand_dims")
def expand_dims(ctx: OpContext):
    shape = ctx.shapes[0]
    axis = ctx.attrs.int("axis")
    axis = axis + len(shape) + 1 if axis < 0 else axis
    out = (*shape[:axis], 1, *shape[axis:])
    return [(ctx.op("Unsqueeze", [ctx.input(0), ctx.ints("axes", [axis])]), out)]


def _slice_out(ctx: OpContext, starts, ends, axes, steps, shape):
    out = list(shape)
    for s, e, a, st in zip(starts, ends, axes, steps):
        out[a] = len(range(*slice(s, e, st).indices(shape[a])))
    y = ctx.op("Slice", [ctx.input(0), ctx.ints("starts", starts), ctx.ints("ends", ends), ctx.ints("axes", axes),
                         ctx.ints("steps", steps)])
    return [(y, tuple(out))]


@mxnet_op("slice")
def slice_(ctx: OpContext):
    """slice(begin, end, step) with None for 'all'; a negative step runs backwards."""
    shape = ctx.shapes[0]
    begin, end = ctx.attrs.tuple("begin"), ctx.attrs.tuple("end")
    step = ctx.attrs.tuple("step") or (None,) * len(begin)
    starts, ends, axes, steps = [], [], [], []
    for axis, (b, e, s) in enumerate(zip(begin, end, step)):
        s = 1 if s is None else int(s)
        if b is None and e is None and s == 1:
            continue
        b = (0 if s > 0 else shape[axis] - 1) if b is None else int(b)
        e = (shape[axis] if s > 0 else -shape[axis] - 1) if e is None else int(e)
        starts.append(b), ends.append(e), axes.append(axis), steps.append(s)
    if not axes:
        return [(ctx.input(0), shape)]
    return _slice_out(ctx, starts, ends, axes, steps, shape)


@mxnet_op("slice_axis")
def slice_axis(ctx: OpContext):
    shape = ctx.shapes[0]
    axis = ctx.attrs.int("axis")
    axis = axis + len(shape) if axis < 0 else axis
    end = ctx.attrs.int("end")
    return _slice_out(ctx, [ctx.attrs.int("begin", 0)], [shape[axis] if end is None else end], [axis], [1], shape)


@mxnet_op("Concat")
def concat(ctx: OpContext):
    shapes = ctx.shapes
    axis = ctx.attrs.int("dim", 1)
    axis = axis + len(shapes[0]) if axis < 0 else axis
    out = list(shapes[0])
    out[axis] = sum(s[axis] for s in shapes)
    y = ctx.op("Concat", [ctx.input(i) for i in range(len(shapes))], axis=axis)
    return [(y, tuple(out))]


@mxnet_op("SliceChannel")
def split(ctx: OpContext):
    shape = ctx.shapes[0]
    count = ctx.attrs.int("num_outputs", 1)
    axis = ctx.attrs.int("axis", 1)
    axis = axis + len(shape) if axis < 0 else axis
    squeeze = ctx.attrs.bool("squeeze_axis")
    piece = shape[axis] // count
    names = ctx.graph.op("Split", [ctx.input(0), ctx.ints("sizes", [piece] * count)], ctx.base, outputs=count,
                         axis=axis)
    names = [names] if isinstance(names, str) else names
    out = list(shape)
    out[axis] = piece
    if squeeze:
        del out[axis]
        names = [ctx.op("Squeeze", [n, ctx.ints(f"axes{i}", [axis])], f"squeeze{i}") for i, n in enumerate(names)]
    return [(n, tuple(out)) for n in names]


@mxnet_op("UpSampling")
def upsampling(ctx: OpContext):
    """UpSampling: nearest (Resize, an exact repeat) or bilinear (MXNet's learnable depthwise
    Deconvolution with kernel 2s - s%2, stride s, pad ceil((s-1)/2))."""
    shape = ctx.shapes[0]
    scale = ctx.attrs.int("scale")
    kind = ctx.attrs.text("sample_type", "nearest")
    if kind == "nearest":
        if ctx.attrs.int("num_args", 1) != 1:
            raise ctx.unsupported("nearest UpSampling of several inputs")
        scales = ctx.const("scales", [1.0, 1.0] + [float(scale)] * (len(shape) - 2))
        y = ctx.op("Resize", [ctx.input(0), "", scales], mode="nearest", nearest_mode="floor",
                   coordinate_transformation_mode="asymmetric")
        return [(y, (*shape[:2], *[d * scale for d in shape[2:]]))]
    if kind == "bilinear":
        channels = ctx.attrs.int("num_filter", shape[1])
        kernel = 2 * scale - scale % 2
        pad = math.ceil((scale - 1) / 2)
        return [_conv_transpose(ctx, [ctx.input(0), ctx.input(1)], shape, channels, [kernel] * 2, [scale] * 2,
                                [pad] * 2, [1, 1], [0, 0], channels)]
    raise ctx.unsupported(f"sample_type {kind!r}")


# --------------------------------------------------------------------------------- arithmetic
def _broadcast_shape(a, b):
    return tuple(int(d) for d in np.broadcast_shapes(tuple(a), tuple(b)))


def _binary(onnx_op: str):
    def handler(ctx: OpContext):
        y = ctx.op(onnx_op, [ctx.input(0), ctx.input(1)])
        return [(y, _broadcast_shape(ctx.shapes[0], ctx.shapes[1]))]
    handler.__doc__ = f"-> {onnx_op} (numpy broadcasting)"
    return handler


for _names, _onnx in ((("elemwise_add", "broadcast_add"), "Add"), (("elemwise_sub", "broadcast_sub"), "Sub"),
                      (("elemwise_mul", "broadcast_mul"), "Mul"), (("elemwise_div", "broadcast_div"), "Div"),
                      (("_maximum", "broadcast_maximum"), "Max"), (("_minimum", "broadcast_minimum"), "Min"),
                      (("_power", "broadcast_power"), "Pow")):
    mxnet_op(*_names)(_binary(_onnx))


def _scalar(onnx_op: str, reverse: bool = False):
    def handler(ctx: OpContext):
        scalar = ctx.const("scalar", ctx.attrs.float("scalar", 0.0))
        inputs = [scalar, ctx.input(0)] if reverse else [ctx.input(0), scalar]
        return [(ctx.op(onnx_op, inputs), ctx.shapes[0])]
    handler.__doc__ = f"-> {onnx_op} with the scalar {'first' if reverse else 'second'}"
    return handler


for _name, _onnx, _reverse in (("_plus_scalar", "Add", False), ("_minus_scalar", "Sub", False),
                               ("_rminus_scalar", "Sub", True), ("_mul_scalar", "Mul", False),
                               ("_div_scalar", "Div", False), ("_rdiv_scalar", "Div", True),
                               ("_maximum_scalar", "Max", False), ("_minimum_scalar", "Min", False),
                               ("_power_scalar", "Pow", False), ("_rpower_scalar", "Pow", True)):
    mxnet_op(_name)(_scalar(_onnx, _reverse))


@mxnet_op("ElementWiseSum")
def elementwise_sum(ctx: OpContext):
    return [(ctx.op("Sum", [ctx.input(i) for i in range(len(ctx.shapes))]), ctx.shapes[0])]


_UNARY = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "exp": "Exp", "log": "Log", "sqrt": "Sqrt",
          "abs": "Abs", "negative": "Neg", "floor": "Floor", "ceil": "Ceil", "erf": "Erf", "softsign": "Softsign",
          "reciprocal": "Reciprocal", "sin": "Sin", "cos": "Cos"}


def _unary(onnx_op: str):
    def handler(ctx: OpContext):
        return [(ctx.op(onnx_op, [ctx.input(0)]), ctx.shapes[0])]
    handler.__doc__ = f"-> {onnx_op}"
    return handler


for _name, _onnx in _UNARY.items():
    mxnet_op(_name)(_unary(_onnx))


@mxnet_op("square")
def square(ctx: OpContext):
    return [(ctx.op("Mul", [ctx.input(0), ctx.input(0)]), ctx.shapes[0])]


@mxnet_op("clip")
def clip(ctx: OpContext):
    low, high = ctx.const("min", ctx.attrs.float("a_min")), ctx.const("max", ctx.attrs.float("a_max"))
    return [(ctx.op("Clip", [ctx.input(0), low, high]), ctx.shapes[0])]


_REDUCTIONS = {"mean": "ReduceMean", "sum": "ReduceSum", "max": "ReduceMax", "min": "ReduceMin", "prod": "ReduceProd"}


def _reduce(onnx_op: str):
    def handler(ctx: OpContext):
        shape = ctx.shapes[0]
        rank = len(shape)
        axes = [a + rank if a < 0 else a for a in ctx.attrs.ints("axis")] or list(range(rank))
        if ctx.attrs.bool("exclude"):
            axes = [a for a in range(rank) if a not in axes]
        keep = ctx.attrs.bool("keepdims")
        inputs = [ctx.input(0)]
        attrs = {"keepdims": int(keep)}
        if onnx_op == "ReduceSum" or ctx.graph.opset >= 18:  # axes became an input: ReduceSum 13, others 18
            inputs.append(ctx.ints("axes", axes))
        else:
            attrs["axes"] = axes
        out = tuple(1 if a in axes else d for a, d in enumerate(shape)) if keep else \
            tuple(d for a, d in enumerate(shape) if a not in axes)
        return [(ctx.op(onnx_op, inputs, **attrs), out)]
    handler.__doc__ = f"-> {onnx_op} over axis (or all but axis, with exclude)"
    return handler


for _name, _onnx in _REDUCTIONS.items():
    mxnet_op(_name)(_reduce(_onnx))
