"""One handler per Caffe layer type: emit the ONNX nodes, return (tensor, shape) per top.

Each handler follows Caffe's own definition of the layer (the reference semantics), including
the quirks that make naive converters drift: the ceil-and-clip output size of Pooling, the
border divisor of AVE pooling, BatchNorm's scale-factor blob, WITHIN_CHANNEL LRN.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ...errors import InvalidModelError
from ..onnx_builder import padded_average_divisor_fix
from .graph import LayerContext, Shape, caffe_layer


def _axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


def _pair(values: Sequence[int], single: int | None, h, w, spatial: int, default: int) -> list[int]:
    """Caffe's two spellings of a spatial parameter: `name_h`/`name_w`, or a repeated `name`."""
    if h is not None or w is not None:
        return [int(h or default), int(w or default)]
    values = [int(v) for v in values] or ([int(single)] if single is not None else [default])
    return values * spatial if len(values) == 1 else values


def _conv_geometry(p, spatial: int):
    kernel = _pair(p.kernel_size, None, p.kernel_h if p.HasField("kernel_h") else None,
                   p.kernel_w if p.HasField("kernel_w") else None, spatial, 1)
    stride = _pair(p.stride, None, p.stride_h if p.HasField("stride_h") else None,
                   p.stride_w if p.HasField("stride_w") else None, spatial, 1)
    pad = _pair(p.pad, None, p.pad_h if p.HasField("pad_h") else None,
                p.pad_w if p.HasField("pad_w") else None, spatial, 0)
    dilation = [int(d) for d in p.dilation] or [1]
    dilation = dilation * spatial if len(dilation) == 1 else dilation
    return kernel, stride, pad, dilation


# ------------------------------------------------------------------------------- convolutions
def _convolution(ctx: LayerContext, transposed: bool):
    p = ctx.layer.param.convolution_param
    n, c, *spatial = ctx.shapes[0]
    kernel, stride, pad, dilation = _conv_geometry(p, len(spatial))
    group, out = int(p.group or 1), int(p.num_output)
    # Caffe's weight layouts are ONNX's: O x C/g x k (Conv) and C x O/g x k (ConvTranspose).
    weight_shape = (c, out // group, *kernel) if transposed else (out, c // group, *kernel)
    g = ctx.graph
    inputs = [ctx.inputs[0], g.const(f"{ctx.layer.name}/weight", ctx.blob(0, weight_shape, "weight"))]
    if p.bias_term:
        inputs.append(g.const(f"{ctx.layer.name}/bias", ctx.blob(1, (out,), "bias")))
    y = g.op("ConvTranspose" if transposed else "Conv", inputs, ctx.base, kernel_shape=kernel, strides=stride,
             pads=pad + pad, dilations=dilation, group=group)
    geometry = zip(spatial, kernel, stride, pad, dilation)
    if transposed:
        dims = [(x - 1) * s - 2 * pp + d * (k - 1) + 1 for x, k, s, pp, d in geometry]
    else:
        dims = [(x + 2 * pp - (d * (k - 1) + 1)) // s + 1 for x, k, s, pp, d in geometry]
    return [(y, (n, out, *dims))]


@caffe_layer("Convolution")
def convert_convolution(ctx: LayerContext):
    """Convolution -> Conv (group, dilation, per-axis pad/stride/kernel)."""
    return _convolution(ctx, transposed=False)


@caffe_layer("Deconvolution")
def convert_deconvolution(ctx: LayerContext):
    """Deconvolution -> ConvTranspose."""
    return _convolution(ctx, transposed=True)


@caffe_layer("InnerProduct")
def convert_inner_product(ctx: LayerContext):
    """InnerProduct -> Flatten + Gemm (implicit flatten from `axis`, optional transposed weights)."""
    p = ctx.layer.param.inner_product_param
    shape = ctx.shapes[0]
    axis = _axis(p.axis, len(shape))
    k, out = int(np.prod(shape[axis:])), int(p.num_output)
    g = ctx.graph
    weight = ctx.blob(0, (k, out) if p.transpose else (out, k), "weight")
    x = ctx.inputs[0]
    if len(shape) != 2 or axis != 1:
        x = g.op("Flatten", [x], f"{ctx.base}/flat", axis=axis)
    inputs = [x, g.const(f"{ctx.layer.name}/weight", weight)]
    if p.bias_term:
        inputs.append(g.const(f"{ctx.layer.name}/bias", ctx.blob(1, (out,), "bias")))
    y = g.op("Gemm", inputs, ctx.base, transB=0 if p.transpose else 1)
    if axis != 1:
        y = g.op("Reshape", [y, g.ints(f"{ctx.base}/shape", [-1, *shape[1:axis], out])], f"{ctx.base}/unflat")
    return [(y, (*shape[:axis], out))]


# ----------------------------------------------------------------------------------- pooling
def caffe_pool_size(size: int, kernel: int, pad: int, stride: int, ceil: bool) -> int:
    """Caffe's pooled size: ceil (or floor) division, then the clip rule that keeps the last
    window from starting inside the padding."""
    span = (size + 2 * pad - kernel) / stride
    pooled = (math.ceil(span) if ceil else math.floor(span)) + 1
    if pad > 0 and (pooled - 1) * stride >= size + pad:
        pooled -= 1
    return pooled


@caffe_layer("Pooling")
def convert_pooling(ctx: LayerContext):
    """Pooling -> MaxPool/AveragePool with explicit end pads reproducing Caffe's output size."""
    p = ctx.layer.param.pooling_param
    n, c, h, w = ctx.shapes[0]
    g = ctx.graph
    method = {0: "MAX", 1: "AVE"}.get(p.pool)
    if method is None:
        raise InvalidModelError(f"layer {ctx.layer.name!r}: STOCHASTIC pooling is random at training time and "
                                "has no deterministic deploy equivalent here")
    if p.global_pooling:
        y = g.op("GlobalMaxPool" if method == "MAX" else "GlobalAveragePool", ctx.inputs, ctx.base)
        return [(y, (n, c, 1, 1))]
    kernel = [int(p.kernel_h), int(p.kernel_w)] if p.HasField("kernel_h") else [int(p.kernel_size)] * 2
    pad = [int(p.pad_h), int(p.pad_w)] if (p.HasField("pad_h") or p.HasField("pad_w")) else [int(p.pad)] * 2
    stride = [int(p.stride_h), int(p.stride_w)] if p.HasField("stride_h") else [int(p.stride)] * 2
    ceil = p.round_mode == 0
    out = [caffe_pool_size(x, k, pp, s, ceil) for x, k, pp, s in zip((h, w), kernel, pad, stride)]
    end = [max(0, (o - 1) * s + k - x - pp) for o, s, k, x, pp in zip(out, stride, kernel, (h, w), pad)]
    attrs = dict(kernel_shape=kernel, strides=stride, pads=pad + end)
    if method == "MAX":
        y = g.op("MaxPool", ctx.inputs, ctx.base, **attrs)
    else:
        y = g.op("AveragePool", ctx.inputs, ctx.base, count_include_pad=1, **attrs)
        fix = padded_average_divisor_fix((h, w), out, kernel, stride, pad)
        if fix is not None:
            y = g.op("Mul", [y, g.const(f"{ctx.layer.name}/divisor_fix", fix)], f"{ctx.base}/divisor")
    onnx_out = [(x + pp + e - k) // s + 1 for x, pp, e, k, s in zip((h, w), pad, end, kernel, stride)]
    if onnx_out != out:  # floor mode can leave input rows unused: drop what Caffe does not compute
        y = g.op("Slice", [y, g.ints("starts", [0, 0]), g.ints("ends", out), g.ints("axes", [2, 3])], f"{ctx.base}/crop")
    return [(y, (n, c, *out))]


# ------------------------------------------------------------------------------- activations
def _unary(op_type: str, **attrs):
    def handler(ctx: LayerContext):
        return [(ctx.graph.op(op_type, ctx.inputs, ctx.base, **attrs), ctx.shapes[0])]
    handler.__doc__ = f"-> {op_type}"
    return handler


caffe_layer("Sigmoid")(_unary("Sigmoid"))
caffe_layer("TanH")(_unary("Tanh"))
caffe_layer("AbsVal")(_unary("Abs"))
caffe_layer("BNLL")(_unary("Softplus"))  # log(1 + exp(x))


@caffe_layer("ReLU")
def convert_relu(ctx: LayerContext):
    """ReLU -> Relu, or LeakyRelu when negative_slope is set."""
    slope = ctx.layer.param.relu_param.negative_slope
    if slope:
        return [(ctx.graph.op("LeakyRelu", ctx.inputs, ctx.base, alpha=float(slope)), ctx.shapes[0])]
    return [(ctx.graph.op("Relu", ctx.inputs, ctx.base), ctx.shapes[0])]


@caffe_layer("PReLU")
def convert_prelu(ctx: LayerContext):
    """PReLU -> PRelu with the slope shaped to broadcast over channels (or one shared slope)."""
    shape = ctx.shapes[0]
    shared = ctx.layer.param.prelu_param.channel_shared
    slope = ctx.blob(0, (1,) if shared else (shape[1],), "slope")
    if not shared:
        slope = slope.reshape((shape[1],) + (1,) * (len(shape) - 2))
    return [(ctx.graph.op("PRelu", [ctx.inputs[0], ctx.graph.const(f"{ctx.layer.name}/slope", slope)], ctx.base), shape)]


@caffe_layer("ELU")
def convert_elu(ctx: LayerContext):
    """ELU -> Elu(alpha)."""
    return [(ctx.graph.op("Elu", ctx.inputs, ctx.base, alpha=float(ctx.layer.param.elu_param.alpha)), ctx.shapes[0])]


@caffe_layer("Clip")
def convert_clip(ctx: LayerContext):
    """Clip -> Clip(min, max)."""
    p = ctx.layer.param.clip_param
    g = ctx.graph
    y = g.op("Clip", [ctx.inputs[0], g.const(f"{ctx.layer.name}/min", p.min), g.const(f"{ctx.layer.name}/max", p.max)], ctx.base)
    return [(y, ctx.shapes[0])]


def _affine(ctx: LayerContext, x: str, scale: float, shift: float) -> str:
    """scale * x + shift, skipping the identities."""
    g = ctx.graph
    if scale != 1.0:
        x = g.op("Mul", [x, g.const(f"{ctx.layer.name}/scale", scale)], f"{ctx.base}/scaled")
    if shift != 0.0:
        x = g.op("Add", [x, g.const(f"{ctx.layer.name}/shift", shift)], f"{ctx.base}/shifted")
    return x


@caffe_layer("Power")
def convert_power(ctx: LayerContext):
    """Power: (shift + scale * x) ^ power."""
    p = ctx.layer.param.power_param
    y = _affine(ctx, ctx.inputs[0], p.scale, p.shift)
    if p.power != 1.0:
        y = ctx.graph.op("Pow", [y, ctx.graph.const(f"{ctx.layer.name}/power", p.power)], ctx.base)
    elif y == ctx.inputs[0]:
        y = ctx.graph.op("Identity", [y], ctx.base)
    return [(y, ctx.shapes[0])]


@caffe_layer("Exp")
def convert_exp(ctx: LayerContext):
    """Exp: base ^ (shift + scale * x), base e when -1."""
    p = ctx.layer.param.exp_param
    ln_base = 1.0 if p.base == -1 else math.log(p.base)
    y = _affine(ctx, ctx.inputs[0], p.scale * ln_base, p.shift * ln_base)
    return [(ctx.graph.op("Exp", [y], ctx.base), ctx.shapes[0])]


@caffe_layer("Log")
def convert_log(ctx: LayerContext):
    """Log: log_base(shift + scale * x), natural log when base is -1."""
    p = ctx.layer.param.log_param
    y = ctx.graph.op("Log", [_affine(ctx, ctx.inputs[0], p.scale, p.shift)], f"{ctx.base}/ln")
    if p.base != -1:
        y = ctx.graph.op("Mul", [y, ctx.graph.const(f"{ctx.layer.name}/inv_ln_base", 1.0 / math.log(p.base))], ctx.base)
    return [(y, ctx.shapes[0])]


@caffe_layer("Softmax")
def convert_softmax(ctx: LayerContext):
    """Softmax -> Softmax over `axis` (opset 13+ normalises one axis, as Caffe does)."""
    axis = _axis(ctx.layer.param.softmax_param.axis, len(ctx.shapes[0]))
    return [(ctx.graph.op("Softmax", ctx.inputs, ctx.base, axis=axis), ctx.shapes[0])]


@caffe_layer("LRN")
def convert_lrn(ctx: LayerContext):
    """LRN: ACROSS_CHANNELS -> LRN; WITHIN_CHANNEL -> x * (1 + alpha * avgpool(x^2))^-beta."""
    p = ctx.layer.param.lrn_param
    g = ctx.graph
    size = int(p.local_size)
    if p.norm_region == 0:
        y = g.op("LRN", ctx.inputs, ctx.base, size=size, alpha=float(p.alpha), beta=float(p.beta), bias=float(p.k))
        return [(y, ctx.shapes[0])]
    pad = (size - 1) // 2
    x = ctx.inputs[0]
    square = g.op("Mul", [x, x], f"{ctx.base}/square")
    mean = g.op("AveragePool", [square], f"{ctx.base}/window", kernel_shape=[size, size], strides=[1, 1],
                pads=[pad, pad, pad, pad], count_include_pad=1)
    scaled = _affine(ctx, mean, float(p.alpha), 1.0)
    denominator = g.op("Pow", [scaled, g.const(f"{ctx.layer.name}/neg_beta", -float(p.beta))], f"{ctx.base}/norm")
    return [(g.op("Mul", [x, denominator], ctx.base), ctx.shapes[0])]


@caffe_layer("Dropout")
def convert_dropout(ctx: LayerContext):
    """Dropout is the identity at inference (Caffe scales at training time)."""
    return [(ctx.inputs[0], ctx.shapes[0])]


# ---------------------------------------------------------------------------- normalisation
@caffe_layer("BatchNorm")
def convert_batch_norm(ctx: LayerContext):
    """BatchNorm -> BatchNormalization; the stored mean/variance are divided by the scale-factor blob."""
    shape = ctx.shapes[0]
    channels = shape[1]
    mean = ctx.blob(0, (channels,), "mean")
    variance = ctx.blob(1, (channels,), "variance")
    factor = float(ctx.blob(2, (1,), "scale_factor")[0]) if ctx.has_blob(2) else 1.0
    factor = 0.0 if factor == 0 else 1.0 / factor
    g = ctx.graph
    name = ctx.layer.name
    inputs = [ctx.inputs[0], g.const(f"{name}/gamma", np.ones(channels)), g.const(f"{name}/beta", np.zeros(channels)),
              g.const(f"{name}/mean", mean * factor), g.const(f"{name}/variance", variance * factor)]
    eps = float(ctx.layer.param.batch_norm_param.eps)
    return [(g.op("BatchNormalization", inputs, ctx.base, epsilon=eps), shape)]


def _param_broadcast(value: np.ndarray, rank: int, axis: int) -> np.ndarray:
    """A parameter covering dims axis..axis+k, padded with unit dims to broadcast over the rest."""
    return value.reshape(value.shape + (1,) * (rank - axis - value.ndim))


def _covered(shape: Shape, axis: int, num_axes: int) -> tuple[int, ...]:
    return tuple(shape[axis:]) if num_axes == -1 else tuple(shape[axis:axis + num_axes])


def _operand_from_bottom(ctx: LayerContext, axis: int) -> str:
    """Second bottom of Scale/Bias, reshaped to broadcast from `axis`."""
    rank, other = len(ctx.shapes[0]), ctx.shapes[1]
    if axis + len(other) == rank:
        return ctx.inputs[1]
    target = ([0] if axis == 0 else []) + list(other[1:] if axis == 0 else other) + [1] * (rank - axis - len(other))
    return ctx.graph.op("Reshape", [ctx.inputs[1], ctx.graph.ints(f"{ctx.base}/operand_shape", target)],
                        f"{ctx.base}/operand")


def _operand(ctx: LayerContext, axis: int, num_axes: int, kind: str) -> tuple[str, tuple[int, ...]]:
    """The Scale/Bias operand: a second bottom, or the layer's first blob; and the dims it covers."""
    if len(ctx.inputs) > 1:
        return _operand_from_bottom(ctx, axis), tuple(ctx.shapes[1])
    shape = ctx.shapes[0]
    covered = _covered(shape, axis, num_axes)
    value = _param_broadcast(ctx.blob(0, covered, kind), len(shape), axis)
    return ctx.graph.const(f"{ctx.layer.name}/{kind}", value), covered


@caffe_layer("Scale")
def convert_scale(ctx: LayerContext):
    """Scale -> Mul (learned or from a second bottom) and optional Add of the bias blob."""
    p = ctx.layer.param.scale_param
    shape = ctx.shapes[0]
    axis = _axis(p.axis, len(shape))
    g = ctx.graph
    operand, covered = _operand(ctx, axis, p.num_axes, "scale")
    y = g.op("Mul", [ctx.inputs[0], operand], f"{ctx.base}/scaled" if p.bias_term else ctx.base)
    if p.bias_term:
        # The bias blob follows the scale blob, or comes first when the scale is a bottom.
        bias_index = 0 if len(ctx.inputs) > 1 else 1
        bias = _param_broadcast(ctx.blob(bias_index, covered, "bias"), len(shape), axis)
        y = g.op("Add", [y, g.const(f"{ctx.layer.name}/bias", bias)], ctx.base)
    return [(y, shape)]


@caffe_layer("Bias")
def convert_bias(ctx: LayerContext):
    """Bias -> Add (learned blob or a second bottom)."""
    p = ctx.layer.param.bias_param
    axis = _axis(p.axis, len(ctx.shapes[0]))
    operand, _ = _operand(ctx, axis, p.num_axes, "bias")
    return [(ctx.graph.op("Add", [ctx.inputs[0], operand], ctx.base), ctx.shapes[0])]


# ---------------------------------------------------------------------------- blob plumbing
@caffe_layer("Concat")
def convert_concat(ctx: LayerContext):
    """Concat along `axis` (or the legacy concat_dim)."""
    p = ctx.layer.param.concat_param
    rank = len(ctx.shapes[0])
    axis = _axis(p.concat_dim if p.HasField("concat_dim") else p.axis, rank)
    shape = list(ctx.shapes[0])
    shape[axis] = sum(s[axis] for s in ctx.shapes)
    return [(ctx.graph.op("Concat", ctx.inputs, ctx.base, axis=axis), tuple(shape))]


@caffe_layer("Slice")
def convert_slice(ctx: LayerContext):
    """Slice -> Split at slice_point (or into equal parts)."""
    p = ctx.layer.param.slice_param
    shape = ctx.shapes[0]
    axis = _axis(p.slice_dim if p.HasField("slice_dim") else p.axis, len(shape))
    tops = len(ctx.layer.tops)
    if p.slice_point:
        points = [0, *[int(v) for v in p.slice_point], shape[axis]]
        sizes = [b - a for a, b in zip(points, points[1:])]
    else:
        if shape[axis] % tops:
            raise InvalidModelError(f"layer {ctx.layer.name!r}: {shape[axis]} cannot be sliced into {tops} equal parts")
        sizes = [shape[axis] // tops] * tops
    g = ctx.graph
    outputs = g.op("Split", [ctx.inputs[0], g.ints(f"{ctx.base}/sizes", sizes)], ctx.base, outputs=tops, axis=axis)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    return [(o, tuple(size if i == axis else d for i, d in enumerate(shape))) for o, size in zip(outputs, sizes)]


@caffe_layer("Split")
def convert_split(ctx: LayerContext):
    """Split copies its bottom to every top: the same tensor."""
    return [(ctx.inputs[0], ctx.shapes[0])] * len(ctx.layer.tops)


@caffe_layer("Eltwise")
def convert_eltwise(ctx: LayerContext):
    """Eltwise: SUM (with coefficients) -> Mul/Sum, PROD -> Mul, MAX -> Max."""
    p = ctx.layer.param.eltwise_param
    g = ctx.graph
    if p.operation == 1:
        coeffs = list(p.coeff) or [1.0] * len(ctx.inputs)
        if len(coeffs) != len(ctx.inputs):
            raise InvalidModelError(f"layer {ctx.layer.name!r}: {len(coeffs)} coeff for {len(ctx.inputs)} bottoms")
        terms = [x if c == 1.0 else g.op("Mul", [x, g.const(f"{ctx.layer.name}/coeff{i}", c)], f"{ctx.base}/term{i}")
                 for i, (x, c) in enumerate(zip(ctx.inputs, coeffs))]
        return [(g.op("Sum", terms, ctx.base), ctx.shapes[0])]
    y = ctx.inputs[0]
    op = "Mul" if p.operation == 0 else "Max"
    if op == "Max":
        return [(g.op("Max", ctx.inputs, ctx.base), ctx.shapes[0])]
    for i, x in enumerate(ctx.inputs[1:], 1):
        y = g.op("Mul", [y, x], ctx.base if i == len(ctx.inputs) - 1 else f"{ctx.base}/prod{i}")
    return [(y, ctx.shapes[0])]


def _reshape(ctx: LayerContext, shape_in: Shape, shape_out: Shape, keep_batch: bool) -> str:
    target = list(shape_out)
    if keep_batch:
        target[0] = 0  # copy: the batch stays dynamic
    return ctx.graph.op("Reshape", [ctx.inputs[0], ctx.graph.ints(f"{ctx.base}/shape", target)], ctx.base)


@caffe_layer("Flatten")
def convert_flatten(ctx: LayerContext):
    """Flatten axes axis..end_axis into one."""
    p = ctx.layer.param.flatten_param
    shape = ctx.shapes[0]
    axis, end = _axis(p.axis, len(shape)), _axis(p.end_axis, len(shape))
    out = (*shape[:axis], int(np.prod(shape[axis:end + 1])), *shape[end + 1:])
    return [(_reshape(ctx, shape, out, keep_batch=axis > 0), out)]


@caffe_layer("Reshape")
def convert_reshape(ctx: LayerContext):
    """Reshape with Caffe's 0 (copy) / -1 (infer) dims over axes axis..axis+num_axes."""
    p = ctx.layer.param.reshape_param
    shape = ctx.shapes[0]
    axis = _axis(p.axis, len(shape) + 1) if p.axis < 0 else p.axis
    end = len(shape) if p.num_axes == -1 else axis + p.num_axes
    spec = [int(d) for d in p.shape.dim]
    middle = [shape[axis + i] if d == 0 else d for i, d in enumerate(spec)]
    if -1 in middle:
        known = int(np.prod([d for d in middle if d != -1]))
        total = int(np.prod(shape[axis:end]))
        middle[middle.index(-1)] = total // known
    out = (*shape[:axis], *middle, *shape[end:])
    keep_batch = axis > 0 or (spec and spec[0] == 0)
    return [(_reshape(ctx, shape, out, keep_batch=bool(keep_batch)), out)]


@caffe_layer("Permute")
def convert_permute(ctx: LayerContext):
    """Permute (SSD) -> Transpose; unlisted axes keep their order after the listed ones."""
    shape = ctx.shapes[0]
    order = [int(a) for a in ctx.layer.param.permute_param.order]
    order += [a for a in range(len(shape)) if a not in order]
    return [(ctx.graph.op("Transpose", ctx.inputs, ctx.base, perm=order), tuple(shape[a] for a in order))]


@caffe_layer("Crop")
def convert_crop(ctx: LayerContext):
    """Crop bottom 0 to bottom 1's shape from `axis` on, at the given offsets."""
    p = ctx.layer.param.crop_param
    shape, reference = ctx.shapes[0], ctx.shapes[1]
    axis = _axis(p.axis, len(shape))
    axes = list(range(axis, len(shape)))
    offsets = [int(o) for o in p.offset] or [0]
    offsets = offsets * len(axes) if len(offsets) == 1 else offsets
    ends = [o + reference[a] for o, a in zip(offsets, axes)]
    if any(e > shape[a] for e, a in zip(ends, axes)):
        raise InvalidModelError(f"layer {ctx.layer.name!r}: crop exceeds its input {list(shape)}")
    g = ctx.graph
    y = g.op("Slice", [ctx.inputs[0], g.ints(f"{ctx.base}/starts", offsets), g.ints(f"{ctx.base}/ends", ends),
                       g.ints(f"{ctx.base}/axes", axes)], ctx.base)
    return [(y, (*shape[:axis], *reference[axis:]))]


@caffe_layer("ArgMax")
def convert_argmax(ctx: LayerContext):
    """ArgMax -> TopK; indices as float like Caffe, with max values alongside when out_max_val."""
    p = ctx.layer.param.argmax_param
    shape = ctx.shapes[0]
    g = ctx.graph
    k = int(p.top_k)
    if p.HasField("axis"):
        axis = _axis(p.axis, len(shape))
        values, indices = g.op("TopK", [ctx.inputs[0], g.ints(f"{ctx.base}/k", [k])], f"{ctx.base}/topk", outputs=2, axis=axis)
        out_shape = tuple(k if i == axis else d for i, d in enumerate(shape))
        if p.out_max_val:
            return [(g.op("Identity", [values], ctx.base), out_shape)]
        return [(g.op("Cast", [indices], ctx.base, to=1), out_shape)]
    flat = g.op("Flatten", ctx.inputs, f"{ctx.base}/flat", axis=1)
    values, indices = g.op("TopK", [flat, g.ints(f"{ctx.base}/k", [k])], f"{ctx.base}/topk", outputs=2, axis=1)
    index = g.op("Unsqueeze", [g.op("Cast", [indices], f"{ctx.base}/index", to=1), g.ints(f"{ctx.base}/axis1", [1])],
                 f"{ctx.base}/index3d")
    if not p.out_max_val:
        return [(g.op("Identity", [index], ctx.base), (shape[0], 1, k))]
    value = g.op("Unsqueeze", [values, g.ints(f"{ctx.base}/axis1v", [1])], f"{ctx.base}/value3d")
    return [(g.op("Concat", [index, value], ctx.base, axis=1), (shape[0], 2, k))]
